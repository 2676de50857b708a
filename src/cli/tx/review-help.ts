/** The help texts of kubectl tx as a whole and of its review commands. Each sentence is a promise the code keeps. */
import { DEFAULT_REJECTION_WINDOW } from "../../audit/group.ts";

/** `2 s`: a window as the help text states it, from the constant the code uses. */
function seconds(ms: number): string {
  return `${ms / 1000} s`;
}

export const TOP_HELP = `kubectl tx: all-or-nothing kubectl apply (kubetx), and what it did

Usage:
  kubectl tx apply -f FILE|DIR [flags]   apply as one transaction
  kubectl tx list [flags]                transactions, newest first
  kubectl tx describe ID [flags]         one transaction and its members
  kubectl tx locks [flags]               objects kubetx holds locked, and for whom
  kubectl tx audit --log FILE [flags]    transactions in the apiserver's audit log
  kubectl tx undo ID [flags]             revert a committed transaction
  kubectl tx version [--client]          the plugin's version, and kubetx's in the cluster
  kubectl tx COMMAND --help              the flags of a command
  kubectl tx --help                      this text

kubetx must be installed in the cluster: it is the admission webhook that
holds the objects' locks and rolls back every member of a transaction when
one fails. Where kubetx's policy does not cover a namespace, kubectl applies
there as it always does (kubectl tx apply says so, and keeps no record).

Exit codes of apply and undo: 0 committed, 1 rolled back, refused or
failed, 2 usage error, 3 kubetx did not resolve the transaction in time. Of list, describe, locks
and audit: 0 shown, 1 could not read what was asked for, 2 usage error.
`;

const CLUSTER_FLAGS = `      --kubeconfig FILE    the kubeconfig to use (default: as kubectl picks it)
      --context NAME       the kubeconfig context to use`;

export const LIST_HELP = `kubectl tx list: kubetx's Transaction records, newest first

Usage:
  kubectl tx list [--all | --user USER] [-n NS | -A] [--phase PHASE]
                  [--since DURATION] [-o table|json] [--kubeconfig FILE]
                  [--context NAME]

Flags:
      --all                everyone's transactions, not only yours (needs the
                           kubetx:viewer role, or cluster admin)
      --user USER          only transactions of USER (spec.user); another
                           user's need kubetx:viewer too
  -n, --namespace NS       only transactions with a member in namespace NS
                           (open ones too: kubetx notes their namespaces
                           as members arrive)
  -A, --all-namespaces     transactions with members in any namespace, the
                           default; overrides -n, as in kubectl (everyone's
                           transactions is --all)
      --phase PHASE        only transactions in PHASE: Open, Verifying,
                           Committed, RollingBack, RolledBack or Failed
                           (any letter case); Open includes those kubetx
                           has not picked up yet (PHASE -)
      --since DURATION     only transactions created within DURATION:
                           90, 30s, 15m, 2h, 1h30m
  -o, --output FORMAT      table (default) or json
${CLUSTER_FLAGS}

Table columns: ID, USER, MODE (explicit, plugin or transparent), PHASE
("-" until kubetx has seen a member), MEMBERS, AGE, REASON (why it ended).
JSON: an array of {id, user, mode, phase, members, created, reason},
newest first; phase and reason are null until kubetx sets them.

Without --all it lists your own, asking the apiserver for
spec.user=<you> (kubectl get tx --field-selector spec.user=<you>), which
kubetx's authorization webhook allows every user; where the cluster does
not call that webhook, ask an admin for kubetx:viewer, and use
'kubectl tx describe ID' meanwhile (every user may read a record by id).
`;

export const DESCRIBE_HELP = `kubectl tx describe: one transaction, and what happened to each member

Usage:
  kubectl tx describe ID [-o table|json] [--kubeconfig FILE] [--context NAME]

Shows the Transaction record ID: its user, mode, phase, reason, message
(and failure, expected members and kubectl's reported state when set),
when it opened, closed and was resolved, and the kubetx replica that
coordinated it; then one line per member: operation, object
(group/resource namespace/name), outcome (Pending, Persisted, Committed,
NotPersisted, Restored, Unchanged or Failed) and kubetx's message for it
(for a restored member: what kubetx did to restore it).

Flags:
  -o, --output FORMAT      table (default) or json: {id, user, mode, phase,
                           reason, message, failure, expectedMembers,
                           clientState, openedAt, closedAt, resolvedAt,
                           coordinator, members: [{operation, object, group,
                           version, resource, namespace, name, kind,
                           outcome, message}]}; absent fields are null
${CLUSTER_FLAGS}
`;

export const LOCKS_HELP = `kubectl tx locks: which objects kubetx holds locked, for which transaction

Usage:
  kubectl tx locks [-o table|json] [--kubeconfig FILE] [--context NAME]

kubetx locks every object a transaction writes with a Lease in
kubetx-system (label kubetx.io/role=lock) and keeps it until the
transaction commits or rolls back; a Failed transaction keeps its locks
until an admin resolves it.

Table columns: OBJECT, TRANSACTION, PHASE (the transaction's; "-" when its
record cannot be read), USER, OPERATION, ACQUIRED (time, UTC, and how long
ago), LEASE (the Lease's duration: kubetx's lock TTL), oldest first. JSON: an array of {object,
group, resource, namespace, name, transaction, phase, user, operation,
acquired, leaseDurationSeconds, lease}.

Flags:
  -o, --output FORMAT      table (default) or json
${CLUSTER_FLAGS}

Reading kubetx-system needs an admin kubeconfig, or a role that grants get
and list on leases (coordination.k8s.io) in kubetx-system: the users kubetx
serves may not read it.
`;

export const AUDIT_HELP = `kubectl tx audit: what the apiserver's audit log says each transaction did

Usage:
  kubectl tx audit --log FILE [--log FILE ...] [--transaction ID]
                   [--user USER] [-o table|json]

Reads apiserver audit logs (its --audit-log-path: JSON lines, one
audit.k8s.io/v1 Event each, at level Metadata or above), plain or gzipped
(rotated files too, in any order), line by line: a log of any size needs
little memory. Only ResponseComplete events count, and an event found in
two files (same auditID) counts once. Lines that are not JSON are skipped,
with a warning that says how many.

A request that a kubetx webhook annotated with a transaction (the apiserver
writes the annotation as <webhook>/transaction, e.g.
validate.kubetx.io/transaction) belongs to that transaction. A request's
user is the one admission saw: the impersonated user when the request
impersonated (kubectl --as), as on kubetx's Transaction records. The writes
by which kubetx restored objects (a rollback's, an undo's) are shown with
the transaction they were made for, with decision "restore": kubetx makes
them as its service account (in kubetx-system) with the User-Agent
"kubetx/restore (transaction ID)", which the audit log records.

A write rejected before kubetx is judged by the rule kubetx's audit sink
applies: a create, update, patch or delete that no kubetx webhook answered
and that failed with code 400 or above (the apiserver rejected it before
admission: a misspelt field, an invalid object, forbidden; or it failed
with 5xx), to a namespaced object itself (not a subresource such as
/scale or /status, not a cluster-scoped object: kubetx covers neither),
and not a dry run. Not an update or patch that failed with 409 Conflict:
kubectl re-reads the object and sends it again by itself. Not a create
that failed with 409 AlreadyExists: storage finds that after admission,
so kubetx would have seen it. Such a write of a transaction's user belongs
to the transaction when it came from ${seconds(DEFAULT_REJECTION_WINDOW.beforeMs)} before the transaction's first
request (the default quiet window) to ${seconds(DEFAULT_REJECTION_WINDOW.afterMs)} after its last (the quiet
window and the audit sink's default delay: as long as the transaction
stays open; a policy with another quietWindowSeconds moves both ends, and
this command reads no policy), marked "rejected before kubetx"; when two
transactions qualify, the nearer one (the later one on a tie) gets it.
A write made by kubectl tx apply's kubectl belongs to the transaction its
User-Agent names (kubectl@ID/...), when it is that user's, wherever it
falls in time.

Each transaction, oldest first, shows its requests in time order: TIME
(stageTimestamp, UTC), USER, VERB, OBJECT (resource namespace/name), CODE
(the response code), DECISION (kubetx's decision annotation: member,
denied, dry-run, record; or "rejected before kubetx") and MESSAGE (why a
request failed).

Flags:
      --log FILE           an audit log file; repeatable; at least one
      --transaction ID     only this transaction
      --user USER          only transactions with a request of USER
  -o, --output FORMAT      table (default) or json: an array of
                           {transaction, users, first, last, requests:
                           [{time, user, verb, object, code, decision, lock,
                           rejectedBeforeKubetx, message, auditID}]}

kubectl tx audit reads files only: it needs read access to the logs, and
no cluster access.
`;
