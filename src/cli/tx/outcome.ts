/** What kubectl tx tells kubetx, and what it tells the user: pure formatting. */
import { describeRef } from "../../kube/types.ts";
import type { KubeObject } from "../../kube/types.ts";
import { ENABLED_LABEL } from "../../policy/policy.ts";
import type { ClientState, MemberSummary, Transaction } from "../../transactions/model.ts";
import { EXIT } from "./errors.ts";
import { CLIENT_MESSAGE_MAX_CHARS, stderrTail, withoutWarnings } from "./kubectl.ts";

export interface ClientStatePatch {
  readonly spec: { readonly clientState: ClientState; readonly clientMessage?: string };
}

/** The merge patch that tells kubetx how kubectl ended: on failure, the last lines of kubectl's errors. */
export function clientStatePatch(result: { readonly code: number; readonly stderr: string }): ClientStatePatch {
  if (result.code === 0) return { spec: { clientState: "Applied" } };
  const message = stderrTail(withoutWarnings(result.stderr)).trim() || `kubectl apply exited with code ${result.code}`;
  return { spec: { clientState: "Failed", clientMessage: message.slice(-CLIENT_MESSAGE_MAX_CHARS) } };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** `  CREATE configmaps shop/settings: Committed`, with the member's message when it has one. */
export function memberLine(member: MemberSummary): string {
  const message = member.message ? ` (${member.message})` : "";
  return `  ${member.operation} ${describeRef(member)}: ${member.outcome}${message}`;
}

/** `reason: message`; a message of several lines (kubectl's errors) continues indented under the first. */
function why(transaction: Transaction): string {
  const parts = [transaction.status?.reason, transaction.status?.message?.trim()].filter((part) => part !== undefined && part !== "");
  return parts.length > 0 ? parts.join(": ").split("\n").join("\n    ") : "kubetx recorded no reason";
}

function committedLine(id: string, count: number): string {
  return `transaction ${id} committed: ${plural(count, "member")}`;
}

/**
 * kubectl applied everything and not one write went through kubetx: no
 * policy covers where the objects went (or it exempts the user or their
 * kinds). Such a record says nothing, so kubectl tx deletes it and says
 * why instead (uncoveredLines). A rollback with no member is not one of
 * these: kubectl may have failed before its first write.
 */
export function isUncovered(transaction: Transaction): boolean {
  const status = transaction.status;
  return status?.phase === "Committed" && (status.memberCount ?? status.members?.length ?? 0) === 0;
}

/** Where kubectl puts the objects: their own namespace, else -n; undefined is the kubeconfig context's. Pure. */
export function targetNamespaces(objects: readonly KubeObject[], namespace: string | undefined): (string | undefined)[] {
  return [...new Set(objects.map((o) => o.metadata?.namespace ?? namespace))];
}

/** What kubectl tx prints (stdout) in place of a transaction's outcome when kubetx took part in none of the writes. Pure. */
export function uncoveredLines(namespaces: readonly (string | undefined)[]): string[] {
  const named = namespaces.filter((n): n is string => n !== undefined);
  const where = [
    ...(named.length > 0 ? [`${named.length === 1 ? "namespace" : "namespaces"} ${named.join(", ")}`] : []),
    ...(named.length < namespaces.length ? ["your kubeconfig context's namespace"] : []),
  ].join(" and ");
  const target = named.length === 1 && named.length === namespaces.length ? named[0] : "NAMESPACE";
  return [
    `no transaction: no TransactionPolicy covers ${where} (or it exempts you or these kinds), so kubetx took part in none of these writes: ` +
      "kubectl applied them as plain kubectl apply does, not all-or-nothing, and kubectl tx kept no Transaction record",
    `  to make applies there all-or-nothing, a cluster admin opts the namespace in (default policy): kubectl label namespace ${target ?? "NAMESPACE"} ${ENABLED_LABEL}=true`,
  ];
}

export interface Outcome {
  readonly lines: string[];
  readonly exitCode: number;
}

/** The report of a resolved transaction and kubectl tx's exit code for it. */
export function formatOutcome(transaction: Transaction): Outcome {
  const id = transaction.metadata?.name ?? "";
  const members = transaction.status?.members ?? [];
  const memberLines = members.map(memberLine);
  switch (transaction.status?.phase) {
    case "Committed":
      return { lines: [committedLine(id, transaction.status.memberCount ?? members.length), ...memberLines], exitCode: EXIT.ok };
    case "RolledBack":
      return { lines: [`transaction ${id} rolled back: ${why(transaction)}`, ...memberLines], exitCode: EXIT.failed };
    default:
      return {
        lines: [
          `transaction ${id} failed: ${why(transaction)}`,
          ...memberLines,
          `kubetx keeps the locks of ${id} until an admin resolves it; see kubectl get transaction ${id} -o yaml`,
        ],
        exitCode: EXIT.failed,
      };
  }
}

/** The line printed every few seconds while kubectl tx waits. */
export function progressLine(id: string, transaction: Transaction | undefined, waitedMs: number): string {
  const phase = transaction?.status?.phase ?? "not yet picked up by kubetx";
  const members = transaction?.status?.memberCount;
  const count = members === undefined ? "" : `, ${plural(members, "member")}`;
  return `kubectl tx: waiting for transaction ${id} (${phase}${count}, ${Math.round(waitedMs / 1000)} s)`;
}
