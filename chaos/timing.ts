/**
 * The campaign's kubetx timings, in one place: the TransactionPolicy it
 * installs uses them, the plan records them for the checker, and the
 * harness waits by them.
 */

/**
 * The production default, not shorter: between the two kubectl commands of
 * one apply (apply, then delete) a loaded 2-core machine takes more than a
 * second just starting kubectl, and a shorter window would split nearly
 * every such apply.
 */
export const QUIET_WINDOW_SECONDS = 2;
/** Short, so a dead coordinator's transactions are taken over within a trial. */
export const LOCK_TTL_SECONDS = 3;
/** A transaction still open after this rolls back (an explicit apply missing a member waits this long). */
export const MAX_OPEN_SECONDS = 10;
/** kubetx serve's default --audit-sink-delay: transparent transactions close this much later with the sink. */
export const AUDIT_SINK_DELAY_MS = 1_000;
