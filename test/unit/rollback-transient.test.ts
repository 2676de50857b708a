/**
 * A restore the apiserver cannot take for now (it restarts; a webhook it
 * calls resets the connection or times out: a 5xx, or no answer) is tried
 * again, and when the tries run out the rollback waits for a later pass
 * instead of ending Failed; a refusal that is an answer (a webhook that
 * denies, 4xx) still ends it.
 */
import { describe, expect, it } from "vitest";
import { Forbidden, KubeError, isTransient } from "../../src/kube/errors.ts";
import type { KubeObject, PatchOperation } from "../../src/kube/types.ts";
import type { LockRecord, Member } from "../../src/locks/record.ts";
import { eventFor } from "../../src/resolver/events.ts";
import { restoreMember } from "../../src/rollback/apply.ts";
import { RefusingClient } from "../support/refusing-client.ts";

const REF = { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "settings" };
const PATH = "/api/v1/namespaces/shop/configmaps/settings";
const FAST_RETRY = { attempts: 4, deadlineMs: 1_000, initialDelayMs: 1, maxDelayMs: 2 };
const member: Member = { transaction: "t-0a1b2c3d", ref: REF, kind: "ConfigMap", operation: "UPDATE", user: "alice", requestUid: "r-1", admittedAt: 0 };
const live: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "shop", uid: "u-1", resourceVersion: "12" }, data: { v: "new" } };
const entry = { pre: { ...live, metadata: { ...live.metadata, resourceVersion: "10" }, data: { v: "old" } }, post: live };

const webhookFailed = (): KubeError => new KubeError({ status: 500, reason: "InternalError", message: 'failed calling webhook "policy.example.com": connection reset by peer', method: "PATCH", path: PATH });
const denied = (): KubeError => new Forbidden({ status: 403, reason: "Forbidden", message: 'admission webhook "policy.example.com" denied the request', method: "PATCH", path: PATH });

/** The object reads as `live`; its patches fail with what `failures` says, in turn, then succeed. */
class FlakyClient extends RefusingClient {
  readonly patches: PatchOperation[][] = [];
  private readonly failures: (() => Error)[];

  constructor(failures: (() => Error)[]) {
    super();
    this.failures = failures;
  }

  override get<T>(): Promise<T> {
    return Promise.resolve(structuredClone(live) as T);
  }

  override jsonPatch<T>(_path: string, ops: PatchOperation[]): Promise<T> {
    const failure = this.failures.shift();
    if (failure) return Promise.reject(failure());
    this.patches.push(ops);
    return Promise.resolve({} as T);
  }
}

describe("a restore the apiserver cannot take for now", () => {
  it("is tried again, and restores once a webhook that failed answers again", async () => {
    const client = new FlakyClient([webhookFailed, () => new TypeError("fetch failed")]);
    expect((await restoreMember(client, member, entry, { retry: FAST_RETRY })).kind).toBe("restored");
    expect(client.patches).toHaveLength(1);
  });

  it("is left for a later pass, not called impossible, when the tries run out", async () => {
    const client = new FlakyClient(Array.from({ length: 10 }, () => webhookFailed));
    const outcome = await restoreMember(client, member, entry, { retry: FAST_RETRY });
    expect(outcome).toEqual({ kind: "retry", detail: expect.stringContaining("the apiserver could not take the write for now") as unknown });
    expect(client.patches).toEqual([]);
  });

  it("still fails at once when a webhook denies the restore (an answer, not a failure; the resolver calls it impossible)", async () => {
    const client = new FlakyClient([denied]);
    await expect(restoreMember(client, member, entry, { retry: FAST_RETRY })).rejects.toThrow(Forbidden);
    expect(client.patches).toEqual([]);
  });

  it("posts no Event for a member still waiting", () => {
    const lock: LockRecord = { name: "lk-1", resourceVersion: "11", member };
    expect(eventFor(undefined, lock, { kind: "retry", detail: "later" })).toBeUndefined();
    expect(eventFor(undefined, lock, { kind: "impossible", detail: "never" })?.reason).toBe("TransactionRestoreFailed");
  });
});

describe("isTransient", () => {
  it("calls 5xx, 429 and a missing answer transient, and every other answer not", () => {
    expect(isTransient(webhookFailed())).toBe(true);
    expect(isTransient(new KubeError({ status: 429, reason: "TooManyRequests", message: "", method: "GET", path: PATH }))).toBe(true);
    expect(isTransient(new TypeError("fetch failed"))).toBe(true);
    expect(isTransient(denied())).toBe(false);
    expect(isTransient(new KubeError({ status: 422, reason: "Invalid", message: "", method: "PATCH", path: PATH }))).toBe(false);
    expect(isTransient("not an error")).toBe(false);
  });
});
