/**
 * The plugin's expected failures: each carries the one line a user should
 * read (starting `kubectl tx:` and saying what to do) and its exit code.
 */

/** Exit codes `kubectl tx` promises in its help text. */
export const EXIT = {
  ok: 0,
  /** The transaction rolled back or failed, or kubectl tx itself could not go on. */
  failed: 1,
  usage: 2,
  /** kubetx did not resolve the transaction in time. */
  timedOut: 3,
} as const;

export class TxError extends Error {
  override readonly name = "TxError";
  readonly exitCode: number;

  constructor(message: string, exitCode: number = EXIT.failed, options?: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

export function usageError(problem: string, help = "kubectl tx --help"): TxError {
  return new TxError(`kubectl tx: ${problem}; run '${help}'`, EXIT.usage);
}

/** Prints one line for an expected failure, the stack for a bug; returns the exit code. */
export function reportTxFailure(error: unknown, write: (line: string) => void): number {
  if (error instanceof TxError) {
    write(error.message);
    return error.exitCode;
  }
  write(`kubectl tx: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return EXIT.failed;
}
