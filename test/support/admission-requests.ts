/** AdmissionRequests for unit tests of which transaction a write joins. */
import type { AdmissionRequest, Operation } from "../../src/admission/review.ts";
import type { KubeObject } from "../../src/kube/types.ts";
import { ANNOTATION_TRANSACTION } from "../../src/transactions/model.ts";

/** ConfigMap shop/settings, with `transaction` as its kubetx.io/transaction annotation if given. */
export function settings(transaction?: string): KubeObject {
  const annotations = transaction === undefined ? {} : { annotations: { [ANNOTATION_TRANSACTION]: transaction } };
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "shop", ...annotations } };
}

/** alice writing ConfigMap shop/settings; `now`/`before` are the annotation on the new and old object. */
export function settingsWrite(operation: Operation, annotation: { now?: string; before?: string } = {}, extra: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return {
    uid: "req-1",
    kind: { group: "", version: "v1", kind: "ConfigMap" },
    resource: { group: "", version: "v1", resource: "configmaps" },
    name: "settings",
    namespace: "shop",
    operation,
    userInfo: { username: "alice", groups: ["system:authenticated"] },
    object: operation === "DELETE" ? null : settings(annotation.now),
    oldObject: operation === "CREATE" ? null : settings(annotation.before),
    ...extra,
  };
}
