/**
 * The test cluster is a real cluster minus the kubelet (DESIGN.md section
 * 1): the controller manager and the scheduler act on what is written, and
 * Pods are scheduled for but never run, because there is no node.
 */
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import { client, cluster, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { useEngine } from "../support/engine.ts";
import { readOrUndefined, until, waitResolved, yamlOf } from "../support/objects.ts";

interface Pod extends KubeObject {
  spec?: { nodeName?: string };
  status?: { phase?: string; conditions?: { type: string; status: string; reason?: string }[] };
}

interface EndpointSlice extends KubeObject {
  endpoints?: unknown[] | null;
}

type List<T> = { items: T[] };

interface CertificateSigningRequest extends KubeObject {
  status?: { certificate?: string };
}

/** Stands in for the image a kubelet would pull; no kubelet ever does. */
const IMAGE = "registry.k8s.io/pause:3.10";

function deployment(namespace: string, name: string, replicas: number): KubeObject {
  return {
    apiVersion: "apps/v1", kind: "Deployment", metadata: { name, namespace },
    spec: {
      replicas, selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image: IMAGE }] } },
    },
  };
}

function service(namespace: string, name: string): KubeObject {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace }, spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] } };
}

function ownerOf(object: KubeObject): string | undefined {
  const [owner] = (object.metadata?.ownerReferences ?? []) as { kind?: string; name?: string }[];
  return owner ? `${owner.kind ?? "?"}/${owner.name ?? "?"}` : undefined;
}

async function replicaSetsOf(admin: KubeClient, namespace: string, app: string): Promise<KubeObject[]> {
  return (await admin.get<List<KubeObject>>(`/apis/apps/v1/namespaces/${namespace}/replicasets`, { query: { labelSelector: `app=${app}` } })).items;
}

async function podsOf(admin: KubeClient, namespace: string, app: string): Promise<Pod[]> {
  return (await admin.get<List<Pod>>(`/api/v1/namespaces/${namespace}/pods`, { query: { labelSelector: `app=${app}` } })).items;
}

/** The ReplicaSet and `replicas` Pods a Deployment leads to, once the scheduler has tried every Pod. */
async function rollout(admin: KubeClient, namespace: string, name: string, replicas: number): Promise<{ replicaSet: KubeObject; pods: Pod[] }> {
  const replicaSet = await until(`a ReplicaSet for deployment ${name}`, async () => (await replicaSetsOf(admin, namespace, name))[0]);
  const pods = await until(`${replicas} Pods the scheduler has tried`, async () => {
    const found = await podsOf(admin, namespace, name);
    const tried = found.filter((p) => p.status?.conditions?.some((c) => c.type === "PodScheduled"));
    return tried.length === replicas ? found : undefined;
  });
  return { replicaSet, pods };
}

describe("the controller manager and the scheduler", () => {
  const ns = uniqueName("controlplane");
  let admin: KubeClient;
  beforeAll(async () => {
    admin = await client("admin");
    await createNamespace(ns);
  });
  afterAll(() => admin.close());

  it("turn a Deployment of 2 replicas into a ReplicaSet and 2 Pods that stay Pending, unscheduled, for want of a node", async () => {
    await admin.create(`/apis/apps/v1/namespaces/${ns}/deployments`, deployment(ns, "web", 2));
    const { replicaSet, pods } = await rollout(admin, ns, "web", 2);
    expect(ownerOf(replicaSet)).toBe("Deployment/web");
    expect(pods.map(ownerOf)).toEqual([`ReplicaSet/${replicaSet.metadata?.name}`, `ReplicaSet/${replicaSet.metadata?.name}`]);
    for (const pod of pods) {
      expect(pod.status?.phase).toBe("Pending");
      expect(pod.spec?.nodeName).toBeUndefined();
      expect(pod.status?.conditions).toContainEqual(expect.objectContaining({ type: "PodScheduled", status: "False", reason: "Unschedulable" }));
    }
  });

  it("give a Service with a selector an EndpointSlice, with no endpoints while no Pod runs", async () => {
    await admin.create(`/api/v1/namespaces/${ns}/services`, service(ns, "web"));
    const slices = await until("an EndpointSlice for service web", async () => {
      const list = await admin.get<List<EndpointSlice>>(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, { query: { labelSelector: "kubernetes.io/service-name=web" } });
      return list.items.length > 0 ? list.items : undefined;
    });
    expect(slices.map(ownerOf)).toEqual(["Service/web"]);
    expect(slices[0]?.endpoints ?? []).toEqual([]);
  });

  it("give every new namespace its default ServiceAccount and the cluster CA as the kube-root-ca.crt ConfigMap", async () => {
    const account = await until("the default ServiceAccount", () => readOrUndefined(admin, `/api/v1/namespaces/${ns}/serviceaccounts/default`));
    expect(account.metadata?.name).toBe("default");
    const rootCa = await until("the kube-root-ca.crt ConfigMap", () => readOrUndefined(admin, `/api/v1/namespaces/${ns}/configmaps/kube-root-ca.crt`));
    expect((rootCa as KubeObject & { data?: Record<string, string> }).data?.["ca.crt"]).toBe(await readFile(cluster().caFile, "utf8"));
  });

  it("collect a deleted Deployment's ReplicaSet and Pods as garbage", async () => {
    await admin.create(`/apis/apps/v1/namespaces/${ns}/deployments`, deployment(ns, "gone", 1));
    await rollout(admin, ns, "gone", 1);
    await admin.delete(`/apis/apps/v1/namespaces/${ns}/deployments/gone`);
    await until("the ReplicaSet and Pod to be collected", async () => {
      const left = [...(await replicaSetsOf(admin, ns, "gone")), ...(await podsOf(admin, ns, "gone"))];
      return left.length === 0 ? true : undefined;
    });
  });

  it("remove a deleted namespace with everything in it", async () => {
    const doomed = uniqueName("doomed");
    await createNamespace(doomed);
    await admin.create(`/api/v1/namespaces/${doomed}/configmaps`, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "inside" } });
    await admin.delete(`/api/v1/namespaces/${doomed}`);
    await until(`namespace ${doomed} to be gone`, async () => ((await readOrUndefined(admin, `/api/v1/namespaces/${doomed}`)) ? undefined : true));
  });

  it("sign an approved certificate signing request with the cluster CA", async () => {
    const work = await mkdtemp(path.join(tmpdir(), "kubetx-csr-"));
    try {
      const keyFile = path.join(work, "key.pem");
      const csrFile = path.join(work, "csr.pem");
      await promisify(execFile)("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", keyFile, "-out", csrFile, "-subj", "/CN=carol"]);
      const name = uniqueName("carol");
      await admin.create("/apis/certificates.k8s.io/v1/certificatesigningrequests", {
        apiVersion: "certificates.k8s.io/v1", kind: "CertificateSigningRequest", metadata: { name },
        spec: { request: (await readFile(csrFile)).toString("base64"), signerName: "kubernetes.io/kube-apiserver-client", usages: ["client auth"] },
      });
      const approved = await kubectl(["certificate", "approve", name]);
      expect(approved.code, approved.stderr).toBe(0);
      const issued = await until("the signed certificate", async () => {
        const csr = await admin.get<CertificateSigningRequest>(`/apis/certificates.k8s.io/v1/certificatesigningrequests/${name}`);
        return csr.status?.certificate || undefined;
      });
      const certificate = new X509Certificate(Buffer.from(issued, "base64"));
      expect(certificate.subject).toBe("CN=carol");
      expect(certificate.checkIssued(new X509Certificate(await readFile(cluster().caFile)))).toBe(true);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it("run without any Node, so no Pod is ever evicted and recreated", async () => {
    expect((await admin.get<List<KubeObject>>("/api/v1/nodes")).items).toEqual([]);
  });
});

describe("controllers in a namespace kubetx covers", () => {
  const ns = uniqueName("covered-controllers");
  const fixture = useEngine(ns);

  it("keep their own writes out of the user's transaction: alice's apply commits with the Deployment alone, and its Pods still appear", async () => {
    const admin = fixture.admin();
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([deployment(ns, "app", 2)]) });
    expect(applied.code, applied.stderr).toBe(0);
    const id = /kubetx: joined transaction (t-[0-9a-f]+)/.exec(applied.stderr)?.[1] ?? "";
    expect(id).not.toBe("");
    const { replicaSet, pods } = await rollout(admin, ns, "app", 2);
    expect(ownerOf(replicaSet)).toBe("Deployment/app");
    expect(pods).toHaveLength(2);
    const tx = await waitResolved(admin, id);
    expect(tx.status?.phase).toBe("Committed");
    expect(tx.status?.members?.map((m) => `${m.resource}/${m.name}`)).toEqual(["deployments/app"]);
  });
});
