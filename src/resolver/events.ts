/**
 * Kubernetes Events on every object a rollback touched, so `kubectl
 * describe` on the object says what happened and why.
 */
import type { KubeClient } from "../kube/index.ts";
import type { LockRecord } from "../locks/record.ts";
import type { RestoreOutcome } from "../rollback/apply.ts";
import type { Clock } from "../telemetry/clock.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { Transaction } from "../transactions/model.ts";
import { mapLimit } from "./concurrency.ts";

/** Events posted at once: as many as the rollback's own restores run. */
const PARALLEL_EVENTS = 8;

export interface RollbackEvents {
  rolledBack(tx: Transaction | undefined, locks: readonly LockRecord[], outcomes: readonly RestoreOutcome[]): Promise<void>;
}

export function kubeRollbackEvents(client: KubeClient, clock: Clock, logger: Logger): RollbackEvents {
  return {
    async rolledBack(tx, locks, outcomes): Promise<void> {
      // Side by side: one after another, 100 Events held a rollback of 100 members up by a third of a second.
      await mapLimit([...locks.entries()], PARALLEL_EVENTS, async ([i, lock]) => {
        const event = eventFor(tx, lock, outcomes[i]);
        if (!event) return;
        await postEvent(client, clock, lock, event).catch((error: unknown) =>
          logger.warn({ err: error, transaction: lock.member.transaction }, "could not record rollback event"));
      });
    },
  };
}

interface EventText {
  readonly reason: string;
  readonly message: string;
}

/** The Event for one member, or none when nothing happened to the object. Pure. */
export function eventFor(tx: Transaction | undefined, lock: LockRecord, outcome: RestoreOutcome | undefined): EventText | undefined {
  if (!outcome || outcome.kind === "retry" || !lock.member.ref.namespace) return undefined;
  const conflicted = outcome.kind === "conflict" || ("conflicts" in outcome && Boolean(outcome.conflicts?.length));
  if (outcome.kind === "unchanged" && !conflicted) return undefined;
  if (outcome.kind === "impossible") return { reason: "TransactionRestoreFailed", message: `${headline(tx, lock)}; could not restore this object: ${outcome.detail}` };
  if (conflicted) return { reason: "TransactionRollbackConflict", message: `${headline(tx, lock)}; changes made by someone else since were kept, not overwritten: ${outcome.detail}` };
  return { reason: "TransactionRolledBack", message: `${headline(tx, lock)}; this object was restored: ${outcome.detail}` };
}

function headline(tx: Transaction | undefined, lock: LockRecord): string {
  // A member's failure is the cause; the record's message only sums it up.
  const why = [tx?.status?.reason, tx?.status?.failure ?? tx?.status?.message].filter(Boolean).join(": ");
  const user = tx?.spec.user ?? lock.member.user;
  return `kubetx: transaction ${lock.member.transaction} (${user}) rolled back${why ? ` (${why})` : ""}`;
}

async function postEvent(client: KubeClient, clock: Clock, lock: LockRecord, event: EventText): Promise<void> {
  const { ref, kind } = lock.member;
  const now = new Date(clock.now()).toISOString().replace(/\.\d{3}Z$/, "Z");
  await client.create(`/api/v1/namespaces/${encodeURIComponent(ref.namespace ?? "")}/events`, {
    apiVersion: "v1",
    kind: "Event",
    metadata: { generateName: `${ref.name}.kubetx-`, namespace: ref.namespace },
    involvedObject: { apiVersion: ref.group ? `${ref.group}/${ref.version}` : ref.version, kind, name: ref.name, namespace: ref.namespace },
    reason: event.reason,
    message: event.message.slice(0, 1024),
    type: "Warning",
    source: { component: "kubetx" },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  });
}
