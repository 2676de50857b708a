/**
 * The objects an op applies, as the file kubectl reads: each carries the
 * op's token; explicit ops name their transaction and its size; an invalid
 * member sits where the plan put it. Pure.
 */
import { stringify } from "yaml";
import type { ObjectPlan, OpPlan } from "./history.ts";
import { CONFIGMAP_TOKEN_KEY, SEED_TOKEN, TEMPLATE_TOKEN_ANNOTATION } from "./history.ts";

/** Never pulled: there is no kubelet, so the Deployment's Pods stay Pending. */
const IMAGE = "registry.invalid/kubetx-chaos/web:1";
const APP_LABEL = { app: "web" };

type Manifest = Record<string, unknown>;

export function configMap(object: Pick<ObjectPlan, "namespace" | "name">, token: string): Manifest {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: object.name, namespace: object.namespace }, data: { [CONFIGMAP_TOKEN_KEY]: token } };
}

export function deployment(object: Pick<ObjectPlan, "namespace" | "name">, token: string): Manifest {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: object.name, namespace: object.namespace },
    spec: {
      replicas: 1,
      selector: { matchLabels: APP_LABEL },
      template: {
        metadata: { labels: APP_LABEL, annotations: { [TEMPLATE_TOKEN_ANNOTATION]: token } },
        spec: { containers: [{ name: "web", image: IMAGE }] },
      },
    },
  };
}

/** The seed state of an object, written by the (exempt) admin before the trial. */
export function seedManifest(object: ObjectPlan): Manifest {
  return object.kind === "ConfigMap" ? configMap(object, SEED_TOKEN) : deployment(object, SEED_TOKEN);
}

/** The member the apiserver refuses: a data key with a space, or a misspelt field. */
export function invalidMember(op: OpPlan, namespace: string): Manifest {
  const metadata = { name: `bad-${op.id}`, namespace };
  if (op.invalid === "bad-key") return { apiVersion: "v1", kind: "ConfigMap", metadata, data: { "bad key": op.token } };
  return { apiVersion: "v1", kind: "ConfigMap", metadata, datta: { [CONFIGMAP_TOKEN_KEY]: op.token } };
}

/** Every object the op applies (its deletes are separate commands), in order, annotated for explicit mode. */
export function applyManifests(op: OpPlan, objects: ReadonlyMap<string, ObjectPlan>): Manifest[] {
  const applied = op.writes.filter((w) => w.action === "apply").map((w) => objects.get(w.object)).filter((o): o is ObjectPlan => o !== undefined);
  const manifests = applied.map((o) => (o.kind === "ConfigMap" ? configMap(o, op.token) : deployment(o, op.token)));
  if (op.invalid) manifests.splice(op.invalidAt ?? manifests.length, 0, invalidMember(op, applied[0]?.namespace ?? ""));
  return op.txId ? manifests.map((m) => named(m, op.txId as string, manifests.length)) : manifests;
}

function named(manifest: Manifest, txId: string, count: number): Manifest {
  const metadata = manifest.metadata as Record<string, unknown>;
  return { ...manifest, metadata: { ...metadata, annotations: { "kubetx.io/transaction": txId, "kubetx.io/expected-members": String(count) } } };
}

export function renderYaml(manifests: readonly Manifest[]): string {
  return manifests.map((m) => stringify(m)).join("---\n");
}

/** The deletes of an op, grouped by namespace: one `kubectl delete` each. */
export function deletesByNamespace(op: OpPlan, objects: ReadonlyMap<string, ObjectPlan>): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const w of op.writes.filter((x) => x.action === "delete")) {
    const o = objects.get(w.object);
    if (o) groups.set(o.namespace, [...(groups.get(o.namespace) ?? []), o.name]);
  }
  return groups;
}
