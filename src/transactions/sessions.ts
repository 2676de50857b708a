/**
 * Finds the transparent transaction a requester's write joins, starting a
 * new one when the requester has none open. Every replica sees the same
 * answer through the session Lease.
 */
import type { Session, SessionStore } from "../locks/sessions.ts";
import type { Clock } from "../telemetry/clock.ts";
import type { Requester } from "./coordinator.ts";
import { newTransactionId, sameTool, sessionKey } from "./grouping.ts";
import type { Transaction } from "./model.ts";
import type { TransactionStore } from "./store.ts";

/** The transaction a write joins, with its record when the lookup already read it (saves the admission path a read). */
export interface SessionTransaction {
  readonly id: string;
  readonly record?: Transaction;
}

/** A lost race for the session: read it again. */
const LOST = Symbol("lost");
/** Claims race only between replicas admitting the same requester's writes; a few rounds settle it. */
const MAX_CLAIM_ATTEMPTS = 5;
/** Transactions remembered as adopted; older ones are forgotten first. */
const MAX_ADOPTED = 10_000;
/** The longest a failed transparent transaction keeps refusing after it was resolved, however often it refuses. */
export const MAX_REFUSING_AFTER_MS = 60_000;

export class Sessions {
  private readonly sessions: SessionStore;
  private readonly store: TransactionStore;
  private readonly clock: Clock;
  private readonly quietMs: () => number;
  private readonly adopted = new Set<string>();

  /** `quietMs`: the quiet window as the resolver counts it (with the sink's or the intent sweep's delay). */
  constructor(sessions: SessionStore, store: TransactionStore, clock: Clock, quietMs: () => number) {
    this.sessions = sessions;
    this.store = store;
    this.clock = clock;
    this.quietMs = quietMs;
  }

  /**
   * The transaction this write joins. A session whose transaction is still
   * open, or is rolling back, keeps it (so the rest of a failing apply is
   * refused instead of committing on its own); so does a resolved failed
   * transparent one for a quiet window after its last refusal (a write
   * refused just as the rollback ended must not let the next one start
   * afresh: chaos F16). Any other resolved one starts anew. A write of
   * another tool starts anew too, unless it writes an object an open
   * transaction of the user holds (takesOver).
   */
  async transactionFor(requester: Requester, fieldManager: string | undefined, operation: string, options: TransactionForOptions = {}): Promise<SessionTransaction> {
    const key = sessionKey(requester);
    for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt += 1) {
      // The caches first; after a lost claim race (or when asked), the apiserver itself.
      const cached = attempt === 0 && !options.fresh;
      const session = await this.sessions.read(key, { cached });
      const kept = await this.kept({ key, requester, session }, fieldManager, operation, { cached, holder: options.holder });
      if (kept === LOST) continue;
      if (kept) return kept;
      const id = newTransactionId();
      if (await this.sessions.claim({ key, transaction: id, fieldManager, nowMs: this.clock.now() }, session)) return { id };
    }
    throw new Error(`kubetx: could not settle the transaction of ${requester.username}'s writes; retry the apply`);
  }

  /**
   * The transaction this write joins without starting one: the session's,
   * for a write of its tool; or the user's open transparent transaction
   * that holds the object (takesOver), which the session then follows,
   * with the write's tool. LOST when another replica moved the session
   * meanwhile.
   */
  private async kept(
    who: { key: string; requester: Requester; session: Session | undefined },
    fieldManager: string | undefined,
    operation: string,
    options: { cached: boolean; holder: TransactionForOptions["holder"] },
  ): Promise<SessionTransaction | typeof LOST | undefined> {
    const { key, requester, session } = who;
    const { cached } = options;
    if (session && sameTool(session.fieldManager, fieldManager)) {
      const record = await this.store.get(session.transaction, { cached });
      if (joinable(record, operation, this.hold())) return { id: session.transaction, ...(record ? { record } : {}) };
    }
    const holder = await options.holder?.();
    if (holder === undefined) return undefined;
    const record = await this.store.get(holder, { cached });
    if (!takesOver(record, requester.username)) return undefined;
    const claimed = await this.sessions.claim({ key, transaction: holder, fieldManager, nowMs: this.clock.now() }, session);
    return claimed ? { id: holder, record } : LOST;
  }

  /**
   * Points the requester's session at a transaction they named (explicit or
   * kubectl tx apply), so their writes that name none, such as the deletes
   * of `kubectl tx apply --prune`, join it too. Remembered per process so
   * it costs one read per transaction, not per member.
   */
  async adopt(requester: Requester, transaction: string): Promise<void> {
    if (this.adopted.has(transaction)) return;
    const key = sessionKey(requester);
    const session = await this.sessions.read(key);
    if (session?.transaction !== transaction) await this.sessions.claim({ key, transaction, nowMs: this.clock.now() }, session);
    this.adopted.add(transaction);
    if (this.adopted.size > MAX_ADOPTED) this.adopted.delete(this.adopted.values().next().value ?? "");
  }

  /** The session's current transaction without starting one (dry runs, failure reports). */
  async current(requester: Requester, operation: string): Promise<string | undefined> {
    const session = await this.sessions.read(sessionKey(requester));
    return session && joinable(await this.store.get(session.transaction), operation, this.hold()) ? session.transaction : undefined;
  }

  private hold(): Hold {
    return { nowMs: this.clock.now(), quietMs: this.quietMs() };
  }

  /** The record of the transaction the requester's session points at, whatever its phase; undefined when none. */
  async last(requester: Requester): Promise<Transaction | undefined> {
    const session = await this.sessions.read(sessionKey(requester));
    return session ? this.store.get(session.transaction) : undefined;
  }
}

export interface TransactionForOptions {
  /** Read the session and the record from the apiserver, not the caches. */
  readonly fresh?: boolean;
  /** The transaction holding the lock of the object this write writes, if any (from the Lease cache). */
  readonly holder?: () => string | undefined | Promise<string | undefined>;
}

/**
 * Whether a write to an object `tx` holds, by `username`, continues `tx`
 * instead of starting a transaction of its own (and the requester's
 * session follows it, so the rest of that command joins too). It is the
 * user's next command, by another tool than the apply's (`kubectl apply
 * -f app.yaml && kubectl label configmap app tier=web`, also with other
 * commands between them): in a transaction of its own it met its own
 * apply's lock and failed, though nobody else wrote. Only the same user's
 * open transparent transaction with no failure takes it; any other keeps
 * the lock's answer. Pure.
 */
export function takesOver(tx: Transaction | undefined, username: string): tx is Transaction {
  return tx !== undefined && tx.spec.mode === "transparent" && tx.spec.user === username && (tx.status?.phase ?? "Open") === "Open" && !tx.status?.failure;
}

/**
 * Whether a write that names no transaction joins the session's one.
 * Absent means a replica claimed the session and is creating the record
 * right now. A transaction the user named (explicit, kubectl tx apply) takes
 * only deletes: the prune step of `kubectl tx apply --prune`; the user's
 * other plain writes start a transparent transaction of their own.
 */
export function joinable(tx: Transaction | undefined, operation: string, hold: Hold): boolean {
  if (!tx) return true;
  const phase = tx.status?.phase ?? "Open";
  if (phase === "Committed") return false;
  if (phase !== "Open" && phase !== "RollingBack") return tx.spec.mode === "transparent" && stillRefusing(tx, hold);
  return tx.spec.mode === "transparent" || (tx.spec.mode === "plugin" && operation === "DELETE");
}

/** The wall clock now and the quiet window in force. */
export interface Hold {
  readonly nowMs: number;
  readonly quietMs: number;
}

/**
 * A resolved failed transparent transaction: within a quiet window of its
 * last refusal, and at most a minute after its end. The resolver ended it
 * a quiet window after every refusal it saw, so only one it missed holds.
 */
function stillRefusing(tx: Transaction, hold: Hold): boolean {
  const [resolvedAt, refusedAt] = [Date.parse(tx.status?.resolvedAt ?? ""), Date.parse(tx.status?.refusedAt ?? "")];
  if (Number.isNaN(resolvedAt) || Number.isNaN(refusedAt) || hold.nowMs - resolvedAt >= MAX_REFUSING_AFTER_MS) return false;
  return hold.nowMs - refusedAt < hold.quietMs;
}
