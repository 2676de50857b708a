/**
 * A cluster admin installs kubetx with `kubectl apply -k manifests/` and
 * webhook-certs/install.sh. This applies the real manifests to the real
 * apiserver, and proves that the Service-based webhook configurations they
 * register reach a kubetx engine, which then works with nothing but the
 * RBAC that manifests/ grants.
 *
 * There is no kubelet and no controller manager, so the Deployment never
 * runs a pod. The engine runs in this process instead, and the apiserver
 * (started with --enable-aggregator-routing=true) reaches it through the
 * Service's EndpointSlice, which this test writes by hand.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../../src/config/config.ts";
import { KUBETX_NAMESPACE } from "../../src/devcluster/identities.ts";
import { readManifests } from "../../src/devcluster/install.ts";
import { CONFIGURATION_PATHS } from "../../src/webhooks/configurations.ts";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import { createOrReplace } from "../../src/kube/index.ts";
import type { WebhookServer } from "../../src/main.ts";
import { startWebhookServer } from "../../src/main.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import { createMetrics } from "../../src/telemetry/metrics.ts";
import { PREPARED_FRESHNESS_MS } from "../../src/locks/pulse.ts";
import { installPlugin } from "../support/plugin.ts";
import { client, cluster, createNamespace, kubectl, run, uniqueName } from "../support/cluster.ts";
import { FAST, unregister } from "../support/engine.ts";
import { configMap, inTransaction, leftovers, waitResolved, yamlOf } from "../support/objects.ts";
import { machineAddress, removeDevBinding, removeSlice, restoreDevBinding, routeServiceTo } from "../support/service-route.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const MANIFESTS = path.join(REPO, "manifests");
const INSTALL = path.join(REPO, "webhook-certs", "install.sh");
const ENABLED = { "kubetx.io/enabled": "true" };
/**
 * kubetx brings a re-applied configuration back within a second or two
 * through its watch; well below its 30 s periodic pass, so a watch that RBAC
 * refused would show. Polled every 100 ms.
 */
const RESYNC = { timeout: 10_000, interval: 100 };

type Webhook = { name: string; clientConfig: { caBundle?: string; service?: unknown }; matchConditions?: { name: string; expression: string }[] };

/** kubetx_prepared_admissions_total in a /metrics rendering. */
function preparedAdmissions(rendered: string): number {
  return Number(/^kubetx_prepared_admissions_total (\d+)/m.exec(rendered)?.[1] ?? "0");
}

function applyManifests(): ReturnType<typeof kubectl> {
  return kubectl(["apply", "--validate=strict", "-k", MANIFESTS]);
}

/** kind/namespace/name -> resourceVersion of every object the kustomization names. */
async function appliedVersions(): Promise<Record<string, string>> {
  const listed = await kubectl(["get", "-k", MANIFESTS, "-o", "json"]);
  expect(listed.code).toBe(0);
  const items = (JSON.parse(listed.stdout) as { items: KubeObject[] }).items;
  return Object.fromEntries(items.map((o) => [`${o.kind ?? ""}/${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`, o.metadata?.resourceVersion ?? ""]));
}

async function webhooksOf(admin: KubeClient): Promise<Webhook[]> {
  const all: Webhook[] = [];
  for (const collection of Object.values(CONFIGURATION_PATHS)) {
    all.push(...(await admin.get<{ webhooks: Webhook[] }>(`${collection}/kubetx`)).webhooks);
  }
  return all;
}

/**
 * The resolver records the outcome first and then releases the locks,
 * heartbeat and journal, so a reader can see both for a moment.
 */
async function leftoversOnceReleased(admin: KubeClient, id: string): Promise<string[]> {
  let left = await leftovers(admin, id);
  for (let attempt = 0; attempt < 50 && left.length > 0; attempt += 1) {
    await sleep(100);
    left = await leftovers(admin, id);
  }
  return left;
}

/** A server-side dry run in an opted-in namespace answers with kubetx's warning once the webhook is reachable. */
async function waitUntilWebhookAnswers(namespace: string): Promise<void> {
  const probe = yamlOf([inTransaction(configMap(namespace, "probe", {}), "t-probemani", 1)]);
  let last = "";
  for (let attempt = 0; attempt < 150; attempt += 1) {
    const result = await kubectl(["apply", "--dry-run=server", "-f", "-"], { user: "alice", input: probe });
    if (result.stderr.includes("kubetx: dry run")) return;
    last = result.stderr;
    await sleep(100);
  }
  throw new Error(`the apiserver never reached kubetx through the Service; kubectl said: ${last}`);
}

describe("installing kubetx from manifests/", () => {
  let admin: KubeClient;
  let certs: string;
  let engine: WebhookServer | undefined;
  let devBinding: KubeObject | undefined;
  /** The engine's metrics, read by the story of prepared creates. */
  const metrics = createMetrics();
  // Created before the webhook configurations exist: until an engine
  // answers, they refuse every covered write (failurePolicy Fail), also the
  // editors' RoleBinding that createNamespace waits for.
  const ns = uniqueName("manifests");
  const cms = `/api/v1/namespaces/${ns}/configmaps`;

  beforeAll(async () => {
    admin = await client("admin");
    certs = await mkdtemp(path.join(tmpdir(), "kubetx-certs-"));
    await createNamespace(ns, ENABLED);
  });

  afterAll(async () => {
    // First, so no later test file meets a webhook that nothing answers.
    await unregister();
    await engine?.close();
    await removeSlice(admin, "kubetx-test");
    await restoreDevBinding(admin, devBinding);
    admin?.close();
    await rm(certs, { recursive: true, force: true });
  });

  it("applies as a cluster admin with server-side validation, and again without a change", async () => {
    const first = await applyManifests();
    expect(first.stderr).not.toMatch(/error/i);
    expect(first.code).toBe(0);
    for (const object of ["deployment.apps/kubetx", "poddisruptionbudget.policy/kubetx", "service/kubetx", "validatingwebhookconfiguration.admissionregistration.k8s.io/kubetx"]) {
      expect(first.stdout).toContain(object);
    }
    const before = await appliedVersions();
    const second = await applyManifests();
    expect(second.stderr).toBe("");
    expect(second.code).toBe(0);
    // kubectl says "configured" for a few objects whose patch changes
    // nothing (a PodDisruptionBudget's selector is always sent whole); the
    // apiserver's resourceVersions show whether anything really changed.
    expect(await appliedVersions()).toEqual(before);
    expect(Object.keys(before)).toHaveLength((await readManifests(MANIFESTS)).filter((o) => o.kind !== "Kustomization").length
      + (await readManifests(path.join(MANIFESTS, "crds"))).length);
  });

  it("gets its certificate and caBundle from install.sh, and keeps the caBundle when applied again", async () => {
    const info = cluster();
    const installed = await run(INSTALL, [certs], {
      env: { ...process.env, KUBECTL: `${info.kubectl} --kubeconfig ${info.kubeconfigs.admin}` },
    });
    expect(installed.stderr).toContain("caBundle set on validatingwebhookconfiguration/kubetx");
    expect(installed.code).toBe(0);
    const caBundle = (await readFile(path.join(certs, "ca.crt"))).toString("base64");

    const secret = await admin.get<KubeObject & { type: string; data: Record<string, string> }>(`/api/v1/namespaces/${KUBETX_NAMESPACE}/secrets/kubetx-webhook-tls`);
    expect(secret.type).toBe("kubernetes.io/tls");
    // The CA kubetx checks the apiserver's client certificate against, and what the control-plane nodes need.
    const clientCa = await admin.get<KubeObject & { data: Record<string, string> }>(`/api/v1/namespaces/${KUBETX_NAMESPACE}/configmaps/kubetx-apiserver-client-ca`);
    expect(clientCa.data["ca.crt"]).toBe(await readFile(path.join(certs, "apiserver-client-ca", "ca.crt"), "utf8"));
    const service = await admin.get<KubeObject & { spec: { clusterIP: string } }>(`/api/v1/namespaces/${KUBETX_NAMESPACE}/services/kubetx`);
    expect(await readFile(path.join(certs, "control-plane", "audit-webhook.kubeconfig"), "utf8")).toContain(`https://${service.spec.clusterIP}:443/audit`);
    expect(installed.stderr).toContain(`copy ${certs}/control-plane/ to /etc/kubernetes/kubetx/ on every control-plane node`);
    expect(Buffer.from(secret.data["tls.crt"] ?? "", "base64").toString()).toBe(await readFile(path.join(certs, "tls.crt"), "utf8"));
    expect(secret.metadata?.annotations?.["kubectl.kubernetes.io/last-applied-configuration"]).toBeUndefined();

    const webhooks = await webhooksOf(admin);
    expect(webhooks.map((w) => w.name).sort()).toEqual(["observe.kubetx.io", "records.kubetx.io", "validate.kubetx.io"]);
    for (const webhook of webhooks) expect(webhook.clientConfig.caBundle).toBe(caBundle);

    const again = await applyManifests();
    expect(again.code).toBe(0);
    for (const webhook of await webhooksOf(admin)) expect(webhook.clientConfig.caBundle).toBe(caBundle);

    const rerun = await run(INSTALL, [certs], { env: { ...process.env, KUBECTL: `${info.kubectl} --kubeconfig ${info.kubeconfigs.admin}` } });
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).not.toContain("restarted");
  });

  it("replaces a changed certificate: new Secret and caBundle, and a rolling restart of the pods", async () => {
    const info = cluster();
    const env = { ...process.env, KUBECTL: `${info.kubectl} --kubeconfig ${info.kubeconfigs.admin}` };
    const other = await mkdtemp(path.join(tmpdir(), "kubetx-certs-other-"));
    try {
      const replaced = await run(INSTALL, [other], { env });
      expect(replaced.code).toBe(0);
      expect(replaced.stderr).toContain("the certificate changed: restarted deployment kubetx-system/kubetx");
      for (const webhook of await webhooksOf(admin)) expect(webhook.clientConfig.caBundle).toBe((await readFile(path.join(other, "ca.crt"))).toString("base64"));
      const deployment = await admin.get<KubeObject & { spec: { template: { metadata: { annotations?: Record<string, string> } } } }>(
        `/apis/apps/v1/namespaces/${KUBETX_NAMESPACE}/deployments/kubetx`);
      expect(deployment.spec.template.metadata.annotations?.["kubectl.kubernetes.io/restartedAt"]).toBeDefined();
    } finally {
      // Back to the first certificates, which the next stories serve.
      expect((await run(INSTALL, [certs], { env })).code).toBe(0);
      await rm(other, { recursive: true, force: true });
    }
    for (const webhook of await webhooksOf(admin)) expect(webhook.clientConfig.caBundle).toBe((await readFile(path.join(certs, "ca.crt"))).toString("base64"));
  });

  it("routes alice's apply through the Service to kubetx, which commits it with only the manifests' RBAC", async () => {
    // kubetx's identity here is the static-token user with the
    // ServiceAccount's name; without the dev cluster's cluster-admin
    // binding it has exactly what manifests/ grants the ServiceAccount.
    devBinding = await removeDevBinding(admin);
    // Narrowed as rbac.yaml shows admins to: these stories write only
    // ConfigMaps, with the verbs rbac.yaml grants (list: the rollback reads
    // the object as it was when it was locked). A broader role would hide a
    // missing rule in the other roles (Leases, journal Secrets, Events).
    await createOrReplace(admin, "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "kubetx:restore" },
      rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "create", "patch", "delete"] }],
    });

    const host = machineAddress();
    engine = await startWebhookServer({
      kubeconfig: cluster().kubeconfigs.kubetx,
      tls: { certFile: path.join(certs, "tls.crt"), keyFile: path.join(certs, "tls.key") },
      host,
      port: 0,
      logger: silentLogger(),
      metrics,
      config: loadConfig(FAST),
      // The apiserver presents its client certificate to the Service's
      // address too (the test cluster's WebhookAdmission kubeconfig covers
      // every host), as manifests/README.md has an admin configure it.
      apiserverClients: cluster().apiserverClient,
    });
    // Selector-less: endpoints are written by hand, not derived from pods.
    // (No controller runs here to derive them anyway; without a selector a
    // real cluster's controllers would leave this slice alone too.)
    await routeServiceTo(admin, "kubetx-test", host, engine.port);
    await waitUntilWebhookAnswers(ns);

    const manifest = yamlOf([configMap(ns, "via-service-a", { v: "1" }), configMap(ns, "via-service-b", { v: "1" })]);
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: manifest });
    expect(applied.code).toBe(0);
    expect(applied.stderr).toContain("kubetx: joined transaction");
    const id = /kubetx: joined transaction (\S+)/.exec(applied.stderr)?.[1] ?? "";
    const tx = await waitResolved(admin, id);
    expect(tx.status?.phase).toBe("Committed");
    expect(tx.spec.user).toBe("alice");
    expect(tx.status?.members?.map((m) => m.name).sort()).toEqual(["via-service-a", "via-service-b"]);
    expect(await leftoversOnceReleased(admin, id)).toEqual([]);
  });

  it("prepares kubectl tx apply's creates and admits them from memory with only the manifests' RBAC (its pulse Lease, reviews, discovery)", async () => {
    // Past the pulse's freshness bound: the later beats, not only the first, must get through the Role.
    await sleep(PREPARED_FRESHNESS_MS + 500);
    const plugin = await installPlugin();
    try {
      const file = path.join(certs, "prepared.yaml");
      await writeFile(file, yamlOf(["p-1", "p-2", "p-3", "p-4", "p-5"].map((n) => configMap(ns, n, { v: n }))));
      const before = preparedAdmissions(await metrics.render());
      const applied = await plugin.tx(["apply", "-f", file]);
      expect(applied.code, applied.stderr).toBe(0);
      const id = /as transaction (t-[0-9a-f]{8})/.exec(applied.stderr)?.[1] ?? "";
      const tx = await waitResolved(admin, id);
      expect(tx.status?.phase).toBe("Committed");
      expect(tx.status?.preparedMembers).toBe(5);
      expect(preparedAdmissions(await metrics.render()) - before).toBe(5);
      expect(await leftoversOnceReleased(admin, id)).toEqual([]);
    } finally {
      await plugin.remove();
    }
  });

  it("grants the writes kubetx makes to a record's status: update (phase changes) and patch (the audit sink's outcomes and marks, admission's lastActivity)", async () => {
    for (const verb of ["update", "patch"]) {
      const answer = await kubectl(["auth", "can-i", verb, "transactions.kubetx.io", "--subresource=status", "--as=system:serviceaccount:kubetx-system:kubetx"]);
      expect(`${verb}: ${answer.stdout.trim()}`).toBe(`${verb}: yes`);
    }
  });

  it("rolls back through the manifests' RBAC: restores a journalled update and records an Event", async () => {
    await admin.create(cms, configMap(ns, "restored", { v: "old" }));
    const id = "t-manifest1";
    // Two members promised, one sent: the transaction times out and rolls back.
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "restored", { v: "new" }), id, 2)]) });
    expect(applied.stderr).toContain(`kubetx: joined transaction ${id}`);
    expect((await admin.get(`${cms}/restored`)).data).toEqual({ v: "new" });

    const tx = await waitResolved(admin, id);
    expect(tx.status?.phase).toBe("RolledBack");
    expect(tx.status?.members?.map((m) => `${m.name}:${m.outcome}`)).toEqual(["restored:Restored"]);
    expect((await admin.get(`${cms}/restored`)).data).toEqual({ v: "old" });
    expect(await leftoversOnceReleased(admin, id)).toEqual([]);
    const events = await admin.get<{ items: (KubeObject & { reason?: string })[] }>(`/api/v1/namespaces/${ns}/events`, {
      query: { fieldSelector: "involvedObject.name=restored" },
    });
    expect(events.items.map((e) => e.reason)).toContain("TransactionRolledBack");
  });

  it("renders with the control-plane-only component, which the apiserver accepts, for clusters whose apiserver presents no certificate", async () => {
    const overlay = await mkdtemp(path.join(tmpdir(), "kubetx-overlay-"));
    try {
      await writeFile(path.join(overlay, "kustomization.yaml"), [
        "apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization",
        // kustomize takes only relative paths.
        `resources: [${path.relative(overlay, MANIFESTS)}]`, `components: [${path.relative(overlay, path.join(MANIFESTS, "components", "control-plane-only"))}]`,
        // As the component asks: the source of the control plane's calls.
        "patches:", "  - patch: |-",
        "      [{\"op\": \"replace\", \"path\": \"/spec/ingress/0/from/0/ipBlock/cidr\", \"value\": \"10.0.0.0/24\"}]",
        "    target: {kind: NetworkPolicy, name: kubetx}", "",
      ].join("\n"));
      const rendered = await kubectl(["kustomize", overlay]);
      expect(rendered.code, rendered.stderr).toBe(0);
      expect(rendered.stdout).toContain("- --no-client-auth");
      expect(rendered.stdout).not.toContain("- --client-ca");
      const dryRun = await kubectl(["apply", "--dry-run=server", "--validate=strict", "-k", overlay]);
      // (Warnings only: an earlier story replaced kubetx:restore without kubectl's last-applied annotation.)
      expect(dryRun.stderr).not.toMatch(/error/i);
      expect(dryRun.code).toBe(0);
      expect(dryRun.stdout).toContain("networkpolicy.networking.k8s.io/kubetx created (server dry run)");
    } finally {
      await rm(overlay, { recursive: true, force: true });
    }
  });

  it("keeps its webhook configurations in step with its policy through the manifests' RBAC, also after they are applied again", async () => {
    // The engine's policy (FAST, from flags) exempts admin; the installed default policy does not.
    const exemptsAdmin = async (): Promise<boolean[]> => (await webhooksOf(admin)).filter((w) => w.name !== "records.kubetx.io")
      .map((w) => w.matchConditions?.find((c) => c.name === "not-exempt-users")?.expression.includes('"admin"') ?? false);
    await vi.waitFor(async () => expect(await exemptsAdmin()).toEqual([true, true]), RESYNC);

    const again = await applyManifests();
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("validatingwebhookconfiguration.admissionregistration.k8s.io/kubetx configured");
    await vi.waitFor(async () => expect(await exemptsAdmin()).toEqual([true, true]), RESYNC);
    const caBundle = (await readFile(path.join(certs, "ca.crt"))).toString("base64");
    for (const webhook of await webhooksOf(admin)) expect(webhook.clientConfig.caBundle).toBe(caBundle);
  });
});
