/**
 * Writes the apiserver rejected between mutating and validating admission
 * (the object's own validation) never reach /validate. /observe records
 * each transparent write here; /validate crosses it off; a sweep then asks,
 * for every write still pending after a short grace, whether it reached
 * validation on another replica (a lock for the object exists for the
 * requester). If not, the requester's transaction fails.
 *
 * The apiserver gives every webhook call its own request uid, so a write
 * is matched by what it writes, not by uid: requester, operation, resource,
 * namespace and name. A `generateName` create has no name yet when it is
 * mutated and has one when it is validated; it is matched by its
 * `generateName` prefix instead.
 *
 * Intents live in the memory of the replica that observed them: a replica
 * that dies in the milliseconds between a rejected request and the next
 * sweep loses that knowledge (see the README's limits; the audit sink does
 * not have this gap).
 */
import { describeRef } from "../kube/types.ts";
import type { KubeObject, ObjectRef } from "../kube/types.ts";
import type { LockStore } from "../locks/store.ts";
import type { Clock } from "../telemetry/clock.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { Requester } from "./coordinator.ts";

/** One write as /observe saw it. `ref.name` is empty for a `generateName` create. */
export interface Intent {
  readonly requester: Requester;
  readonly fieldManager?: string;
  readonly ref: ObjectRef;
  /** Set when the name is still to be generated. */
  readonly generateName?: string;
  readonly operation: string;
  /** On the monotonic clock, for the grace. */
  readonly observedAt: number;
  /** On the wall clock, to compare with a transaction's resolution time. */
  readonly observedAtWall: number;
}

export interface IntentOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Longer than mutating-to-validating admission ever takes, shorter than the quiet window. */
  readonly graceMs: number;
  /** Whether the write reached /validate on some replica (for this one's own, it is crossed off directly). */
  readonly reachedValidation: (intent: Intent) => Promise<boolean>;
  /** Fails the requester's current transparent transaction (starting one if needed); `observedAtMs` is wall-clock time. */
  readonly failRequester: (requester: Requester, fieldManager: string | undefined, reason: string, observedAtMs: number) => Promise<void>;
}

/** How long an intent whose check keeps failing is tried again: a transaction is open at most a minute by default. */
const RETRY_CHECKS_MS = 60_000;

/** Intents kept at most: a flood of writes must not grow memory without bound. */
const MAX_INTENTS = 10_000;

/** What a mutating call and the validating call of one write have in common. */
export function intentKey(requester: Requester, operation: string, ref: ObjectRef, generateName?: string): string {
  const name = ref.name === "" && generateName ? `generate:${generateName}` : `name:${ref.name}`;
  return [requester.username, operation, ref.group, ref.resource, ref.namespace ?? "", name].join("\n");
}

/**
 * The keys a validated write may have been observed under: its name, and
 * for a create whose name was generated from `generateName`, that prefix.
 */
export function validatedKeys(requester: Requester, operation: string, ref: ObjectRef, object: KubeObject | null | undefined): string[] {
  const keys = [intentKey(requester, operation, ref)];
  const prefix = object?.metadata?.generateName;
  if (operation === "CREATE" && prefix && ref.name.startsWith(prefix)) keys.push(intentKey(requester, operation, { ...ref, name: "" }, prefix));
  return keys;
}

export class IntentTracker {
  private readonly o: IntentOptions;
  /** Pending writes by key, oldest first: the same write can be observed several times (retries). */
  private readonly pending = new Map<string, Intent[]>();
  private count = 0;

  constructor(options: IntentOptions) {
    this.o = options;
  }

  observe(intent: Omit<Intent, "observedAt" | "observedAtWall">): void {
    if (this.count >= MAX_INTENTS) {
      this.o.logger.warn({ pending: this.count }, "too many writes waiting for validation; not tracking more");
      return;
    }
    this.enqueue({ ...intent, observedAt: this.o.clock.monotonic(), observedAtWall: this.o.clock.now() }, "back");
  }

  /** Adds a pending write under its key: newly observed at the back, one to check again at the front. */
  private enqueue(intent: Intent, end: "front" | "back"): void {
    const key = intentKey(intent.requester, intent.operation, intent.ref, intent.generateName);
    const queue = this.pending.get(key) ?? [];
    if (end === "back") queue.push(intent);
    else queue.unshift(intent);
    this.pending.set(key, queue);
    this.count += 1;
  }

  /** Crosses off the oldest pending write under any of `keys` (see validatedKeys). */
  validated(keys: readonly string[]): void {
    for (const key of keys) {
      const queue = this.pending.get(key);
      if (!queue?.length) continue;
      queue.shift();
      this.count -= 1;
      if (queue.length === 0) this.pending.delete(key);
      return;
    }
  }

  get size(): number {
    return this.count;
  }

  /**
   * Checks every intent past its grace; fails the transactions of writes
   * that never reached validation. An intent whose check or failure could
   * not be done (the apiserver refused or did not answer: it restarts, its
   * authorizer has not read RBAC yet) is kept for the next sweep, not lost;
   * the first error is thrown once the others were tried.
   */
  async sweep(): Promise<void> {
    let first: Error | undefined;
    for (const intent of this.takeOverdue(this.o.clock.monotonic())) {
      try {
        await this.judge(intent);
      } catch (error) {
        first ??= error instanceof Error ? error : new Error(String(error));
        this.keep(intent);
      }
    }
    if (first !== undefined) throw first;
  }

  private async judge(intent: Intent): Promise<void> {
    if (await this.o.reachedValidation(intent)) return;
    const object = intent.generateName ? `${describeRef(intent.ref)}(${intent.generateName}…)` : describeRef(intent.ref);
    const reason = `the apiserver rejected the ${intent.operation.toLowerCase()} of ${object} before it reached kubetx (the object failed its own validation; kubectl printed why)`;
    this.o.logger.info({ user: intent.requester.username, object }, "write never reached validation; failing its transaction");
    await this.o.failRequester(intent.requester, intent.fieldManager, reason, intent.observedAtWall);
  }

  /** Puts an overdue intent back at the front of its queue, for the next sweep, unless it has been tried for long enough. */
  private keep(intent: Intent): void {
    if (this.o.clock.monotonic() - intent.observedAt >= RETRY_CHECKS_MS) {
      this.o.logger.warn({ user: intent.requester.username, object: describeRef(intent.ref) }, "gave up checking whether a write reached validation");
      return;
    }
    this.enqueue(intent, "front");
  }

  private takeOverdue(now: number): Intent[] {
    const overdue: Intent[] = [];
    for (const [key, queue] of this.pending) {
      while (queue.length > 0 && now - (queue[0] as Intent).observedAt >= this.o.graceMs) {
        overdue.push(queue.shift() as Intent);
        this.count -= 1;
      }
      if (queue.length === 0) this.pending.delete(key);
    }
    return overdue;
  }
}

/**
 * Cross-replica evidence that a write reached /validate: the lock it took.
 * A named object's lock is read directly; a generated name is unknown, so
 * the requester's current transaction is searched for a create with the
 * prefix (with several replicas and several such creates of one prefix at
 * once, one success can hide another's rejection; the audit sink cannot
 * be fooled this way).
 */
export function reachedValidationByLocks(
  locks: Pick<LockStore, "read" | "locksOf">,
  currentTransaction: (requester: Requester) => Promise<string | undefined>,
): (intent: Intent) => Promise<boolean> {
  return async (intent) => {
    if (!intent.generateName) {
      const lock = await locks.read(intent.ref);
      return lock !== undefined && lock.member.user === intent.requester.username;
    }
    const transaction = await currentTransaction(intent.requester);
    if (!transaction) return false;
    const prefix = intent.generateName;
    return (await locks.locksOf(transaction)).some(({ member }) =>
      member.operation === "CREATE" && member.ref.group === intent.ref.group && member.ref.resource === intent.ref.resource &&
      member.ref.namespace === intent.ref.namespace && member.ref.name.startsWith(prefix));
  };
}
