/**
 * What a real cluster's own tooling would have set up: kubetx's namespace
 * and identity, and alice and bob as editors of every namespace but
 * kubetx-system. The `edit` role they are bound to gets its rules from the
 * controller manager's clusterrole-aggregation controller, as anywhere.
 */
import { OPT_OUT } from "../admission/scope.ts";
import type { KubeClient, KubeObject } from "../kube/index.ts";
import { ANNOTATION_TRANSACTION } from "../transactions/model.ts";
import { createIfMissing, createOrReplace, userMay } from "../kube/index.ts";
import type { Logger } from "../telemetry/logger.ts";
import { KUBETX_NAMESPACE, KUBETX_USERNAME } from "./identities.ts";
import { setTimeout as sleep } from "node:timers/promises";

/** The RoleBinding dev adds to each namespace for the two dev users. */
export const EDITORS_BINDING = "kubetx-dev-editors";
export const DEV_USERS = ["alice", "bob"] as const;
/** Pause before re-watching namespaces after the stream ends or fails. */
const REWATCH_DELAY_MS = 1_000;
/** A new namespace's binding takes effect within about a second (binder, then the authorizer's cache); room for a loaded machine. */
export const EDITORS_BOUND_TIMEOUT_MS = 10_000;
const EDITORS_POLL_MS = 100;

export async function bootstrapKubetxIdentity(admin: KubeClient): Promise<void> {
  await createIfMissing(admin, "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: KUBETX_NAMESPACE } });
  // In the dev cluster kubetx acts as cluster-admin: it must restore any kind
  // a policy covers. manifests/ carries the narrower production role.
  await createOrReplace(admin, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: "kubetx-dev" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
    subjects: [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: KUBETX_USERNAME }],
  });
}

/** Binds alice and bob to `edit` in one namespace (never in kubetx-system). */
export async function bindEditors(admin: KubeClient, namespace: string): Promise<void> {
  if (namespace === KUBETX_NAMESPACE) return;
  const body: KubeObject = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    // Cluster setup, not somebody's apply: opted out, so that kubetx never makes it a transaction of its own.
    metadata: { name: EDITORS_BINDING, namespace, annotations: { [ANNOTATION_TRANSACTION]: OPT_OUT } },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "edit" },
    subjects: DEV_USERS.map((name) => ({ kind: "User", apiGroup: "rbac.authorization.k8s.io", name })),
  };
  await createIfMissing(admin, `/apis/rbac.authorization.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/rolebindings`, body);
}

/** Binds the editors in every namespace that exists or appears, until `signal` aborts. */
export async function runEditorBinder(admin: KubeClient, logger: Logger, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const list = await admin.get<{ metadata: { resourceVersion: string }; items: KubeObject[] }>("/api/v1/namespaces");
      for (const ns of list.items) await bindNamespace(admin, ns);
      await admin.watch("/api/v1/namespaces", { resourceVersion: list.metadata.resourceVersion }, (event) => {
        if (event.type === "ADDED") void bindNamespace(admin, event.object).catch((error: unknown) => logger.warn({ err: error }, "binding editors failed"));
      }, signal);
    } catch (error) {
      if (!signal.aborted) logger.warn({ err: error }, "namespace watch failed; retrying");
    }
    if (!signal.aborted) await sleep(REWATCH_DELAY_MS, undefined, { signal }).catch(() => undefined);
  }
}

async function bindNamespace(admin: KubeClient, ns: KubeObject): Promise<void> {
  const name = ns.metadata?.name;
  if (name && !ns.metadata?.deletionTimestamp) await bindEditors(admin, name);
}

/**
 * True once alice and bob may write in `namespace` (their binding exists
 * and `edit` has its aggregated rules), as the authorizer itself answers;
 * false if that takes longer than `timeoutMs`.
 */
export async function editorsBound(admin: KubeClient, namespace: string, timeoutMs = EDITORS_BOUND_TIMEOUT_MS): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  const mayEdit = (user: string): Promise<boolean> => userMay(admin, user, { namespace, verb: "create", resource: "configmaps" });
  for (;;) {
    if ((await Promise.all(DEV_USERS.map(mayEdit))).every(Boolean)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(EDITORS_POLL_MS);
  }
}
