/**
 * What auditors are promised (README, "For auditors"): every answer of
 * kubetx's validating webhooks carries the `decision` audit annotation, and
 * `transaction` and `lock` where it has them, under the webhook's name
 * (validate.kubetx.io for objects, records.kubetx.io for kubetx's own);
 * the mutating /observe carries none; and kubetx logs one line per answer.
 * Read back from the real apiserver's audit log and kubetx's own log, for
 * each kind of answer. The namespace is covered by an explicit-mode policy:
 * the apiserver itself filters out the other pass-throughs (opted-out
 * objects, exempt users), so a write that names no transaction there is
 * the pass-through that reaches kubetx.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/index.ts";
import type { WebhookServer } from "../../src/main.ts";
import { client, cluster, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { startEngine, unregister } from "../support/engine.ts";
import { configMap, inTransaction, until, yamlOf } from "../support/objects.ts";

interface AuditEvent {
  readonly stage?: string;
  readonly verb?: string;
  readonly objectRef?: { resource?: string; namespace?: string; name?: string };
  readonly annotations?: Record<string, string>;
}

interface LogLine {
  readonly msg?: string;
  readonly decision?: string;
  readonly name?: string;
  readonly transaction?: string;
  readonly lock?: string;
  readonly reason?: string;
  readonly user?: string;
  readonly dryRun?: boolean;
}

const newId = (): string => `t-${randomBytes(4).toString("hex")}`;

/** The apiserver writes its audit log a moment after it answers. */
const AUDIT_FLUSH_TIMEOUT_MS = 15_000;
const POLICIES = "/apis/kubetx.io/v1alpha1/transactionpolicies";

/** The apiserver's records of completed writes that match, once the log has one. */
async function auditedWrites(what: string, match: (e: AuditEvent) => boolean): Promise<AuditEvent[]> {
  return until(`the audit log records ${what}`, async () => {
    const events = (await readFile(cluster().auditLog, "utf8")).split("\n").filter(Boolean).map((line) => JSON.parse(line) as AuditEvent);
    const found = events.filter((e) => e.stage === "ResponseComplete" && ["create", "update", "patch"].includes(e.verb ?? "") && match(e));
    return found.length > 0 ? found : undefined;
  }, AUDIT_FLUSH_TIMEOUT_MS);
}

/** kubetx's annotations (any webhook's) on the first audited write of `resource` `name` in `namespace`. */
async function kubetxAnnotations(resource: string, name: string, namespace?: string): Promise<Record<string, string>> {
  const [event] = await auditedWrites(`the ${resource} ${name} request`, (e) => e.objectRef?.resource === resource && e.objectRef.name === name && e.objectRef.namespace === namespace);
  return Object.fromEntries(Object.entries(event?.annotations ?? {}).filter(([key]) => key.includes("kubetx.io/")));
}

describe("every answer of kubetx's validating webhook, as the audit log and kubetx's log show it", () => {
  const ns = uniqueName("decisions");
  const policy = uniqueName("decisions");
  const lines: LogLine[] = [];
  let admin: KubeClient;
  let engine: WebhookServer | undefined;
  const logged = (name: string): LogLine[] => lines.filter((l) => l.msg === "admission decision" && l.name === name);

  beforeAll(async () => {
    admin = await client("admin");
    await createNamespace(ns, { [policy]: "true" });
    const spec = { mode: "explicit", namespaceSelector: { matchLabels: { [policy]: "true" } }, quietWindowSeconds: 1, lockTTLSeconds: 3, maxOpenSeconds: 8 };
    await admin.create(POLICIES, { apiVersion: "kubetx.io/v1alpha1", kind: "TransactionPolicy", metadata: { name: policy }, spec });
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line) as LogLine);
        done();
      },
    });
    engine = await startEngine({ policySource: "cluster" }, { logger: pino({ level: "info" }, sink) });
    // kubetx has read the policy and rewritten its webhook configuration to cover the namespace.
    await until("kubetx covers the namespace", async () => {
      const probe = inTransaction(configMap(ns, "probe", { v: "1" }), newId(), 1);
      const result = await kubectl(["apply", "--dry-run=server", "-f", "-"], { user: "alice", input: yamlOf([probe]) });
      return result.stderr.includes("kubetx: dry run") ? true : undefined;
    });
  });
  afterAll(async () => {
    await admin?.delete(`${POLICIES}/${policy}`).catch(() => undefined);
    await unregister();
    await engine?.close();
    admin?.close();
  });

  it("a member: decision, transaction and lock; /observe adds nothing; one log line", async () => {
    const id = newId();
    expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "member-a", { v: "1" }), id, 1)]) })).code).toBe(0);
    const annotations = await kubetxAnnotations("configmaps", "member-a", ns);
    expect(annotations).toEqual({ "validate.kubetx.io/decision": "member", "validate.kubetx.io/transaction": id, "validate.kubetx.io/lock": expect.stringMatching(/^lk-/) as string });
    expect(Object.keys(annotations).some((key) => key.startsWith("observe.kubetx.io/"))).toBe(false);
    expect(logged("member-a")).toEqual([expect.objectContaining({ decision: "member", transaction: id, lock: annotations["validate.kubetx.io/lock"] })]);
  });

  it("a pass-through (explicit mode, a write that names no transaction): decision pass alone, logged with why", async () => {
    expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([configMap(ns, "pass-a", { v: "1" })]) })).code).toBe(0);
    expect(await kubetxAnnotations("configmaps", "pass-a", ns)).toEqual({ "validate.kubetx.io/decision": "pass" });
    expect(logged("pass-a")).toEqual([expect.objectContaining({ decision: "pass", reason: "explicit mode, and the write names no transaction" })]);
  });

  it("a lock denial: decision denied, the denied write's transaction and the lock it met, logged with the message", async () => {
    const alices = newId();
    const bobs = newId();
    expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "held-a", { v: "alice" }), alices, 2)]) })).code).toBe(0);
    const denied = await kubectl(["apply", "-f", "-"], { user: "bob", input: yamlOf([inTransaction(configMap(ns, "held-a", { v: "bob" }), bobs, 1)]) });
    expect(denied.code).not.toBe(0);
    const lock = (await kubetxAnnotations("configmaps", "held-a", ns))["validate.kubetx.io/lock"];
    const [bobsEvent] = await auditedWrites("bob's denied write", (e) => e.objectRef?.namespace === ns && e.annotations?.["validate.kubetx.io/transaction"] === bobs);
    expect(bobsEvent?.annotations).toMatchObject({ "validate.kubetx.io/decision": "denied", "validate.kubetx.io/lock": lock });
    expect(logged("held-a").filter((l) => l.transaction === bobs)).toEqual([expect.objectContaining({ decision: "denied", reason: expect.stringContaining(`locked by transaction ${alices}`) as string })]);
  });

  it("an annotation denial: decision denied and the transaction it named, logged with the message", async () => {
    const id = newId();
    const bad = configMap(ns, "bad-count", { v: "1" }, { annotations: { "kubetx.io/transaction": id, "kubetx.io/expected-members": "many" } });
    expect((await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([bad]) })).code).not.toBe(0);
    expect(await kubetxAnnotations("configmaps", "bad-count", ns)).toEqual({ "validate.kubetx.io/decision": "denied", "validate.kubetx.io/transaction": id });
    expect(logged("bad-count")).toEqual([expect.objectContaining({ decision: "denied", reason: expect.stringContaining("kubetx.io/expected-members must be a whole number") as string })]);
  });

  it("a dry run that would start a transaction: decision dry-run, and no transaction that will never exist", async () => {
    const dry = await kubectl(["apply", "--dry-run=server", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "dry-a", { v: "1" }), newId(), 1)]) });
    expect(dry.code, dry.stderr).toBe(0);
    expect(await kubetxAnnotations("configmaps", "dry-a", ns)).toEqual({ "validate.kubetx.io/decision": "dry-run" });
    expect(logged("dry-a")).toEqual([expect.not.objectContaining({ transaction: expect.anything() as unknown })]);
    expect(logged("dry-a")[0]).toMatchObject({ decision: "dry-run" });
  });

  it("a Transaction record written by its owner, and one another user may not touch: decision record or denied under records.kubetx.io, logged", async () => {
    const id = newId();
    const record = `apiVersion: kubetx.io/v1alpha1\nkind: Transaction\nmetadata:\n  name: ${id}\nspec:\n  user: alice\n  mode: explicit\n  expectedMembers: 1\n`;
    expect((await kubectl(["create", "-f", "-"], { user: "alice", input: record })).code).toBe(0);
    expect(await kubetxAnnotations("transactions", id)).toEqual({ "records.kubetx.io/decision": "record", "records.kubetx.io/transaction": id });
    const bobs = await kubectl(["patch", "transaction", id, "--type", "merge", "-p", '{"spec":{"clientState":"Failed"}}'], { user: "bob" });
    expect(bobs.code).not.toBe(0);
    expect(bobs.stderr).toContain(`transaction ${id} belongs to alice`);
    const [denied] = await auditedWrites("bob's denied patch", (e) => e.objectRef?.name === id && e.verb === "patch");
    expect(denied?.annotations).toMatchObject({ "records.kubetx.io/decision": "denied", "records.kubetx.io/transaction": id });
    // A request may reach kubetx more than once (the apiserver re-runs admission when its write meets a
    // conflict): every answer to alice's create is a record, every answer to bob's patch a denial.
    const answers = (user: string): (string | undefined)[] => logged(id).filter((l) => l.user === user).map((l) => l.decision);
    expect(logged(id)[0]).toMatchObject({ decision: "record", user: "alice" });
    expect(new Set(answers("alice"))).toEqual(new Set(["record"]));
    expect(new Set(answers("bob"))).toEqual(new Set(["denied"]));
    expect(logged(id).filter((l) => l.user !== "alice" && l.user !== "bob")).toEqual([]);
  });

  it("a TransactionPolicy, valid and invalid: decision policy or denied under records.kubetx.io, logged", async () => {
    const manifest = (name: string, mode: string): string => `apiVersion: kubetx.io/v1alpha1\nkind: TransactionPolicy\nmetadata:\n  name: ${name}\nspec:\n  mode: ${mode}\n`;
    const ok = uniqueName("decisions-ok");
    const bad = uniqueName("decisions-bad");
    // A server-side dry run: judged like a real write, and no policy of it changes what kubetx covers.
    expect((await kubectl(["create", "--dry-run=server", "-f", "-"], { input: manifest(ok, '"off"') })).code).toBe(0);
    expect((await kubectl(["create", "-f", "-"], { input: manifest(bad, "sometimes") })).code).not.toBe(0);
    expect(await kubetxAnnotations("transactionpolicies", ok)).toEqual({ "records.kubetx.io/decision": "policy" });
    expect(await kubetxAnnotations("transactionpolicies", bad)).toEqual({ "records.kubetx.io/decision": "denied" });
    expect(logged(ok)).toEqual([expect.objectContaining({ decision: "policy", dryRun: true })]);
    expect(logged(bad)).toEqual([expect.objectContaining({ decision: "denied", reason: expect.stringContaining("spec.mode") as string })]);
  });
});
