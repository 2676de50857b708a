/**
 * A cluster admin installs kubetx with `helm install`, upgrades it with
 * `helm upgrade`, and removes it with `helm uninstall`. This drives the real
 * helm against the real apiserver and proves that the chart's webhooks,
 * Service, generated certificate and RBAC carry a transaction, that an
 * upgrade keeps an open transaction working (same CA, webhooks never
 * removed), and that an uninstall leaves only what the chart's README says
 * (the CRDs it keeps, the namespace, kubetx's runtime Leases and Secrets).
 *
 * As in manifests.test.ts there is no kubelet: the Deployment never runs a
 * pod. kubetx runs in this process and the apiserver (started with
 * --enable-aggregator-routing=true) reaches it through the chart's Service
 * and an EndpointSlice this test writes, serving the certificate the chart
 * generated.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parse } from "yaml";
import { loadConfig } from "../../src/config/config.ts";
import { JOURNAL_ROLE } from "../../src/journal/journal.ts";
import { LABEL_ROLE, LABEL_TRANSACTION } from "../../src/kube/vocabulary.ts";
import { CLOSING_ROLE, HEARTBEAT_ROLE, LOCK_ROLE } from "../../src/locks/record.ts";
import { PULSE_ROLE } from "../../src/locks/pulse.ts";
import { SESSION_ROLE } from "../../src/locks/sessions.ts";
import { installUserRole } from "../../src/devcluster/install.ts";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import type { WebhookServer } from "../../src/main.ts";
import { startWebhookServer } from "../../src/main.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import { client, cluster, createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import { FAST } from "../support/engine.ts";
import { CHART, NAMESPACE, RELEASE, REPO, helm, objectKey, parseObjects } from "../support/helm.ts";
import { configMap, inTransaction, readOrUndefined, waitResolved, yamlOf } from "../support/objects.ts";
import { machineAddress, removeDevBinding, removeSlice, restoreDevBinding, routeServiceTo } from "../support/service-route.ts";

const SECRET = `/api/v1/namespaces/${NAMESPACE}/secrets/kubetx-webhook-tls`;
const SLICE = "kubetx-helm-test";
const DEPLOYMENT = `/apis/apps/v1/namespaces/${NAMESPACE}/deployments/kubetx`;
const POLICY = "/apis/kubetx.io/v1alpha1/transactionpolicies/default";
const WEBHOOK_CONFIGURATIONS = [
  "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/kubetx",
  "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/kubetx",
];
const ENABLED = { "kubetx.io/enabled": "true" };
/** The runtime objects kubetx writes in its namespace, by kind and role, as charts/kubetx/README.md "Uninstalling" lists them. */
const RUNTIME_ROLES: Readonly<Record<string, readonly string[]>> = { Lease: [LOCK_ROLE, HEARTBEAT_ROLE, SESSION_ROLE, CLOSING_ROLE, PULSE_ROLE], Secret: [JOURNAL_ROLE] };
const RUNTIME_COLLECTIONS = { Lease: `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases`, Secret: `/api/v1/namespaces/${NAMESPACE}/secrets` };
/** The two commands charts/kubetx/README.md gives for what helm uninstall leaves: kubetx's runtime objects, and everything. */
const REMOVE_RUNTIME = ["-n", NAMESPACE, "delete", "leases,secrets", "-l", LABEL_ROLE];
const REMOVE_ALL = ["delete", "crd/transactions.kubetx.io", "crd/transactionpolicies.kubetx.io", `namespace/${NAMESPACE}`];
/**
 * Narrowed as the chart's values.yaml asks admins to (these stories write
 * only ConfigMaps), and as manifests.test.ts narrows it: "*" would hide a
 * missing rule in the other roles.
 */
const RESTORE_RULES = '[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get","create","patch","update","delete"]}]';
/** Long enough for a helm upgrade to run while a transaction waits for its second member. */
const UPGRADE_MAX_OPEN_SECONDS = 60;
/** Polling a condition the apiserver reaches within a second or two. */
const POLL_MS = 100;
const POLL_ATTEMPTS = 150;

/**
 * kubetx brings a re-applied configuration back within a second or two
 * through its watch; well below its 30 s periodic pass, so a watch that RBAC
 * refused would show. Polled every 100 ms.
 */
const RESYNC = { timeout: 10_000, interval: 100 };

type Webhook = {
  name: string; clientConfig: { caBundle?: string; service?: { name: string; namespace: string } }; matchConditions?: { name: string; expression: string }[];
};
type Secret = KubeObject & { data: Record<string, string> };

async function webhooks(admin: KubeClient): Promise<Webhook[]> {
  const all: Webhook[] = [];
  for (const collection of WEBHOOK_CONFIGURATIONS) all.push(...(await admin.get<{ webhooks: Webhook[] }>(collection)).webhooks);
  return all;
}

/** Whether each object entry exempts admin, as the test engine's policy (FAST) does and the chart's default coverage does not. */
async function exemptsAdmin(admin: KubeClient): Promise<boolean[]> {
  return (await webhooks(admin)).filter((w) => w.name !== "records.kubetx.io")
    .map((w) => w.matchConditions?.find((c) => c.name === "not-exempt-users")?.expression.includes('"admin"') ?? false);
}

/** Every Lease and Secret in kubetx-system labelled with a kubetx role, as "Kind role name". */
async function runtimeObjects(admin: KubeClient): Promise<string[]> {
  const found: string[] = [];
  for (const [kind, collection] of Object.entries(RUNTIME_COLLECTIONS)) {
    const list = await admin.get<{ items: KubeObject[] }>(collection, { query: { labelSelector: LABEL_ROLE } });
    for (const item of list.items) found.push(`${kind} ${item.metadata?.labels?.[LABEL_ROLE] ?? ""} ${item.metadata?.name ?? ""}`);
  }
  return found.sort();
}

/** The names of a transaction's journal Secrets. */
async function journalOf(admin: KubeClient, transaction: string): Promise<string[]> {
  const list = await admin.get<{ items: KubeObject[] }>(RUNTIME_COLLECTIONS.Secret, { query: { labelSelector: `${LABEL_ROLE}=${JOURNAL_ROLE},${LABEL_TRANSACTION}=${transaction}` } });
  return list.items.map((s) => s.metadata?.name ?? "");
}

async function poll<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  let last = await read();
  for (let attempt = 0; attempt < POLL_ATTEMPTS && !done(last); attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    last = await read();
  }
  if (!done(last)) throw new Error(`${what}; last seen: ${JSON.stringify(last)}`);
  return last;
}

/** A server-side dry run in an opted-in namespace gets kubetx's warning once the apiserver reaches it. */
async function waitUntilWebhookAnswers(namespace: string): Promise<void> {
  const probe = yamlOf([inTransaction(configMap(namespace, "probe", {}), "t-probehelm", 1)]);
  await poll(
    () => kubectl(["apply", "--dry-run=server", "-f", "-"], { user: "alice", input: probe }),
    (result) => result.stderr.includes("kubetx: dry run"),
    "the apiserver never reached kubetx through the chart's Service",
  );
}

async function applyAsAlice(objects: KubeObject[]): Promise<string> {
  const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf(objects) });
  expect(applied.stderr).toContain("kubetx: joined transaction");
  expect(applied.code).toBe(0);
  return /kubetx: joined transaction (\S+)/.exec(applied.stderr)?.[1] ?? "";
}

/** The chart's previous release, packaged (`helm package`) as it was published: the upgrade test starts from it. */
const PREVIOUS_VERSION = "0.3.0";
const PREVIOUS_CHART = path.join(REPO, "test", "fixtures", "charts", `kubetx-${PREVIOUS_VERSION}.tgz`);

async function chartVersion(): Promise<string> {
  return (parse(await readFile(path.join(CHART, "Chart.yaml"), "utf8")) as { version: string }).version;
}

describe("installing kubetx with helm", () => {
  let admin: KubeClient;
  let certs: string;
  let engine: WebhookServer | undefined;
  let devBinding: KubeObject | undefined;
  let released: KubeObject[] = [];
  let committedId = "";
  let journaledId = "";
  // Created before the webhook configurations exist: until an engine
  // answers, they refuse every covered write (failurePolicy Fail).
  const ns = uniqueName("helm");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;

  beforeAll(async () => {
    admin = await client("admin");
    certs = await mkdtemp(path.join(tmpdir(), "kubetx-helm-certs-"));
    await createNamespace(ns, ENABLED);
  });

  afterAll(async () => {
    // First, so no later test file meets a webhook that nothing answers.
    await helm(["uninstall", RELEASE, "--namespace", NAMESPACE, "--ignore-not-found"]);
    await engine?.close();
    await removeSlice(admin, SLICE);
    await admin.delete(POLICY).catch(() => undefined);
    // What the global setup installed and the release took over.
    await installUserRole(admin);
    await restoreDevBinding(admin, devBinding);
    admin.close();
    await rm(certs, { recursive: true, force: true });
  });

  it("installs into kubetx-system, taking over the CRDs and roles already there, with a generated certificate in every webhook", async () => {
    // The global setup created the CRDs and the user role, and
    // manifests.test.ts may have installed from manifests/ before: as an
    // admin moving to the chart would, --take-ownership adopts what is
    // there and --force-conflicts lets the chart's generated certificate
    // replace the Secret webhook-certs/install.sh wrote.
    // The previous release of the chart, as an admin has it installed; the upgrade below moves to this checkout's.
    const installed = await helm([
      "install", RELEASE, PREVIOUS_CHART, "--namespace", NAMESPACE, "--create-namespace", "--take-ownership", "--force-conflicts",
      // The policy hook needs a kubetx that answers, and here kubetx can
      // start only once the chart has made its certificate: the upgrade
      // below creates the policy.
      "--set", "defaultPolicy.create=false", "--set-json", `restoreRules=${RESTORE_RULES}`,
    ]);
    expect(installed.stderr).toBe("");
    expect(installed.code).toBe(0);
    const secret = await admin.get<Secret>(SECRET);
    const hooks = await webhooks(admin);
    expect(hooks.map((w) => w.name).sort()).toEqual(["observe.kubetx.io", "records.kubetx.io", "validate.kubetx.io"]);
    for (const webhook of hooks) {
      expect(webhook.clientConfig.service).toMatchObject({ name: "kubetx", namespace: NAMESPACE });
      expect(webhook.clientConfig.caBundle).toBe(secret.data["ca.crt"]);
    }
    released = parseObjects((await helm(["get", "manifest", RELEASE, "--namespace", NAMESPACE])).stdout);
    expect(released.map(objectKey)).toContain("CustomResourceDefinition//transactions.kubetx.io");
  });

  it("carries alice's apply through the Service to kubetx serving that certificate, with only the chart's RBAC", async () => {
    devBinding = await removeDevBinding(admin);
    const secret = await admin.get<Secret>(SECRET);
    const tls = { certFile: path.join(certs, "tls.crt"), keyFile: path.join(certs, "tls.key") };
    await writeFile(tls.certFile, Buffer.from(secret.data["tls.crt"] ?? "", "base64"));
    await writeFile(tls.keyFile, Buffer.from(secret.data["tls.key"] ?? "", "base64"), { mode: 0o600 });
    const host = machineAddress();
    engine = await startWebhookServer({
      kubeconfig: cluster().kubeconfigs.kubetx, tls, host, port: 0, logger: silentLogger(),
      config: loadConfig({ ...FAST, maxOpenSeconds: UPGRADE_MAX_OPEN_SECONDS }),
      apiserverClients: cluster().apiserverClient,
    });
    await routeServiceTo(admin, SLICE, host, engine.port);
    await waitUntilWebhookAnswers(ns);

    committedId = await applyAsAlice([configMap(ns, "chart-a", { v: "1" }), configMap(ns, "chart-b", { v: "1" })]);
    const tx = await waitResolved(admin, committedId);
    expect(tx.status?.phase).toBe("Committed");
    expect(tx.status?.members?.map((m) => m.name).sort()).toEqual(["chart-a", "chart-b"]);
  });

  it("keeps an open transaction working through helm upgrade from the previous chart release, which keeps the CA and creates the default policy through kubetx", async () => {
    const id = "t-helmupgrade";
    await applyAsAlice([inTransaction(configMap(ns, "upgraded-a", { v: "1" }), id, 2)]);
    const caBefore = (await admin.get<Secret>(SECRET)).data["ca.crt"];

    // --force-conflicts: after a takeover from `kubectl apply -k manifests/`
    // (see the install above), kubectl still co-owns the fields it set,
    // such as spec.replicas; a first upgrade that changes one must say so.
    const upgraded = await helm([
      "upgrade", RELEASE, CHART, "--namespace", NAMESPACE, "--reuse-values", "--force-conflicts", "--set", "replicas=3", "--set", "defaultPolicy.create=true",
    ]);
    expect(upgraded.stderr).toBe("");
    expect(upgraded.code).toBe(0);
    const history = JSON.parse((await helm(["history", RELEASE, "--namespace", NAMESPACE, "-o", "json"])).stdout) as { chart: string }[];
    expect(history.map((h) => h.chart)).toEqual([`kubetx-${PREVIOUS_VERSION}`, `kubetx-${await chartVersion()}`]);
    // What the release holds now, which the uninstall below must remove.
    released = parseObjects((await helm(["get", "manifest", RELEASE, "--namespace", NAMESPACE])).stdout);
    expect((await admin.get<Secret>(SECRET)).data["ca.crt"]).toBe(caBefore);
    for (const webhook of await webhooks(admin)) expect(webhook.clientConfig.caBundle).toBe(caBefore);
    expect((await admin.get<KubeObject & { spec: { replicas: number } }>(DEPLOYMENT)).spec.replicas).toBe(3);
    const policy = await admin.get<KubeObject>(POLICY);
    const manifest = parse(await readFile(path.join(REPO, "manifests", "policy", "default.yaml"), "utf8")) as KubeObject;
    expect(policy.spec).toEqual(manifest.spec);
    expect(policy.metadata?.labels?.["app.kubernetes.io/managed-by"]).toBe("Helm");

    // The upgrade put the Service's selector back.
    await routeServiceTo(admin, SLICE, machineAddress(), engine?.port ?? 0);
    await applyAsAlice([inTransaction(configMap(ns, "upgraded-b", { v: "1" }), id, 2)]);
    const tx = await waitResolved(admin, id);
    expect(tx.status?.phase).toBe("Committed");
    expect((await admin.get<KubeObject>(`${cms}/upgraded-b`)).metadata?.name).toBe("upgraded-b");
  });

  it("keeps its webhook configurations in step with its policy through the chart's RBAC, and a plain helm upgrade keeps what kubetx set", async () => {
    await vi.waitFor(async () => expect(await exemptsAdmin(admin)).toEqual([true, true]), RESYNC);
    // Applying the chart's default coverage over kubetx's would conflict
    // with kubetx's writes (server-side apply) and uncover, for a moment,
    // what the policies cover: the chart reads it back instead.
    const upgraded = await helm(["upgrade", RELEASE, CHART, "--namespace", NAMESPACE, "--reuse-values"]);
    expect(upgraded.stderr).toBe("");
    expect(upgraded.code).toBe(0);
    expect(await exemptsAdmin(admin)).toEqual([true, true]);
    const caBundle = (await admin.get<Secret>(SECRET)).data["ca.crt"];
    for (const webhook of await webhooks(admin)) expect(webhook.clientConfig.caBundle).toBe(caBundle);
  });

  it("uninstalls every object it installed except the CRDs it keeps, with their Transaction records", async () => {
    // An update journals the object's pre-image (a create needs none), and
    // kubetx keeps it after the commit (journalRetentionSeconds) for kubectl tx undo.
    await routeServiceTo(admin, SLICE, machineAddress(), engine?.port ?? 0);
    await waitUntilWebhookAnswers(ns);
    journaledId = await applyAsAlice([configMap(ns, "chart-a", { v: "2" })]);
    expect((await waitResolved(admin, journaledId)).status?.phase).toBe("Committed");
    expect(await journalOf(admin, journaledId)).not.toEqual([]);
    const uninstalled = await helm(["uninstall", RELEASE, "--namespace", NAMESPACE, "--wait"]);
    expect(uninstalled.code).toBe(0);
    expect(uninstalled.stdout).toContain("These resources were kept due to the resource policy");
    const left: string[] = [];
    for (const object of released) {
      const found = await readOrUndefined(admin, await pathOf(admin, object));
      if (found && !found.metadata?.deletionTimestamp) left.push(objectKey(object));
    }
    expect(left.sort()).toEqual(["CustomResourceDefinition//transactionpolicies.kubetx.io", "CustomResourceDefinition//transactions.kubetx.io"]);
    expect(await readOrUndefined(admin, `/apis/kubetx.io/v1alpha1/transactions/${committedId}`)).toBeDefined();
    for (const configuration of WEBHOOK_CONFIGURATIONS) expect(await readOrUndefined(admin, configuration)).toBeUndefined();
  });

  it("leaves what charts/kubetx/README.md says: the namespace and kubetx's runtime Leases and journal Secrets, which its command removes", async () => {
    const readme = await readFile(path.join(CHART, "README.md"), "utf8");
    expect(readme).toContain(`kubectl ${REMOVE_RUNTIME.join(" ")}`);
    expect(readme).toContain(`kubectl ${REMOVE_ALL.join(" ")}`);
    expect(await readOrUndefined(admin, `/api/v1/namespaces/${NAMESPACE}`)).toBeDefined();
    const runtime = await runtimeObjects(admin);
    const journal = await journalOf(admin, journaledId);
    expect(journal).not.toEqual([]);
    for (const name of journal) expect(runtime).toContain(`Secret ${JOURNAL_ROLE} ${name}`);
    for (const object of runtime) {
      const [kind = "", role = ""] = object.split(" ");
      expect(RUNTIME_ROLES[kind], object).toContain(role);
    }

    const removed = await kubectl(REMOVE_RUNTIME);
    expect(removed.stderr).toBe("");
    expect(removed.code).toBe(0);
    expect(await runtimeObjects(admin)).toEqual([]);
    // The command that removes everything else, as a server-side dry run: later test files still use the CRDs and the namespace.
    const all = await kubectl([...REMOVE_ALL, "--dry-run=server"]);
    expect(all.stderr).toBe("");
    expect(all.stdout).toContain('"transactions.kubetx.io" deleted (server dry run)');
    expect(all.stdout).toContain('"transactionpolicies.kubetx.io" deleted (server dry run)');
    expect(all.stdout).toContain(`namespace "${NAMESPACE}" deleted (server dry run)`);
  });
});

/** The REST path of an object, found through discovery as kubectl would. */
async function pathOf(admin: KubeClient, object: KubeObject): Promise<string> {
  const [group, version] = (object.apiVersion ?? "").includes("/") ? (object.apiVersion ?? "").split("/") : ["", object.apiVersion];
  const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const resources = await admin.get<{ resources: { name: string; kind: string; namespaced: boolean }[] }>(base);
  const resource = resources.resources.find((r) => r.kind === object.kind && !r.name.includes("/"));
  if (!resource) throw new Error(`no resource for ${object.apiVersion} ${object.kind}`);
  const namespace = resource.namespaced ? `/namespaces/${object.metadata?.namespace ?? NAMESPACE}` : "";
  return `${base}${namespace}/${resource.name}/${object.metadata?.name ?? ""}`;
}
