/** The narrow object shapes kubetx reads and writes. */

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  managedFields?: unknown[];
  ownerReferences?: unknown[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

export interface ObjectList<T extends KubeObject = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** Group, version and resource: the way AdmissionReview names a kind. */
export interface GroupVersionResource {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
}

/** Where one object lives. `namespace` is absent for cluster-scoped kinds. */
export interface ObjectRef extends GroupVersionResource {
  readonly namespace?: string;
  readonly name: string;
}

/** A JSON Patch (RFC 6902) operation. */
export interface PatchOperation {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  value?: unknown;
  from?: string;
}

/** The REST path of a collection, or of one object when `name` is set. */
export function resourcePath(ref: GroupVersionResource & { namespace?: string; name?: string }): string {
  const base = ref.group === "" ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  const ns = ref.namespace ? `/namespaces/${encodeURIComponent(ref.namespace)}` : "";
  const name = ref.name ? `/${encodeURIComponent(ref.name)}` : "";
  return `${base}${ns}/${ref.resource}${name}`;
}

/** `apps/deployments default/web`: how messages name an object. */
export function describeRef(ref: ObjectRef): string {
  const kind = ref.group === "" ? ref.resource : `${ref.group}/${ref.resource}`;
  return `${kind} ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`;
}
