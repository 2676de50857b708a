/**
 * The users of the local control plane: static tokens, one kubeconfig each.
 * Names here are the ones DESIGN.md section 2 promises to other tools.
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { stringify } from "yaml";
import { KUBETX_NAMESPACE, KUBETX_USERNAME } from "../kube/names.ts";

export { KUBETX_NAMESPACE, KUBETX_SERVICE_ACCOUNT, KUBETX_USERNAME } from "../kube/names.ts";

export interface Identity {
  /** Kubeconfig file stem and context name. */
  readonly id: "admin" | "alice" | "bob" | "kubetx" | "kube-controller-manager" | "kube-scheduler";
  readonly user: string;
  readonly uid: string;
  readonly groups: readonly string[];
}

export const IDENTITIES: readonly Identity[] = [
  { id: "admin", user: "admin", uid: "uid-admin", groups: ["system:masters"] },
  { id: "alice", user: "alice", uid: "uid-alice", groups: ["developers"] },
  { id: "bob", user: "bob", uid: "uid-bob", groups: ["developers"] },
  {
    id: "kubetx",
    user: KUBETX_USERNAME,
    uid: "uid-kubetx",
    groups: ["system:serviceaccounts", `system:serviceaccounts:${KUBETX_NAMESPACE}`],
  },
  // The users kubeadm gives the controller manager and the scheduler (there
  // as certificate common names): the apiserver's bootstrap RBAC binds
  // exactly these names, and the default policy exempts them.
  { id: "kube-controller-manager", user: "system:kube-controller-manager", uid: "uid-kube-controller-manager", groups: [] },
  { id: "kube-scheduler", user: "system:kube-scheduler", uid: "uid-kube-scheduler", groups: [] },
];

export type Tokens = Readonly<Record<Identity["id"], string>>;

/** Reads the token file, or makes a new one with fresh random tokens. */
export async function ensureTokenFile(file: string): Promise<Tokens> {
  const existing = await readTokens(file);
  if (existing) return existing;
  const tokens = Object.fromEntries(IDENTITIES.map((i) => [i.id, randomBytes(24).toString("hex")])) as Record<Identity["id"], string>;
  const lines = IDENTITIES.map((i) => tokenLine(tokens[i.id], i));
  await writeFile(file, `${lines.join("\n")}\n`, { mode: 0o600 });
  return tokens;
}

/**
 * One line of the apiserver's static token file. No groups means no fourth
 * column: the apiserver reads an empty one as a group named "".
 */
export function tokenLine(token: string, identity: Identity): string {
  const fields = [token, identity.user, identity.uid];
  return (identity.groups.length > 0 ? [...fields, `"${identity.groups.join(",")}"`] : fields).join(",");
}

async function readTokens(file: string): Promise<Tokens | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  const byUser = new Map(text.trim().split("\n").map((line) => {
    const [token, user] = line.split(",");
    return [user, token] as const;
  }));
  const entries = IDENTITIES.map((i) => [i.id, byUser.get(i.user)] as const);
  if (entries.some(([, token]) => !token)) return undefined;
  return Object.fromEntries(entries) as Record<Identity["id"], string>;
}

export interface KubeconfigInput {
  readonly server: string;
  readonly caData: string;
  readonly user: string;
  readonly token: string;
  readonly namespace?: string;
}

/** A kubeconfig with one cluster, one user (a bearer token) and one context. */
export function renderKubeconfig(input: KubeconfigInput): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "kubetx-dev", cluster: { server: input.server, "certificate-authority-data": input.caData } }],
    users: [{ name: input.user, user: { token: input.token } }],
    contexts: [{ name: input.user, context: { cluster: "kubetx-dev", user: input.user, namespace: input.namespace ?? "default" } }],
    "current-context": input.user,
  });
}
