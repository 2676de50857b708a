/**
 * apiserver audit events (audit.k8s.io/v1, one JSON object per log line) and
 * the compact entry the reader keeps of one. Pure.
 */

/** The fields of an audit Event that the reader uses; Metadata level has no bodies. */
export interface AuditEvent {
  readonly auditID?: string;
  readonly stage?: string;
  readonly verb?: string;
  readonly user?: { readonly username?: string };
  readonly objectRef?: {
    readonly apiGroup?: string;
    readonly resource?: string;
    readonly subresource?: string;
    readonly namespace?: string;
    readonly name?: string;
  };
  readonly responseStatus?: { readonly code?: number; readonly message?: string };
  readonly stageTimestamp?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** One request, as much of it as a review shows. */
export interface AuditEntry {
  readonly auditID: string;
  /** stageTimestamp as the apiserver wrote it (RFC 3339, microseconds). */
  readonly time: string;
  readonly timeMs: number;
  readonly user: string;
  readonly verb: string;
  /** `configmaps shop/settings`, `apps/deployments shop/web`, or the request's resource alone. */
  readonly object: string;
  readonly code: number;
  /** kubetx's audit annotations (the apiserver prefixes each key with the webhook name). */
  readonly transaction?: string;
  readonly decision?: string;
  readonly lock?: string;
  /** True when a kubetx webhook answered the request (any kubetx annotation), even one that joined no transaction. */
  readonly seenByKubetx: boolean;
  /** The apiserver's message for a failed request: why it was rejected. */
  readonly message?: string;
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

/** The entry for a complete request; undefined for other stages and events without a usable time. */
export function entryOf(event: AuditEvent): AuditEntry | undefined {
  if (event.stage !== COMPLETE_STAGE || !event.stageTimestamp) return undefined;
  const timeMs = Date.parse(event.stageTimestamp);
  if (Number.isNaN(timeMs)) return undefined;
  const code = event.responseStatus?.code ?? 0;
  const { seen, ...kubetx } = kubetxAnnotations(event.annotations);
  return {
    auditID: event.auditID ?? `${event.stageTimestamp} ${event.verb ?? ""} ${objectOf(event.objectRef)}`,
    time: event.stageTimestamp,
    timeMs,
    user: event.user?.username ?? "",
    verb: event.verb ?? "",
    object: objectOf(event.objectRef),
    code,
    ...kubetx,
    seenByKubetx: seen,
    ...(code >= 400 ? { message: failureMessage(event) } : {}),
  };

}
