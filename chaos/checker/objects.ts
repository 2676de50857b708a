/**
 * One object's history, replayed against the transactions' outcomes. Pure.
 *
 * Every value an object takes is a token: the seed's, or that of the one
 * apply that wrote it. So each change of value is one of:
 *  - a write: a token seen for the first time (its apply's write), or the
 *    object vanishing inside a delete's time window (that delete);
 *  - a restore: a token seen before comes back, or the object vanishes
 *    outside any delete: some rollback put an older state back.
 * Replaying the changes in the apiserver's order, a write by an
 * uncommitted transaction must be undone by a restore of exactly the state
 * before it, before anyone else writes; a restore that undoes no such write
 * reverted a committed one; and the object must end as its last committed
 * write left it.
 */
import type { ObjectHistory, ObjectPlan, OpPlan, RecordView } from "../history.ts";
import { SEED_TOKEN } from "../history.ts";
import type { WriteRef } from "./attribution.ts";
import type { Finding } from "./findings.ts";
import { note, violation } from "./findings.ts";

/** How long after kubectl delete returns its watch event may arrive. */
export const WATCH_LAG_MS = 3_000;
const ABSENT = "<absent>";

export interface ObjectContext {
  readonly object: ObjectPlan;
  readonly history: ObjectHistory | undefined;
  /** The planned writes of this object, with the transaction each belongs to. */
  readonly writes: readonly WriteRef[];
  readonly records: ReadonlyMap<string, RecordView>;
  readonly tokenOwner: ReadonlyMap<string, OpPlan>;
}

export interface ObjectVerdict {
  readonly findings: Finding[];
  /** Committed transactions in the order their writes reached this object. */
  readonly committedOrder: string[];
  /** Transactions whose write of this object was seen. */
  readonly appeared: Set<string>;
  /** False when the history may miss versions (the watch had to list again) or is missing. */
  readonly complete: boolean;
}

interface State {
  readonly value: string;
  readonly at: number;
}

type Change =
  | { readonly type: "write"; readonly ref: WriteRef }
  | { readonly type: "restore" }
  | { readonly type: "unexplained" };

interface Pending {
  readonly tx: string;
  /** The value before this transaction's first write of the object. */
  readonly before: string;
}

interface Replay {
  readonly ctx: ObjectContext;
  readonly verdict: ObjectVerdict;
  committed: string;
  readonly pending: Pending[];
}

export function replayObject(ctx: ObjectContext): ObjectVerdict {
  const verdict: ObjectVerdict = { findings: [], committedOrder: [], appeared: new Set(), complete: (ctx.history?.gaps ?? 1) === 0 };
  const states = statesOf(ctx.history);
  if (states.length === 0) {
    verdict.findings.push(note("history-gap", `no history of ${ctx.object.key} was recorded`, { object: ctx.object.key }));
    return verdict;
  }
  if (!verdict.complete) verdict.findings.push(note("history-gap", `the watch of ${ctx.object.key} had to list again ${ctx.history?.gaps ?? 0} time(s): versions may be missing`, { object: ctx.object.key }));
  const replay: Replay = { ctx, verdict, committed: (states[0] as State).value, pending: [] };
  for (let i = 1; i < states.length; i += 1) {
    const change = classify(ctx, states, i);
    apply(replay, change, { from: (states[i - 1] as State).value, to: (states[i] as State).value, at: (states[i] as State).at });
  }
  finish(replay, (states.at(-1) as State).value);
  return verdict;
}

/** Values in order, without repeats (a controller's status update leaves the token as it was). */
function statesOf(history: ObjectHistory | undefined): State[] {
  const states: State[] = [];
  for (const v of history?.versions ?? []) {
    const value = v.exists ? (v.token ?? "<no token>") : ABSENT;
    if (states.at(-1)?.value !== value) states.push({ value, at: v.at });
  }
  return states;
}

function classify(ctx: ObjectContext, states: readonly State[], i: number): Change {
  const state = states[i] as State;
  if (state.value === ABSENT) {
    const ref = deleteAt(ctx, state.at);
    return ref ? { type: "write", ref } : { type: "restore" };
  }
  if (states.slice(0, i).some((s) => s.value === state.value)) return { type: "restore" };
  const ref = ctx.writes.find((w) => w.write.action === "apply" && w.op.token === state.value);
  return ref ? { type: "write", ref } : { type: "unexplained" };
}

/**
 * The delete that removed the object at `at`: among the planned deletes a
 * record lists, the latest one started by then and ended at most a watch
 * lag before (one client deletes a given object, one apply at a time).
 */
function deleteAt(ctx: ObjectContext, at: number): WriteRef | undefined {
  const candidates = ctx.writes.filter((w) => {
    if (w.write.action !== "delete" || !w.tx || !w.outcome) return false;
    const listed = ctx.records.get(w.tx)?.members.some((m) => m.name === ctx.object.name && m.namespace === ctx.object.namespace);
    return listed === true && w.outcome.startedAt <= at && at <= w.outcome.endedAt + WATCH_LAG_MS;
  });
  return candidates.sort((a, b) => (b.outcome?.startedAt ?? 0) - (a.outcome?.startedAt ?? 0))[0];
}

/** One change of the object's value; `at`: when the watch saw the new one. */
interface Step {
  readonly from: string;
  readonly to: string;
  readonly at: number;
}

function apply(replay: Replay, change: Change, step: Step): void {
  const key = replay.ctx.object.key;
  if (change.type === "unexplained") {
    replay.verdict.findings.push(violation("unexplained-value", `${key} took the value ${shown(step.to)}, which no apply of this trial wrote`, { object: key }));
    replay.committed = step.to;
    return;
  }
  if (change.type === "restore") return restore(replay, step);
  write(replay, change.ref, step);
}

function write(replay: Replay, ref: WriteRef, step: Step): void {
  const key = replay.ctx.object.key;
  const { findings, committedOrder, appeared } = replay.verdict;
  if (!ref.tx) {
    findings.push(violation("untracked-write", `${ref.op.id}'s ${ref.write.action} of ${key} (${shown(step.to)}) persisted, but no transaction record lists it`, { op: ref.op.id, object: key }));
    replay.committed = step.to;
    return;
  }
  appeared.add(ref.tx);
  dropReleased(replay, ref.tx, step);
  const holder = replay.pending.at(-1);
  if (holder && holder.tx !== ref.tx) {
    findings.push(violation("isolation", `${ref.tx} (${ref.op.id}) wrote ${key} while ${holder.tx}'s write of it was not yet resolved`, { transaction: ref.tx, object: key }));
  }
  if (phaseOf(replay, ref.tx) === "Committed") {
    replay.committed = step.to;
    if (committedOrder.at(-1) !== ref.tx) committedOrder.push(ref.tx);
  } else if (!replay.pending.some((p) => p.tx === ref.tx)) {
    replay.pending.push({ tx: ref.tx, before: step.from });
  }
}

/**
 * Pending writes of transactions that rolled back, were resolved before
 * this write and left the object where they found it: whatever made it so
 * (their restore, or a delete of their own that undid their create, which
 * the history cannot tell apart), they no longer hold it.
 */
function dropReleased(replay: Replay, writer: string, step: Step): void {
  for (let top = replay.pending.at(-1); top && top.tx !== writer; top = replay.pending.at(-1)) {
    const record = replay.ctx.records.get(top.tx);
    const resolvedAt = Date.parse(record?.resolvedAt ?? "");
    if (record?.phase !== "RolledBack" || Number.isNaN(resolvedAt) || resolvedAt > step.at || top.before !== step.from) return;
    replay.pending.pop();
  }
}

function restore(replay: Replay, step: Step): void {
  const at = replay.pending.findLastIndex((p) => p.before === step.to);
  if (at >= 0) {
    replay.pending.length = at;
    return;
  }
  // Undoing a delete that the transaction followed with a create: the copy goes, then the original comes back.
  if (step.to === ABSENT && replay.pending.length > 0) return;
  const key = replay.ctx.object.key;
  const lost = replay.ctx.tokenOwner.get(step.from);
  replay.verdict.findings.push(violation("lost-update",
    `${key} went back from ${shown(step.from)}${lost ? ` (${lost.id})` : ""} to the older ${shown(step.to)} with no uncommitted write to undo: a committed write was reverted`, { object: key }));
  replay.committed = step.to;
}

function finish(replay: Replay, final: string): void {
  const key = replay.ctx.object.key;
  const top = replay.pending.at(-1);
  // A rolled-back transaction that created and then deleted the object ends where it began: absent is its write and its before.
  if (top && final !== top.before && writtenBy(replay, top.tx, final)) {
    const phase = phaseOf(replay, top.tx);
    const where = { transaction: top.tx, object: key };
    if (phase === "Failed") replay.verdict.findings.push(note("failed-transaction", `${top.tx} is Failed and left ${key} at ${shown(final)} (its locks are kept for an admin)`, where));
    else if (phase === "RolledBack") replay.verdict.findings.push(violation("atomicity", `${top.tx} rolled back, but ${key} still holds its write (${shown(final)}; before it: ${shown(top.before)})`, where));
    // Unresolved or missing records are reported on their own.
    return;
  }
  if (final !== replay.committed) {
    replay.verdict.findings.push(violation("lost-update", `${key} ends as ${shown(final)}, but its last committed write left ${shown(replay.committed)}`, { object: key }));
  }
}

/** Whether the value is that transaction's write: one of its applies' tokens, or absence after its delete. */
function writtenBy(replay: Replay, tx: string, value: string): boolean {
  return replay.ctx.writes.some((w) => w.tx === tx && (w.write.action === "delete" ? value === ABSENT : w.op.token === value));
}

function phaseOf(replay: Replay, tx: string): string | undefined {
  return replay.ctx.records.get(tx)?.phase;
}

function shown(value: string): string {
  if (value === ABSENT) return "absent";
  return value === SEED_TOKEN ? "the seed value" : value;
}
