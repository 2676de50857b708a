/**
 * The checker: judges one trial from its plan, what the clients observed,
 * every version of every object the watch delivered, and the records and
 * kubetx's bookkeeping read after quiescence. It shares no code with src/:
 * everything it knows about kubetx is the API (records, Lease and Secret
 * labels) and what DESIGN.md promises. Pure; see chaos/README.md for what
 * it checks and what it cannot.
 */
import type { TrialHistory } from "../history.ts";
import { checkApplies } from "./applies.ts";
import type { Attribution } from "./attribution.ts";
import { attribute } from "./attribution.ts";
import type { Finding } from "./findings.ts";
import { violation } from "./findings.ts";
import type { ObjectVerdict } from "./objects.ts";
import { replayObject } from "./objects.ts";
import { findCycle, precedenceEdges } from "./order.ts";
import { checkRecords, trialRecords } from "./records.ts";

export interface TransactionCounts {
  readonly committed: number;
  readonly rolledBack: number;
  readonly failed: number;
  readonly unresolved: number;
}

export interface CheckReport {
  readonly violations: readonly Finding[];
  readonly notes: readonly Finding[];
  readonly transactions: TransactionCounts;
}

export function checkTrial(history: TrialHistory): CheckReport {
  const attribution = attribute(history);
  const records = trialRecords(history, attribution);
  const verdicts = objectVerdicts(history, attribution);
  const findings: Finding[] = [
    ...attribution.findings,
    ...[...verdicts.values()].flatMap((v) => v.findings),
    ...committedMembers(attribution, verdicts, records.map((r) => r.id)),
    ...serialOrder(verdicts),
    ...checkRecords(history, attribution, records),
    ...checkApplies(history, attribution),
  ];
  return {
    violations: findings.filter((f) => f.severity === "violation"),
    notes: findings.filter((f) => f.severity === "note"),
    transactions: count(records.map((r) => r.phase)),
  };
}

function objectVerdicts(history: TrialHistory, attribution: Attribution): Map<string, ObjectVerdict> {
  const histories = new Map(history.observation.histories.map((h) => [h.key, h]));
  return new Map(history.plan.objects.map((object) => [object.key, replayObject({
    object,
    history: histories.get(object.key),
    writes: attribution.writes.filter((w) => w.write.object === object.key),
    records: attribution.records,
    tokenOwner: attribution.tokenOwner,
  })]));
}

/** Every member of a committed record must have been seen written (where the history is complete). */
function committedMembers(attribution: Attribution, verdicts: ReadonlyMap<string, ObjectVerdict>, ids: readonly string[]): Finding[] {
  const findings: Finding[] = [];
  for (const id of ids) {
    const record = attribution.records.get(id);
    if (record?.phase !== "Committed") continue;
    for (const member of record.members) {
      const object = [...attribution.objects.values()].find((o) => o.namespace === member.namespace && o.name === member.name && (o.kind === "ConfigMap") === (member.resource === "configmaps"));
      const verdict = object ? verdicts.get(object.key) : undefined;
      if (!object || !verdict?.complete || verdict.appeared.has(id)) continue;
      findings.push(violation("atomicity", `${id} is Committed and lists ${member.operation} ${object.key}, but no write of ${id} ever reached that object`, { transaction: id, object: object.key }));
    }
  }
  return findings;
}

function serialOrder(verdicts: ReadonlyMap<string, ObjectVerdict>): Finding[] {
  const orders = new Map([...verdicts].map(([key, v]) => [key, v.committedOrder]));
  const cycle = findCycle(precedenceEdges(orders));
  if (!cycle) return [];
  const text = cycle.map((e) => `${e.from} before ${e.to} on ${e.object}`).join("; ");
  return [violation("serial-order", `the committed transactions have no serial order: ${text}`, { transaction: cycle[0]?.from ?? "" })];
}

function count(phases: readonly (string | undefined)[]): TransactionCounts {
  const n = (phase: string): number => phases.filter((p) => p === phase).length;
  return { committed: n("Committed"), rolledBack: n("RolledBack"), failed: n("Failed"), unresolved: phases.length - n("Committed") - n("RolledBack") - n("Failed") };
}
