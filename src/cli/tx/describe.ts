/** `kubectl tx describe ID`: one Transaction record, header and members. */
import type { KubeClient } from "../../kube/client.ts";
import { NotFound } from "../../kube/errors.ts";
import { describeRef } from "../../kube/types.ts";
import type { MemberSummary, Transaction } from "../../transactions/model.ts";
import { transactionPath } from "../../transactions/model.ts";
import type { ReviewDeps } from "./cluster-read.ts";
import { transactionReadFailure, withClient } from "./cluster-read.ts";
import { EXIT, TxError } from "./errors.ts";
import type { DescribeOptions } from "./review-args.ts";
import { renderJson, renderTable } from "./table.ts";

export interface MemberJson {
  readonly operation: string;
  /** `configmaps shop/settings`, as everywhere in kubectl tx. */
  readonly object: string;
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly namespace: string | null;
  readonly name: string;
  readonly kind: string | null;
  readonly outcome: string;
  readonly message: string | null;
  readonly conflicts: readonly string[];
}

export interface DescribeJson {
  readonly id: string;
  readonly user: string;
  readonly mode: string;
  readonly phase: string | null;
  readonly reason: string | null;
  readonly message: string | null;
  readonly failure: string | null;
  readonly expectedMembers: number | null;
  readonly clientState: string | null;
  readonly openedAt: string | null;
  readonly closedAt: string | null;
  readonly resolvedAt: string | null;
  readonly coordinator: string | null;
  /** Changes someone else made since, kept by the rollback: one line per object. */
  readonly conflicts: readonly string[];
  readonly members: readonly MemberJson[];
  /** Members so far: an open transaction counts them before it lists them (status.members comes with verification). */
  readonly memberCount: number;
}

export const MEMBER_COLUMNS = ["OPERATION", "OBJECT", "OUTCOME", "MESSAGE"] as const;

function memberJson(m: MemberSummary): MemberJson {
  return {
    operation: m.operation, object: describeRef(m), group: m.group, version: m.version, resource: m.resource,
    namespace: m.namespace ?? null, name: m.name, kind: m.kind ?? null, outcome: m.outcome, message: m.message ?? null,
    conflicts: m.conflicts ?? [],
  };
}

/** null for an absent field: JSON readers see every key. */
function orNull<T>(value: T | undefined): T | null {
  return value === undefined ? null : value;
}

/**
 * The record as describe shows it. Pure. Records written before kubetx
 * kept a summary in the message held the failure sentence in both fields:
 * it is given once, as the failure.
 */
export function describeJson(t: Transaction): DescribeJson {
  const s = t.status ?? {};
  const message = s.message !== undefined && s.message === s.failure ? undefined : s.message;
  return {
    id: t.metadata?.name ?? "", user: t.spec.user, mode: t.spec.mode,
    phase: orNull(s.phase), reason: orNull(s.reason), message: orNull(message), failure: orNull(s.failure),
    expectedMembers: orNull(t.spec.expectedMembers), clientState: orNull(t.spec.clientState),
    openedAt: orNull(s.openedAt), closedAt: orNull(s.closedAt), resolvedAt: orNull(s.resolvedAt), coordinator: orNull(s.coordinator),
    conflicts: s.conflicts ?? [],
    members: (s.members ?? []).map(memberJson),
    memberCount: s.memberCount ?? s.members?.length ?? 0,
  };
}

/** `Label:  value`, a value of several lines continuing under the first. */
function field(label: string, value: string | number | null): string {
  return `${`${label}:`.padEnd(14)}${value === null ? "-" : String(value).trim().split("\n").join(`\n${" ".repeat(14)}`)}`;
}

function optionalFields(d: DescribeJson): string[] {
  return [
    ...(d.failure !== null ? [field("Failure", d.failure)] : []),
    ...(d.conflicts.length > 0 ? [field("Kept", `changes made by someone else since, not overwritten:\n${d.conflicts.join("\n")}`)] : []),
    ...(d.expectedMembers !== null ? [field("Expected", `${d.expectedMembers} members`)] : []),
    ...(d.clientState !== null ? [field("kubectl", d.clientState)] : []),
  ];
}

/** The lines describe prints. Pure. */
export function describeLines(d: DescribeJson): string[] {
  const header = [
    field("Transaction", d.id), field("User", d.user), field("Mode", d.mode), field("Phase", d.phase ?? "- (kubetx has seen no member yet)"),
    field("Reason", d.reason), field("Message", d.message), ...optionalFields(d),
    field("Opened", d.openedAt), field("Closed", d.closedAt), field("Resolved", d.resolvedAt), field("Coordinator", d.coordinator),
  ];
  const lines = header.flatMap((line) => line.split("\n"));
  if (d.members.length === 0) return [...lines, d.memberCount > 0 ? field("Members", `${d.memberCount} so far, listed here once it closes ('kubectl tx locks' shows the objects now)`) : "Members:      none"];
  const rows = d.members.map((m) => [m.operation, m.object, m.outcome, (m.message ?? "").replace(/\s*\n\s*/g, " ")]);
  return [...lines, `Members (${d.members.length}):`, ...renderTable(MEMBER_COLUMNS, rows).map((line) => `  ${line}`)];
}

async function readTransaction(client: KubeClient, id: string): Promise<Transaction> {
  try {
    return await client.get<Transaction>(transactionPath(id));
  } catch (error) {
    // A missing record and a missing resource (kubetx not installed) both answer 404: only the first names transactions.kubetx.io.
    if (error instanceof NotFound && error.message.includes("transactions.kubetx.io")) {
      throw new TxError(`kubectl tx: transaction ${id} not found; list them with 'kubectl tx list'`, EXIT.failed, { cause: error });
    }
    throw transactionReadFailure(error, `get transaction ${id}`);
  }
}

export async function runDescribe(options: DescribeOptions, deps: ReviewDeps): Promise<number> {
  const transaction = await withClient(options, deps, (client) => readTransaction(client, options.id));
  const described = describeJson(transaction);
  if (options.output === "json") deps.say(renderJson(described));
  else describeLines(described).forEach((line) => deps.say(line));
  return EXIT.ok;
}
