/**
 * Writes in flight: the audit sink marks on a requester's open transparent
 * transaction each covered write the apiserver has received but not yet
 * finished, and clears the mark when it finishes. The resolver keeps such a
 * transaction open (and a failed one refusing) while a mark is fresh, so a
 * write that a paused replica or a slow webhook holds for seconds before
 * kubetx admits it still joins the apply it belongs to, instead of opening
 * a transaction of its own after the first one committed.
 *
 * Most writes finish within one batch of the backend: their two events
 * cancel out and cost nothing. Only a write that spans batches is written
 * to the record, once when it starts and once when it ends.
 */
import type { Logger } from "../telemetry/logger.ts";
import { sessionKey } from "../transactions/grouping.ts";
import type { Transaction } from "../transactions/model.ts";
import type { Sessions } from "../transactions/sessions.ts";
import type { TransactionStore } from "../transactions/store.ts";
import type { WriteProgress } from "./audit-events.ts";
import type { ScopeDeps } from "./scope.ts";
import { policyMode } from "./scope.ts";

export interface InFlightDeps extends ScopeDeps {
  readonly sessions: Sessions;
  readonly store: TransactionStore;
  readonly logger: Logger;
}

/** Audit IDs this process saw finish, so a batch delivered late cannot mark a finished write in flight. */
const FINISHED_REMEMBERED = 10_000;

export class InFlightTracker {
  private readonly deps: InFlightDeps;
  private readonly finished = new Set<string>();

  constructor(deps: InFlightDeps) {
    this.deps = deps;
  }

  /** Marks and clears in one batch; returns how many records it changed. */
  async track(progress: readonly WriteProgress[]): Promise<number> {
    const { started, ended } = unpaired(progress);
    for (const p of ended) this.remember(p.auditID);
    // One read of each requester's session per batch, however many of their writes it carries.
    const sessions = new Map<string, Promise<Transaction | undefined>>();
    const last = (p: WriteProgress): Promise<Transaction | undefined> => {
      const key = sessionKey(p.requester);
      let read = sessions.get(key);
      if (!read) sessions.set(key, (read = this.deps.sessions.last(p.requester)));
      return read;
    };
    const marks = await Promise.all([
      ...started.filter((p) => !this.finished.has(p.auditID)).map(async (p) => ({ tx: await this.openTransparent(p, last), auditID: p.auditID, value: p.receivedAt })),
      ...ended.map(async (p) => ({ tx: await this.marked(p, last), auditID: p.auditID, value: null })),
    ]);
    const changes = new Map<string, Record<string, string | null>>();
    for (const { tx, auditID, value } of marks) {
      if (tx) changes.set(tx, { ...(changes.get(tx) ?? {}), [auditID]: value });
    }
    await Promise.all([...changes].map(([id, change]) => this.deps.store.markInFlight(id, change)));
    return changes.size;
  }

  /**
   * The transaction that holds the mark of this finished write, if any:
   * the one the requester's session names, or, when the session has moved
   * on since the mark was made (the user's next command, another tool's,
   * started or continued another transaction), whichever of the user's
   * unresolved transactions holds it. Left uncleared, the mark kept that
   * transaction open for the whole late-write window.
   */
  private async marked(p: WriteProgress, last: (p: WriteProgress) => Promise<Transaction | undefined>): Promise<string | undefined> {
    if (!(await this.covered(p))) return undefined;
    const holds = (tx: Transaction | undefined): boolean => tx?.status?.inFlight?.[p.auditID] !== undefined;
    const tx = await last(p);
    if (holds(tx)) return tx?.metadata?.name;
    return (await this.deps.store.listActive()).find((t) => t.spec.user === p.requester.username && holds(t))?.metadata?.name;
  }

  /** The requester's transparent transaction a write of theirs would join now, if one is open (or failing). */
  private async openTransparent(p: WriteProgress, last: (p: WriteProgress) => Promise<Transaction | undefined>): Promise<string | undefined> {
    if (!(await this.covered(p))) return undefined;
    const tx = await last(p);
    const phase = tx?.status?.phase ?? "Open";
    return tx?.spec.mode === "transparent" && (phase === "Open" || phase === "RollingBack") ? tx.metadata?.name : undefined;
  }

  /** Only transparent mode has sessions: everyone else's writes cost no read. */
  private async covered(p: WriteProgress): Promise<boolean> {
    return (await policyMode(this.deps, p, p.requester)) === "transparent";
  }

  private remember(auditID: string): void {
    this.finished.add(auditID);
    if (this.finished.size > FINISHED_REMEMBERED) this.finished.delete(this.finished.values().next().value ?? "");
  }
}

/** The writes that started and did not finish in this batch, and those that finished having started in an earlier one. */
export function unpaired(progress: readonly WriteProgress[]): { started: WriteProgress[]; ended: WriteProgress[] } {
  const received = new Map<string, WriteProgress>();
  const done = new Map<string, WriteProgress>();
  for (const p of progress) (p.stage === "received" ? received : done).set(p.auditID, p);
  return {
    started: [...received.values()].filter((p) => !done.has(p.auditID)),
    ended: [...done.values()].filter((p) => !received.has(p.auditID)),
  };
}
