/**
 * apiserver audit events (audit.k8s.io/v1, one JSON object per log line or
 * one item of a webhook EventList), who made each and which object it
 * names, and the compact entry kept of one. Pure. The audit sink and
 * `kubectl tx audit` both read events here, so both see the same requester
 * and the same object; `rules.ts` judges the entry.
 */

import { KUBETX_NAMESPACE } from "../kube/names.ts";
import { restoredTransactionOf } from "../kube/vocabulary.ts";
import { transactionOfUserAgent } from "../transactions/model.ts";

/** The fields of an audit Event that the reader uses; Metadata level has no bodies. */
export interface AuditEvent {
  readonly auditID?: string;
  readonly stage?: string;
  readonly verb?: string;
  readonly user?: { readonly username?: string; readonly uid?: string; readonly groups?: readonly string[] };
  /** Set when the request impersonated another user: that user is the one admission saw. */
  readonly impersonatedUser?: { readonly username?: string; readonly uid?: string; readonly groups?: readonly string[] };
  /** Path and query: `?dryRun=All`, `?fieldManager=kubectl-client-side-apply`. */
  readonly requestURI?: string;
  readonly requestReceivedTimestamp?: string;
  readonly objectRef?: {
    readonly apiGroup?: string;
    readonly resource?: string;
    readonly subresource?: string;
    readonly namespace?: string;
    readonly name?: string;
  };
  /**
   * details.retryAfterSeconds: the apiserver sent Retry-After with the
   * answer, and client-go sends the request again by itself.
   * details.causes[].reason (a cause's type): `FieldManagerConflict` for a
   * server-side apply that met another manager's fields.
   */
  readonly responseStatus?: {
    readonly code?: number;
    readonly message?: string;
    readonly reason?: string;
    readonly details?: { readonly retryAfterSeconds?: number; readonly causes?: readonly { readonly reason?: string }[] };
  };
  readonly stageTimestamp?: string;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly userAgent?: string;
}

/** One request, as much of it as a review shows. */
export interface AuditEntry {
  readonly auditID: string;
  /** stageTimestamp as the apiserver wrote it (RFC 3339, microseconds). */
  readonly time: string;
  readonly timeMs: number;
  /** The requester's name as admission saw it (requesterOf): the impersonated user, if the request impersonated; "" if none. */
  readonly user: string;
  readonly verb: string;
  /** `configmaps shop/settings`, `apps/deployments shop/web`, or the request's resource alone. */
  readonly object: string;
  /** Set when the request names an object kubetx's webhooks can cover (writeTargetOf). */
  readonly target?: WriteTarget;
  readonly code: number;
  /** kubetx's audit annotations (the apiserver prefixes each key with the webhook name). */
  readonly transaction?: string;
  readonly decision?: string;
  readonly lock?: string;
  /** True when a kubetx webhook answered the request (any kubetx annotation), even one that joined no transaction. */
  readonly seenByKubetx: boolean;
  /** The apiserver's message for a failed request: why it was rejected. */
  readonly message?: string;
  /** The apiserver's reason for a failed request (`Conflict`, `Invalid`, `BadRequest`, ...). */
  readonly reason?: string;
  /** Sent with Retry-After (responseStatus.details.retryAfterSeconds). */
  readonly retryAfterSeconds?: number;
  /** A 409 of a server-side apply that met another field manager's fields: final, unlike a resourceVersion conflict, which the client retries. */
  readonly fieldManagerConflict?: boolean;
  /** A server-side dry run: it changed nothing, whatever its outcome. */
  readonly dryRun: boolean;
  /** A write kubetx made to restore an object for this transaction (its rollback, or an undo): restoreOf. */
  readonly restoreFor?: string;
  /** The transaction whose kubectl made the request: kubectl tx apply runs kubectl under a name that says so (kubectlNameFor). */
  readonly kubectlFor?: string;
}

/** Only the event written once the response is complete has the response code and every annotation. */
export const COMPLETE_STAGE = "ResponseComplete";
/** kubetx's annotation names, after the webhook-name prefix (DESIGN.md section 2). */
const KUBETX_KEYS: ReadonlySet<string> = new Set(["transaction", "decision", "lock"]);
/** Enough of a rejection message to say why; a rejected huge object must not make a huge entry. */
export const MESSAGE_MAX_CHARS = 500;

/**
 * Annotation prefixes Kubernetes itself writes (`authorization.k8s.io/decision`,
 * `mutation.webhook.admission.k8s.io/...`); a webhook's prefix is its own name.
 */
function isKubernetesPrefix(prefix: string): boolean {
  return ["k8s.io", "kubernetes.io"].some((domain) => prefix === domain || prefix.endsWith(`.${domain}`));
}

export interface KubetxAnnotations {
  readonly transaction?: string;
  readonly decision?: string;
  readonly lock?: string;
  readonly seen: boolean;
}

/**
 * kubetx's audit annotations on one event: `<webhook>/transaction`,
 * `<webhook>/decision` and `<webhook>/lock`, where `<webhook>` is the
 * name of the kubetx webhook that answered (`validate.kubetx.io`, ...).
 */
export function kubetxAnnotations(annotations: Readonly<Record<string, string>> | undefined): KubetxAnnotations {
  const found: { transaction?: string; decision?: string; lock?: string } = {};
  let seen = false;
  for (const [key, value] of Object.entries(annotations ?? {})) {
    const slash = key.lastIndexOf("/");
    const name = key.slice(slash + 1);
    if (slash <= 0 || !KUBETX_KEYS.has(name) || isKubernetesPrefix(key.slice(0, slash))) continue;
    seen = true;
    found[name as keyof typeof found] ??= value;
  }
  return { ...found, seen };
}

/** Who made a request; the shape of the coordinator's Requester, so the sink hands it on as it is. */
export interface EventRequester {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
}

/** The user admission saw: the impersonated one, if the request impersonated. */
export function requesterOf(event: AuditEvent): EventRequester | undefined {
  const user = event.impersonatedUser ?? event.user;
  if (!user?.username) return undefined;
  return { username: user.username, ...(user.uid ? { uid: user.uid } : {}), ...(user.groups ? { groups: [...user.groups] } : {}) };
}

/** A namespaced object itself: the only kind of object a kubetx webhook rule selects (webhooks/coverage.ts). */
export interface WriteTarget {
  readonly namespace: string;
  /** "" for the core group. */
  readonly group: string;
  readonly resource: string;
}

/**
 * The object the request names, when kubetx could cover it; undefined for
 * a subresource (`deployments/scale`, `pods/status`) and a cluster-scoped
 * object (`namespaces`), which no kubetx webhook rule selects.
 */
export function writeTargetOf(event: AuditEvent): WriteTarget | undefined {
  const ref = event.objectRef;
  if (!ref?.namespace || !ref.resource || ref.subresource) return undefined;
  return { namespace: ref.namespace, group: ref.apiGroup ?? "", resource: ref.resource };
}

/** A server-side dry run (`?dryRun=All`): it changes nothing, whatever its outcome. */
export function isDryRun(event: AuditEvent): boolean {
  return /[?&]dryRun=/.test(event.requestURI ?? "");
}

/** `configmaps shop/settings` (`configmaps in shop` for a collection): the way kubectl tx names an object everywhere. */
export function objectOf(ref: AuditEvent["objectRef"]): string {
  if (!ref?.resource) return "-";
  const resource = `${ref.apiGroup ? `${ref.apiGroup}/` : ""}${ref.resource}${ref.subresource ? `/${ref.subresource}` : ""}`;
  if (!ref.name) return ref.namespace ? `${resource} in ${ref.namespace}` : resource;
  return `${resource} ${ref.namespace ? `${ref.namespace}/` : ""}${ref.name}`;
}

function failureMessage(event: AuditEvent): string | undefined {
  const message = event.responseStatus?.message;
  if (!message) return undefined;
  return message.length > MESSAGE_MAX_CHARS ? `${message.slice(0, MESSAGE_MAX_CHARS - 3)}...` : message;
}

/**
 * An audit event read from untrusted JSON (a log line, an EventList from
 * the network): only fields of the expected type are kept, so nothing
 * downstream meets a number where it expects a string.
 */
export function auditEventOf(value: unknown): AuditEvent {
  const raw = record(value);
  const ref = record(raw.objectRef);
  const status = record(raw.responseStatus);
  const details = record(status.details);
  const retryAfter = details.retryAfterSeconds;
  const causes = Array.isArray(details.causes) ? details.causes.map((c) => ({ reason: str(record(c).reason) })) : undefined;
  const event: Record<string, unknown> = {
    auditID: str(raw.auditID), stage: str(raw.stage), verb: str(raw.verb), requestURI: str(raw.requestURI),
    requestReceivedTimestamp: str(raw.requestReceivedTimestamp), stageTimestamp: str(raw.stageTimestamp),
    user: userOf(raw.user), impersonatedUser: raw.impersonatedUser === undefined ? undefined : userOf(raw.impersonatedUser),
    objectRef: { apiGroup: str(ref.apiGroup), resource: str(ref.resource), subresource: str(ref.subresource), namespace: str(ref.namespace), name: str(ref.name) },
    responseStatus: { code: typeof status.code === "number" ? status.code : undefined, message: str(status.message), reason: str(status.reason), details: { retryAfterSeconds: typeof retryAfter === "number" ? retryAfter : undefined, causes } },
    annotations: Object.fromEntries(Object.entries(record(raw.annotations)).filter((e): e is [string, string] => typeof e[1] === "string")),
    userAgent: str(raw.userAgent),
  };
  return JSON.parse(JSON.stringify(event)) as AuditEvent;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function userOf(value: unknown): AuditEvent["user"] {
  const user = record(value);
  const groups = Array.isArray(user.groups) ? user.groups.filter((g): g is string => typeof g === "string") : undefined;
  return { username: str(user.username), uid: str(user.uid), groups };
}

/** The entry for a complete request; undefined for other stages and events without a usable time. */
export function entryOf(value: unknown): AuditEntry | undefined {
  const event = auditEventOf(value);
  if (event.stage !== COMPLETE_STAGE || !event.stageTimestamp) return undefined;
  const timeMs = Date.parse(event.stageTimestamp);
  if (Number.isNaN(timeMs)) return undefined;
  const code = event.responseStatus?.code ?? 0;
  const { seen, ...kubetx } = kubetxAnnotations(event.annotations);
  const target = writeTargetOf(event);
  return {
    auditID: event.auditID ?? fallbackId(event),
    time: event.stageTimestamp,
    timeMs,
    user: requesterOf(event)?.username ?? "",
    verb: event.verb ?? "",
    object: objectOf(event.objectRef),
    ...(target ? { target } : {}),
    code,
    ...kubetx,
    seenByKubetx: seen,
    dryRun: isDryRun(event),
    ...optionalRestore(restoreOf(event)),
    ...optionalKubectl(transactionOfUserAgent(event.userAgent)),
    ...(code >= 400 ? failureOf(event) : {}),
  };
}

/** kubetx's own service accounts live in its namespace; only theirs may claim to restore (anyone can set a User-Agent). */
const KUBETX_ACCOUNTS = `system:serviceaccount:${KUBETX_NAMESPACE}:`;

/**
 * The transaction a write restored an object for: a write by one of
 * kubetx's service accounts whose User-Agent says so (restoreUserAgent).
 */
export function restoreOf(event: AuditEvent): string | undefined {
  if (!event.user?.username?.startsWith(KUBETX_ACCOUNTS) || event.impersonatedUser) return undefined;
  return restoredTransactionOf(event.userAgent);
}

function optionalRestore(transaction: string | undefined): { restoreFor?: string } {
  return transaction === undefined ? {} : { restoreFor: transaction };
}

function optionalKubectl(transaction: string | undefined): { kubectlFor?: string } {
  return transaction === undefined ? {} : { kubectlFor: transaction };
}

/** Events without an auditID (hand-written logs) are still told apart by time, verb and object. */
function fallbackId(event: AuditEvent): string {
  return `${event.stageTimestamp ?? ""} ${event.verb ?? ""} ${objectOf(event.objectRef)}`;
}

function failureOf(event: AuditEvent): Pick<AuditEntry, "message" | "reason" | "retryAfterSeconds" | "fieldManagerConflict"> {
  const message = failureMessage(event);
  const reason = event.responseStatus?.reason;
  const retryAfterSeconds = event.responseStatus?.details?.retryAfterSeconds;
  const fieldManagerConflict = event.responseStatus?.details?.causes?.some((c) => c.reason === "FieldManagerConflict") === true;
  return { ...(message ? { message } : {}), ...(reason ? { reason } : {}), ...(retryAfterSeconds ? { retryAfterSeconds } : {}), ...(fieldManagerConflict ? { fieldManagerConflict } : {}) };
}
