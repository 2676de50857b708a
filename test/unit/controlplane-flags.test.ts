import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { auditPolicy } from "../../src/devcluster/controlplane.ts";
import type { ControlPlaneFiles, ControlPlanePorts } from "../../src/devcluster/flags.ts";
import { apiserverArgs, controllerManagerArgs, etcdArgs, schedulerArgs } from "../../src/devcluster/flags.ts";
import { IDENTITIES, tokenLine } from "../../src/devcluster/identities.ts";

const FILES: ControlPlaneFiles = {
  dir: "/dev-dir",
  ca: { certFile: "/dev-dir/pki/ca.crt", keyFile: "/dev-dir/pki/ca.key" },
  serving: {
    apiserver: { certFile: "/dev-dir/pki/apiserver.crt", keyFile: "/dev-dir/pki/apiserver.key" },
    controllerManager: { certFile: "/dev-dir/pki/kube-controller-manager.crt", keyFile: "/dev-dir/pki/kube-controller-manager.key" },
    scheduler: { certFile: "/dev-dir/pki/kube-scheduler.crt", keyFile: "/dev-dir/pki/kube-scheduler.key" },
  },
  saKeys: { publicKeyFile: "/dev-dir/pki/sa.pub", privateKeyFile: "/dev-dir/pki/sa.key" },
  tokenFile: "/dev-dir/tokens.csv",
  auditPolicy: "/dev-dir/audit-policy.yaml",
  auditLog: "/dev-dir/audit.log",
};
const PORTS: ControlPlanePorts = { etcdClient: 2379, etcdPeer: 2380, apiserver: 6443, controllerManager: 10257, scheduler: 10259 };
const KCM_KUBECONFIG = "/dev-dir/kube-controller-manager.kubeconfig";
const SCHEDULER_KUBECONFIG = "/dev-dir/kube-scheduler.kubeconfig";

/** `--name=value` flags as a map; fails the test on a flag given twice. */
function flags(args: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const arg of args) {
    const [name = "", ...value] = arg.split("=");
    expect(map.has(name), `${name} given twice`).toBe(false);
    map.set(name, value.join("="));
  }
  return map;
}

describe("the controller manager's command line", () => {
  const kcm = flags(controllerManagerArgs(FILES, PORTS, KCM_KUBECONFIG));

  it("runs every default controller, each as its own service account, without leader election", () => {
    expect(kcm.get("--controllers")).toBe("*");
    expect(kcm.get("--use-service-account-credentials")).toBe("true");
    expect(kcm.get("--leader-elect")).toBe("false");
  });

  it("signs service-account tokens with the key the apiserver signs with, and publishes the dev CA", () => {
    expect(kcm.get("--service-account-private-key-file")).toBe(flags(apiserverArgs(FILES, PORTS)).get("--service-account-signing-key-file"));
    expect(kcm.get("--root-ca-file")).toBe(FILES.ca.certFile);
  });

  it("signs approved certificate requests with the cluster CA, so the CSR signer is not skipped", () => {
    expect(kcm.get("--cluster-signing-cert-file")).toBe(FILES.ca.certFile);
    expect(kcm.get("--cluster-signing-key-file")).toBe(FILES.ca.keyFile);
  });

  it("talks to the apiserver, and checks its callers, as its own user", () => {
    for (const flag of ["--kubeconfig", "--authentication-kubeconfig", "--authorization-kubeconfig"]) expect(kcm.get(flag)).toBe(KCM_KUBECONFIG);
  });

  it("serves on its own loopback port with a certificate from the dev CA", () => {
    expect(kcm.get("--bind-address")).toBe("127.0.0.1");
    expect(kcm.get("--secure-port")).toBe(String(PORTS.controllerManager));
    expect(kcm.get("--tls-cert-file")).toBe(FILES.serving.controllerManager.certFile);
    expect(kcm.get("--tls-private-key-file")).toBe(FILES.serving.controllerManager.keyFile);
  });

  it("keeps every file it writes inside the dev directory", () => {
    expect(kcm.get("--flex-volume-plugin-dir")?.startsWith(`${FILES.dir}/`)).toBe(true);
  });
});

describe("the scheduler's command line", () => {
  const scheduler = flags(schedulerArgs(FILES, PORTS, SCHEDULER_KUBECONFIG));

  it("talks to the apiserver as its own user, without leader election", () => {
    for (const flag of ["--kubeconfig", "--authentication-kubeconfig", "--authorization-kubeconfig"]) expect(scheduler.get(flag)).toBe(SCHEDULER_KUBECONFIG);
    expect(scheduler.get("--leader-elect")).toBe("false");
  });

  it("serves on its own loopback port with a certificate from the dev CA", () => {
    expect(scheduler.get("--bind-address")).toBe("127.0.0.1");
    expect(scheduler.get("--secure-port")).toBe(String(PORTS.scheduler));
    expect(scheduler.get("--tls-cert-file")).toBe(FILES.serving.scheduler.certFile);
  });
});

describe("the control plane's addresses", () => {
  it("puts every process on 127.0.0.1 and on the port chosen for it", () => {
    const apiserver = flags(apiserverArgs(FILES, PORTS));
    expect(apiserver.get("--bind-address")).toBe("127.0.0.1");
    expect(apiserver.get("--secure-port")).toBe(String(PORTS.apiserver));
    expect(apiserver.get("--etcd-servers")).toBe(`http://127.0.0.1:${PORTS.etcdClient}`);
    expect(flags(etcdArgs(FILES.dir, PORTS)).get("--listen-client-urls")).toBe(`http://127.0.0.1:${PORTS.etcdClient}`);
  });
});

describe("etcd's command line", () => {
  it("skips fsync unless asked for it, as a throwaway store may", () => {
    expect(etcdArgs(FILES.dir, PORTS)).toContain("--unsafe-no-fsync");
    expect(etcdArgs(FILES.dir, PORTS, { fsync: false })).toContain("--unsafe-no-fsync");
  });

  it("syncs to disk when fsync is asked for, keeping its data dir and ports", () => {
    const synced = etcdArgs(FILES.dir, PORTS, { fsync: true });
    expect(synced).not.toContain("--unsafe-no-fsync");
    expect(synced).toEqual(etcdArgs(FILES.dir, PORTS).filter((arg) => arg !== "--unsafe-no-fsync"));
  });
});

describe("the static token file", () => {
  it("gives the controller manager and the scheduler the users the apiserver's bootstrap RBAC binds", () => {
    expect(IDENTITIES.map((i) => i.user)).toEqual(expect.arrayContaining(["system:kube-controller-manager", "system:kube-scheduler"]));
  });

  it("writes no group column for a user without groups (an empty one would be a group named \"\")", () => {
    const scheduler = IDENTITIES.find((i) => i.id === "kube-scheduler");
    expect(scheduler && tokenLine("t0ken", scheduler)).toBe("t0ken,system:kube-scheduler,uid-kube-scheduler");
  });

  it("quotes a user's groups as one column", () => {
    const alice = { id: "alice", user: "alice", uid: "uid-alice", groups: ["developers", "qa"] } as const;
    expect(tokenLine("t0ken", alice)).toBe('t0ken,alice,uid-alice,"developers,qa"');
  });
});

describe("the audit policy", () => {
  type Rule = { level: string; users?: string[]; verbs?: string[] };
  const rules = (text: string): Rule[] => (parse(text) as { rules: Rule[] }).rules;
  const kubetxReadsLeftOut = (r: Rule): boolean => r.level === "None" && (r.users ?? []).includes("system:serviceaccount:kubetx-system:kubetx");

  it("leaves kubetx's reads out by default, and keeps them for a bench that counts every request kubetx makes", () => {
    expect(rules(auditPolicy(false)).filter(kubetxReadsLeftOut)).toHaveLength(1);
    expect(rules(auditPolicy(true)).filter(kubetxReadsLeftOut)).toHaveLength(0);
    expect(rules(auditPolicy(true))).toHaveLength(rules(auditPolicy(false)).length - 1);
  });
});
