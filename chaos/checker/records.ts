/**
 * The Transaction records and kubetx's bookkeeping after quiescence plus a
 * lock TTL: every record of the trial in a final phase, phase and member
 * outcomes telling one story, members only from the workload, and no lock,
 * heartbeat or journal left for a resolved transaction. Pure.
 */
import type { LeftoverView, RecordView, TrialHistory } from "../history.ts";
import type { Attribution } from "./attribution.ts";
import { memberIs } from "./attribution.ts";
import type { Finding } from "./findings.ts";
import { note, violation } from "./findings.ts";

export const FINAL_PHASES: ReadonlySet<string> = new Set(["Committed", "RolledBack", "Failed"]);
/** A record of the trial's users made up to this long before the clients started still belongs to the trial (one-second timestamps). */
const CREATED_SLACK_MS = 2_000;
const ROLLED_BACK_OUTCOMES: ReadonlySet<string> = new Set(["Restored", "NotPersisted", "Unchanged", "Conflict"]);

/** The records this trial made: those its clients heard of, and those of its users made since it started. */
export function trialRecords(history: TrialHistory, attribution: Attribution): RecordView[] {
  const users = new Set<string>(history.plan.clients.map((c) => c.user));
  const heard = new Set([...attribution.observed.values()].flat());
  const since = history.observation.startedAt - CREATED_SLACK_MS;
  return history.observation.records.filter((r) => heard.has(r.id) || (users.has(r.user) && Date.parse(r.createdAt ?? "") >= since));
}

export function checkRecords(history: TrialHistory, attribution: Attribution, records: readonly RecordView[]): Finding[] {
  return [
    ...records.flatMap((r) => checkRecord(r, history, attribution)),
    ...missingRecords(attribution),
    ...checkLeftovers(history, attribution, records),
  ];
}

function checkRecord(record: RecordView, history: TrialHistory, attribution: Attribution): Finding[] {
  const where = { transaction: record.id };
  const phase = record.phase ?? "Open";
  const findings: Finding[] = foreignMembers(record, history, attribution);
  if (!FINAL_PHASES.has(phase)) return [...findings, violation("record-not-final", `${record.id} (${record.user}, ${record.mode}) is still ${phase} after quiescence`, where)];
  if (phase === "Failed") findings.push(note("failed-transaction", `${record.id} Failed: ${record.reason ?? ""} ${record.message ?? ""}`.trim(), where));
  if (phase === "Committed") {
    const wrong = record.members.filter((m) => m.outcome !== "Committed");
    if (wrong.length > 0) findings.push(violation("record-untrue", `${record.id} is Committed but lists ${wrong.map((m) => `${m.namespace}/${m.name} as ${m.outcome}`).join(", ")}`, where));
  }
  if (phase === "RolledBack") {
    const wrong = record.members.filter((m) => !ROLLED_BACK_OUTCOMES.has(m.outcome));
    if (wrong.length > 0) findings.push(violation("record-untrue", `${record.id} is RolledBack but lists ${wrong.map((m) => `${m.namespace}/${m.name} as ${m.outcome}`).join(", ")}`, where));
  }
  return findings;
}

/** Members in the trial's namespaces that no apply of the workload wrote: someone else's write was taken in. */
function foreignMembers(record: RecordView, history: TrialHistory, attribution: Attribution): Finding[] {
  const namespaces = new Set(history.plan.namespaces);
  const foreign = record.members.filter((m) => namespaces.has(m.namespace) && ![...attribution.objects.values()].some((o) => memberIs(m, o)));
  return foreign.map((m) => violation("foreign-member", `${record.id} has a member the workload never wrote: ${m.group || "core"}/${m.resource} ${m.namespace}/${m.name} (${m.operation})`, { transaction: record.id }));
}

/** kubetx told a client it joined a transaction (or kubectl tx named one) that has no record. */
function missingRecords(attribution: Attribution): Finding[] {
  const findings: Finding[] = [];
  for (const op of attribution.ops) {
    // An explicit id is the client's own choice: it has a record only if a member was admitted.
    const told = (attribution.observed.get(op.id) ?? []).filter((id) => id !== op.txId);
    for (const id of told.filter((t) => !attribution.records.has(t))) {
      findings.push(violation("record-missing", `${op.id} was told of transaction ${id}, which has no record`, { op: op.id, transaction: id }));
    }
  }
  return findings;
}

function checkLeftovers(history: TrialHistory, attribution: Attribution, records: readonly RecordView[]): Finding[] {
  const ours = new Set(records.map((r) => r.id));
  const since = history.observation.startedAt - CREATED_SLACK_MS;
  return history.observation.leftovers.flatMap((l): Finding[] => {
    const record = attribution.records.get(l.transaction);
    if (!record) {
      const created = Date.parse(l.createdAt ?? "");
      return created >= since ? [violation("leftover", `${describe(l)} of transaction ${l.transaction}, which has no record`, { transaction: l.transaction })] : [];
    }
    if (!ours.has(record.id)) return [];
    const phase = record.phase ?? "Open";
    // A Failed transaction keeps its locks on purpose; an unresolved one is reported as such.
    if (phase !== "Committed" && phase !== "RolledBack") return [];
    return [violation("leftover", `${describe(l)} of ${l.transaction}, which is ${phase}`, { transaction: l.transaction })];
  });
}

function describe(l: LeftoverView): string {
  return `${l.kind} ${l.name}`;
}
