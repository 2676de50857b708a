import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import { Conflict, KubeError } from "../../src/kube/index.ts";
import { client, createNamespace, uniqueName } from "../support/cluster.ts";

/** MicroTime as the apiserver wants it: exactly six fractional digits. */
function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

describe("Leases on the real apiserver", () => {
  let admin: KubeClient;
  const namespace = uniqueName("lease");
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;

  beforeAll(async () => {
    admin = await client("admin");
    await createNamespace(namespace);
  });
  afterAll(() => admin.close());

  it("creates and reads back a Lease with MicroTime fields", async () => {
    const acquired = new Date();
    await admin.create(leases, {
      apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: "a" },
      spec: { holderIdentity: "t-1", leaseDurationSeconds: 15, acquireTime: microTime(acquired), renewTime: microTime(acquired) },
    });
    const read = await admin.get<KubeObject & { spec: Record<string, unknown> }>(`${leases}/a`);
    expect(read.spec.holderIdentity).toBe("t-1");
    expect(read.spec.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(Date.parse(read.spec.renewTime as string)).toBe(acquired.getTime());
  });

  it("rejects a Lease whose renewTime is a plain JavaScript date string", async () => {
    const attempt = admin.create(leases, {
      apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: "plain-date" },
      spec: { holderIdentity: "t-1", renewTime: new Date().toString() },
    });
    await expect(attempt).rejects.toBeInstanceOf(KubeError);
    await expect(attempt).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/time/i) as unknown });
  });

  it("refuses an update with a stale resourceVersion with a typed Conflict", async () => {
    const created = await admin.create(leases, {
      apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: "b" }, spec: { holderIdentity: "t-1" },
    });
    const stale = created.metadata?.resourceVersion;
    await admin.replace(`${leases}/b`, { ...created, spec: { holderIdentity: "t-2" } });
    const second = admin.replace(`${leases}/b`, { ...created, metadata: { ...created.metadata, resourceVersion: stale }, spec: { holderIdentity: "t-3" } });
    await expect(second).rejects.toBeInstanceOf(Conflict);
    const read = await admin.get<KubeObject & { spec: { holderIdentity: string } }>(`${leases}/b`);
    expect(read.spec.holderIdentity).toBe("t-2");
  });
});
