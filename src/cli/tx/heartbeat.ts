/**
 * kubectl tx apply's liveness while kubectl runs: every period it writes a
 * new value of a counter into its Transaction's spec.clientHeartbeat.
 * kubetx never reads that value as a time: it notes when it saw it change,
 * on its own monotonic clock, and rolls the transaction back (ClientLost)
 * once it has seen no change for CLIENT_HEARTBEAT_TIMEOUT_MS. So a killed
 * kubectl tx frees its objects within seconds, and a live one is not cut
 * off by the policy's maxOpenSeconds.
 *
 * Beats run on a fixed period and do not wait for each other: a write stuck
 * on a slow apiserver must not delay the next one. A write that fails is
 * not retried on its own; the next period's beat carries a newer value.
 */

export interface HeartbeatOptions {
  readonly periodMs: number;
  /** Writes one value of the counter (1, 2, 3, ...). */
  readonly beat: (value: number) => Promise<void>;
  /** The first failed beat after a good one (or after the start). */
  readonly onFailure: (error: unknown) => void;
  /** The first good beat after failed ones. */
  readonly onRecovery: () => void;
}

export interface RunningHeartbeat {
  /** No beat starts after this; one in flight may still land, harmlessly. */
  stop(): void;
}

export function startHeartbeat(options: HeartbeatOptions): RunningHeartbeat {
  let value = 0;
  let failing = false;
  const beat = async (): Promise<void> => {
    value += 1;
    try {
      await options.beat(value);
      if (failing) options.onRecovery();
      failing = false;
    } catch (error) {
      if (!failing) options.onFailure(error);
      failing = true;
    }
  };
  const timer = setInterval(() => void beat(), options.periodMs);
  return { stop: () => clearInterval(timer) };
}
