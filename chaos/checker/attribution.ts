/**
 * Which transaction each planned write belongs to, from what the clients
 * printed (kubetx's `joined transaction` warnings, kubectl tx's
 * `as transaction` line, the id an explicit apply named) and the members
 * the records list. Pure.
 */
import type { AuditRequest, MemberView, ObjectPlan, OpOutcome, OpPlan, RecordView, TrialHistory, WritePlan } from "../history.ts";
import type { Finding } from "./findings.ts";
import { note } from "./findings.ts";

/** Record creation times have one-second precision; a client's clock and the apiserver's are the same machine's. */
const RECORD_TIME_SLACK_MS = 2_000;
/** The audit log times requests in microseconds on the clients' own clock: a request lies within its command. */
const AUDIT_TIME_SLACK_MS = 250;

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
  const claimed = new Map<string, Set<string>>();
  for (const op of ops) for (const id of observed.get(op.id) ?? []) claimed.set(id, (claimed.get(id) ?? new Set()).add(op.user));
  const findings: Finding[] = [];
  const tokens = new Map(history.observation.histories.map((h) => [h.key, new Set(h.versions.flatMap((v) => (v.token ? [v.token] : [])))]));
  const writes = ops.flatMap((op) => op.writes.map((write): WriteRef => {
    const outcome = outcomes.get(op.id);
    const object = objects.get(write.object);
    const requests = history.observation.requests ?? [];
    const persisted = tokens.get(write.object)?.has(op.token) === true;
    const tx = object ? findTransaction({ op, write, object, outcome, records, requests, observed: observed.get(op.id) ?? [], claimed, persisted, findings }) : undefined;
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
  readonly requests: readonly AuditRequest[];
  readonly observed: readonly string[];
  /**
   * The users whose clients were told of each id: a fallback never takes
   * another user's transaction (a later apply of the same user may have
   * joined the transaction the silent op opened: transparent mode groups
   * one requester's writes that come within the quiet window).
   */
  readonly claimed: ReadonlyMap<string, ReadonlySet<string>>;
  /** Whether the object ever held what this op wrote (its token). */
  readonly persisted: boolean;
  readonly findings: Finding[];
}

/**
 * The record that lists the write: the one kubetx named in the audit log
 * for the op's own request (a successful one first); else the last of
 * those the client heard of; else (the client never got kubetx's warning,
 * say because the apiserver died before answering), for a transparent
 * apply whose write reached its object, a transparent record of the same
 * user, made while the op ran, that lists it and that no other user's
 * client heard of.
 */
function findTransaction(s: Search): string | undefined {
  // Any operation: a record lists an object once, under the transaction's first write of it (a delete, then a create, is one DELETE member).
  const lists = (id: string): boolean => s.records.get(id)?.members.some((m) => memberIs(m, s.object)) === true;
  const logged = loggedTransactions(s).find(lists);
  if (logged) return logged;
  const heard = s.observed.filter(lists);
  if (heard.length > 0) return heard.at(-1);
  // An explicit or plugin apply knows its transaction (the id it named, the one kubectl tx printed): a write that record does not list belongs to none.
  if (!s.outcome || s.op.mode !== "transparent") return undefined;
  // An apply whose write never reached its object (refused by a restarting apiserver, say) is in no record, whatever lists the object.
  if (s.write.action === "apply" && !s.persisted) return undefined;
  const start = s.outcome.startedAt - RECORD_TIME_SLACK_MS;
  const end = s.outcome.endedAt + RECORD_TIME_SLACK_MS;
  const candidates = [...s.records.values()].filter((r) => {
    const created = Date.parse(r.createdAt ?? "");
    const othersHeard = [...(s.claimed.get(r.id) ?? [])].some((user) => user !== s.op.user);
    return r.user === s.op.user && r.mode === "transparent" && !othersHeard && created >= start && created <= end && lists(r.id);
  });
  if (candidates.length > 1) {
    s.findings.push(note("ambiguous-attribution", `${s.op.id}'s ${s.write.action} of ${s.object.key} matches records ${candidates.map((r) => r.id).join(", ")}; taking the first`, { op: s.op.id, object: s.object.key }));
  }
  return candidates[0]?.id;
}

/** Transactions kubetx named for this op's requests on this object, the last successful request's first. */
function loggedTransactions(s: Search): string[] {
  if (!s.outcome) return [];
  const { resource } = resourceOf(s.object);
  const verbs = s.write.action === "delete" ? ["delete"] : ["create", "update", "patch"];
  const mine = s.requests.filter((r) => r.user === s.op.user && r.resource === resource && r.namespace === s.object.namespace && r.name === s.object.name
    && verbs.includes(r.verb) && r.at >= (s.outcome?.startedAt ?? 0) - AUDIT_TIME_SLACK_MS && r.at <= (s.outcome?.endedAt ?? 0) + AUDIT_TIME_SLACK_MS);
  const ordered = [...mine.filter((r) => r.code < 300).reverse(), ...mine.filter((r) => r.code >= 300).reverse()];
  return ordered.flatMap((r) => (r.transaction ? [r.transaction] : []));
}
