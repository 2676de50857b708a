/**
 * Installs kubetx as a cluster admin would, from manifests/: `kubectl
 * apply -k`, the caBundle install.sh would patch in, and, since there is no
 * kubelet to run the Deployment's pods, a selector-less Service whose
 * EndpointSlices (one per replica, each with its own port) point at the
 * replicas on this machine. The apiserver picks a slice at random for
 * every webhook call (k8s.io/apiserver proxy.RandomEndpoint), so calls
 * spread over the replicas. Then the campaign's own policy and roles.
 */
import { rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Http } from "./checker/http.ts";
import { HttpError } from "./checker/http.ts";
import { run } from "./clients.ts";
import { WORKLOAD_LABEL } from "./thirdparty.ts";
import { DEFAULT_SETTLE_MS } from "../src/webhooks/sync.ts";
import { LOCK_TTL_SECONDS, MAX_OPEN_SECONDS, QUIET_WINDOW_SECONDS } from "./timing.ts";

const NAMESPACE = "kubetx-system";
const SLICES = `/apis/discovery.k8s.io/v1/namespaces/${NAMESPACE}/endpointslices`;
const POLICIES = "/apis/kubetx.io/v1alpha1/transactionpolicies";
const WEBHOOK_CONFIGURATIONS = [
  "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/kubetx",
  "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/kubetx",
] as const;
/** The apiserver picks up webhook configurations and endpoints within a second or two. */
const KUBETX_WAIT_MS = 60_000;
const POLL_MS = 200;
/** Consecutive probes (each to a random replica) that must see the policy before trials start. */
const POLICY_PROBES = 6;
export const EDITOR_ROLE = "chaos-editor";
export const PROBE_NAMESPACE = "chaos-probe";
export const ENABLED_LABELS = { "kubetx.io/enabled": "true", [WORKLOAD_LABEL]: "true" };

/**
 * Short timings so a trial takes seconds (chaos/timing.ts); journals go at commit (no undo here) so the end state has
 * nothing left; the admin who seeds the objects is exempt, as are the
 * control plane's identities (as in manifests/policy/default.yaml).
 */
export const CHAOS_POLICY = {
  apiVersion: "kubetx.io/v1alpha1",
  kind: "TransactionPolicy",
  metadata: { name: "chaos" },
  spec: {
    mode: "transparent",
    namespaceSelector: { matchLabels: { "kubetx.io/enabled": "true" } },
    exemptUsers: ["admin", "system:kube-controller-manager", "system:kube-scheduler"],
    exemptGroups: ["system:serviceaccounts:kube-system", "system:nodes"],
    quietWindowSeconds: QUIET_WINDOW_SECONDS,
    lockTTLSeconds: LOCK_TTL_SECONDS,
    maxOpenSeconds: MAX_OPEN_SECONDS,
    journalRetentionSeconds: 0,
  },
};

export interface InstallInputs {
  readonly http: Http;
  readonly kubectl: string;
  readonly kubeconfig: string;
  readonly repo: string;
  readonly caBundle: string;
}

export async function installKubetx(inputs: InstallInputs): Promise<void> {
  const { http } = inputs;
  const applied = await run(inputs.kubectl, ["--kubeconfig", inputs.kubeconfig, "apply", "-k", path.join(inputs.repo, "manifests")]);
  if (applied.exitCode !== 0) throw new Error(`chaos: kubectl apply -k manifests/ failed: ${applied.stderr}`);
  // No kubelet: the Service's endpoints are written by hand, and the Deployment runs nothing.
  await http.send("PATCH", `/api/v1/namespaces/${NAMESPACE}/services/kubetx`, { spec: { selector: null } }, "application/merge-patch+json");
  await http.send("PATCH", `/apis/apps/v1/namespaces/${NAMESPACE}/deployments/kubetx`, { spec: { replicas: 0 } }, "application/merge-patch+json");
  for (const configuration of WEBHOOK_CONFIGURATIONS) {
    const current = await http.get<{ webhooks: unknown[] }>(configuration);
    const patch = current.webhooks.map((_, i) => ({ op: "add", path: `/webhooks/${i}/clientConfig/caBundle`, value: inputs.caBundle }));
    await http.send("PATCH", configuration, patch, "application/json-patch+json");
  }
  await createOrReplace(http, "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: EDITOR_ROLE },
    rules: [
      { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch", "create", "update", "patch", "delete"] },
      { apiGroups: ["apps"], resources: ["deployments"], verbs: ["get", "list", "watch", "create", "update", "patch", "delete"] },
    ],
  });
}

/** The EndpointSlice of one replica: its own slice, so its port can differ from the others'. */
export async function setEndpoint(http: Http, e: { replica: string; host: string; port: number; ready: boolean }): Promise<void> {
  await createOrReplace(http, SLICES, {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: { name: `kubetx-chaos-${e.replica}`, namespace: NAMESPACE, labels: { "kubernetes.io/service-name": "kubetx" } },
    addressType: "IPv4",
    endpoints: [{ addresses: [e.host], conditions: { ready: e.ready } }],
    // The name of the Service port the webhooks name (443 -> targetPort https).
    ports: [{ name: "https", protocol: "TCP", port: e.port }],
  });
}

/** Waits until the apiserver calls kubetx: it denies an invalid TransactionPolicy (a dry run), naming it. */
export async function waitForKubetx(http: Http): Promise<void> {
  const probe = { apiVersion: "kubetx.io/v1alpha1", kind: "TransactionPolicy", metadata: { name: "chaos-probe" }, spec: { mode: "probe" } };
  await until(async () => {
    try {
      await http.send("POST", `${POLICIES}?dryRun=All`, probe);
      return false;
    } catch (error) {
      return error instanceof HttpError && error.message.includes("kubetx: TransactionPolicy chaos-probe is invalid");
    }
  }, "the apiserver never called kubetx through the Service");
}

export async function installPolicy(http: Http): Promise<void> {
  await createOrReplace(http, POLICIES, CHAOS_POLICY);
}

/** A namespace the workload may use: opted in, under the third-party webhook, the users bound as editors. */
export async function createWorkloadNamespace(http: Http, name: string, users: readonly string[]): Promise<void> {
  await createOrReplace(http, "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name, labels: ENABLED_LABELS } });
  await createOrReplace(http, `/apis/rbac.authorization.k8s.io/v1/namespaces/${name}/rolebindings`, {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: "chaos-editors", namespace: name },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: EDITOR_ROLE },
    subjects: users.map((u) => ({ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: u })),
  });
}

/** Any object with a name: what createOrReplace needs to know of it. */
export interface Named {
  readonly metadata: { readonly name: string; readonly [field: string]: unknown };
  readonly [field: string]: unknown;
}

/** Creates, or replaces what is there (keeping its resourceVersion). */
export async function createOrReplace(http: Http, collection: string, object: Named): Promise<void> {
  try {
    await http.send("POST", collection, object);
    return;
  } catch (error) {
    if (!isConflict(error)) throw error;
  }
  const path = `${collection}/${object.metadata.name}`;
  // Two writers of one object (a fault's restart and the heal step both set a replica's readiness): read again and retry.
  for (let attempt = 1; ; attempt += 1) {
    const current = await http.get<{ metadata: { resourceVersion: string } }>(path);
    try {
      await http.send("PUT", path, { ...object, metadata: { ...object.metadata, resourceVersion: current.metadata.resourceVersion } });
      return;
    } catch (error) {
      if (!isConflict(error) || attempt >= REPLACE_ATTEMPTS) throw error;
    }
  }
}

const REPLACE_ATTEMPTS = 5;

function isConflict(error: unknown): boolean {
  return error instanceof HttpError && error.status === 409;
}

export async function until(check: () => Promise<boolean>, failure: string, timeoutMs = KUBETX_WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(POLL_MS);
  }
  throw new Error(`chaos: ${failure} within ${timeoutMs / 1000} s`);
}

/**
 * Waits until the replicas apply the campaign's policy: a server-side dry
 * run of an explicit member by alice in the probe namespace gets kubetx's
 * dry-run warning, POLICY_PROBES times in a row (each call reaches a
 * replica at random); then `/observe` too.
 */
export async function waitForPolicy(http: Http, kubectl: string, kubeconfig: string): Promise<void> {
  const manifest = [
    "apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: policy-probe", `  namespace: ${PROBE_NAMESPACE}`,
    "  annotations:", "    kubetx.io/transaction: t-xprobe0000", '    kubetx.io/expected-members: "1"', "data:", "  probe: \"1\"", "",
  ].join("\n");
  const file = path.join(tmpdir(), `chaos-policy-probe-${process.pid}.yaml`);
  await writeFile(file, manifest);
  let streak = 0;
  try {
    await until(async () => {
      const result = await run(kubectl, ["--kubeconfig", kubeconfig, "apply", "--dry-run=server", "-f", file]);
      streak = result.stderr.includes("kubetx: dry run") ? streak + 1 : 0;
      return streak >= POLICY_PROBES;
    }, "the replicas never applied the campaign's TransactionPolicy");
  } finally {
    await rm(file, { force: true });
  }
  await waitForObserve(http);
}

/**
 * Waits until kubetx has written `/observe` for the campaign's policy (its
 * last step of a coverage change, src/webhooks/sync.ts), and for that write
 * to reach the apiserver: before it, a transparent write the apiserver
 * rejects ahead of `/validate` would be seen only by the audit sink.
 */
async function waitForObserve(http: Http): Promise<void> {
  await until(async () => {
    type Entry = { namespaceSelector?: { matchLabels?: Record<string, string> }; matchConditions?: { expression?: string }[] };
    const configuration = await http.get<{ webhooks?: Entry[] }>(WEBHOOK_CONFIGURATIONS[1]);
    const entries = configuration.webhooks ?? [];
    return entries.some((e) => e.namespaceSelector?.matchLabels?.["kubetx.io/enabled"] === "true")
      && !entries.some((e) => e.matchConditions?.some((c) => c.expression === "false"));
  }, "kubetx never wrote its /observe webhook for the campaign's policy");
  await sleep(DEFAULT_SETTLE_MS);
}

