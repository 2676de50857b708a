/**
 * manifests/ is what a cluster admin applies (`kubectl apply -k manifests/`).
 * These checks keep it in agreement with the code: the webhook
 * configurations with src/webhooks/configurations.ts, the user role with
 * install.ts, and the names the Deployment, Service and install script
 * share. test/integration/manifests.test.ts applies them to a real apiserver.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { isSeq, parseAllDocuments } from "yaml";
import { KUBETX_NAMESPACE, KUBETX_SERVICE_ACCOUNT } from "../../src/devcluster/identities.ts";
import { installUserRole, readManifests } from "../../src/devcluster/install.ts";
import type { ClientConfig } from "../../src/webhooks/configurations.ts";
import { webhookConfigurations } from "../../src/webhooks/configurations.ts";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const MANIFESTS = path.join(REPO, "manifests");
/** The Secret the Deployment mounts and webhook-certs/install.sh writes. */
const TLS_SECRET = "kubetx-webhook-tls";
/** The ConfigMap with the CA of the apiserver's client certificate, likewise. */
const CLIENT_CA = "kubetx-apiserver-client-ca";

type Webhook = { name: string; clientConfig: Record<string, unknown> } & Record<string, unknown>;
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
type Subject = { kind: string; name: string; namespace?: string };
type Container = {
  name: string; image: string; args: string[]; ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string; scheme: string } };
  readinessProbe: { httpGet: { path: string; port: string; scheme: string } };
  resources: { requests: Record<string, string>; limits: Record<string, string> };
  securityContext: Record<string, unknown>;
  volumeMounts: { name: string; mountPath: string }[];
};
type PodSpec = {
  serviceAccountName: string; securityContext: Record<string, unknown>; containers: Container[];
  volumes: { name: string; secret?: { secretName: string }; configMap?: { name: string; optional?: boolean } }[];
  affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: { podAffinityTerm: { topologyKey: string } }[] } };
};

/** The client config manifests/ uses: the Service kubetx:443 in kubetx-system. */
function serviceClientConfig(webhookPath: string): ClientConfig {
  return { service: { name: "kubetx", namespace: KUBETX_NAMESPACE, path: webhookPath, port: 443 }, caBundle: "" };
}

function withoutCaBundle(webhooks: readonly Webhook[]): Webhook[] {
  return webhooks.map((w) => {
    const { caBundle: _ignored, ...clientConfig } = w.clientConfig;
    return { ...w, clientConfig };
  });
}

let objects: KubeObject[];

function find<T extends KubeObject = KubeObject>(kind: string, name: string): T {
  const object = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!object) throw new Error(`manifests/ has no ${kind} ${name}`);
  return object as T;
}

function podSpec(): PodSpec {
  return find<KubeObject & { spec: { template: { spec: PodSpec } } }>("Deployment", "kubetx").spec.template.spec;
}

function container(): Container {
  const only = podSpec().containers[0];
  if (!only) throw new Error("the Deployment has no container");
  return only;
}

function flag(args: readonly string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
}

/** A client that records what is created and answers nothing else. */
function recordingClient(created: KubeObject[]): KubeClient {
  const refuse = (): Promise<never> => Promise.reject(new Error("not expected"));
  return {
    server: "https://fake",
    create: <T,>(_path: string, body: unknown) => (created.push(body as KubeObject), Promise.resolve(body as T)),
    get: refuse, replace: refuse, jsonPatch: refuse, mergePatch: refuse, delete: refuse, watch: refuse, request: refuse,
    close: () => undefined,
  };
}

beforeAll(async () => {
  objects = await readManifests(MANIFESTS);
});

describe("the webhook configurations in manifests/", () => {
  it("are the ones configurations.ts builds, pointed at the kubetx Service", () => {
    for (const expected of webhookConfigurations(serviceClientConfig)) {
      const actual = find(expected.kind ?? "", expected.metadata?.name ?? "");
      expect(actual.apiVersion).toBe(expected.apiVersion);
      expect(withoutCaBundle(actual.webhooks as Webhook[])).toEqual(withoutCaBundle(expected.webhooks as Webhook[]));
    }
  });

  it("name no caBundle, so re-applying them keeps the one install.sh injected", () => {
    for (const kind of ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"]) {
      for (const webhook of find(kind, "kubetx").webhooks as Webhook[]) expect(webhook.clientConfig).not.toHaveProperty("caBundle");
    }
  });

  it("use the Service port that the Service defines", () => {
    const service = find<KubeObject & { spec: { ports: { port: number }[] } }>("Service", "kubetx");
    expect(service.metadata?.namespace).toBe(KUBETX_NAMESPACE);
    expect(service.spec.ports.map((p) => p.port)).toContain(443);
  });
});

describe("the kustomization", () => {
  it("lists every manifest file in manifests/ and manifests/crds/", async () => {
    const kustomization = objects.find((o) => o.kind === "Kustomization") as KubeObject & { resources: string[] };
    const yamlIn = async (dir: string): Promise<string[]> =>
      (await readdir(path.join(MANIFESTS, dir))).filter((f) => /\.ya?ml$/.test(f)).map((f) => path.posix.join(dir, f));
    const files = [...(await yamlIn(".")), ...(await yamlIn("crds"))].filter((f) => f !== "kustomization.yaml");
    expect([...kustomization.resources].sort()).toEqual(files.sort());
  });
});

describe("RBAC in manifests/", () => {
  it("gives every rule a comment that says why kubetx needs it", async () => {
    for (const file of ["rbac.yaml", "user-rbac.yaml"]) {
      for (const doc of parseAllDocuments(await readFile(path.join(MANIFESTS, file), "utf8"))) {
        const rules = doc.get("rules", true);
        if (!isSeq(rules)) continue;
        // The comment above the first item belongs to the sequence itself.
        rules.items.forEach((rule, i) => {
          const comment = (rule as { commentBefore?: string | null }).commentBefore ?? (i === 0 ? rules.commentBefore : undefined);
          expect(comment?.trim(), `${file} ${String(doc.getIn(["metadata", "name"]))} rule ${i}`).toBeTruthy();
        });
      }
    }
  });

  it("binds kubetx's roles to its ServiceAccount", () => {
    const bindings = [find("ClusterRoleBinding", "kubetx"), find("ClusterRoleBinding", "kubetx:restore"), find("RoleBinding", "kubetx")];
    for (const binding of bindings) {
      expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: KUBETX_SERVICE_ACCOUNT, namespace: KUBETX_NAMESPACE }] satisfies Subject[]);
    }
    expect(find("RoleBinding", "kubetx").metadata?.namespace).toBe(KUBETX_NAMESPACE);
    expect(find("ServiceAccount", KUBETX_SERVICE_ACCOUNT).metadata?.namespace).toBe(KUBETX_NAMESPACE);
  });

  it("keeps Leases and journal Secrets to kubetx-system; other namespaces' Secrets only to restore them", () => {
    const ownRules = find("ClusterRole", "kubetx").rules as Rule[];
    expect(ownRules.filter((r) => r.resources.includes("leases") || r.resources.includes("secrets"))).toEqual([]);
    const restoreRules = find("ClusterRole", "kubetx:restore").rules as Rule[];
    expect(restoreRules.filter((r) => r.resources.includes("leases"))).toEqual([]);
    expect(restoreRules.find((r) => r.resources.includes("secrets"))?.verbs).toEqual(["get", "list", "create", "patch", "delete"]);
    const role = find("Role", "kubetx");
    expect(role.metadata?.namespace).toBe(KUBETX_NAMESPACE);
    expect(role.rules).toEqual([
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create", "get", "list", "watch", "update", "delete"] },
      { apiGroups: [""], resources: ["secrets"], verbs: ["create", "get", "list", "update", "delete"] },
    ]);
  });

  it("restores only the kinds it names: no wildcard, no cluster-scoped or RBAC resource, no update, watch or subresource", () => {
    const rules = find("ClusterRole", "kubetx:restore").rules as Rule[];
    for (const rule of rules) {
      expect(rule.apiGroups).not.toContain("*");
      expect(rule.resources).not.toContain("*");
      expect(rule.resources.filter((r) => r.includes("/"))).toEqual([]);
      expect(rule.verbs).toEqual(["get", "list", "create", "patch", "delete"]);
    }
    const named = rules.flatMap((r) => r.resources.map((resource) => `${r.apiGroups[0] ?? ""}/${resource}`));
    for (const never of ["/namespaces", "/nodes", "/persistentvolumes", "rbac.authorization.k8s.io/roles", "rbac.authorization.k8s.io/rolebindings", "apiextensions.k8s.io/customresourcedefinitions"]) {
      expect(named).not.toContain(never);
    }
  });

  it("lets users write transactions but never their status", () => {
    const rules = find("ClusterRole", "kubetx:user").rules as Rule[];
    expect(rules.flatMap((r) => r.resources)).toEqual(["transactions"]);
  });

  it("lets users read records by id but list everyone's only through kubetx:viewer", () => {
    expect((find("ClusterRole", "kubetx:user").rules as Rule[]).flatMap((r) => r.verbs)).not.toContain("list");
    expect((find("ClusterRole", "kubetx:user").rules as Rule[]).flatMap((r) => r.verbs)).not.toContain("watch");
    expect(find("ClusterRole", "kubetx:viewer").rules).toEqual([{ apiGroups: ["kubetx.io"], resources: ["transactions"], verbs: ["get", "list", "watch"] }]);
  });

  it("has the kubetx:user and kubetx:viewer roles and the binding the dev cluster installs", async () => {
    const created: KubeObject[] = [];
    await installUserRole(recordingClient(created));
    for (const expected of created) {
      const actual = find(expected.kind ?? "", expected.metadata?.name ?? "");
      const { metadata: _a, ...actualBody } = actual;
      const { metadata: _e, ...expectedBody } = expected;
      expect(actualBody).toEqual(expectedBody);
    }
    expect(created.map((o) => o.kind)).toEqual(["ClusterRole", "ClusterRoleBinding", "ClusterRole"]);
  });
});

describe("the Deployment in manifests/", () => {
  it("serves the certificate from the Secret that install.sh writes", async () => {
    const args = container().args;
    const mount = container().volumeMounts.find((m) => flag(args, "--tls-cert")?.startsWith(`${m.mountPath}/`));
    expect(flag(args, "--tls-cert")).toBe("/certs/tls.crt");
    expect(flag(args, "--tls-key")).toBe("/certs/tls.key");
    expect(podSpec().volumes.find((v) => v.name === mount?.name)?.secret?.secretName).toBe(TLS_SECRET);
    expect(await readFile(path.join(REPO, "webhook-certs", "install.sh"), "utf8")).toContain(`secret=${TLS_SECRET}\n`);
  });

  it("runs `kubetx serve` with in-cluster credentials on the port the Service targets", () => {
    const args = container().args;
    expect(args[0]).toBe("serve");
    expect(args).not.toContain("--kubeconfig");
    const port = container().ports.find((p) => p.name === "https");
    expect(String(port?.containerPort)).toBe(flag(args, "--port"));
    const service = find<KubeObject & { spec: { ports: { port: number; targetPort: string }[] } }>("Service", "kubetx");
    expect(service.spec.ports.find((p) => p.port === 443)?.targetPort).toBe("https");
    expect(podSpec().serviceAccountName).toBe(KUBETX_SERVICE_ACCOUNT);
  });

  it("lets only the apiserver in: its client certificate, checked against the CA install.sh writes", async () => {
    const args = container().args;
    expect(args).not.toContain("--no-client-auth");
    const mount = container().volumeMounts.find((m) => flag(args, "--client-ca")?.startsWith(`${m.mountPath}/`));
    expect(flag(args, "--client-ca")).toBe("/etc/kubetx/apiserver-client-ca/ca.crt");
    expect(podSpec().volumes.find((v) => v.name === mount?.name)?.configMap).toEqual({ name: CLIENT_CA });
    const install = await readFile(path.join(REPO, "webhook-certs", "install.sh"), "utf8");
    expect(install).toContain(`client_ca=${CLIENT_CA}\n`);
  });

  it("serves /metrics on a port of its own, which the Service names", () => {
    const args = container().args;
    const port = container().ports.find((p) => p.name === "metrics");
    expect(String(port?.containerPort)).toBe(flag(args, "--metrics-port"));
    const service = find<KubeObject & { spec: { ports: { name: string; targetPort: string }[] } }>("Service", "kubetx");
    expect(service.spec.ports.find((p) => p.name === "metrics")?.targetPort).toBe("metrics");
  });

  it("probes /healthz and /readyz over HTTPS", () => {
    expect(container().livenessProbe.httpGet).toEqual({ path: "/healthz", port: "https", scheme: "HTTPS" });
    expect(container().readinessProbe.httpGet).toEqual({ path: "/readyz", port: "https", scheme: "HTTPS" });
  });

  it("runs locked down: non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp", () => {
    expect(podSpec().securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(container().securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    expect(Object.keys(container().resources.requests).sort()).toEqual(["cpu", "memory"]);
    expect(Object.keys(container().resources.limits).sort()).toEqual(["cpu", "memory"]);
  });

  it("runs as the image's numeric user, with the image's entrypoint", async () => {
    const dockerfile = await readFile(path.join(REPO, "Dockerfile"), "utf8");
    const user = /^USER (\d+):(\d+)$/m.exec(dockerfile);
    expect(podSpec().securityContext).toMatchObject({ runAsUser: Number(user?.[1]), runAsGroup: Number(user?.[2]) });
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "src\/cli\/kubetx\.ts"\]$/m);
    expect(container().image).toBe(`kubetx:${(JSON.parse(await readFile(path.join(REPO, "package.json"), "utf8")) as { version: string }).version}`);
  });

  it("spreads its two replicas over nodes and keeps one through disruptions", () => {
    const deployment = find<KubeObject & { spec: { replicas: number } }>("Deployment", "kubetx");
    expect(deployment.spec.replicas).toBe(2);
    expect(podSpec().affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]?.podAffinityTerm.topologyKey).toBe("kubernetes.io/hostname");
    expect((find("PodDisruptionBudget", "kubetx").spec as { minAvailable: number }).minAvailable).toBe(1);
  });
});

describe("the control-plane-only component", () => {
  const dir = path.join(MANIFESTS, "components", "control-plane-only");
  type Patched = { spec: { template: { spec: { containers?: { args: string[] }[]; volumes?: PodSpec["volumes"] } } } };
  let patches: Patched[];
  let policy: KubeObject & { spec: { ingress: { ports: { port: string }[]; from: Record<string, unknown>[] }[]; policyTypes: string[] } };

  beforeAll(async () => {
    const component = (await readManifests(dir)).find((o) => o.kind === "Component") as KubeObject & { patches: { patch: string }[] };
    patches = component.patches.map((p) => parseAllDocuments(p.patch)[0]?.toJS() as Patched);
    policy = (await readManifests(dir)).find((o) => o.kind === "NetworkPolicy") as typeof policy;
  });

  it("runs the Deployment's command line with --no-client-auth in place of --client-ca", () => {
    const args = patches.flatMap((p) => p.spec.template.spec.containers ?? [])[0]?.args ?? [];
    const base = container().args;
    const at = base.indexOf("--client-ca");
    expect(args).toEqual([...base.slice(0, at), "--no-client-auth", ...base.slice(at + 2)]);
    expect(patches.flatMap((p) => p.spec.template.spec.volumes ?? [])).toEqual([{ name: "apiserver-client-ca", configMap: { name: CLIENT_CA, optional: true } }]);
  });

  it("admits only an address block to the webhook port, and one namespace to /metrics; nothing else reaches the pods", () => {
    expect(policy.spec.policyTypes).toEqual(["Ingress"]);
    expect(policy.spec.ingress.map((r) => r.ports.map((p) => p.port))).toEqual([["https"], ["metrics"]]);
    expect(policy.spec.ingress[0]?.from).toEqual([{ ipBlock: { cidr: "192.0.2.0/24" } }]);
  });
});
