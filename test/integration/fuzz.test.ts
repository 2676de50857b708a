/**
 * A short fuzz campaign on the real cluster (`npm run fuzz` runs the long
 * one): malformed and adversarial mutations of real AdmissionReviews and
 * audit EventLists, sent as the apiserver and as anyone else. Every answer
 * is a refusal or a well-formed answer, kubetx writes nothing for them,
 * its memory stays flat, and it still admits a real apply afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.ts";
import type { KubeClient } from "../../src/kube/index.ts";
import type { WebhookServer } from "../../src/main.ts";
import { startWebhookServer } from "../../src/main.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import { fuzz } from "../../bench/fuzz/harness.ts";
import { ReviewRecorder } from "../../bench/fuzz/seeds.ts";
import { client, cluster, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { FAST, register, unregister } from "../support/engine.ts";
import { webhookCertificate } from "../support/webhook.ts";

/** Enough for every mutation to be picked many times; the full run is 100,000 (README, Measurements). */
const CI_COUNT = 3_000;

describe("fuzzing the running server", () => {
  let engine: WebhookServer;
  let admin: KubeClient;
  const recorder = new ReviewRecorder();
  const namespace = uniqueName("fuzz");
  const plainNamespace = uniqueName("fuzz-plain");

  beforeAll(async () => {
    admin = await client("admin");
    await createNamespace(namespace, { "kubetx.io/enabled": "true" });
    await createNamespace(plainNamespace);
    engine = await startWebhookServer({
      kubeconfig: cluster().kubeconfigs.kubetx, tls: await webhookCertificate(), host: "127.0.0.1", port: 0, logger: silentLogger(),
      config: loadConfig({ ...FAST, auditSink: true }), apiserverClients: cluster().apiserverClient,
      onReview: recorder.onReview,
    });
  });
  afterAll(async () => {
    await unregister();
    await engine?.close();
    admin?.close();
  });

  it(`answers ${CI_COUNT} malformed reviews and event lists with a refusal or a well-formed answer, writes nothing, and keeps serving`, async () => {
    const report = await fuzz({
      port: engine.port, admin, namespace, plainNamespace, auditLog: cluster().auditLog, caFile: cluster().caFile,
      apiserverClient: cluster().apiserverClientCertificate, recorder,
      kubectlAsAlice: (args, input) => kubectl(args, { user: "alice", ...(input === undefined ? {} : { input }) }),
      register: () => register(engine.port), unregister,
    }, { count: CI_COUNT, seed: 1337, unauthenticatedShare: 0.15, concurrency: 8, sampleEvery: 500, memorySlackMiB: 48 });
    expect(report.problems).toEqual([]);
    // Malformed input is refused as such (400), never found out by an error inside kubetx.
    expect(report.internalErrors).toEqual({});
    expect(report.writes).toEqual([]);
    expect(report.memoryCheck.flat, JSON.stringify(report.memory)).toBe(true);
    expect(report.stillServes).toBe(true);
    expect(report.seedCounts.admissionReviews).toBeGreaterThan(5);
    // Each kind of answer happened: refusals, answers, and the unauthenticated ones refused.
    const kinds = Object.keys(report.categories).join("\n");
    for (const expected of ["admission as the apiserver: 400", "admission as the apiserver: allowed", "audit as the apiserver: received", "admission unauthenticated: 401", "audit unauthenticated: 401"]) {
      expect(kinds).toContain(expected);
    }
  }, 600_000);
});
