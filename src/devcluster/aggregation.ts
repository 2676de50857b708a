/**
 * The local control plane has no controller manager, so nothing fills the
 * rules of aggregated ClusterRoles such as `edit`. This does once what the
 * clusterrole-aggregation controller does continuously: each role with an
 * aggregationRule gets the union of the rules of the roles it selects.
 */
import type { KubeClient, KubeObject } from "../kube/index.ts";

interface ClusterRole extends KubeObject {
  rules?: unknown[] | null;
  aggregationRule?: { clusterRoleSelectors?: { matchLabels?: Record<string, string> }[] };
}

const CLUSTER_ROLES = "/apis/rbac.authorization.k8s.io/v1/clusterroles";

/** Which roles an aggregated role collects: pure, so it is tested without a server. */
export function aggregatedRules(target: ClusterRole, all: readonly ClusterRole[]): unknown[] {
  const seen = new Set<string>();
  const rules: unknown[] = [];
  for (const role of all.filter((r) => selects(target, r))) {
    for (const rule of role.rules ?? []) {
      const key = JSON.stringify(rule);
      if (!seen.has(key)) rules.push(rule);
      seen.add(key);
    }
  }
  return rules;
}

function selects(target: ClusterRole, role: ClusterRole): boolean {
  if (role.metadata?.name === target.metadata?.name) return false;
  const labels = role.metadata?.labels ?? {};
  const selectors = target.aggregationRule?.clusterRoleSelectors ?? [];
  return selectors.some((s) => Object.entries(s.matchLabels ?? {}).every(([k, v]) => labels[k] === v));
}

/**
 * Aggregated roles can select other aggregated roles (`edit` selects
 * `view`), so aggregation repeats until nothing changes. Pure.
 */
export function aggregateAll(roles: readonly ClusterRole[]): ClusterRole[] {
  let current = roles.map((r) => ({ ...r }));
  for (let round = 0; round < current.length; round += 1) {
    const next = current.map((r) => (r.aggregationRule ? { ...r, rules: aggregatedRules(r, current) } : r));
    const changed = next.some((r, i) => JSON.stringify(r.rules) !== JSON.stringify(current[i]?.rules));
    current = next;
    if (!changed) break;
  }
  return current;
}

export async function aggregateClusterRoles(admin: KubeClient): Promise<void> {
  const list = await admin.get<{ items: ClusterRole[] }>(CLUSTER_ROLES);
  const before = new Map(list.items.map((r) => [r.metadata?.name, JSON.stringify(r.rules ?? [])]));
  for (const role of aggregateAll(list.items)) {
    if (!role.aggregationRule || before.get(role.metadata?.name) === JSON.stringify(role.rules)) continue;
    await admin.replace(`${CLUSTER_ROLES}/${encodeURIComponent(role.metadata?.name ?? "")}`, role);
  }
}
