/** Runs an admission server in the test process and registers it with the shared apiserver. */
import path from "node:path";
import type { AdmissionHandler } from "../../src/admission/handler.ts";
import type { AdmissionRequest, AdmissionResponse } from "../../src/admission/review.ts";
import { ensureServingCertificate } from "../../src/devcluster/certs.ts";
import { urlClientConfig, validatingWebhookConfiguration } from "../../src/webhooks/configurations.ts";
import { createOrReplace } from "../../src/kube/index.ts";
import { createApp } from "../../src/server/app.ts";
import { listenHttps } from "../../src/server/https.ts";
import type { Logger } from "../../src/telemetry/logger.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import { client, cluster } from "./cluster.ts";

export interface Exchange {
  readonly path: string;
  readonly request: AdmissionRequest;
  readonly response: AdmissionResponse;
}

export interface TestWebhook {
  readonly port: number;
  readonly exchanges: Exchange[];
  close(): Promise<void>;
}

const CONFIGURATIONS = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";

export async function webhookCertificate(): Promise<{ certFile: string; keyFile: string }> {
  const info = cluster();
  return ensureServingCertificate({
    ca: { certFile: info.caFile, keyFile: info.caKeyFile }, outDir: path.join(info.dir, "pki"), name: "test-webhook",
    commonName: "kubetx-test-webhook", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"],
  });
}

/** Serves `handler` at /validate and points the `kubetx` ValidatingWebhookConfiguration at it. */
export async function startTestWebhook(handler: AdmissionHandler, logger: Logger = silentLogger()): Promise<TestWebhook> {
  const exchanges: Exchange[] = [];
  const app = createApp({ logger, handlers: { "/validate": handler }, onReview: (p, request, response) => exchanges.push({ path: p, request, response }) });
  const server = await listenHttps(app, await webhookCertificate(), { host: "127.0.0.1", port: 0 });
  const admin = await client("admin");
  await createOrReplace(admin, CONFIGURATIONS, validatingWebhookConfiguration(urlClientConfig(`https://127.0.0.1:${server.port}`, "/validate", cluster().caData)));
  return {
    port: server.port,
    exchanges,
    close: async () => {
      await admin.delete(`${CONFIGURATIONS}/kubetx`).catch(() => undefined);
      admin.close();
      await server.close();
    },
  };
}
