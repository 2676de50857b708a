/** `--timeout` values: `90`, `30s`, `2m`, `1h`, `1m30s` (Go-style, whole units). */
import { usageError } from "./errors.ts";

import { MAX_TIMEOUT_SECONDS } from "../../transactions/model.ts";

/**
 * Without `--timeout`: what kubectl tx undo asks for, and how long kubectl
 * tx apply waits for the outcome once kubectl has ended (plus
 * WAIT_GRACE_SECONDS): room for a large transaction on a busy apiserver.
 */
export const DEFAULT_TIMEOUT_SECONDS = 60;
/** The Transaction CRD's bounds on spec.timeoutSeconds. */
export const MIN_TIMEOUT_SECONDS = 1;
export { MAX_TIMEOUT_SECONDS };

const PLAIN_SECONDS = /^\d+$/;
const UNITS = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/** Seconds in `text`, or undefined when it is not a duration. Pure. */
export function durationSeconds(text: string): number | undefined {
  if (PLAIN_SECONDS.test(text)) return Number(text);
  const match = UNITS.exec(text);
  if (!match || text === "") return undefined;
  const [, hours = "0", minutes = "0", seconds = "0"] = match;
  return Number(hours) * 3600 + Number(minutes) * 60 + Number(seconds);
}

/** `--timeout` as whole seconds within the CRD's bounds (undefined when not given); a usage error names the bad value. */
export function parseTimeout(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = durationSeconds(text.trim());
  if (seconds === undefined) {
    throw usageError(`--timeout '${text}' is not a duration; use whole seconds or units, e.g. 90, 30s, 2m, 1m30s`, "kubectl tx apply --help");
  }
  if (seconds < MIN_TIMEOUT_SECONDS || seconds > MAX_TIMEOUT_SECONDS) {
    throw usageError(`--timeout '${text}' must be from ${MIN_TIMEOUT_SECONDS}s to ${MAX_TIMEOUT_SECONDS / 3600}h`, "kubectl tx apply --help");
  }
  return seconds;
}
