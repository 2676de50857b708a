/** What kubectl tx tells kubetx, and what it tells the user: pure formatting. */
import { describeRef } from "../../kube/types.ts";
import type { KubeObject } from "../../kube/types.ts";
import { ENABLED_LABEL } from "../../policy/policy.ts";
import { EXCLUDED_NAMESPACES } from "../../webhooks/coverage.ts";
import type { ClientState, MemberSummary, Transaction } from "../../transactions/model.ts";
import { EXIT } from "./errors.ts";
import { CLIENT_MESSAGE_MAX_CHARS, STDERR_KEEP_CHARS, stderrTail, withoutWarnings } from "./kubectl.ts";

export interface ClientStatePatch {
  readonly spec: { readonly clientState: ClientState; readonly clientMessage?: string; readonly clientSettled?: true };
}

/**
 * Errors after which a request of kubectl's may still go on in an
 * apiserver: a lost or cancelled connection, a timeout on either side
 * (the apiserver's own 504 leaves the request running), an apiserver in
 * trouble. Broad on purpose: a false match only keeps the rollback's
 * longer hold.
 */
const UNSETTLING_ERROR = /timeout|timed out|deadline|EOF|connect|http2|broken pipe|TLS|i\/o|cancel|closed|unavailable|internal ?error/i;

/**
 * Whether kubectl exited with every request it sent answered: on its own
 * (not by a signal, which `failure` says, nor unable to run), and with no
 * error that leaves a request of it going on (kubetx then need not wait
 * for a write of it that may still land: spec.clientSettled). Pure.
 */
export function settled(result: { readonly code: number; readonly stderr: string; readonly failure?: string }): boolean {
  if (result.failure !== undefined) return false;
  if (result.code === 0) return true;
  const errors = withoutWarnings(result.stderr);
  return result.stderr.length < STDERR_KEEP_CHARS && !UNSETTLING_ERROR.test(errors);
}

/** The merge patch that tells kubetx how kubectl ended: on failure, the last lines of kubectl's errors. */
export function clientStatePatch(result: { readonly code: number; readonly stderr: string; readonly failure?: string }): ClientStatePatch {
  const done = settled(result) ? { clientSettled: true as const } : {};
  if (result.code === 0) return { spec: { clientState: "Applied", ...done } };
  const message = stderrTail(withoutWarnings(result.stderr)).trim() || `kubectl apply exited with code ${result.code}`;
  return { spec: { clientState: "Failed", clientMessage: message.slice(-CLIENT_MESSAGE_MAX_CHARS), ...done } };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** `  CREATE configmaps shop/settings: Committed`, with the member's message when it has one. */
export function memberLine(member: MemberSummary): string {
  const message = member.message ? ` (${member.message})` : "";
  return `  ${member.operation} ${describeRef(member)}: ${member.outcome}${message}`;
}

/**
 * `reason: message`; a message of several lines (kubectl's errors)
 * continues indented under the first. A rollback a member's failure caused
 * gives the failure: the record's message only sums it up.
 */
function why(transaction: Transaction): string {
  const s = transaction.status;
  const detail = s?.phase === "RolledBack" ? s.failure ?? s.message : s?.message;
  const parts = [s?.reason, detail?.trim()].filter((part) => part !== undefined && part !== "");
  return parts.length > 0 ? parts.join(": ").split("\n").join("\n    ") : "kubetx recorded no reason";
}

function committedLine(id: string, count: number): string {
  return `transaction ${id} committed: ${plural(count, "member")}`;
}

/**
 * kubectl applied everything and not one write went through kubetx: no
 * policy covers where the objects went (or it exempts the user or their
 * kinds). Such a record says nothing, so kubectl tx deletes it and says
 * why instead (uncoveredLines). A rollback with no member is not one of
 * these: kubectl may have failed before its first write.
 */
export function isUncovered(transaction: Transaction): boolean {
  const status = transaction.status;
  return status?.phase === "Committed" && (status.memberCount ?? status.members?.length ?? 0) === 0;
}

/**
 * Kinds without a namespace that kubectl users apply most. kubectl tx reads
 * no API discovery: an object of another cluster-scoped kind counts as
 * going to -n's (or the context's) namespace.
 */
const CLUSTER_SCOPED_KINDS: ReadonlySet<string> = new Set([
  "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass", "PersistentVolume", "PriorityClass",
  "IngressClass", "RuntimeClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "TransactionPolicy",
]);

/** Where kubectl puts the namespaced objects: their own namespace, else -n; undefined is the kubeconfig context's. Pure. */
export function targetNamespaces(objects: readonly KubeObject[], namespace: string | undefined): (string | undefined)[] {
  const namespaced = objects.filter((o) => o.metadata?.namespace !== undefined || !CLUSTER_SCOPED_KINDS.has(o.kind ?? ""));
  return [...new Set(namespaced.map((o) => o.metadata?.namespace ?? namespace))];
}

/**
 * A warning (stderr) for the objects of the apply of a kind without a
 * namespace: kubetx takes part in no such write, so they are outside the
 * transaction, and a rollback leaves them as kubectl did. Empty when there
 * are none. Pure.
 */
export function clusterScopedLines(objects: readonly KubeObject[], transaction: Transaction): string[] {
  const named = objects.filter((o) => o.metadata?.namespace === undefined && CLUSTER_SCOPED_KINDS.has(o.kind ?? "")).map((o) => `${(o.kind ?? "").toLowerCase()}/${o.metadata?.name ?? ""}`);
  if (named.length === 0) return [];
  const [one, id] = [named.length === 1, transaction.metadata?.name ?? ""];
  const kept = transaction.status?.phase === "RolledBack" ? `, and ${one ? "it stays" : "they stay"} as kubectl left ${one ? "it" : "them"}` : "";
  return [`kubectl tx: ${named.join(", ")} ${one ? "is" : "are"} cluster-scoped, and kubetx takes part in no write of such an object: not part of transaction ${id}${kept}`];
}

/** Never sent to kubetx, whatever the policies say (webhooks/coverage.ts): no label opts them in. */
function neverCovered(namespace: string | undefined): boolean {
  return namespace !== undefined && EXCLUDED_NAMESPACES.includes(namespace);
}

/** `namespace shop`, `namespaces shop, web and your kubeconfig context's namespace`. */
function where(namespaces: readonly (string | undefined)[]): string {
  const named = namespaces.filter((n): n is string => n !== undefined);
  return [
    ...(named.length > 0 ? [`${named.length === 1 ? "namespace" : "namespaces"} ${named.join(", ")}`] : []),
    ...(named.length < namespaces.length ? ["your kubeconfig context's namespace"] : []),
  ].join(" and ");
}

/**
 * Why kubetx took no part in writes to `namespaces`: the policies, which
 * an admin can change, or kubetx's fixed exclusions, which no one can.
 */
function whyOutside(namespaces: readonly (string | undefined)[]): { readonly why: string; readonly optIn: (string | undefined)[] } {
  const never = namespaces.filter(neverCovered);
  const optIn = namespaces.filter((n) => !neverCovered(n));
  const why = [
    ...(optIn.length > 0 ? [`no TransactionPolicy covers ${where(optIn)} (or it exempts you or these kinds)`] : []),
    ...(never.length > 0 ? [`kubetx never covers ${where(never)} (the control plane's namespaces and kubetx's own, so that a kubetx outage cannot block them)`] : []),
  ].join(", and ");
  return { why, optIn };
}

/**
 * How an admin opts the namespaces in. --overwrite: a namespace labelled
 * kubetx.io/enabled=false (opted out) needs it, and it does no harm to one
 * without the label.
 */
function optInLine(namespaces: readonly (string | undefined)[]): string {
  const only = namespaces.length === 1 ? namespaces[0] : undefined;
  return `  to make applies there all-or-nothing, a cluster admin opts the namespace in (default policy): kubectl label namespace ${only ?? "NAMESPACE"} ${ENABLED_LABEL}=true --overwrite`;
}

/** What kubectl tx prints (stdout) in place of a transaction's outcome when kubetx took part in none of the writes. Pure. */
export function uncoveredLines(namespaces: readonly (string | undefined)[]): string[] {
  const { why, optIn } = whyOutside(namespaces);
  return [
    `no transaction: ${why}, so kubetx took part in none of these writes: ` +
      "kubectl applied them as plain kubectl apply does, not all-or-nothing, and kubectl tx kept no Transaction record",
    ...(optIn.length > 0 ? [optInLine(optIn)] : []),
  ];
}

/** The namespaces of a transaction's members. */
function memberNamespaces(transaction: Transaction): Set<string> {
  const s = transaction.status;
  return new Set([...(s?.namespaces ?? []), ...(s?.members ?? []).flatMap((m) => (m.namespace ? [m.namespace] : []))]);
}

/**
 * Warnings (stderr) for an apply some of whose namespaces no member of the
 * transaction came from: what kubectl wrote there was no part of it. The
 * context's namespace, whose name kubectl tx does not know, counts as
 * joined when a member came from a namespace no object names. Pure.
 */
export function outsideLines(transaction: Transaction, namespaces: readonly (string | undefined)[]): string[] {
  const joined = memberNamespaces(transaction);
  if (joined.size === 0) return [];
  const named = new Set(namespaces.filter((n): n is string => n !== undefined));
  const contextJoined = [...joined].some((n) => !named.has(n));
  const outside = namespaces.filter((n) => (n === undefined ? !contextJoined : !joined.has(n)));
  if (outside.length === 0) return [];
  const id = transaction.metadata?.name ?? "";
  const fate = transaction.status?.phase === "RolledBack" ? "they were not rolled back with it" : "they are not all-or-nothing with the rest";
  const { why, optIn } = whyOutside(outside);
  return [
    `kubectl tx: the objects in ${where(outside)} were not part of transaction ${id}: ${why}, or kubectl wrote none of them (unchanged, or it stopped first); ` +
      `whatever kubectl wrote there it applied as plain kubectl apply does, and ${fate}`,
    ...(optIn.length > 0 ? [optInLine(optIn)] : []),
  ];
}

export interface Outcome {
  readonly lines: string[];
  readonly exitCode: number;
}

/** The report of a resolved transaction and kubectl tx's exit code for it. */
export function formatOutcome(transaction: Transaction): Outcome {
  const id = transaction.metadata?.name ?? "";
  const members = transaction.status?.members ?? [];
  const memberLines = members.map(memberLine);
  switch (transaction.status?.phase) {
    case "Committed":
      return { lines: [committedLine(id, transaction.status.memberCount ?? members.length), ...memberLines], exitCode: EXIT.ok };
    case "RolledBack":
      return { lines: [`transaction ${id} rolled back: ${why(transaction)}`, ...memberLines], exitCode: EXIT.failed };
    default:
      return {
        lines: [
          `transaction ${id} failed: ${why(transaction)}`,
          ...memberLines,
          `kubetx keeps the locks of ${id} until an admin resolves it; see kubectl get transaction ${id} -o yaml`,
        ],
        exitCode: EXIT.failed,
      };
  }
}

/** The line printed every few seconds while kubectl tx waits. */
export function progressLine(id: string, transaction: Transaction | undefined, waitedMs: number): string {
  const phase = transaction?.status?.phase ?? "not yet picked up by kubetx";
  const members = transaction?.status?.memberCount;
  const count = members === undefined ? "" : `, ${plural(members, "member")}`;
  return `kubectl tx: waiting for transaction ${id} (${phase}${count}, ${Math.round(waitedMs / 1000)} s)`;
}
