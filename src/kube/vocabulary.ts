/**
 * The names other tools rely on (DESIGN.md section 2), on the bottom floor
 * so that locks/, journal/ and transactions/ share them without importing
 * each other.
 */
export const GROUP = "kubetx.io";
export const VERSION = "v1alpha1";

export const ANNOTATION_TRANSACTION = "kubetx.io/transaction";
export const ANNOTATION_EXPECTED_MEMBERS = "kubetx.io/expected-members";
export const LABEL_ROLE = "kubetx.io/role";
export const LABEL_TRANSACTION = "kubetx.io/transaction";
/**
 * On lock Leases: a digest of the requester's user name (label values
 * cannot hold `:` or `@`), so one label-selected list counts what a user
 * holds (the per-user limits).
 */
export const LABEL_USER = "kubetx.io/user";
/** On a Transaction record once it is Committed, RolledBack or Failed. */
export const LABEL_RESOLVED = "kubetx.io/resolved";

/** What kubetx's requests say they are, unless one says more (restoreUserAgent). */
export const USER_AGENT = "kubetx";

/**
 * The User-Agent of kubetx's restore writes (a rollback's, an undo's). The
 * apiserver's audit log records it with each request, so `kubectl tx
 * audit` can show those writes with the transaction they were made for.
 */
export function restoreUserAgent(transaction: string): string {
  return `${USER_AGENT}/restore (transaction ${transaction})`;
}

const RESTORE_USER_AGENT = /^kubetx\/restore \(transaction ([a-z0-9][a-z0-9.-]{0,252})\)$/;

/** The transaction a restore write's User-Agent names, if it is one (restoreUserAgent). */
export function restoredTransactionOf(userAgent: string | undefined): string | undefined {
  return RESTORE_USER_AGENT.exec(userAgent ?? "")?.[1];
}

/** The writes a transaction takes part in. */
export type MemberOperation = "CREATE" | "UPDATE" | "DELETE";
