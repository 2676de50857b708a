/**
 * The Helm chart (charts/kubetx/) and the kustomization (manifests/) must
 * install the same kubetx. Both are rendered by the real tools (helm built
 * from tools/helm/, kubectl from the pinned Kubernetes version) and compared
 * object by object, field by field: a change to manifests/ that the chart
 * does not follow (an RBAC rule, a webhook field) fails here. What the
 * chart adds on purpose is named in each test: Helm's labels, the
 * generated certificate and caBundle, the default policy, and what its
 * values change.
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { KubeObject } from "../../src/kube/index.ts";
import { stringify } from "yaml";
import type { CommandResult } from "../support/cluster.ts";
import { kubectl } from "../support/cluster.ts";
import { CHART, NAMESPACE, REPO, RELEASE, certManagerCheck, helm, kustomize, objectKey, renderChart } from "../support/helm.ts";

const MANIFESTS = path.join(REPO, "manifests");
/** The labels Helm charts add by convention; manifests/ has no release to name. */
const HELM_LABELS = ["app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"];
const RESOURCE_POLICY = "helm.sh/resource-policy";
const HOOK = "helm.sh/hook";
const CERT_MANAGER_INJECT = "cert-manager.io/inject-ca-from";

type Webhook = { name: string; clientConfig: { caBundle?: string; service?: Record<string, unknown> }; failurePolicy: string };
type Container = { image: string; env: { name: string; value: string }[]; resources: unknown };
type PodSpec = { containers: Container[]; volumes: Record<string, unknown>[] };
type Deployment = KubeObject & { spec: { replicas: number; template: { spec: PodSpec } } };

function webhooksOf(object: KubeObject | undefined): Webhook[] {
  return (object?.webhooks as Webhook[] | undefined) ?? [];
}

/** The object without what Helm adds by convention (labels, the CRDs' keep policy) and without the caBundle the certificate source sets. */
function comparable(object: KubeObject): KubeObject {
  const copy = structuredClone(object);
  const metadata = copy.metadata ?? {};
  for (const label of HELM_LABELS) delete metadata.labels?.[label];
  if (metadata.annotations) {
    delete metadata.annotations[RESOURCE_POLICY];
    if (Object.keys(metadata.annotations).length === 0) delete metadata.annotations;
  }
  for (const webhook of webhooksOf(copy)) delete webhook.clientConfig.caBundle;
  return copy;
}

function byKey(objects: readonly KubeObject[]): Map<string, KubeObject> {
  return new Map(objects.map((o) => [objectKey(o), o]));
}

function find(objects: readonly KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the rendered objects`);
  return found;
}

function isHook(object: KubeObject): boolean {
  return object.metadata?.annotations?.[HOOK] !== undefined;
}

/** Expects the chart's objects (hooks aside) to be the kustomization's, apart from the listed extras on either side. */
function expectSameObjects(chart: readonly KubeObject[], kustomized: readonly KubeObject[], only: { chart: string[]; kustomize: string[] }): void {
  const fromChart = byKey(chart.filter((o) => !isHook(o)));
  const fromKustomize = byKey(kustomized);
  expect([...fromChart.keys()].filter((k) => !fromKustomize.has(k)).sort()).toEqual([...only.chart].sort());
  expect([...fromKustomize.keys()].filter((k) => !fromChart.has(k)).sort()).toEqual([...only.kustomize].sort());
  for (const [key, object] of fromKustomize) {
    const rendered = fromChart.get(key);
    if (rendered) expect(comparable(rendered), key).toEqual(comparable(object));
  }
}

/**
 * Strict server-side validation (create --dry-run=server --validate=strict)
 * of an object renamed into namespace default, which exists whatever ran
 * before: a misspelt field fails here.
 */
function validatedByApiserver(object: KubeObject, name: string): Promise<CommandResult> {
  const renamed = { ...object, metadata: { name, namespace: "default" } };
  return kubectl(["create", "--dry-run=server", "--validate=strict", "-o", "name", "-f", "-"], { input: stringify(renamed) });
}

type NetworkPolicy = KubeObject & { spec: { ingress: { ports: unknown[]; from: unknown[] }[] } };
/** Where a test's control plane calls from (TEST-NET-2, no real network). */
const CONTROL_PLANE = [{ ipBlock: { cidr: "198.51.100.0/24" } }];

/** helm's flags for apiserverClient.mode networkPolicy, the webhook port open to `from`. */
function networkPolicyMode(from: readonly unknown[] = CONTROL_PLANE): string[] {
  return ["--set", "apiserverClient.mode=networkPolicy", "--set-json", `apiserverClient.networkPolicy.from=${JSON.stringify(from)}`];
}

/** manifests/components/control-plane-only/networkpolicy.yaml, placeholder source and all. */
async function componentNetworkPolicy(): Promise<NetworkPolicy> {
  return parse(await readFile(path.join(MANIFESTS, "components", "control-plane-only", "networkpolicy.yaml"), "utf8")) as NetworkPolicy;
}

/** The Namespace is Helm's to create (`--create-namespace`), not a chart's. */
const KUSTOMIZE_ONLY = [`Namespace//${NAMESPACE}`];
const GENERATED_SECRET = `Secret/${NAMESPACE}/kubetx-webhook-tls`;

describe("the Helm chart", () => {
  let kustomized: KubeObject[];
  let defaults: KubeObject[];

  beforeAll(async () => {
    kustomized = await kustomize(MANIFESTS);
    defaults = await renderChart();
  });

  it("passes helm lint --strict", async () => {
    const linted = await helm(["lint", "--strict", CHART, "--namespace", NAMESPACE]);
    expect(linted.stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
    expect(linted.code).toBe(0);
  });

  it("renders with the default values the objects of kubectl kustomize manifests/, field for field, plus the certificate's Secret", () => {
    expectSameObjects(defaults, kustomized, { chart: [GENERATED_SECRET], kustomize: KUSTOMIZE_ONLY });
  });

  it("labels every object as Helm charts do, with the version of the image it runs", () => {
    for (const object of defaults) {
      expect(object.metadata?.labels, objectKey(object)).toMatchObject({
        "app.kubernetes.io/name": "kubetx", "app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/version": "0.1.0",
      });
    }
  });

  it("generates a serving certificate for the Service's DNS names, signed by the CA in every webhook's caBundle", () => {
    const secret = find(defaults, "Secret", "kubetx-webhook-tls") as KubeObject & { type: string; data: Record<string, string> };
    expect(secret.type).toBe("kubernetes.io/tls");
    const pem = (key: string): string => Buffer.from(secret.data[key] ?? "", "base64").toString();
    const ca = new X509Certificate(pem("ca.crt"));
    const serving = new X509Certificate(pem("tls.crt"));
    expect(serving.checkIssued(ca)).toBe(true);
    expect(serving.verify(ca.publicKey)).toBe(true);
    expect(serving.checkHost("kubetx.kubetx-system.svc")).toBe("kubetx.kubetx-system.svc");
    expect(serving.checkPrivateKey(createPrivateKey(pem("tls.key")))).toBe(true);
    const webhooks = [...webhooksOf(find(defaults, "ValidatingWebhookConfiguration", "kubetx")), ...webhooksOf(find(defaults, "MutatingWebhookConfiguration", "kubetx"))];
    expect(webhooks).toHaveLength(3);
    for (const webhook of webhooks) expect(webhook.clientConfig.caBundle, webhook.name).toBe(secret.data["ca.crt"]);
  });

  it("creates manifests/policy/default.yaml as a hook after install and upgrade, changed in place on upgrade", async () => {
    const policy = find(defaults, "TransactionPolicy", "default");
    const manifest = parse(await readFile(path.join(MANIFESTS, "policy", "default.yaml"), "utf8")) as KubeObject;
    expect(policy.spec).toEqual(manifest.spec);
    expect(policy.metadata?.annotations).toEqual({ [HOOK]: "post-install,post-upgrade", "helm.sh/hook-delete-policy": "hook-failed" });
    expect((await renderChart({ "defaultPolicy.create": "false" })).filter((o) => o.kind === "TransactionPolicy")).toEqual([]);
  });

  it("keeps the CRDs on uninstall unless crds.keep=false, and leaves them out with crds.install=false", async () => {
    for (const crd of defaults.filter((o) => o.kind === "CustomResourceDefinition")) expect(crd.metadata?.annotations?.[RESOURCE_POLICY]).toBe("keep");
    const notKept = await renderChart({ "crds.keep": "false" });
    for (const crd of notKept.filter((o) => o.kind === "CustomResourceDefinition")) expect(crd.metadata?.annotations).toBeUndefined();
    expect((await renderChart({ "crds.install": "false" })).filter((o) => o.kind === "CustomResourceDefinition")).toEqual([]);
  });

  it("changes exactly what replicas, image, logLevel, resources and failurePolicy say", async () => {
    const rendered = await renderChart({
      replicas: "3", "image.repository": "registry.example/kubetx", "image.tag": "0.2.0", logLevel: "debug",
      "resources.limits.memory": "1Gi", failurePolicy: "Ignore",
    });
    const expected = kustomized.map((o) => structuredClone(o));
    const deployment = find(expected, "Deployment", "kubetx") as Deployment;
    deployment.spec.replicas = 3;
    const container = deployment.spec.template.spec.containers[0] as Container & { resources: { limits: Record<string, string> } };
    container.image = "registry.example/kubetx:0.2.0";
    container.env = [{ name: "KUBETX_LOG_LEVEL", value: "debug" }];
    container.resources.limits.memory = "1Gi";
    for (const kind of ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"]) {
      for (const webhook of webhooksOf(find(expected, kind, "kubetx"))) webhook.failurePolicy = "Ignore";
    }
    expectSameObjects(rendered, expected, { chart: [GENERATED_SECRET], kustomize: KUSTOMIZE_ONLY });
    expect(find(rendered, "Deployment", "kubetx").metadata?.labels?.["app.kubernetes.io/version"]).toBe("0.2.0");
  });

  it("leaves out the PodDisruptionBudget with one replica, where it would block every drain", async () => {
    expect((await renderChart({ replicas: "1" })).filter((o) => o.kind === "PodDisruptionBudget")).toEqual([]);
  });

  it("with certificates.source=secret, mounts that Secret and puts the given caBundle in every webhook", async () => {
    const rendered = await renderChart({ "certificates.source": "secret", "certificates.secretName": "mine", "certificates.secret.caBundle": "Q0E=" });
    expect(rendered.filter((o) => o.kind === "Secret")).toEqual([]);
    const deployment = find(rendered, "Deployment", "kubetx") as KubeObject & { spec: { template: { spec: { volumes: { name: string; secret?: { secretName: string } }[] } } } };
    expect(deployment.spec.template.spec.volumes.find((v) => v.name === "tls")?.secret?.secretName).toBe("mine");
    const webhooks = [...webhooksOf(find(rendered, "ValidatingWebhookConfiguration", "kubetx")), ...webhooksOf(find(rendered, "MutatingWebhookConfiguration", "kubetx"))];
    expect(webhooks.map((w) => w.name).sort()).toEqual(["observe.kubetx.io", "records.kubetx.io", "validate.kubetx.io"]);
    for (const webhook of webhooks) expect(webhook.clientConfig.caBundle, webhook.name).toBe("Q0E=");
  });

  it("with certificates.source=secret, refuses to render without a caBundle or the Secret to read it from, saying what to set", async () => {
    // helm template reads no cluster, so there is no Secret to read: as on an install before the Secret exists.
    const result = await helm(["template", RELEASE, CHART, "--namespace", NAMESPACE, "--set", "certificates.source=secret", "--set", "certificates.secretName=mine"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("certificates.source=secret needs the CA that signed the serving certificate");
    expect(result.stderr).toContain("set certificates.secret.caBundle");
    expect(result.stderr).toContain("create Secret mine in kubetx-system with key ca.crt");
  });

  it("with another client CA and certificate names, mounts that Secret as the --client-ca and lets in those names, and changes nothing else", async () => {
    const rendered = await renderChart({ "apiserverClient.clientCA.kind": "Secret", "apiserverClient.clientCA.name": "corp-ca", "apiserverClient.names": "{kube-apiserver,apiserver-b}" });
    const expected = kustomized.map((o) => structuredClone(o));
    const pod = (find(expected, "Deployment", "kubetx") as Deployment).spec.template.spec;
    const container = pod.containers[0] as Container & { args: string[] };
    container.args.push("--apiserver-client", "kube-apiserver,apiserver-b");
    const volume = pod.volumes.find((v) => v.name === "apiserver-client-ca");
    expect(volume).toEqual({ name: "apiserver-client-ca", configMap: { name: "kubetx-apiserver-client-ca" } });
    if (volume) {
      delete volume.configMap;
      volume.secret = { secretName: "corp-ca", items: [{ key: "ca.crt", path: "ca.crt" }] };
    }
    expectSameObjects(rendered, expected, { chart: [GENERATED_SECRET], kustomize: KUSTOMIZE_ONLY });
  });

  it("with another metricsPort, serves /metrics there, in the container's args, its port and the Service's, and changes nothing else", async () => {
    const rendered = await renderChart({ metricsPort: "9100" });
    const expected = kustomized.map((o) => structuredClone(o));
    const container = (find(expected, "Deployment", "kubetx") as Deployment).spec.template.spec.containers[0] as Container & { args: string[]; ports: { name: string; containerPort: number }[] };
    const at = container.args.indexOf("--metrics-port");
    expect(container.args[at + 1]).toBe("9090");
    container.args[at + 1] = "9100";
    const containerPort = container.ports.find((p) => p.name === "metrics");
    if (containerPort) containerPort.containerPort = 9100;
    const service = find(expected, "Service", "kubetx") as KubeObject & { spec: { ports: { name: string; port: number }[] } };
    const servicePort = service.spec.ports.find((p) => p.name === "metrics");
    if (servicePort) servicePort.port = 9100;
    expectSameObjects(rendered, expected, { chart: [GENERATED_SECRET], kustomize: KUSTOMIZE_ONLY });
  });

  it("with the audit sink on, adds only --audit-sink: batches come from the certificate the webhooks already demand", async () => {
    const rendered = await renderChart({ "auditSink.enabled": "true" });
    const expected = kustomized.map((o) => structuredClone(o));
    const container = (find(expected, "Deployment", "kubetx") as Deployment).spec.template.spec.containers[0] as Container & { args: string[] };
    container.args.push("--audit-sink");
    expectSameObjects(rendered, expected, { chart: [GENERATED_SECRET], kustomize: KUSTOMIZE_ONLY });
  });

  it("with the audit sink on by default, installs what manifests/components/audit-sink does, which the apiserver accepts field by field", async () => {
    const rendered = await renderChart({ "auditSink.enabled": "true" });
    const withComponent = await kustomize(path.join(REPO, "examples", "audit-sink"));
    expectSameObjects(rendered, withComponent, { chart: [GENERATED_SECRET], kustomize: KUSTOMIZE_ONLY });
    const checked = await validatedByApiserver(find(withComponent, "Deployment", "kubetx"), "kubetx-audit-sink-check");
    expect(checked.stderr).toBe("");
    expect(checked.stdout.trim()).toBe("deployment.apps/kubetx-audit-sink-check");
  });

  it("says in its notes how the apiserver presents its client certificate, and with the audit sink on, how to point its audit webhook at kubetx", async () => {
    const notes = await helm(["install", RELEASE, CHART, "--namespace", NAMESPACE, "--dry-run=client", "--set", "auditSink.enabled=true"]);
    expect(notes.code).toBe(0);
    const text = notes.stdout.slice(notes.stdout.indexOf("NOTES:"));
    for (const flag of ["--audit-webhook-config-file=", "--audit-webhook-mode=batch", "--audit-webhook-batch-max-wait=250ms", "--audit-webhook-initial-backoff=250ms"]) {
      expect(text).toContain(flag);
    }
    expect(text).toContain("server: https://<ClusterIP>:443/audit");
    expect(text).toContain("tls-server-name: kubetx.kubetx-system.svc");
    expect(text).toContain("ca.crt of ConfigMap kubetx-apiserver-client-ca");
    expect(text).toContain("# CN=kube-apiserver, signed by the CA in ConfigMap kubetx-apiserver-client-ca.");
    const without = await helm(["install", RELEASE, CHART, "--namespace", NAMESPACE, "--dry-run=client"]);
    expect(without.stdout).not.toContain("--audit-webhook");
    expect(without.stdout).toContain("--admission-control-config-file=/etc/kubernetes/kubetx/admission-control.yaml");
    expect(without.stdout).toContain("ca.crt of ConfigMap kubetx-apiserver-client-ca and named kube-apiserver");
  });

  it("refuses a client CA of another kind, a client name with a comma, or the audit sink's old client values, naming the value", async () => {
    const kind = await helm(["template", RELEASE, CHART, "--namespace", NAMESPACE, "--set", "apiserverClient.clientCA.kind=configmap"]);
    expect(kind.code).not.toBe(0);
    expect(kind.stderr).toMatch(/apiserverClient\/clientCA\/kind.*ConfigMap.*Secret/s);
    const comma = await helm(["template", RELEASE, CHART, "--namespace", NAMESPACE, "--set-json", 'apiserverClient.names=["a,b"]']);
    expect(comma.code).not.toBe(0);
    expect(comma.stderr).toContain("/apiserverClient/names/0");
    const old = await helm(["template", RELEASE, CHART, "--namespace", NAMESPACE, "--set", "auditSink.enabled=true", "--set", "auditSink.clientCA.name=corp-ca"]);
    expect(old.code).not.toBe(0);
    expect(old.stderr).toContain("clientCA");
  });

  it("with apiserverClient.mode=networkPolicy, runs --no-client-auth with the client CA optional, as manifests/components/control-plane-only does, lets only the given peers reach the webhook port, and changes nothing else", async () => {
    const rendered = await renderChart({}, networkPolicyMode());
    const expected = kustomized.map((o) => structuredClone(o));
    const pod = (find(expected, "Deployment", "kubetx") as Deployment).spec.template.spec;
    const container = pod.containers[0] as Container & { args: string[] };
    const at = container.args.indexOf("--client-ca");
    expect(container.args.slice(at, at + 2)).toEqual(["--client-ca", "/etc/kubetx/apiserver-client-ca/ca.crt"]);
    container.args.splice(at, 2, "--no-client-auth");
    const volume = pod.volumes.find((v) => v.name === "apiserver-client-ca");
    expect(volume).toEqual({ name: "apiserver-client-ca", configMap: { name: "kubetx-apiserver-client-ca" } });
    if (volume) volume.configMap = { name: "kubetx-apiserver-client-ca", optional: true };
    const policy = await componentNetworkPolicy();
    const webhookRule = policy.spec.ingress[0];
    expect(webhookRule?.ports).toEqual([{ port: "https", protocol: "TCP" }]);
    if (webhookRule) webhookRule.from = CONTROL_PLANE;
    expectSameObjects(rendered, [...expected, policy], { chart: [GENERATED_SECRET], kustomize: KUSTOMIZE_ONLY });
  });

  it("with apiserverClient.mode=networkPolicy, renders a NetworkPolicy with the given webhook and metrics peers that the apiserver accepts field by field", async () => {
    const konnectivity = [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } }, podSelector: { matchLabels: { "k8s-app": "konnectivity-agent" } } }];
    const prometheus = [{ podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } } }];
    const rendered = await renderChart({}, [...networkPolicyMode(konnectivity), "--set-json", `apiserverClient.networkPolicy.metricsFrom=${JSON.stringify(prometheus)}`]);
    const policy = find(rendered, "NetworkPolicy", "kubetx") as NetworkPolicy;
    expect(policy.spec.ingress.map((r) => r.from)).toEqual([konnectivity, prometheus]);
    const checked = await validatedByApiserver(policy, "kubetx-network-policy-check");
    expect(checked.stderr).toBe("");
    expect(checked.stdout.trim()).toBe("networkpolicy.networking.k8s.io/kubetx-network-policy-check");
  });

  it("refuses apiserverClient.mode=networkPolicy without apiserverClient.networkPolicy.from, with the audit sink on, or misspelt, naming the value", async () => {
    const withoutFrom = await helm(["template", RELEASE, CHART, "--namespace", NAMESPACE, "--set", "apiserverClient.mode=networkPolicy"]);
    expect(withoutFrom.code).not.toBe(0);
    expect(withoutFrom.stderr).toContain("apiserverClient.mode=networkPolicy needs apiserverClient.networkPolicy.from");
    const withAuditSink = await helm(["template", RELEASE, CHART, "--namespace", NAMESPACE, ...networkPolicyMode(), "--set", "auditSink.enabled=true"]);
    expect(withAuditSink.code).not.toBe(0);
    expect(withAuditSink.stderr).toContain("auditSink.enabled=true needs apiserverClient.mode=certificate");
    expect(withAuditSink.stderr).toContain("the apiserver's client certificate");
    const misspelt = await helm(["template", RELEASE, CHART, "--namespace", NAMESPACE, "--set", "apiserverClient.mode=networkpolicy"]);
    expect(misspelt.code).not.toBe(0);
    expect(misspelt.stderr).toMatch(/apiserverClient\/mode.*certificate.*networkPolicy/s);
  });

  it("with apiserverClient.mode=networkPolicy, says in its notes what the NetworkPolicy needs and that an admin binds kubetx:viewer, and nothing of client certificates", async () => {
    const notes = await helm(["install", RELEASE, CHART, "--namespace", NAMESPACE, "--dry-run=client", ...networkPolicyMode()]);
    expect(notes.code).toBe(0);
    const text = notes.stdout.slice(notes.stdout.indexOf("NOTES:"));
    expect(text).toContain("(--no-client-auth)");
    expect(text).toContain("a network plugin that enforces NetworkPolicy");
    expect(text).toContain("kubectl create clusterrolebinding kubetx-viewers --clusterrole=kubetx:viewer");
    for (const step of ["kubetx certs", "--admission-control-config-file", "kubetx-apiserver-client-ca", "CN=kube-apiserver"]) expect(text).not.toContain(step);
    expect(text).not.toMatch(/^ {2}kubectl tx list$/m);
  });

  it("ships the dashboard and the alert rules of manifests/monitoring when asked to", async () => {
    const rendered = await renderChart({ "monitoring.grafanaDashboard.enabled": "true", "monitoring.prometheusRule.enabled": "true" });
    const dashboard = find(rendered, "ConfigMap", "kubetx-grafana-dashboard") as KubeObject & { data: Record<string, string> };
    expect(dashboard.metadata?.labels?.grafana_dashboard).toBe("1");
    expect(JSON.parse(dashboard.data["kubetx.json"] ?? "")).toEqual(JSON.parse(await readFile(path.join(MANIFESTS, "monitoring", "grafana-dashboard.json"), "utf8")));
    const rule = find(rendered, "PrometheusRule", "kubetx");
    expect(rule.spec).toEqual(parse(await readFile(path.join(MANIFESTS, "monitoring", "alerts.yaml"), "utf8")));
    expect(defaults.filter((o) => o.kind === "ConfigMap" || o.kind === "PrometheusRule")).toEqual([]);
  });

  it("with monitoring.serviceMonitor.enabled, has Prometheus scrape the Service's metrics port, which reaches the container's metricsPort", async () => {
    expect(defaults.filter((o) => o.kind === "ServiceMonitor")).toEqual([]);
    const rendered = await renderChart({ "monitoring.serviceMonitor.enabled": "true", "monitoring.serviceMonitor.interval": "30s", "monitoring.serviceMonitor.labels.release": "prometheus", metricsPort: "9100" });
    type Port = { name: string; port: number; targetPort: string };
    type ServiceMonitor = KubeObject & { spec: { namespaceSelector: { matchNames: string[] }; selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string; scheme: string; interval?: string }[] } };
    const monitor = find(rendered, "ServiceMonitor", "kubetx") as ServiceMonitor;
    expect(monitor.apiVersion).toBe("monitoring.coreos.com/v1");
    expect(monitor.metadata?.labels?.release).toBe("prometheus");
    expect(monitor.spec.namespaceSelector.matchNames).toEqual([NAMESPACE]);
    // The selector picks Service kubetx, and no other Service the chart renders.
    const services = rendered.filter((o) => o.kind === "Service" && Object.entries(monitor.spec.selector.matchLabels).every(([k, v]) => o.metadata?.labels?.[k] === v));
    expect(services.map(objectKey)).toEqual([`Service/${NAMESPACE}/kubetx`]);
    expect(monitor.spec.endpoints).toEqual([{ port: "metrics", path: "/metrics", scheme: "http", interval: "30s" }]);
    const servicePort = ((services[0] as KubeObject & { spec: { ports: Port[] } }).spec.ports).find((p) => p.name === monitor.spec.endpoints[0]?.port);
    expect(servicePort?.port).toBe(9100);
    const container = (find(rendered, "Deployment", "kubetx") as Deployment).spec.template.spec.containers[0] as Container & { ports: { name: string; containerPort: number }[] };
    expect(container.ports.find((p) => p.name === servicePort?.targetPort)?.containerPort).toBe(9100);
  });

  it("refuses another namespace, saying that kubetx's names are fixed", async () => {
    const result = await helm(["template", RELEASE, CHART, "--namespace", "default"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("install the chart into namespace kubetx-system");
  });

  it("refuses a value it does not know, at the top and nested, naming the key", async () => {
    const top = await helm(["template", RELEASE, CHART, "--namespace", NAMESPACE, "--set", "replica=3"]);
    expect(top.code).not.toBe(0);
    expect(top.stderr).toMatch(/additional properties 'replica' not allowed/);
    const nested = await helm(["template", RELEASE, CHART, "--namespace", NAMESPACE, "--set", "monitoring.serviceMonitor.enable=true"]);
    expect(nested.code).not.toBe(0);
    expect(nested.stderr).toMatch(/\/monitoring\/serviceMonitor.*additional properties 'enable' not allowed/);
  });

  it("refuses a misspelt failurePolicy, naming the allowed values", async () => {
    const result = await helm(["template", RELEASE, CHART, "--namespace", NAMESPACE, "--set", "failurePolicy=fail"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/failurePolicy.*(Fail|Ignore)/s);
  });
});

describe("cert-manager, with the chart and with the kustomize component", () => {
  let fromChart: KubeObject[];
  let fromOverlay: KubeObject[];

  beforeAll(async () => {
    fromChart = await renderChart({ "certificates.source": "cert-manager" });
    fromOverlay = await kustomize(path.join(REPO, "examples", "cert-manager"));
  });

  it("asks cert-manager's CA injector for the caBundle of both webhook configurations, and sets none itself", () => {
    for (const objects of [fromChart, fromOverlay]) {
      for (const kind of ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"]) {
        const configuration = find(objects, kind, "kubetx");
        expect(configuration.metadata?.annotations?.[CERT_MANAGER_INJECT]).toBe("kubetx-system/kubetx-webhook");
        for (const webhook of webhooksOf(configuration)) expect(webhook.clientConfig.caBundle).toBeUndefined();
      }
    }
    expect(fromChart.filter((o) => o.kind === "Secret")).toEqual([]);
  });

  it("issues the Secret the Deployment mounts, for the Service's DNS names, from a CA of kubetx's own", () => {
    for (const objects of [fromChart, fromOverlay]) {
      const certificate = find(objects, "Certificate", "kubetx-webhook") as KubeObject & { spec: { secretName: string; dnsNames: string[]; issuerRef: { name: string; kind: string }; usages: string[] } };
      expect(certificate.apiVersion).toBe("cert-manager.io/v1");
      expect(certificate.spec.secretName).toBe("kubetx-webhook-tls");
      expect(certificate.spec.dnsNames).toEqual(["kubetx", "kubetx.kubetx-system", "kubetx.kubetx-system.svc", "kubetx.kubetx-system.svc.cluster.local"]);
      expect(certificate.spec.usages).toContain("server auth");
      const issuer = find(objects, certificate.spec.issuerRef.kind, certificate.spec.issuerRef.name) as KubeObject & { spec: { ca: { secretName: string } } };
      const ca = find(objects, "Certificate", "kubetx-ca") as KubeObject & { spec: { isCA: boolean; secretName: string; issuerRef: { name: string; kind: string } } };
      expect(ca.spec.isCA).toBe(true);
      expect(issuer.spec.ca.secretName).toBe(ca.spec.secretName);
      expect(find(objects, ca.spec.issuerRef.kind, ca.spec.issuerRef.name).spec).toEqual({ selfSigned: {} });
    }
  });

  it("decode strictly into cert-manager's own API types (v1.21): no unknown field, no value of the wrong type", async () => {
    for (const objects of [fromChart, fromOverlay]) {
      const checked = await certManagerCheck(objects.map((o) => stringify(o)).join("---\n"));
      expect(checked.stderr).toBe("");
      expect(checked.code).toBe(0);
      expect(checked.stdout.trim().split("\n").sort()).toEqual([
        "ok Certificate kubetx-ca", "ok Certificate kubetx-webhook", "ok Issuer kubetx-ca", "ok Issuer kubetx-selfsigned",
      ]);
    }
  });

  it("would be refused by that check with a misspelt field or a duration cert-manager cannot read", async () => {
    const certificate = structuredClone(find(fromChart, "Certificate", "kubetx-webhook")) as KubeObject & { spec: Record<string, unknown> };
    const { dnsNames, ...rest } = certificate.spec;
    const misspelt = await certManagerCheck(stringify({ ...certificate, spec: { ...rest, dnsName: dnsNames } }));
    expect(misspelt.code).toBe(1);
    expect(misspelt.stderr).toContain('Certificate kubetx-webhook: error unmarshaling JSON: while decoding JSON: json: unknown field "dnsName"');
    const badDuration = await certManagerCheck(stringify({ ...certificate, spec: { ...certificate.spec, duration: "90d" } }));
    expect(badDuration.code).toBe(1);
    expect(badDuration.stderr).toContain('unknown unit "d" in duration "90d"');
  });

  it("are the same cert-manager objects in the chart and in the component", () => {
    const certManager = (objects: KubeObject[]): KubeObject[] => objects.filter((o) => o.apiVersion === "cert-manager.io/v1").map(comparable);
    expect(byKey(certManager(fromChart))).toEqual(byKey(certManager(fromOverlay)));
  });

  it("leave everything else as the base installs it", async () => {
    const base = await kustomize(MANIFESTS);
    const overlayBase = fromOverlay.filter((o) => o.apiVersion !== "cert-manager.io/v1").map((o) => {
      const copy = structuredClone(o);
      delete copy.metadata?.annotations?.[CERT_MANAGER_INJECT];
      if (copy.metadata?.annotations && Object.keys(copy.metadata.annotations).length === 0) delete copy.metadata.annotations;
      return copy;
    });
    expect(byKey(overlayBase)).toEqual(byKey(base));
  });

  it("uses the issuer named in certificates.certManager.issuerRef instead of its own", async () => {
    const rendered = await renderChart({ "certificates.source": "cert-manager", "certificates.certManager.issuerRef.name": "corp-ca", "certificates.certManager.issuerRef.kind": "ClusterIssuer" });
    expect(rendered.filter((o) => o.kind === "Issuer")).toEqual([]);
    expect((find(rendered, "Certificate", "kubetx-webhook").spec as { issuerRef: unknown }).issuerRef).toEqual({ name: "corp-ca", kind: "ClusterIssuer" });
  });
});
