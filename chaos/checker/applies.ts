/**
 * Each client's apply as one unit: all of its writes committed or none;
 * none committed when it had a member the apiserver refused; kubectl tx
 * apply's report true to the record. Transparent mode is a heuristic with
 * documented limits (README, "What transparent mode cannot see" and
 * "Limits"); where one of them explains a partial commit it is a note,
 * not a violation. Pure.
 */
import type { FaultRecord, OpOutcome, OpPlan, TrialHistory } from "../history.ts";
import type { Attribution, WriteRef } from "./attribution.ts";
import type { Finding } from "./findings.ts";
import { note, violation } from "./findings.ts";

/** A pause this close to the quiet window could fall either side of it as kubetx measured it. */
const GAP_TOLERANCE_MS = 300;
/** The audit log and the clients read the same machine's clock; this covers kubectl's start and end. */
const CLOCK_SLACK_MS = 1_000;
/** Beyond the quiet window and sink delay: the audit batch wait (250 ms) and one retry. */
const DELIVERY_SLACK_MS = 1_000;
/** Record creation times have one-second precision. */
const RECORD_SLACK_MS = 2_000;

/** kubectl could not talk to the apiserver at all (not a webhook failure, which the apiserver reports itself). */
const UNREACHABLE = /connection refused|unable to connect to the server|\bEOF\b|i\/o timeout|TLS handshake timeout|connection reset|http2: client connection lost|the server is currently unable to handle the request|context deadline exceeded|Client\.Timeout/i;
const WEBHOOK_FAILURE = /failed calling webhook/i;
const PLUGIN_OUTCOME = /^transaction (t-[a-z0-9-]+) (committed|rolled back|failed)/m;
const PLUGIN_PHASES: Readonly<Record<string, string>> = { committed: "Committed", "rolled back": "RolledBack", failed: "Failed" };

export function checkApplies(history: TrialHistory, attribution: Attribution): Finding[] {
  return attribution.ops.flatMap((op) => {
    const outcome = attribution.outcomes.get(op.id);
    if (!outcome) return [];
    const writes = attribution.writes.filter((w) => w.op.id === op.id);
    return [...atomicity(op, writes, { history, attribution, outcome }), ...pluginReport(op, outcome, attribution)];
  });
}

interface OpContext {
  readonly history: TrialHistory;
  readonly attribution: Attribution;
  readonly outcome: OpOutcome;
}

function atomicity(op: OpPlan, writes: readonly WriteRef[], ctx: OpContext): Finding[] {
  const phase = (w: WriteRef): string | undefined => (w.tx ? ctx.attribution.records.get(w.tx)?.phase : undefined);
  const committed = writes.filter((w) => phase(w) === "Committed");
  if (committed.length === 0) return [];
  const findings: Finding[] = [];
  const where = { op: op.id, transaction: committed[0]?.tx ?? "" };
  const missing = writes.filter((w) => phase(w) !== "Committed" && effective(w, ctx.outcome));
  if (missing.length > 0) {
    const what = `${op.id} (${op.mode}, ${op.user}) committed ${list(committed)} but not ${list(missing)}`;
    const excuse = op.mode === "transparent" ? partialExcuse(op, writes, ctx) : undefined;
    findings.push(excuse ? note("transparent-limit", `${what}: ${excuse}`, where) : violation("partial-apply", what, where));
  }
  if (op.invalid) {
    const what = `${op.id} (${op.mode}, ${op.user}) had an invalid member (${op.invalid}) yet committed ${list(committed)}`;
    const excuse = op.mode === "transparent" ? invalidExcuse(op, writes, ctx) : undefined;
    findings.push(excuse ? note("transparent-limit", `${what}: ${excuse}`, where) : violation("invalid-committed", what, where));
  }
  return findings;
}

/**
 * Whether the write was meant to change something: every apply; a delete
 * when a record lists it, kubectl said it deleted the object, or the
 * delete command failed for another reason than the object being gone
 * (deleting what someone else already deleted is a no-op with
 * --ignore-not-found). kubectl's error lines do not always name the
 * object, so a failed delete command counts for each object it named.
 */
function effective(w: WriteRef, outcome: OpOutcome): boolean {
  if (w.write.action === "apply" || w.tx) return true;
  const [, namespace, name] = w.write.object.split("/") as [string, string, string];
  return outcome.commands.some((c) => {
    if (!c.argv.includes("delete") || !c.argv.includes(name) || !c.argv.includes(namespace)) return false;
    const errors = c.stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("Warning:"));
    return c.stdout.includes(`"${name}" deleted`) || errors.some((l) => !/not ?found/i.test(l));
  });
}

function partialExcuse(op: OpPlan, writes: readonly WriteRef[], ctx: OpContext): string | undefined {
  return split(op, writes, ctx)
    ?? (ctx.history.plan.sink ? undefined : "this trial ran without the audit sink, and transparent mode cannot see a write refused before admission")
    ?? unreachable(ctx.outcome)
    ?? unheard(op, ctx);
}

function invalidExcuse(op: OpPlan, writes: readonly WriteRef[], ctx: OpContext): string | undefined {
  if (op.invalid === "unknown-field" && !ctx.history.plan.sink) return "this trial ran without the audit sink, and a misspelt field is refused before any webhook";
  // What kubetx knew of is this member's own failure, which names it; the user's other failures prove nothing about it.
  return split(op, writes, ctx) ?? unreachable(ctx.outcome) ?? unheard(op, ctx, new RegExp(`/${invalidName(op)}(?![\\w-])`));
}

/** The invalid member's name (chaos/manifests.ts invalidMember). */
function invalidName(op: OpPlan): string {
  return `bad-${op.id}`;
}

/**
 * Where kubetx never learnt of the failure and a fault can explain why: the
 * apiserver's audit batch or /observe's memory lost with a restarted or
 * killed process, or an event held up by a paused replica past the time
 * kubetx waits for it (the quiet window plus --audit-sink-delay). Where
 * kubetx did fail a transaction of the user meanwhile, it knew, and a
 * partial commit has no such excuse.
 */
function unheard(op: OpPlan, ctx: OpContext, naming?: RegExp): string | undefined {
  if (knewOfFailure(op, ctx, naming)) return undefined;
  const timing = ctx.history.plan.timing;
  const afterMs = timing.quietWindowMs + (ctx.history.plan.sink ? timing.auditSinkDelayMs : 0) + DELIVERY_SLACK_MS;
  const hit = ctx.history.faults.find((f) => f.kind !== "slow-webhook" && f.kind !== "deny-webhook" && f.kind !== "throttle-webhook" && during(f, ctx.outcome, afterMs));
  if (!hit) return undefined;
  const what = hit.kind === "apiserver-restart" ? "the apiserver restarted" : `replica r${hit.replica ?? "?"} got ${hit.kind}`;
  return `kubetx never learnt of the failure: ${what} before it could (audit batches and /observe's intents are kept in memory, and a paused replica holds up what is sent to it)`;
}

/**
 * Whether kubetx failed a transaction of the op's user while the op ran or
 * soon after (so it learnt of a failure); with `naming`, only a failure
 * whose message holds it counts (seed 4251 trial 102: the same user's next
 * apply failed on a lock, which said nothing of this apply's invalid member).
 */
function knewOfFailure(op: OpPlan, ctx: OpContext, naming?: RegExp): boolean {
  const timing = ctx.history.plan.timing;
  // Truncated to the second: a record made just after the op began can read a second earlier.
  const from = ctx.outcome.startedAt - 1_000;
  const to = ctx.outcome.endedAt + timing.quietWindowMs + timing.auditSinkDelayMs + RECORD_SLACK_MS;
  return ctx.history.observation.records.some((r) => {
    const created = Date.parse(r.createdAt ?? "");
    return r.user === op.user && r.reason === "MemberFailed" && created >= from && created <= to && (naming === undefined || naming.test(r.message ?? ""));
  });
}

/**
 * Whether kubetx's heuristic may rightly have split the apply: a pause
 * between two of its writes (as the apiserver's audit log timed them)
 * as long as the quiet window, give or take GAP_TOLERANCE_MS. Without the
 * log, whether the client heard of more than one transaction.
 */
function split(op: OpPlan, writes: readonly WriteRef[], ctx: OpContext): string | undefined {
  const requests = ctx.history.observation.requests;
  if (requests) {
    const times = requests.filter((r) => r.user === op.user && r.at >= ctx.outcome.startedAt - CLOCK_SLACK_MS && r.at <= ctx.outcome.endedAt + CLOCK_SLACK_MS).map((r) => r.at);
    const gap = Math.max(0, ...times.slice(1).map((t, i) => t - (times[i] as number)));
    const timing = ctx.history.plan.timing;
    const window = timing.quietWindowMs + (ctx.history.plan.sink ? timing.auditSinkDelayMs : 0);
    return gap >= window - GAP_TOLERANCE_MS ? `its writes paused ${gap} ms, about kubetx's ${window} ms window or longer, so kubetx rightly took them as two applies (README Limits)` : undefined;
  }
  const ids = new Set([...writes.flatMap((w) => (w.tx ? [w.tx] : [])), ...(ctx.attribution.observed.get(op.id) ?? [])]);
  return ids.size > 1 ? `the apply was split over ${[...ids].join(", ")} (a pause longer than the quiet window, README Limits)` : undefined;
}

function unreachable(outcome: OpOutcome): string | undefined {
  const lines = outcome.commands.flatMap((c) => c.stderr.split("\n"));
  return lines.some((l) => UNREACHABLE.test(l) && !WEBHOOK_FAILURE.test(l)) ? "kubectl could not reach the apiserver for part of the apply (no one sees a request that never arrived)" : undefined;
}

function during(fault: FaultRecord, outcome: OpOutcome, afterMs: number): boolean {
  return fault.skipped === undefined && fault.startedAt <= outcome.endedAt + afterMs && fault.endedAt >= outcome.startedAt;
}

/** kubectl tx apply's verdict must be the record's. */
function pluginReport(op: OpPlan, outcome: OpOutcome, attribution: Attribution): Finding[] {
  if (op.mode !== "plugin") return [];
  const stdout = outcome.commands.map((c) => c.stdout).join("\n");
  const said = PLUGIN_OUTCOME.exec(stdout);
  if (!said) {
    const last = outcome.commands.at(-1);
    const lastLine = last?.stderr.trim().split("\n").at(-1) ?? "";
    return [note("plugin-no-outcome", `${op.id}: kubectl tx apply reported no outcome (exit ${last?.exitCode ?? "?"}): ${lastLine}`, { op: op.id })];
  }
  const [, id, verdict] = said as unknown as [string, string, string];
  const phase = attribution.records.get(id)?.phase;
  if (phase === PLUGIN_PHASES[verdict]) return [];
  return [violation("plugin-outcome", `${op.id}: kubectl tx apply said ${id} ${verdict}, but its record is ${phase ?? "missing"}`, { op: op.id, transaction: id })];
}

function list(writes: readonly WriteRef[]): string {
  return writes.map((w) => `${w.write.action === "delete" ? "delete " : ""}${w.write.object}${w.tx ? ` (${w.tx})` : ""}`).join(", ");
}
