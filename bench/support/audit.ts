/**
 * Counts the requests kubetx itself made to the apiserver, from the
 * apiserver's audit log (JSON lines, one ResponseComplete event per
 * request), within given wall-clock windows: how many round trips one
 * member costs, by verb and resource.
 */
import { readFile } from "node:fs/promises";
import { KUBETX_USERNAME } from "../../src/devcluster/identities.ts";
import { median } from "./stats.ts";

export interface Window {
  /** Date.now() at the start and end. */
  readonly start: number;
  readonly end: number;
}

export interface Calls {
  readonly total: number;
  /** `verb resource`, e.g. `list leases`, most frequent first. */
  readonly byKind: Record<string, number>;
  /** Median time the apiserver took per request of each kind (received to response complete), in ms. */
  readonly medianMsByKind: Record<string, number>;
}

interface AuditEvent {
  stage?: string;
  verb?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string };
  requestReceivedTimestamp?: string;
  stageTimestamp?: string;
}

export async function kubetxCalls(auditLog: string, windows: readonly Window[]): Promise<Calls> {
  const text = await readFile(auditLog, "utf8");
  const durations = new Map<string, number[]>();
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.includes(KUBETX_USERNAME)) continue;
    const event = JSON.parse(line) as AuditEvent;
    if (!countable(event, windows)) continue;
    const kind = kindOf(event);
    const took = Date.parse(event.stageTimestamp ?? "") - Date.parse(event.requestReceivedTimestamp ?? "") + microseconds(event);
    durations.set(kind, [...(durations.get(kind) ?? []), took]);
    total += 1;
  }
  const sorted = [...durations].sort((a, b) => b[1].length - a[1].length);
  return {
    total,
    byKind: Object.fromEntries(sorted.map(([k, d]) => [k, d.length])),
    medianMsByKind: Object.fromEntries(sorted.map(([k, d]) => [k, Math.round(median(d) * 100) / 100])),
  };
}

/** A completed, non-watch request by kubetx inside one of the windows. */
function countable(event: AuditEvent, windows: readonly Window[]): boolean {
  if (event.stage !== "ResponseComplete" || event.user?.username !== KUBETX_USERNAME || event.verb === "watch") return false;
  const at = Date.parse(event.requestReceivedTimestamp ?? "");
  return windows.some((w) => at >= w.start && at <= w.end);
}

/** Date.parse keeps milliseconds only; audit timestamps carry microseconds. */
function microseconds(event: AuditEvent): number {
  const frac = (t: string | undefined): number => Number(/\.\d{3}(\d{3})Z$/.exec(t ?? "")?.[1] ?? 0) / 1000;
  return frac(event.stageTimestamp) - frac(event.requestReceivedTimestamp);
}

function kindOf(event: AuditEvent): string {
  const ref = event.objectRef ?? {};
  return `${event.verb ?? "?"} ${ref.resource ?? "?"}${ref.subresource ? `/${ref.subresource}` : ""}`;
}

/** Per member: calls divided by `members`, rounded to one decimal. */
export interface PerMember {
  readonly total: number;
  readonly byKind: Record<string, number>;
  readonly medianMsByKind: Record<string, number>;
}

export function perMember(calls: Calls, members: number): PerMember {
  const per = (n: number): number => Math.round((n / Math.max(1, members)) * 10) / 10;
  return { total: per(calls.total), byKind: Object.fromEntries(Object.entries(calls.byKind).map(([k, v]) => [k, per(v)])), medianMsByKind: calls.medianMsByKind };
}
