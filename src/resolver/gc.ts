/**
 * Cleans up what resolved transactions leave behind when a replica dies
 * between writing the final phase and releasing: locks and heartbeats of
 * resolved transactions, and journals once their retention has passed.
 * A Failed transaction keeps everything: an admin resolves it.
 */
import type { Phase, Transaction } from "../transactions/model.ts";
import { TERMINAL_PHASES } from "../transactions/model.ts";

export interface Leftover {
  readonly kind: "lock" | "heartbeat" | "journal";
  readonly name: string;
  readonly transaction: string;
}

/**
 * What may go. `transactions` holds every record by id; an id without a
 * record is gone (deleted by an admin) and its leftovers go with it.
 */
export function garbage(leftovers: readonly Leftover[], transactions: ReadonlyMap<string, Transaction>, now: number, retentionSeconds: number): Leftover[] {
  return leftovers.filter((l) => {
    const tx = transactions.get(l.transaction);
    if (!tx) return true;
    const phase: Phase = tx.status?.phase ?? "Open";
    if (!TERMINAL_PHASES.has(phase) || phase === "Failed") return false;
    if (l.kind !== "journal" || phase === "RolledBack") return true;
    const resolvedAt = Date.parse(tx.status?.resolvedAt ?? "");
    return Number.isNaN(resolvedAt) || now - resolvedAt >= retentionSeconds * 1000;
  });
}
