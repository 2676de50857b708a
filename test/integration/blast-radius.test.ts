/**
 * The blast radius of a kubetx outage matches its policies. kubetx keeps its
 * webhook configurations covering what the TransactionPolicies cover, so the
 * apiserver sends kubetx only those writes, and with kubetx down
 * (failurePolicy Fail) refuses only those; everything else goes through.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config/config.ts";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import { KubeError } from "../../src/kube/index.ts";
import type { WebhookServer } from "../../src/main.ts";
import { startWebhookServer } from "../../src/main.ts";
import { POLICIES_PATH } from "../../src/policy/watch.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import { CONFIGURATION_PATHS } from "../../src/webhooks/configurations.ts";
import { client, cluster, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { FAST, register, unregister } from "../support/engine.ts";
import { configMap, inTransaction, waitResolved, yamlOf } from "../support/objects.ts";
import { webhookCertificate } from "../support/webhook.ts";

/**
 * How long a policy change may take to reach the apiserver's webhook calls:
 * policy watch, sync (in steps 2 s apart) and the apiserver's informer take
 * a few seconds; this is generous. Probes 100 ms apart meanwhile.
 */
const COVERAGE = { timeout: 20_000, interval: 100 };
const TEAM = "blast-radius.kubetx.io/team";

interface Seen {
  readonly path: string;
  readonly namespace: string;
  readonly name: string;
  readonly decision: string;
}

/** kubetx as the tests run it, recording every review it answers. */
async function startRecordingEngine(policySource: "cluster" | "flags", seen: Seen[]): Promise<WebhookServer> {
  const engine = await startWebhookServer({
    kubeconfig: cluster().kubeconfigs.kubetx, tls: await webhookCertificate(), host: "127.0.0.1", port: 0, logger: silentLogger(),
    config: loadConfig({ ...FAST, policySource }),
    apiserverClients: cluster().apiserverClient,
    onReview: (path, request, response) => seen.push({
      path, namespace: request.namespace ?? "", name: request.name ?? "", decision: response.auditAnnotations?.decision ?? "",
    }),
  });
  await register(engine.port);
  return engine;
}

function policy(name: string, matchLabels: Record<string, string>, spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: "kubetx.io/v1alpha1", kind: "TransactionPolicy", metadata: { name },
    spec: { mode: "transparent", namespaceSelector: { matchLabels }, quietWindowSeconds: 1, lockTTLSeconds: 3, maxOpenSeconds: 8, ...spec },
  };
}

describe("kubetx's webhooks with the policy from flags", () => {
  const seen: Seen[] = [];
  let engine: WebhookServer | undefined;
  let admin: KubeClient;

  beforeAll(async () => {
    admin = await client("admin");
    engine = await startRecordingEngine("flags", seen);
  });
  afterAll(async () => {
    await unregister();
    await engine?.close();
    admin?.close();
  });

  it("select the flag policy's namespaces and skip its exempt users", async () => {
    type Entry = { name: string; namespaceSelector: unknown; matchConditions: { name: string; expression: string }[] };
    const validate = async (): Promise<Entry | undefined> =>
      (await admin.get<{ webhooks: Entry[] }>(`${CONFIGURATION_PATHS.ValidatingWebhookConfiguration}/kubetx`)).webhooks.find((w) => w.name === "validate.kubetx.io");
    // FAST exempts admin; the installed starting point (the default policy) does not.
    await vi.waitFor(async () => expect((await validate())?.matchConditions.find((c) => c.name === "not-exempt-users")?.expression).toContain('"admin"'), COVERAGE);
    expect((await validate())?.namespaceSelector).toMatchObject({ matchLabels: { "kubetx.io/enabled": "true" } });
  });
});

describe("kubetx's webhooks with TransactionPolicies in the cluster", () => {
  const run = uniqueName("br");
  const covered = `${run}-covered`;
  const plain = `${run}-plain`;
  const other = `${run}-other`;
  const base = `${run}-base`;
  const later = `${run}-later`;
  const overlap = `${run}-overlap`;
  const seen: Seen[] = [];
  let engine: WebhookServer | undefined;
  let admin: KubeClient;
  let alice: KubeClient;
  let bob: KubeClient;

  beforeAll(async () => {
    [admin, alice, bob] = await Promise.all([client("admin"), client("alice"), client("bob")]);
    await createNamespace(covered, { [TEAM]: "base", [`${TEAM}-also`]: "yes" });
    await createNamespace(plain);
    await createNamespace(other, { [TEAM]: "other" });
    await admin.create(POLICIES_PATH, policy(base, { [TEAM]: "base" }, { exemptUsers: ["bob"] }));
    engine = await startRecordingEngine("cluster", seen);
  });
  afterAll(async () => {
    // First, so no later test file meets a webhook that nothing answers.
    await unregister();
    await engine?.close();
    for (const name of [base, later, overlap]) await admin?.delete(`${POLICIES_PATH}/${name}`).catch(() => undefined);
    for (const c of [admin, alice, bob]) c?.close();
  });

  let probes = 0;
  /** A server-side dry run of a ConfigMap create as `as`: whether it went through, whether kubetx answered a review of it, and on which paths. */
  async function probe(as: KubeClient, namespace: string): Promise<{ through: boolean; reachedKubetx: boolean; paths: string[] }> {
    const name = `probe-${(probes += 1)}`;
    const through = await as.create(`/api/v1/namespaces/${namespace}/configmaps`, configMap(namespace, name, { v: "1" }), { query: { dryRun: "All" } })
      .then(() => true, (error: unknown) => {
        if (error instanceof KubeError) return false;
        throw error;
      });
    const reviews = seen.filter((s) => s.namespace === namespace && s.name === name);
    return { through, reachedKubetx: reviews.length > 0, paths: [...new Set(reviews.map((s) => s.path))].sort() };
  }

  /**
   * Probes until writes to `namespace` reach both of kubetx's webhooks (or
   * neither): kubetx changes /validate first and /observe seconds later
   * (src/webhooks/sync.ts). The apiserver answers a write after every
   * webhook it calls, so one probe is proof.
   */
  async function untilCoverage(as: KubeClient, namespace: string, reachesKubetx: boolean): Promise<void> {
    const paths = reachesKubetx ? ["/observe", "/validate"] : [];
    await vi.waitFor(async () => expect(await probe(as, namespace)).toEqual({ through: true, reachedKubetx: reachesKubetx, paths }), COVERAGE);
  }

  it("send kubetx the writes in a namespace a policy selects", async () => {
    await untilCoverage(alice, covered, true);
  });

  it("never send kubetx a write in a namespace no policy selects", async () => {
    await untilCoverage(alice, covered, true);
    expect(await probe(alice, plain)).toEqual({ through: true, reachedKubetx: false, paths: [] });
  });

  it("never send kubetx the writes of a user the policy exempts", async () => {
    await untilCoverage(alice, covered, true);
    expect(await probe(bob, covered)).toEqual({ through: true, reachedKubetx: false, paths: [] });
  });

  it("cover a namespace within seconds of a policy that selects it, and uncover it when the policy is deleted", async () => {
    expect((await probe(alice, other)).reachedKubetx).toBe(false);
    await admin.create(POLICIES_PATH, policy(later, { [TEAM]: "other" }));
    await untilCoverage(alice, other, true);
    await admin.delete(`${POLICIES_PATH}/${later}`);
    await untilCoverage(alice, other, false);
  });

  it("call /validate once per overlapping policy, and the write joins its transaction once", async () => {
    await admin.create(POLICIES_PATH, policy(overlap, { [`${TEAM}-also`]: "yes" }));
    const validations = (name: string): Seen[] => seen.filter((s) => s.path === "/validate" && s.namespace === covered && s.name === name);
    await vi.waitFor(async () => {
      const name = `probe-${(probes += 1)}`;
      await alice.create(`/api/v1/namespaces/${covered}/configmaps`, configMap(covered, name, {}), { query: { dryRun: "All" } });
      expect(validations(name)).toHaveLength(2);
    }, COVERAGE);

    const id = `t-${run}-twice`;
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(covered, "twice", { v: "1" }), id, 1)]) });
    expect(applied.code, applied.stderr).toBe(0);
    expect(validations("twice").map((s) => s.decision)).toEqual(["member", "member"]);
    const tx = await waitResolved(admin, id);
    expect(tx.status?.phase).toBe("Committed");
    expect(tx.status?.members?.map((m) => m.name)).toEqual(["twice"]);
    await admin.delete(`${POLICIES_PATH}/${overlap}`);
  });

  describe("while kubetx is down", () => {
    beforeAll(async () => {
      // The configuration as the base policy alone wants it (the overlapping one is gone), before kubetx stops.
      await untilCoverage(bob, covered, false);
      await untilCoverage(alice, covered, true);
      await engine?.close();
      engine = undefined;
    });

    const create = (user: "alice" | "bob", namespace: string, name: string): ReturnType<typeof kubectl> =>
      kubectl(["-n", namespace, "create", "configmap", name, "--from-literal=v=1"], { user });

    it("let a write no policy covers through", async () => {
      expect((await create("alice", plain, "while-down")).code).toBe(0);
    });

    it("let an exempt user's write through", async () => {
      expect((await create("bob", covered, "exempt-while-down")).code).toBe(0);
    });

    it("refuse a write a policy covers, naming the webhook that failed", async () => {
      const refused = await create("alice", covered, "covered-while-down");
      expect(refused.code).not.toBe(0);
      // Mutating admission comes first, so the observing webhook is the one that fails.
      expect(refused.stderr).toContain('failed calling webhook "observe.kubetx.io"');
    });

    it("let an object opted out with kubetx.io/transaction: none be written and deleted", async () => {
      const optedOut = configMap(covered, "opted-out", { v: "1" }, { annotations: { "kubetx.io/transaction": "none" } });
      expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([optedOut]) })).code).toBe(0);
      expect((await kubectl(["-n", covered, "delete", "configmap", "opted-out"], { user: "alice" })).code).toBe(0);
    });
  });
});
