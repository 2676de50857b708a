/** What the audit sink learns from the apiserver's events, and how its endpoint answers. */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findingOf, MAX_EVENTS_PER_LIST, parseEventList, progressOf } from "../../src/admission/audit-events.ts";
import { unpaired } from "../../src/admission/in-flight.ts";
import type { AuditSink } from "../../src/admission/audit-sink.ts";
import { ensureCertificateAuthority, ensureClientCertificate, ensureServingCertificate } from "../../src/devcluster/certs.ts";
import { AUDIT_PATH, MAX_AUDIT_BODY_BYTES, createApp } from "../../src/server/app.ts";
import { clientCertificateCheck } from "../../src/server/callers.ts";
import type { RunningServer } from "../../src/server/https.ts";
import { listenHttps } from "../../src/server/https.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import { kubectlNameFor } from "../../src/transactions/model.ts";

/** A ResponseComplete event at Metadata level, as kube-apiserver writes it. */
function event(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: "Event", apiVersion: "audit.k8s.io/v1", level: "Metadata", auditID: "a-1", stage: "ResponseComplete",
    requestURI: "/api/v1/namespaces/shop/configmaps?fieldManager=kubectl-client-side-apply&fieldValidation=Strict", verb: "create",
    user: { username: "alice", uid: "uid-alice", groups: ["developers", "system:authenticated"] },
    objectRef: { resource: "configmaps", namespace: "shop", name: "settings", apiVersion: "v1" },
    responseStatus: { metadata: {}, code: 201 },
    requestReceivedTimestamp: "2026-11-30T10:00:00.000000Z", stageTimestamp: "2026-11-30T10:00:00.004000Z",
    ...fields,
  };
}

const strictDecoding = { metadata: {}, status: "Failure", code: 400, reason: "BadRequest", message: 'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replica"' };
const LOCK = `lk-${"0a".repeat(20)}`;
const member = { "validate.kubetx.io/transaction": "t-0a1b2c3d", "validate.kubetx.io/decision": "member", "validate.kubetx.io/lock": LOCK };

describe("writes in flight", () => {
  const received = (auditID: string, fields: Record<string, unknown> = {}): unknown => event({ auditID, stage: "RequestReceived", responseStatus: undefined, ...fields });
  const done = (auditID: string): unknown => event({ auditID });

  it("reads where a user's write to a namespaced object is, and nothing else", () => {
    expect(progressOf(received("a-1"))).toMatchObject({ auditID: "a-1", stage: "received", namespace: "shop", group: "", resource: "configmaps", requester: { username: "alice" }, receivedAt: "2026-11-30T10:00:00.000000Z" });
    expect(progressOf(done("a-1"))).toMatchObject({ auditID: "a-1", stage: "done" });
    expect(progressOf(received("a-2", { verb: "get" }))).toBeUndefined();
    expect(progressOf(received("a-3", { objectRef: { resource: "deployments", subresource: "scale", namespace: "shop", name: "web" } }))).toBeUndefined();
    expect(progressOf(received("a-4", { requestURI: "/api/v1/namespaces/shop/configmaps?dryRun=All" }))).toBeUndefined();
    expect(progressOf(received("a-5", { objectRef: { resource: "namespaces", name: "shop" } }))).toBeUndefined();
    expect(progressOf(received("a-6", { stage: "ResponseStarted" }))).toBeUndefined();
    expect(progressOf({ stage: "RequestReceived", verb: "create" })).toBeUndefined();
  });

  it("a write that starts and finishes in one batch costs nothing; one that spans batches is marked, then cleared", () => {
    const batch = [received("both"), done("both"), received("slow"), done("earlier")].map((e) => progressOf(e)).filter((p) => p !== undefined);
    const { started, ended } = unpaired(batch);
    expect(started.map((p) => p.auditID)).toEqual(["slow"]);
    expect(ended.map((p) => p.auditID)).toEqual(["earlier"]);
  });
});

describe("what one audit event tells kubetx", () => {
  it("a write rejected while decoding fails its requester's transaction, quoting the apiserver", () => {
    const finding = findingOf(event({ verb: "patch", objectRef: { apiGroup: "apps", resource: "deployments", namespace: "shop", name: "web" }, responseStatus: strictDecoding }));
    expect(finding).toMatchObject({
      kind: "rejected", namespace: "shop", group: "apps", resource: "deployments", fieldManager: "kubectl-client-side-apply",
      requester: { username: "alice", uid: "uid-alice", groups: ["developers", "system:authenticated"] },
      receivedAtMs: Date.parse("2026-11-30T10:00:00.000Z"),
    });
    expect(finding?.kind === "rejected" ? finding.reason : "").toContain('strict decoding error: unknown field "spec.replica"');
  });

  it("a rejected write kubectl tx's kubectl made names its transaction by the User-Agent kubectl ran under", () => {
    const rejected = (userAgent: string): unknown => findingOf(event({ userAgent, responseStatus: strictDecoding }));
    expect(rejected(`${kubectlNameFor("t-0a1b2c3d")}/v1.37.2 (linux/amd64) kubernetes/abcdef0`)).toMatchObject({ kind: "rejected", userAgentTransaction: "t-0a1b2c3d" });
    expect(rejected("kubectl/v1.37.2 (linux/amd64) kubernetes/abcdef0")).not.toHaveProperty("userAgentTransaction");
    expect(rejected("kubectl@T-NOT-AN-ID/v1.37.2 (linux/amd64) kubernetes/abcdef0")).not.toHaveProperty("userAgentTransaction");
    expect(rejected("curl/8.0 kubectl@t-0a1b2c3d/v1")).not.toHaveProperty("userAgentTransaction");
  });

  it("a rejected write made by impersonation belongs to the impersonated user", () => {
    const finding = findingOf(event({ impersonatedUser: { username: "bob", groups: ["developers"] }, responseStatus: strictDecoding }));
    expect(finding).toMatchObject({ kind: "rejected", requester: { username: "bob", groups: ["developers"] } });
  });

  it("a member's request reports its code, and a failure when another webhook refused it", () => {
    expect(findingOf(event({ annotations: member }))).toEqual({ kind: "member", transaction: "t-0a1b2c3d", lock: LOCK, code: 201 });
    const refused = findingOf(event({ annotations: member, responseStatus: { code: 403, reason: "Forbidden", message: 'admission webhook "deny.example.com" denied the request: no' } }));
    expect(refused).toMatchObject({ kind: "member", code: 403, failure: expect.stringContaining("deny.example.com") as unknown });
  });

  it.each([
    ["a transaction id kubetx never makes", { ...member, "validate.kubetx.io/transaction": "t-../../x" }],
    ["a huge transaction id", { ...member, "validate.kubetx.io/transaction": `t-${"a".repeat(100_000)}` }],
    ["a lock name kubetx never makes", { ...member, "validate.kubetx.io/lock": "lk-1/../../x" }],
  ])("a member event naming %s tells kubetx nothing", (_what, annotations) => {
    expect(findingOf(event({ annotations, responseStatus: { code: 500, message: "x" } }))).toBeUndefined();
  });

  it("a member's resourceVersion conflict, which kubectl retries by itself, is no failure", () => {
    const conflict = findingOf(event({ verb: "patch", annotations: member, responseStatus: { code: 409, reason: "Conflict", message: "the object has been modified" } }));
    expect(conflict).toEqual({ kind: "member", transaction: "t-0a1b2c3d", lock: LOCK, code: 409 });
  });

  it.each([
    ["a successful write kubetx passed", event({ annotations: { "validate.kubetx.io/decision": "pass" } })],
    ["a successful write kubetx never saw", event()],
    ["a failed read", event({ verb: "get", responseStatus: { code: 404 } })],
    ["a dry run", event({ requestURI: "/api/v1/namespaces/shop/configmaps?dryRun=All", responseStatus: strictDecoding })],
    ["an earlier stage", event({ stage: "ResponseStarted", responseStatus: strictDecoding })],
    ["a cluster-scoped write", event({ objectRef: { resource: "namespaces", name: "shop" }, responseStatus: strictDecoding })],
    ["a subresource", event({ objectRef: { resource: "deployments", subresource: "scale", namespace: "shop", name: "web" }, responseStatus: strictDecoding })],
    ["a create that found its object already there", event({ responseStatus: { code: 409, reason: "AlreadyExists" } })],
    ["a write kubetx denied itself", event({ annotations: { "validate.kubetx.io/decision": "denied" }, responseStatus: { code: 403 } })],
  ])("%s says nothing", (_name, raw) => {
    expect(findingOf(raw)).toBeUndefined();
  });

  it.each([
    ["fields of the wrong type", event({ user: { username: 7, groups: "all" }, objectRef: [], responseStatus: { code: "400", message: 5 }, stageTimestamp: 3 })],
    ["a nested mess", event({ annotations: { x: { y: 1 } }, objectRef: { namespace: ["a"], resource: null } })],
    ["not an object", "hello"],
    ["null", null],
  ])("%s is skipped, never trusted and never thrown on", (_name, raw) => {
    expect(() => findingOf(raw)).not.toThrow();
    expect(findingOf(raw)).toBeUndefined();
  });
});

describe("an EventList envelope", () => {
  it("is accepted with its items", () => {
    expect(parseEventList({ apiVersion: "audit.k8s.io/v1", kind: "EventList", items: [event()] })).toMatchObject({ ok: true, events: [event()] });
  });

  it.each([
    ["another version", { apiVersion: "audit.k8s.io/v1beta1", kind: "EventList", items: [] }, /apiVersion/],
    ["another kind", { apiVersion: "audit.k8s.io/v1", kind: "Event", items: [] }, /kind/],
    ["items that are not a list", { apiVersion: "audit.k8s.io/v1", kind: "EventList", items: {} }, /items/],
    ["an item that is not an object", { apiVersion: "audit.k8s.io/v1", kind: "EventList", items: [1] }, /every item/],
    ["too many items", { apiVersion: "audit.k8s.io/v1", kind: "EventList", items: Array.from({ length: MAX_EVENTS_PER_LIST + 1 }, () => ({})) }, /at most/],
  ])("is refused with %s", (_name, body, reason) => {
    const parsed = parseEventList(body);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? "" : parsed.reason).toMatch(reason);
  });
});

describe("the /audit endpoint", () => {
  let dir: string;
  let server: RunningServer;
  let caPem: Buffer;
  const received: unknown[][] = [];
  let failNext = false;
  const identities: Record<string, { cert: Buffer; key: Buffer }> = {};

  const sink: AuditSink = {
    receive: (events) => {
      if (failNext) {
        failNext = false;
        return Promise.reject(new Error("apiserver unavailable"));
      }
      received.push([...events]);
      return Promise.resolve({ members: 0, failed: 0 });
    },
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-sink-"));
    const ca = await ensureCertificateAuthority(path.join(dir, "ca"), "sink-test-ca");
    const otherCa = await ensureCertificateAuthority(path.join(dir, "other-ca"), "someone-else");
    caPem = await readFile(ca.certFile);
    const serving = await ensureServingCertificate({ ca, outDir: dir, name: "serving", commonName: "kubetx", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
    for (const [id, authority, cn] of [["apiserver", ca, "kube-apiserver"], ["alice", ca, "alice"], ["forged", otherCa, "kube-apiserver"]] as const) {
      const pair = await ensureClientCertificate({ ca: authority, outDir: dir, name: id, commonName: cn });
      identities[id] = { cert: await readFile(pair.certFile), key: await readFile(pair.keyFile) };
    }
    const app = createApp({ logger: silentLogger(), handlers: {}, auditSink: sink, callers: { audit: clientCertificateCheck(["kube-apiserver"]) } });
    server = await listenHttps(app, serving, { host: "127.0.0.1", port: 0, clientCaFile: ca.certFile });
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function post(body: string | Buffer, options: { as?: string; type?: string } = {}): Promise<{ status: number; json: Record<string, unknown> }> {
    const identity = options.as ? identities[options.as] : undefined;
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: "127.0.0.1", port: server.port, path: AUDIT_PATH, method: "POST", ca: caPem, servername: "localhost",
        headers: { "content-type": options.type ?? "application/json" }, ...(identity ?? {}),
      }, (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
      });
      req.on("error", reject);
      req.end(body);
    });
  }

  const list = (items: unknown[]): string => JSON.stringify({ apiVersion: "audit.k8s.io/v1", kind: "EventList", items });

  it("accepts a batch from the apiserver's client certificate and hands its events to the sink", async () => {
    const before = received.length;
    const { status, json } = await post(list([event(), event({ auditID: "a-2" })]), { as: "apiserver" });
    expect(status).toBe(200);
    expect(json).toMatchObject({ received: 2 });
    expect(received.length).toBe(before + 1);
  });

  it.each([
    ["no client certificate", undefined, 401, /client certificate is required/],
    ["a certificate from another CA", "forged", 401, /not signed by the configured client CA/],
    ["a certificate of another name", "alice", 403, /client 'alice' may not call this path/],
  ])("refuses a caller with %s and hands the sink nothing", async (_name, as, code, reason) => {
    const before = received.length;
    const { status, json } = await post(list([event()]), as ? { as } : {});
    expect(status).toBe(code);
    expect(json.error).toMatch(reason);
    expect(received.length).toBe(before);
  });

  it.each([
    ["a wrong content type", list([event()]), "text/plain", 415],
    ["a body that is not JSON", "{", "application/json", 400],
    ["an AdmissionReview instead of an EventList", JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }), "application/json", 400],
  ])("answers %s with a 4xx and hands the sink nothing", async (_name, body, type, code) => {
    const before = received.length;
    const { status, json } = await post(body, { as: "apiserver", type });
    expect(status).toBe(code);
    expect(json.error).toMatch(/^kubetx: /);
    expect(received.length).toBe(before);
  });

  it("refuses a body over its limit with 413", async () => {
    const { status } = await post(Buffer.alloc(MAX_AUDIT_BODY_BYTES + 1, 32), { as: "apiserver" });
    expect(status).toBe(413);
  });

  it("answers 503 when it could not act, so the apiserver sends the batch again, and keeps serving", async () => {
    failNext = true;
    expect((await post(list([event()]), { as: "apiserver" })).status).toBe(503);
    expect((await post(list([event()]), { as: "apiserver" })).status).toBe(200);
  });
});
