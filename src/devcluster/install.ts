/**
 * Installs what kubetx needs in a cluster that the dev control plane and
 * the tests start: its CRDs from manifests/, the role that lets every
 * authenticated user open and close transactions (kubetx itself checks
 * that each user touches only their own), and the unbound role that shows
 * everyone's.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseAllDocuments } from "yaml";
import type { KubeClient, KubeObject } from "../kube/index.ts";
import { createIfMissing, createOrReplace } from "../kube/index.ts";

const CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
/** A new CRD is usually Established within a second. */
const ESTABLISH_TIMEOUT_MS = 30_000;
export const USER_ROLE = "kubetx:user";
/** list and watch of everyone's Transaction records: `kubectl tx list --all`. */
export const VIEWER_ROLE = "kubetx:viewer";

export async function readManifests(dir: string): Promise<KubeObject[]> {
  const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  const objects: KubeObject[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(await readFile(path.join(dir, file), "utf8"))) {
      const object = doc.toJS() as KubeObject | null;
      if (object) objects.push(object);
    }
  }
  return objects;
}

export async function installCrds(admin: KubeClient, crdDir: string): Promise<void> {
  const crds = await readManifests(crdDir);
  for (const crd of crds) await createOrReplace(admin, CRDS, crd);
  for (const crd of crds) await waitEstablished(admin, crd.metadata?.name ?? "");
}

async function waitEstablished(admin: KubeClient, name: string): Promise<void> {
  const deadline = Date.now() + ESTABLISH_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const crd = await admin.get<KubeObject & { status?: { conditions?: { type: string; status: string }[] } }>(`${CRDS}/${name}`);
    if (crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) return;
    await sleep(100);
  }
  throw new Error(`kubetx: CRD ${name} was not Established within ${ESTABLISH_TIMEOUT_MS / 1000} s`);
}

/** The default TransactionPolicy from manifests/policy/, unless one by that name exists (an admin's edits are kept). */
export async function installDefaultPolicy(admin: KubeClient, policyDir: string): Promise<void> {
  for (const policy of await readManifests(policyDir)) await createIfMissing(admin, "/apis/kubetx.io/v1alpha1/transactionpolicies", policy);
}

export async function installUserRole(admin: KubeClient): Promise<void> {
  await createOrReplace(admin, "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: USER_ROLE },
    rules: [
      // Open (create), close (update/patch spec.clientState), follow by id
      // (get) and clean up transactions; the webhook limits each user to
      // their own. No list or watch (everyone's records): see VIEWER_ROLE.
      // No rule for transactions/status: only kubetx writes outcomes.
      { apiGroups: ["kubetx.io"], resources: ["transactions"], verbs: ["get", "create", "update", "patch", "delete"] },
    ],
  });
  await createOrReplace(admin, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name: USER_ROLE },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: USER_ROLE },
    subjects: [{ kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "system:authenticated" }],
  });
  // Everyone's records, for whom an admin binds it to; not bound here.
  await createOrReplace(admin, "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: VIEWER_ROLE },
    rules: [{ apiGroups: ["kubetx.io"], resources: ["transactions"], verbs: ["get", "list", "watch"] }],
  });
}
