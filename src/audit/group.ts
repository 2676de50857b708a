/**
 * Groups audit entries into transactions: pure, fed one entry at a time so
 * that the reader keeps only what a review shows, never the whole log.
 */
import { DEFAULT_AUDIT_SINK_DELAY_MS } from "../config/config.ts";
import { POLICY_DEFAULTS } from "../policy/policy.ts";
import type { AuditEntry } from "./events.ts";
import { isRejectedBeforeKubetx } from "./rules.ts";

/**
 * How far around a transaction's first and last request a rejected write
 * of the same user still counts as part of it.
 */
export interface RejectionWindow {
  readonly beforeMs: number;
  readonly afterMs: number;
}

/**
 * The window of the audit sink under the default policy: a failure from
 * up to a quiet window before the transaction began still fails it
 * (transactions/failures.ts), and a transparent transaction stays open a
 * quiet window plus the sink's delay after its last request, so a failure
 * received until then still fails it.
 */
export const DEFAULT_REJECTION_WINDOW: RejectionWindow = Object.freeze({
  beforeMs: POLICY_DEFAULTS.quietWindowSeconds * 1000,
  afterMs: POLICY_DEFAULTS.quietWindowSeconds * 1000 + DEFAULT_AUDIT_SINK_DELAY_MS,
});
export interface TimelineEntry extends AuditEntry {
  /** A write of the transaction's user, near it in time, that the apiserver refused before any kubetx webhook saw it. */
  readonly rejectedBeforeKubetx: boolean;
}

/** A write by which kubetx restored an object for the transaction (entry.restoreFor). */
export function isRestore(entry: TimelineEntry): boolean {
  return entry.restoreFor !== undefined;
}

export interface Timeline {
  readonly transaction: string;
  /** The users of the transaction's requests, first one first. */
  readonly users: readonly string[];
  readonly firstMs: number;
  readonly lastMs: number;
  /** In time order. */
  readonly entries: readonly TimelineEntry[];
}

export interface AuditFilter {
  readonly transaction?: string;
  readonly user?: string;
}

function byTime(a: AuditEntry, b: AuditEntry): number {
  return a.timeMs - b.timeMs || (a.time < b.time ? -1 : a.time > b.time ? 1 : 0);
}

/** How far `ms` lies outside the timeline's span; 0 inside. */
function distance(timeline: Timeline, ms: number): number {
  return Math.max(timeline.firstMs - ms, ms - timeline.lastMs, 0);
}

function withinWindow(timeline: Timeline, ms: number, window: RejectionWindow): boolean {
  return ms < timeline.firstMs ? timeline.firstMs - ms <= window.beforeMs : ms - timeline.lastMs <= window.afterMs;
}

/** The timeline of the candidate's user closest to it in time, within the window. */
function closest(timelines: readonly Timeline[], candidate: AuditEntry, window: RejectionWindow): Timeline | undefined {
  let best: { timeline: Timeline; d: number } | undefined;
  for (const timeline of timelines) {
    const d = distance(timeline, candidate.timeMs);
    if (!withinWindow(timeline, candidate.timeMs, window) || (best && d > best.d)) continue;
    // On a tie, the later transaction: a rejected write ends an apply more often than it starts one.
    if (!best || d < best.d || timeline.firstMs > best.timeline.firstMs) best = { timeline, d };
  }
  return best?.timeline;
}

/** First and last time and users of a transaction: all a transaction not shown needs, to claim its own rejected writes. */
interface Span {
  firstMs: number;
  lastMs: number;
  readonly users: Set<string>;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function widen(spans: Map<string, Span>, transaction: string, entry: AuditEntry): void {
  const span = spans.get(transaction);
  if (!span) {
    spans.set(transaction, { firstMs: entry.timeMs, lastMs: entry.timeMs, users: new Set([entry.user]) });
    return;
  }
  span.firstMs = Math.min(span.firstMs, entry.timeMs);
  span.lastMs = Math.max(span.lastMs, entry.timeMs);
  span.users.add(entry.user);
}

function timelineOf(transaction: string, span: Span, entries: readonly AuditEntry[]): Timeline {
  const sorted = [...entries].sort(byTime);
  return {
    transaction,
    users: sorted.length > 0 ? [...new Set(sorted.map((e) => e.user))] : [...span.users],
    firstMs: span.firstMs,
    lastMs: span.lastMs,
    entries: sorted.map((e) => ({ ...e, rejectedBeforeKubetx: false })),
  };
}

/** The timeline with the rejected writes attached to it and kubetx's restores for it, in time order. */
function withAttached(timeline: Timeline, rejected: readonly AuditEntry[], restores: readonly AuditEntry[]): Timeline {
  if (rejected.length === 0 && restores.length === 0) return timeline;
  const added = [...rejected.map((e) => ({ ...e, rejectedBeforeKubetx: true })), ...restores.map((e) => ({ ...e, rejectedBeforeKubetx: false }))];
  return { ...timeline, entries: [...timeline.entries, ...added].sort(byTime) };
}

/**
 * Each rejected write goes to the transaction of its user that its kubectl
 * ran for (kubectl tx apply names it in the User-Agent), else to the
 * closest one in time, shown or not.
 */
function attach(timelines: readonly Timeline[], rejected: readonly AuditEntry[], window: RejectionWindow): Map<Timeline, AuditEntry[]> {
  const byUser = new Map<string, Timeline[]>();
  for (const timeline of timelines) {
    for (const user of timeline.users) push(byUser, user, timeline);
  }
  const attached = new Map<Timeline, AuditEntry[]>();
  for (const candidate of rejected) {
    const own = byUser.get(candidate.user) ?? [];
    const target = own.find((t) => t.transaction === candidate.kubectlFor) ?? closest(own, candidate, window);
    if (target) push(attached, target, candidate);
  }
  return attached;
}

/**
 * Collects the requests of kubetx transactions and the rejected writes that
 * may belong to one; `timelines()` joins them. Memory grows with the number
 * of such requests, not with the size of the log: of a transaction that
 * `--transaction` leaves out, only its span is kept.
 */
export class AuditCollector {
  private readonly filter: AuditFilter;
  private readonly window: RejectionWindow;
  private readonly spans = new Map<string, Span>();
  private readonly members = new Map<string, AuditEntry[]>();
  private readonly rejected: AuditEntry[] = [];
  /**
   * kubetx's restore writes, by transaction: shown with it, but apart from
   * its span and users, which say when and by whom it was applied (and so
   * which rejected writes may be part of it).
   */
  private readonly restores = new Map<string, AuditEntry[]>();
  /** auditIDs kept so far: the same event in two files (a copied or overlapping rotation) counts once. */
  private readonly kept = new Set<string>();

  constructor(filter: AuditFilter = {}, window: RejectionWindow = DEFAULT_REJECTION_WINDOW) {
    this.filter = filter;
    this.window = window;
  }

  /** Keeps what a review may show of the entry; returns whether it kept anything. */
  add(entry: AuditEntry): boolean {
    if (this.kept.has(entry.auditID)) return false;
    if (entry.restoreFor !== undefined) return this.addRestore(entry, entry.restoreFor);
    if (entry.transaction === undefined) return this.addRejected(entry);
    // Seeing the same request twice widens a span no further, so only kept entries need remembering.
    widen(this.spans, entry.transaction, entry);
    if (this.filter.transaction !== undefined && entry.transaction !== this.filter.transaction) return false;
    this.kept.add(entry.auditID);
    push(this.members, entry.transaction, entry);
    return true;
  }

  private addRestore(entry: AuditEntry, transaction: string): boolean {
    if (this.filter.transaction !== undefined && transaction !== this.filter.transaction) return false;
    this.kept.add(entry.auditID);
    push(this.restores, transaction, entry);
    return true;
  }

  private addRejected(entry: AuditEntry): boolean {
    // The sink's rule (rules.ts); only a rejection of the user asked about can join one of their transactions.
    if (!isRejectedBeforeKubetx(entry) || (this.filter.user !== undefined && entry.user !== this.filter.user)) return false;
    this.kept.add(entry.auditID);
    this.rejected.push(entry);
    return true;
  }

  /** The transactions the filter asks for, oldest first, each with its rejected writes. */
  timelines(): Timeline[] {
    const all = [...this.spans].map(([id, span]) => timelineOf(id, span, this.members.get(id) ?? []));
    const attached = attach(all, this.rejected, this.window);
    return all
      .filter((t) => this.members.has(t.transaction) && (this.filter.user === undefined || t.users.includes(this.filter.user)))
      .map((t) => withAttached(t, attached.get(t) ?? [], this.restores.get(t.transaction) ?? []))
      .sort((a, b) => a.firstMs - b.firstMs);
  }
}
