/**
 * Which transaction each planned write belongs to, from what the clients
 * printed (kubetx's `joined transaction` warnings, kubectl tx's
 * `as transaction` line, the id an explicit apply named) and the members
 * the records list. Pure.
 */
import type { MemberView, ObjectPlan, OpOutcome, OpPlan, RecordView, TrialHistory, WritePlan } from "../history.ts";
import type { Finding } from "./findings.ts";
import { note } from "./findings.ts";

/** Record creation times have one-second precision; a client's clock and the apiserver's are the same machine's. */
const RECORD_TIME_SLACK_MS = 2_000;

/** kubetx's warning on every member write, and its denials that name the writer's own transaction. */
const JOINED = /kubetx: joined transaction (t-[a-z0-9-]+)|kubetx: transaction (t-[a-z0-9-]+) is rolling back|Transaction (t-[a-z0-9-]+) will roll back/g;
const PLUGIN_ID = /as transaction (t-[a-z0-9-]+)/;

export interface WriteRef {
  readonly op: OpPlan;
  readonly write: WritePlan;
  readonly outcome?: OpOutcome;
  /** The transaction whose record lists this write, when one does. */
  readonly tx?: string;
}

export interface Attribution {
  readonly records: ReadonlyMap<string, RecordView>;
  readonly objects: ReadonlyMap<string, ObjectPlan>;
  readonly ops: readonly OpPlan[];
  readonly outcomes: ReadonlyMap<string, OpOutcome>;
  /** Transactions each op's client was told about, in the order it heard of them. */
  readonly observed: ReadonlyMap<string, readonly string[]>;
  readonly writes: readonly WriteRef[];
  readonly tokenOwner: ReadonlyMap<string, OpPlan>;
  readonly findings: readonly Finding[];
}

export function writeKey(op: string, object: string, action: string): string {
  return `${op}|${object}|${action}`;
}

/** Transaction ids a client printed or named, first seen first. */
export function observedTransactions(op: OpPlan, outcome: OpOutcome | undefined): string[] {
  const ids: string[] = op.txId ? [op.txId] : [];
  for (const command of outcome?.commands ?? []) {
    const plugin = PLUGIN_ID.exec(command.stderr)?.[1];
    if (plugin) ids.push(plugin);
    for (const match of command.stderr.matchAll(JOINED)) ids.push((match[1] ?? match[2] ?? match[3]) as string);
  }
  return [...new Set(ids)];
}

export function resourceOf(object: Pick<ObjectPlan, "kind">): { group: string; resource: string } {
  return object.kind === "ConfigMap" ? { group: "", resource: "configmaps" } : { group: "apps", resource: "deployments" };
}

export function memberIs(member: MemberView, object: ObjectPlan, action?: WritePlan["action"]): boolean {
  const { group, resource } = resourceOf(object);
  if (member.group !== group || member.resource !== resource || member.namespace !== object.namespace || member.name !== object.name) return false;
  if (action === undefined) return true;
  return action === "delete" ? member.operation === "DELETE" : member.operation === "CREATE" || member.operation === "UPDATE";
}

export function attribute(history: TrialHistory): Attribution {
  const records = new Map(history.observation.records.map((r) => [r.id, r]));
  const objects = new Map(history.plan.objects.map((o) => [o.key, o]));
  const ops = history.plan.clients.flatMap((c) => c.ops);
  const outcomes = new Map(history.outcomes.map((o) => [o.op, o]));
  const observed = new Map(ops.map((op) => [op.id, observedTransactions(op, outcomes.get(op.id))]));
  const claimed = new Set([...observed.values()].flat());
  const findings: Finding[] = [];
  const writes = ops.flatMap((op) => op.writes.map((write): WriteRef => {
    const outcome = outcomes.get(op.id);
    const object = objects.get(write.object);
    const tx = object ? findTransaction({ op, write, object, outcome, records, observed: observed.get(op.id) ?? [], claimed, findings }) : undefined;
    return { op, write, ...(outcome ? { outcome } : {}), ...(tx ? { tx } : {}) };
  }));
  return { records, objects, ops, outcomes, observed, writes, tokenOwner: new Map(ops.map((op) => [op.token, op])), findings };
}

interface Search {
  readonly op: OpPlan;
  readonly write: WritePlan;
  readonly object: ObjectPlan;
  readonly outcome: OpOutcome | undefined;
  readonly records: ReadonlyMap<string, RecordView>;
  readonly observed: readonly string[];
  /** Every id some client was told about: a fallback never takes another op's transaction. */
  readonly claimed: ReadonlySet<string>;
  readonly findings: Finding[];
}

/**
 * The record among those the client heard of that lists the write; else
 * (the client never got kubetx's warning, say because the apiserver died
 * before answering) a record of the same user, made while the op ran, that
 * lists it and no client heard of.
 */
function findTransaction(s: Search): string | undefined {
  const heard = s.observed.filter((id) => s.records.get(id)?.members.some((m) => memberIs(m, s.object, s.write.action)));
  if (heard.length > 0) return heard.at(-1);
  if (!s.outcome) return undefined;
  const start = s.outcome.startedAt - RECORD_TIME_SLACK_MS;
  const end = s.outcome.endedAt + RECORD_TIME_SLACK_MS;
  const candidates = [...s.records.values()].filter((r) => {
    const created = Date.parse(r.createdAt ?? "");
    return r.user === s.op.user && !s.claimed.has(r.id) && created >= start && created <= end && r.members.some((m) => memberIs(m, s.object, s.write.action));
  });
  if (candidates.length > 1) {
    s.findings.push(note("ambiguous-attribution", `${s.op.id}'s ${s.write.action} of ${s.object.key} matches records ${candidates.map((r) => r.id).join(", ")}; taking the first`, { op: s.op.id, object: s.object.key }));
  }
  return candidates[0]?.id;
}
