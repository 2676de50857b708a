/**
 * The kubetx engine (admission server + resolver) in this process, and its
 * registration with the apiserver. Registration changes reach the
 * apiserver through an informer, so both directions are confirmed with a
 * server-side dry run whose review the engine does (or no longer does) see.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import type { ConfigInput, EngineConfig } from "../../src/config/config.ts";
import { flagPolicies, loadConfig } from "../../src/config/config.ts";
import { CONFIGURATION_PATHS, urlClientConfig, webhookConfigurations } from "../../src/webhooks/configurations.ts";
import { NotFound, createOrReplace } from "../../src/kube/index.ts";
import type { WebhookServer } from "../../src/main.ts";
import { startWebhookServer } from "../../src/main.ts";
import { ENABLED_LABEL } from "../../src/policy/policy.ts";
import { createLogger } from "../../src/telemetry/logger.ts";
import type { BenchCluster } from "./cluster.ts";
import type { Cleanup } from "./cleanup.ts";

/** Probes (100 ms apart) before a registration change counts as never taking effect. */
const REGISTRATION_PROBES = 150;
/** Consecutive probes the engine must not see before the webhook counts as unregistered. */
const QUIET_PROBES = 3;

export interface BenchEngine {
  readonly server: WebhookServer;
  readonly config: EngineConfig;
  readonly logFile: string;
  /** Reviews answered, by path (`/validate`, `/observe`) and decision. */
  readonly reviews: Map<string, number>;
  /** Reviews answered and the apiserver calls kubetx made while answering them, by the request's namespace. */
  readonly requestPath: Map<string, { reviews: number; calls: number }>;
  register(): Promise<void>;
  unregister(): Promise<void>;
  readonly registered: boolean;
}

export async function startBenchEngine(cluster: BenchCluster, cleanup: Cleanup, input: ConfigInput, logFile: string): Promise<BenchEngine> {
  const config = loadConfig(input);
  const probeNamespace = `bench-probe-${randomBytes(3).toString("hex")}`;
  // Opted in, and probed as alice: kubetx keeps its webhooks to what the
  // policy covers, so a write in a plain namespace or by the exempt admin
  // never reaches it.
  await cluster.createNamespace(probeNamespace, { [ENABLED_LABEL]: "true" });
  const reviews = new Map<string, number>();
  const requestPath = new Map<string, { reviews: number; calls: number }>();
  let probesSeen = 0;
  const server = await startWebhookServer({
    kubeconfig: cluster.controlPlane.kubeconfigs.kubetx,
    tls: cluster.webhookTls,
    host: "127.0.0.1",
    port: 0,
    // Production level (info: one line per admission decision), into a file.
    logger: createLogger({ level: "info", destination: pino.destination(logFile) }),
    config,
    // As in production: only the apiserver's client certificate gets in.
    apiserverClients: cluster.controlPlane.apiserverClient,
    onReview: (path, request, response, calls) => {
      if (request.namespace === probeNamespace) probesSeen += 1;
      const key = `${path} ${response.allowed ? "allowed" : "denied"}`;
      reviews.set(key, (reviews.get(key) ?? 0) + 1);
      const tally = requestPath.get(request.namespace ?? "") ?? { reviews: 0, calls: 0 };
      requestPath.set(request.namespace ?? "", { reviews: tally.reviews + 1, calls: tally.calls + calls });
    },
  });
  cleanup.push("stop engine", () => server.close());
  const probe = async (): Promise<boolean> => {
    const before = probesSeen;
    await cluster.alice.create(`/api/v1/namespaces/${probeNamespace}/configmaps`, {
      apiVersion: "v1", kind: "ConfigMap", metadata: { generateName: "probe-" }, data: { probe: "1" },
    }, { query: { dryRun: "All" } });
    return probesSeen > before;
  };
  const state = { registered: false };
  const engine: BenchEngine = {
    server, config, logFile, reviews, requestPath,
    get registered() {
      return state.registered;
    },
    register: async () => {
      // Covering what the engine's policy covers: its sync then has nothing to change.
      for (const configuration of webhookConfigurations((p) => urlClientConfig(`https://127.0.0.1:${server.port}`, p, cluster.controlPlane.caData), flagPolicies(config))) {
        await createOrReplace(cluster.admin, CONFIGURATION_PATHS[configuration.kind as keyof typeof CONFIGURATION_PATHS], configuration);
      }
      state.registered = true;
      for (let i = 0; i < REGISTRATION_PROBES; i += 1) {
        if (await probe()) return;
        await sleep(100);
      }
      throw new Error("bench: the apiserver never called the registered webhook");
    },
    unregister: async () => {
      for (const path of Object.values(CONFIGURATION_PATHS)) {
        await cluster.admin.delete(`${path}/kubetx`).catch((error: unknown) => {
          if (!(error instanceof NotFound)) throw error;
        });
      }
      state.registered = false;
      let quiet = 0;
      for (let i = 0; i < REGISTRATION_PROBES && quiet < QUIET_PROBES; i += 1) {
        quiet = (await probe()) ? 0 : quiet + 1;
        if (quiet < QUIET_PROBES) await sleep(100);
      }
      if (quiet < QUIET_PROBES) throw new Error("bench: the apiserver kept calling the webhook after it was unregistered");
    },
  };
  // No unregister on cleanup: the control plane, configurations and all, is torn down right after.
  return engine;
}
