/**
 * Writes the apiserver rejected between mutating and validating admission
 * (the object's own validation) never reach /validate. /observe records
 * each transparent write's request uid here; a sweep then asks, for every
 * intent older than a short grace, whether the write made it to /validate
 * (this process saw it, or a lock for the object exists for the
 * requester). If not, the requester's transaction fails.
 *
 * Intents live in the memory of the replica that observed them: a replica
 * that dies in the milliseconds between a rejected request and the next
 * sweep loses that knowledge (see the README's limits).
 */
import { describeRef } from "../kube/types.ts";
import type { ObjectRef } from "../kube/types.ts";
import type { LockStore } from "../locks/store.ts";
import type { Clock } from "../telemetry/clock.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { Requester } from "./coordinator.ts";

interface Intent {
  readonly requester: Requester;
  readonly fieldManager?: string;
  readonly ref: ObjectRef;
  readonly operation: string;
  readonly observedAt: number;
}

export interface IntentOptions {
  readonly locks: LockStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Longer than mutating-to-validating admission ever takes, shorter than the quiet window. */
  readonly graceMs: number;
  /** Fails the requester's current transparent transaction (starting one if needed). */
  readonly failRequester: (requester: Requester, fieldManager: string | undefined, reason: string) => Promise<void>;
}

/** Intents kept at most: a flood of writes must not grow memory without bound. */
const MAX_INTENTS = 10_000;

export class IntentTracker {
  private readonly o: IntentOptions;
  private readonly pending = new Map<string, Intent>();

  constructor(options: IntentOptions) {
    this.o = options;
  }

  observe(uid: string, intent: Omit<Intent, "observedAt">): void {
    if (this.pending.size >= MAX_INTENTS) {
      this.o.logger.warn({ pending: this.pending.size }, "too many writes waiting for validation; not tracking more");
      return;
    }
    this.pending.set(uid, { ...intent, observedAt: this.o.clock.now() });
  }

  validated(uid: string): void {
    this.pending.delete(uid);
  }

  get size(): number {
    return this.pending.size;
  }

  /** Checks every intent past its grace; fails the transactions of writes that never reached validation. */
  async sweep(): Promise<void> {
    const now = this.o.clock.now();
    for (const [uid, intent] of this.pending) {
      if (now - intent.observedAt < this.o.graceMs) continue;
      this.pending.delete(uid);
      const lock = await this.o.locks.read(intent.ref);
      if (lock && lock.member.user === intent.requester.username) continue;
      const reason = `the apiserver rejected the ${intent.operation.toLowerCase()} of ${describeRef(intent.ref)} before it reached kubetx (the object failed its own validation; kubectl printed why)`;
      this.o.logger.info({ uid, user: intent.requester.username, object: describeRef(intent.ref) }, "write never reached validation; failing its transaction");
      await this.o.failRequester(intent.requester, intent.fieldManager, reason);
    }
  }
}
