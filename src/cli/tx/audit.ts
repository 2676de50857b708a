/** `kubectl tx audit`: transactions as the apiserver's audit log recorded them. */
import { timelineHeading, timelineJson, timelineRows, TIMELINE_COLUMNS } from "../../audit/format.ts";
import type { Timeline } from "../../audit/group.ts";
import { AuditCollector } from "../../audit/group.ts";
import type { ReadStats } from "../../audit/read.ts";
import { AuditReadError, readAuditLogs } from "../../audit/read.ts";
import { EXIT, TxError } from "./errors.ts";
import type { AuditOptions } from "./review-args.ts";
import { renderJson, renderTable } from "./table.ts";

export interface AuditDeps {
  /** The result (stdout). */
  readonly say: (line: string) => void;
  /** Notes and warnings (stderr). */
  readonly warn: (line: string) => void;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** Every timeline as a heading and its aligned rows, a blank line between. Pure. */
export function auditTable(timelines: readonly Timeline[]): string[] {
  return timelines.flatMap((timeline, i) => [...(i > 0 ? [""] : []), timelineHeading(timeline), ...renderTable(TIMELINE_COLUMNS, timelineRows(timeline))]);
}

function nothingFound(options: AuditOptions, stats: ReadStats): string {
  const what = options.transaction ? `transaction ${options.transaction}` : "kubetx transactions";
  const who = options.user ? ` of ${options.user}` : "";
  return `No ${what}${who} in ${plural(stats.events, "complete request")} of ${plural(stats.files, "audit log")}.`;
}

async function collect(options: AuditOptions): Promise<{ timelines: Timeline[]; stats: ReadStats }> {
  const collector = new AuditCollector({
    ...(options.transaction !== undefined ? { transaction: options.transaction } : {}),
    ...(options.user !== undefined ? { user: options.user } : {}),
  });
  try {
    const stats = await readAuditLogs(options.logs, (entry) => void collector.add(entry));
    return { timelines: collector.timelines(), stats };
  } catch (error) {
    if (!(error instanceof AuditReadError)) throw error;
    throw new TxError(`kubectl tx: cannot read audit log ${error.message}; check the path (the apiserver's --audit-log-path) and that you may read it`, EXIT.failed, { cause: error });
  }
}

export async function runAudit(options: AuditOptions, deps: AuditDeps): Promise<number> {
  const { timelines, stats } = await collect(options);
  if (stats.malformed > 0) {
    deps.warn(`kubectl tx: warning: skipped ${plural(stats.malformed, "line")} that ${stats.malformed === 1 ? "is" : "are"} not a JSON audit event`);
  }
  if (options.output === "json") deps.say(renderJson(timelines.map(timelineJson)));
  else if (timelines.length === 0) deps.warn(nothingFound(options, stats));
  else auditTable(timelines).forEach((line) => deps.say(line));
  return EXIT.ok;
}
