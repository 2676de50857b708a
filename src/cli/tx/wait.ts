/** Waits for kubetx to resolve a transaction: poll, report progress, give up in time. */
import type { KubeClient } from "../../kube/client.ts";
import { Forbidden, NotFound } from "../../kube/errors.ts";
import type { Transaction } from "../../transactions/model.ts";
import { TERMINAL_PHASES, transactionPath } from "../../transactions/model.ts";
import { EXIT, TxError } from "./errors.ts";
import { progressLine } from "./outcome.ts";

/** Time, injected so tests need not wait. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** Fast enough that the outcome follows kubectl's own output without a visible pause; a read every 50 ms while the verdict is pending is nothing to an apiserver. */
export const POLL_INTERVAL_MS = 50;
/**
 * Reads in the first QUICK_POLL_FOR_MS come this often: a commit usually
 * comes within a hundred milliseconds of kubectl's exit, and the user
 * waits for every one of them (a bench apply of 100 spent a median 92 ms
 * from the commit to its exit at one read per 50 ms).
 */
export const QUICK_POLL_MS = 20;
export const QUICK_POLL_FOR_MS = 2_000;

/** How long to wait before the next read, `elapsedMs` into the wait. */
export function pollDelayMs(elapsedMs: number): number {
  return elapsedMs < QUICK_POLL_FOR_MS ? QUICK_POLL_MS : POLL_INTERVAL_MS;
}
/** Often enough that a slow resolution does not look like a hang. */
export const PROGRESS_INTERVAL_MS = 5_000;
/** kubetx rolls back at the transaction timeout; this leaves it time to finish doing so. */
export const WAIT_GRACE_SECONDS = 30;

export interface WaitOptions {
  readonly id: string;
  readonly timeoutSeconds: number;
  readonly clock: Clock;
  readonly warn: (line: string) => void;
}

/**
 * How long a refused read of the record is retried before it counts: the
 * apiserver asks kubetx's authorization webhook about reads of records,
 * and refuses them while no kubetx replica answers (one restarting).
 */
export const FORBIDDEN_GRACE_MS = 15_000;

type Read = { readonly transaction: Transaction } | { readonly problem: string; readonly forbidden?: Forbidden };

async function read(client: KubeClient, id: string): Promise<Read> {
  try {
    return { transaction: await client.get<Transaction>(transactionPath(id)) };
  } catch (error) {
    if (error instanceof NotFound) {
      throw new TxError(`kubectl tx: transaction ${id} was deleted while kubectl tx waited for it; check the objects by hand`, EXIT.failed, { cause: error });
    }
    // Anything else (a timeout, a restarting apiserver or kubetx) may pass: try again.
    return { problem: (error as Error).message, ...(error instanceof Forbidden ? { forbidden: error } : {}) };
  }
}

/** Throws once reads of the record have been refused for FORBIDDEN_GRACE_MS without a break. */
function refusals(id: string): (result: Read, now: number) => void {
  let since: number | undefined;
  return (result, now) => {
    if (!("forbidden" in result) || !result.forbidden) {
      since = undefined;
      return;
    }
    since ??= now;
    if (now - since >= FORBIDDEN_GRACE_MS) throw forbiddenToRead(id, result.forbidden);
  };
}

function forbiddenToRead(id: string, error: Forbidden): TxError {
  return new TxError(`kubectl tx: you may not read transaction ${id} (refused for ${FORBIDDEN_GRACE_MS / 1000} s); ask a cluster admin to allow get on transactions.kubetx.io, and check that kubetx is running`, EXIT.failed, { cause: error });
}

function isResolved(transaction: Transaction | undefined): transaction is Transaction {
  const phase = transaction?.status?.phase;
  return phase !== undefined && TERMINAL_PHASES.has(phase);
}

/** Polls the record until its phase is Committed, RolledBack or Failed. */
export async function waitForOutcome(client: KubeClient, options: WaitOptions): Promise<Transaction> {
  const { id, clock } = options;
  const start = clock.now();
  const deadline = start + (options.timeoutSeconds + WAIT_GRACE_SECONDS) * 1000;
  let lastProgress = start;
  let latest: Transaction | undefined;
  const refused = refusals(id);
  for (;;) {
    const result = await read(client, id);
    if ("transaction" in result) latest = result.transaction;
    if (isResolved(latest)) return latest;
    const now = clock.now();
    refused(result, now);
    if (now >= deadline) throw timedOut(id, latest, Math.round((now - start) / 1000));
    if (now - lastProgress >= PROGRESS_INTERVAL_MS) {
      const note = "problem" in result ? `; last error: ${result.problem}` : "";
      options.warn(`${progressLine(id, latest, now - start)}${note}`);
      lastProgress = now;
    }
    await clock.sleep(pollDelayMs(now - start));
  }
}

function timedOut(id: string, latest: Transaction | undefined, seconds: number): TxError {
  const phase = latest?.status?.phase ?? "unresolved (kubetx never picked it up)";
  return new TxError(
    `kubectl tx: transaction ${id} is still ${phase} ${seconds} s after kubectl ended; is kubetx running? Check: kubectl get transaction ${id} -o yaml`,
    EXIT.timedOut,
  );
}
