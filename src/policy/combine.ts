/**
 * How several TransactionPolicies combine (pure). For one write:
 *  - the policies that select it are those whose namespaceSelector matches
 *    its namespace and whose resources include and do not exclude it;
 *  - none selects it, one of them exempts the requester, or one of them
 *    says `off`: kubetx leaves the write alone (an admin's opt-out wins);
 *  - otherwise the write is transparent if any selecting policy is, else
 *    explicit.
 * Limits apply to every transaction and take the safest value over all
 * policies that are not `off`: the longest quiet window, lock TTL,
 * journal and record retention, the most records, the shortest open time,
 * the fewest members, the lowest per-user limits, and irreversible deletes
 * only if every policy allows them.
 */
import type { Limits, PolicyMode, PolicySpec } from "./policy.ts";
import { POLICY_DEFAULTS, deepFreeze, limitsOf, resourceMatches, selectorMatches, serviceAccountUser } from "./policy.ts";

export interface NamedPolicy {
  readonly name: string;
  readonly spec: PolicySpec;
}

export interface Requester {
  readonly username: string;
  readonly groups?: readonly string[];
}

export interface PolicyView {
  readonly names: readonly string[];
  /** The policies themselves, by name: what the webhook configurations are derived from (src/webhooks/). */
  readonly policies: readonly NamedPolicy[];
  readonly limits: Limits;
  modeFor(namespaceLabels: Readonly<Record<string, string>> | undefined, group: string, resource: string, requester: Requester): PolicyMode;
}

export function combine(policies: readonly NamedPolicy[]): PolicyView {
  const sorted = [...policies].sort((a, b) => a.name.localeCompare(b.name));
  return deepFreeze({
    names: sorted.map((p) => p.name),
    policies: sorted,
    limits: combinedLimits(sorted.filter((p) => p.spec.mode !== "off").map((p) => p.spec)),
    modeFor: (labels, group, resource, requester) => modeFor(sorted, { labels, group, resource, requester }),
  });
}

interface Write {
  readonly labels: Readonly<Record<string, string>> | undefined;
  readonly group: string;
  readonly resource: string;
  readonly requester: Requester;
}

function modeFor(policies: readonly NamedPolicy[], write: Write): PolicyMode {
  const selecting = policies.filter((p) => selects(p.spec, write));
  if (selecting.length === 0) return "off";
  if (selecting.some((p) => p.spec.mode === "off" || exempts(p.spec, write.requester))) return "off";
  return selecting.some((p) => p.spec.mode === "transparent") ? "transparent" : "explicit";
}

function selects(spec: PolicySpec, write: Write): boolean {
  if (!selectorMatches(spec.namespaceSelector, write.labels)) return false;
  const included = spec.resources.include.some((p) => resourceMatches(p, write.group, write.resource));
  return included && !spec.resources.exclude.some((p) => resourceMatches(p, write.group, write.resource));
}

function exempts(spec: PolicySpec, requester: Requester): boolean {
  if (spec.exemptUsers.includes(requester.username)) return true;
  if ((requester.groups ?? []).some((g) => spec.exemptGroups.includes(g))) return true;
  return spec.exemptServiceAccounts.some((sa) => requester.username === serviceAccountUser(sa));
}

function combinedLimits(specs: readonly PolicySpec[]): Limits {
  if (specs.length === 0) return limitsOf(POLICY_DEFAULTS);
  const all = specs.map(limitsOf);
  return {
    quietWindowMs: Math.max(...all.map((l) => l.quietWindowMs)),
    lockTtlSeconds: Math.max(...all.map((l) => l.lockTtlSeconds)),
    maxOpenSeconds: Math.min(...all.map((l) => l.maxOpenSeconds)),
    maxMembers: Math.min(...all.map((l) => l.maxMembers)),
    allowIrreversibleDeletes: all.every((l) => l.allowIrreversibleDeletes),
    journalRetentionSeconds: Math.max(...all.map((l) => l.journalRetentionSeconds)),
    recordRetentionSeconds: Math.max(...all.map((l) => l.recordRetentionSeconds)),
    maxRecords: Math.max(...all.map((l) => l.maxRecords)),
    maxOpenTransactionsPerUser: Math.min(...all.map((l) => l.maxOpenTransactionsPerUser)),
    maxLocksPerUser: Math.min(...all.map((l) => l.maxLocksPerUser)),
  };
}
