/**
 * Which writes kubetx takes part in, shared by /validate and /observe:
 * a transaction named by annotation, the requester's transparent
 * transaction, or none (pass through untouched).
 */
import type { KubeObject } from "../kube/types.ts";
import type { Transaction } from "../transactions/model.ts";
import type { NamespaceLabels } from "../policy/namespaces.ts";
import type { PolicyView } from "../policy/combine.ts";
import { ANNOTATION_TRANSACTION } from "../transactions/model.ts";
import type { PolicyMode } from "../policy/policy.ts";
import type { AdmissionRequest, UserInfo } from "./review.ts";

/** `kubetx.io/transaction: none` opts one object out, e.g. to delete it outside any transaction. */
export const OPT_OUT = "none";

export type Scope =
  | { readonly kind: "pass"; readonly reason: string }
  /** `record`: the transaction's record when the scope was found by reading it (continued.ts). */
  | { readonly kind: "explicit"; readonly transaction: string; readonly record?: Transaction }
  | { readonly kind: "transparent" }
  /** Explicit mode, no transaction named: joins the requester's open transaction if there is one (kubectl tx apply --prune deletes). */
  | { readonly kind: "session-only" };

export interface ScopeDeps {
  readonly namespaces: NamespaceLabels;
  readonly policy: () => PolicyView;
  /** kubetx's own user: its rollback writes are never transactional. */
  readonly selfUsername: string;
}

export async function scopeOf(request: AdmissionRequest, deps: ScopeDeps): Promise<Scope> {
  const quick = quickPass(request, deps.selfUsername);
  if (quick) return { kind: "pass", reason: quick };
  const mode = await policyMode(deps, { namespace: request.namespace ?? "", ...request.resource }, request.userInfo);
  if (mode === "off") return { kind: "pass", reason: "no policy covers it" };
  const named = namedTransaction(request);
  if (named === OPT_OUT) return { kind: "pass", reason: "object opted out" };
  if (named) return { kind: "explicit", transaction: named };
  return mode === "transparent" ? { kind: "transparent" } : { kind: "session-only" };
}

/** A namespace's name is a DNS label (RFC 1123): at most 63 lower-case letters, digits and '-', starting and ending alphanumeric. */
const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** How the policies treat a requester's writes of a namespaced resource. */
export async function policyMode(deps: ScopeDeps, target: { namespace: string; group: string; resource: string }, requester: UserInfo): Promise<PolicyMode> {
  if (requester.username === deps.selfUsername) return "off";
  // No namespace can have another name; asking the apiserver for one (an audit event's, say) only earns an error.
  if (!NAMESPACE_NAME.test(target.namespace)) return "off";
  const labels = await deps.namespaces.labelsOf(target.namespace);
  return deps.policy().modeFor(labels, target.group, target.resource, requester);
}

/**
 * The transaction a write names. The annotation stays on an object after
 * its transaction ends, so it only counts when this write sets or changes
 * it; a delete names none (its object carries the last one), except the
 * opt-out `none`, which always counts.
 */
export function namedTransaction(request: AdmissionRequest): string | undefined {
  const now = request.object?.metadata?.annotations?.[ANNOTATION_TRANSACTION];
  const before = request.oldObject?.metadata?.annotations?.[ANNOTATION_TRANSACTION];
  if (request.operation === "DELETE") return before === OPT_OUT ? OPT_OUT : undefined;
  if (now === OPT_OUT) return OPT_OUT;
  if (request.operation === "UPDATE" && now === before) return undefined;
  return now;
}

/** Reasons to pass that need no lookup. */
function quickPass(request: AdmissionRequest, self: string): string | undefined {
  if (request.subResource) return "subresource";
  if (request.operation === "CONNECT") return "connect";
  if (request.userInfo.username === self) return "kubetx itself";
  if (!request.namespace) return "cluster-scoped";
  return undefined;
}

/** An annotation of the object written (for DELETE, of the object being deleted). */
export function annotationOf(request: AdmissionRequest, key: string): string | undefined {
  const source: KubeObject | null | undefined = request.operation === "DELETE" ? request.oldObject : request.object;
  return source?.metadata?.annotations?.[key];
}

export function fieldManagerOf(request: AdmissionRequest): string | undefined {
  const manager = request.options?.fieldManager;
  return typeof manager === "string" && manager !== "" ? manager : undefined;
}
