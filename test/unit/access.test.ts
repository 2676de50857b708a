/**
 * The create-over-existing check asks the apiserver whether a requester may
 * update: once per namespace and resource for an editor, per object only
 * for a requester whose rights name objects.
 */
import { describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import type { ObjectRef } from "../../src/kube/types.ts";
import { FakeClock } from "../../src/telemetry/clock.ts";
import { CachedAccess } from "../../src/transactions/access.ts";

interface Asked {
  readonly user: string;
  readonly name?: string;
}

/** Answers SubjectAccessReviews by `allows`, and remembers what was asked. */
function authorizer(allows: (asked: Asked) => boolean): { client: KubeClient; asked: Asked[] } {
  const asked: Asked[] = [];
  const fake = {
    create: (_path: string, body: { spec: { user: string; resourceAttributes: { name?: string } } }) => {
      const one = { user: body.spec.user, ...(body.spec.resourceAttributes.name !== undefined ? { name: body.spec.resourceAttributes.name } : {}) };
      asked.push(one);
      return Promise.resolve({ status: { allowed: allows(one) } });
    },
  };
  return { client: fake as unknown as KubeClient, asked };
}

const cm = (name: string): ObjectRef => ({ group: "", version: "v1", resource: "configmaps", namespace: "team", name });

describe("may a requester update what their create would lock", () => {
  it("asks once for an editor of the namespace, whatever the number of objects", async () => {
    const { client, asked } = authorizer(() => true);
    const access = new CachedAccess(client, new FakeClock());
    for (const name of ["a", "b", "c"]) expect(await access.mayUpdate({ username: "alice" }, cm(name))).toBe(true);
    expect(asked).toEqual([{ user: "alice" }]);
  });

  it("asks about the object itself when the requester's rights name objects, and keeps each answer", async () => {
    // A Role with resourceNames: [a] allows update of a only; the question for every name is refused.
    const { client, asked } = authorizer((q) => q.name === "a");
    const access = new CachedAccess(client, new FakeClock());
    expect(await access.mayUpdate({ username: "bob" }, cm("a"))).toBe(true);
    expect(await access.mayUpdate({ username: "bob" }, cm("b"))).toBe(false);
    expect(await access.mayUpdate({ username: "bob" }, cm("a"))).toBe(true);
    expect(asked).toEqual([{ user: "bob" }, { user: "bob", name: "a" }, { user: "bob", name: "b" }]);
  });

  it("asks again once the cached answer is older than its time to live", async () => {
    const clock = new FakeClock();
    const { client, asked } = authorizer(() => true);
    const access = new CachedAccess(client, clock);
    await access.mayUpdate({ username: "alice" }, cm("a"));
    clock.advance(10_001);
    await access.mayUpdate({ username: "alice" }, cm("a"));
    expect(asked).toHaveLength(2);
  });

  it("asks once for a hundred objects asked about at the same moment (a prepare's 32 in parallel), and each waits for that answer", async () => {
    const { client, asked } = authorizer(() => true);
    const access = new CachedAccess(client, new FakeClock());
    const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => access.mayCreate({ username: "alice" }, cm(`o-${i}`))));
    expect(answers.every((a) => a)).toBe(true);
    expect(asked).toEqual([{ user: "alice" }]);
  });

  it("asks again after a review that failed, instead of keeping the failure for the others", async () => {
    let calls = 0;
    const fake = {
      create: () => (calls++ === 0 ? Promise.reject(new Error("apiserver restarting")) : Promise.resolve({ status: { allowed: true } })),
    };
    const access = new CachedAccess(fake as unknown as KubeClient, new FakeClock());
    await expect(access.mayCreate({ username: "alice" }, cm("a"))).rejects.toThrow("apiserver restarting");
    expect(await access.mayCreate({ username: "alice" }, cm("b"))).toBe(true);
    expect(calls).toBe(2);
  });
});
