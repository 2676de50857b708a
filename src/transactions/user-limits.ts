/**
 * The policy's per-user limits (pure): a write that would take a new lock
 * is refused when its user's transactions already hold
 * `maxLocksPerUser` locks, or when it would open a transaction beyond
 * `maxOpenTransactionsPerUser`. One user (or one stolen token) can then
 * neither lock most of a cluster's objects nor fill kubetx-system with
 * transactions. Counted from the user's lock Leases; a transaction holds
 * locks from its first member until it is resolved (a Failed one keeps
 * them, and counts, until an admin resolves it).
 */
import type { Limits } from "../policy/policy.ts";

/** What the user holds now, as listed (it may lag a few writes behind). */
export interface UserUsage {
  readonly locks: number;
  readonly transactions: ReadonlySet<string>;
}

export interface UserLimitFacts {
  readonly user: string;
  readonly transaction: string;
  readonly usage: UserUsage;
  /** The transaction already holds a lock (the list may not show it yet). */
  readonly alreadyOpen: boolean;
  readonly limits: Pick<Limits, "maxOpenTransactionsPerUser" | "maxLocksPerUser">;
}

/** Why the write is refused: `message` for the user (kubectl prints it), `failure` for the transaction's record. */
export interface UserLimitRefusal {
  readonly message: string;
  readonly failure: string;
}

export function userLimitRefusal(facts: UserLimitFacts): UserLimitRefusal | undefined {
  const { user, transaction, usage, limits } = facts;
  const open = new Set(usage.transactions);
  const opening = !facts.alreadyOpen && !open.has(transaction);
  if (opening && open.size >= limits.maxOpenTransactionsPerUser) {
    return {
      message: `${user} already has ${counted(open.size, "open transaction")}, the TransactionPolicy's limit (maxOpenTransactionsPerUser: ${limits.maxOpenTransactionsPerUser}); ` +
        `wait until some of them commit or roll back ('kubectl tx list'), or ask an admin to raise the limit. Transaction ${transaction} will roll back.`,
      failure: `${user} reached the policy's limit of ${limits.maxOpenTransactionsPerUser} open transactions per user (maxOpenTransactionsPerUser)`,
    };
  }
  if (usage.locks >= limits.maxLocksPerUser) {
    return {
      message: `${user}'s transactions already hold ${counted(usage.locks, "lock")}, the TransactionPolicy's limit (maxLocksPerUser: ${limits.maxLocksPerUser}); ` +
        `split the apply, or wait until your other transactions commit or roll back, or ask an admin to raise the limit. Transaction ${transaction} will roll back.`,
      failure: `${user} reached the policy's limit of ${limits.maxLocksPerUser} locks per user (maxLocksPerUser)`,
    };
  }
  return undefined;
}

function counted(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
