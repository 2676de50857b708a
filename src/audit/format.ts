/**
 * A transaction's timeline as a review shows it: table rows (the caller
 * aligns them) and the JSON shape. Pure.
 */
import type { Timeline, TimelineEntry } from "./group.ts";
import { isRestore } from "./group.ts";

export const REJECTED_BEFORE_KUBETX = "rejected before kubetx";
export const TIMELINE_COLUMNS = ["TIME", "USER", "VERB", "OBJECT", "CODE", "DECISION", "MESSAGE"] as const;
/** Keeps a table row on one screen line or two; JSON has the whole message. */
const TABLE_MESSAGE_MAX_CHARS = 100;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** `14:06:26.959`: the date is in the heading. */
function clockTime(ms: number): string {
  return iso(ms).slice(11, 23);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** `transaction t-4f2a9c1e by alice, 2026-11-24T14:06:26.936Z to 14:06:27.001Z: 3 requests, 1 rejected before kubetx` */
export function timelineHeading(timeline: Timeline): string {
  const rejected = timeline.entries.filter((e) => e.rejectedBeforeKubetx).length;
  const restores = timeline.entries.filter(isRestore).length;
  const requests = plural(timeline.entries.length - rejected - restores, "request");
  const extra = `${rejected > 0 ? `, ${rejected} ${REJECTED_BEFORE_KUBETX}` : ""}${restores > 0 ? `, ${plural(restores, "restore")} by kubetx` : ""}`;
  return `transaction ${timeline.transaction} by ${timeline.users.join(", ")}, ${iso(timeline.firstMs)} to ${clockTime(timeline.lastMs)}Z: ${requests}${extra}`;
}

function shortMessage(message: string | undefined): string {
  if (!message) return "";
  const line = message.replace(/\s*\n\s*/g, " ");
  return line.length > TABLE_MESSAGE_MAX_CHARS ? `${line.slice(0, TABLE_MESSAGE_MAX_CHARS - 3)}...` : line;
}

function decisionOf(entry: TimelineEntry): string {
  if (entry.rejectedBeforeKubetx) return REJECTED_BEFORE_KUBETX;
  if (isRestore(entry)) return RESTORE;
  return entry.decision ?? "-";
}

/** The DECISION of a write kubetx made to restore an object for the transaction. */
const RESTORE = "restore";

/** One row per request, in TIMELINE_COLUMNS order. */
export function timelineRows(timeline: Timeline): string[][] {
  return timeline.entries.map((e) => [clockTime(e.timeMs), e.user, e.verb, e.object, String(e.code), decisionOf(e), shortMessage(e.message)]);
}

export interface TimelineEntryJson {
  readonly time: string;
  readonly user: string;
  readonly verb: string;
  readonly object: string;
  readonly code: number;
  readonly decision: string | null;
  readonly lock: string | null;
  readonly rejectedBeforeKubetx: boolean;
  readonly message: string | null;
  readonly auditID: string;
}

export interface TimelineJson {
  readonly transaction: string;
  readonly users: readonly string[];
  readonly first: string;
  readonly last: string;
  readonly requests: readonly TimelineEntryJson[];
}

function entryJson(e: TimelineEntry): TimelineEntryJson {
  return {
    time: e.time, user: e.user, verb: e.verb, object: e.object, code: e.code,
    decision: isRestore(e) ? RESTORE : (e.decision ?? null), lock: e.lock ?? null, rejectedBeforeKubetx: e.rejectedBeforeKubetx,
    message: e.message ?? null, auditID: e.auditID,
  };
}

export function timelineJson(timeline: Timeline): TimelineJson {
  return {
    transaction: timeline.transaction,
    users: timeline.users,
    first: iso(timeline.firstMs),
    last: iso(timeline.lastMs),
    requests: timeline.entries.map(entryJson),
  };
}
