/** What kubectl tx tells kubetx, and what it tells the user: pure formatting. */
import { describeRef } from "../../kube/types.ts";
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
  // No member: no write went through kubetx (kubectl still applied everything).
  const none = count === 0 ? " (kubetx's policy covers none of these objects)" : "";
  return `transaction ${id} committed: ${plural(count, "member")}${none}`;
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
