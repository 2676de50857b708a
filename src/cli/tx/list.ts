/** `kubectl tx list`: the Transaction records, filtered, newest first. */
import type { KubeClient } from "../../kube/client.ts";
import { OWNER_FIELD } from "../../admission/record-access.ts";
import type { Transaction } from "../../transactions/model.ts";
import { transactionPath } from "../../transactions/model.ts";
import type { ReviewDeps } from "./cluster-read.ts";
import { listAll, transactionReadFailure, withClient } from "./cluster-read.ts";
import { EXIT } from "./errors.ts";
import { whoAmI } from "./record.ts";
import type { ListOptions } from "./review-args.ts";
import { humanAge, renderJson, renderTable } from "./table.ts";

export interface TransactionRow {
  readonly id: string;
  readonly user: string;
  readonly mode: string;
  readonly phase: string | null;
  readonly members: number;
  /** creationTimestamp (RFC 3339). */
  readonly created: string;
  readonly reason: string | null;
}

export const LIST_COLUMNS = ["ID", "USER", "MODE", "PHASE", "MEMBERS", "AGE", "REASON"] as const;

function createdMs(transaction: Transaction): number {
  const ms = Date.parse(transaction.metadata?.creationTimestamp ?? "");
  return Number.isNaN(ms) ? 0 : ms;
}

/** By its members once resolved; before that, by the namespaces kubetx notes as members arrive. */
function hasMemberIn(transaction: Transaction, namespace: string): boolean {
  const status = transaction.status;
  return (status?.members ?? []).some((m) => m.namespace === namespace) || (status?.namespaces ?? []).includes(namespace);
}

/** The records the options ask for, newest first. Pure. */
export function selectTransactions(transactions: readonly Transaction[], options: ListOptions, nowMs: number): Transaction[] {
  const { user, namespace, phase, sinceSeconds } = options;
  return transactions
    .filter((t) => user === undefined || t.spec.user === user)
    .filter((t) => namespace === undefined || hasMemberIn(t, namespace))
    // A record kubetx has not picked up yet (no phase) is open: the resolver writes Open when it first sees it.
    .filter((t) => phase === undefined || (t.status?.phase ?? "Open") === phase)
    .filter((t) => sinceSeconds === undefined || createdMs(t) >= nowMs - sinceSeconds * 1000)
    .sort((a, b) => createdMs(b) - createdMs(a) || (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
}

function memberCount(transaction: Transaction): number {
  return transaction.status?.memberCount ?? transaction.status?.members?.length ?? 0;
}

export function transactionRow(transaction: Transaction): TransactionRow {
  const { phase = null, reason = null } = transaction.status ?? {};
  return {
    id: transaction.metadata?.name ?? "",
    user: transaction.spec.user,
    mode: transaction.spec.mode,
    phase,
    members: memberCount(transaction),
    created: transaction.metadata?.creationTimestamp ?? "",
    reason,
  };
}

/** The table's lines (header first). Pure. */
export function listTable(rows: readonly TransactionRow[], nowMs: number): string[] {
  const cells = rows.map((r) => [r.id, r.user, r.mode, r.phase ?? "-", String(r.members), humanAge(nowMs - (Date.parse(r.created) || nowMs)), r.reason ?? ""]);
  return renderTable(LIST_COLUMNS, cells);
}

/**
 * Whose records to ask for: `--user`, else everyone's with `--all`, else
 * your own. A user is asked for by field selector (spec.user), the request
 * kubetx's authorization webhook allows a user for their own records.
 */
async function listFor(client: KubeClient, options: ListOptions): Promise<{ user?: string; transactions: Transaction[] }> {
  const user = options.user ?? (options.all ? undefined : await whoAmI(client));
  const query: Record<string, string> = user === undefined ? {} : { fieldSelector: `${OWNER_FIELD}=${user}` };
  const transactions = await listAll<Transaction>(client, transactionPath(), query).catch((error: unknown) => {
    throw transactionReadFailure(error, user === undefined ? "list everyone's transactions" : `list the transactions of ${user}`, LIST_FORBIDDEN_HINT);
  });
  return { ...(user === undefined ? {} : { user }), transactions };
}

const LIST_FORBIDDEN_HINT = "you may list only your own (kubectl tx list, without --all or another --user), where the cluster calls kubetx's authorization webhook; " +
  "everyone's needs the kubetx:viewer role, which a cluster admin grants. 'kubectl tx describe ID' reads one record by id";

/** What an empty list means: with no --user or --all, only the caller's own were asked for. */
function nothingFound(options: ListOptions, user: string | undefined): string {
  if (user === undefined) return "No transactions found.";
  if (options.user !== undefined) return `No transactions of ${user} found.`;
  return `No transactions of yours (${user}) found; --all lists everyone's (needs the kubetx:viewer role).`;
}

export async function runList(options: ListOptions, deps: ReviewDeps): Promise<number> {
  const { user, transactions: all } = await withClient(options, deps, (client) => listFor(client, options));
  const rows = selectTransactions(all, { ...options, ...(user === undefined ? {} : { user }) }, deps.now()).map(transactionRow);
  if (options.output === "json") {
    deps.say(renderJson(rows));
  } else if (rows.length === 0) {
    deps.warn(all.length === 0 ? nothingFound(options, user) : `No transactions match (${all.length} in the cluster).`);
  } else {
    listTable(rows, deps.now()).forEach((line) => deps.say(line));
  }
  return EXIT.ok;
}
