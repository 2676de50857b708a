/**
 * Which writes kubetx takes part in, shared by /validate and /observe:
 * a transaction named by annotation, the requester's transparent
 * transaction, or none (pass through untouched).
 */
import type { KubeObject } from "../kube/types.ts";
import type { NamespaceLabels } from "../policy/namespaces.ts";
import type { Policy } from "../policy/policy.ts";
import { isExempt, selectorMatches } from "../policy/policy.ts";
import { ANNOTATION_TRANSACTION } from "../transactions/model.ts";
import type { AdmissionRequest } from "./review.ts";

/** `kubetx.io/transaction: none` opts one object out, e.g. to delete it outside any transaction. */
export const OPT_OUT = "none";

export type Scope =
  | { readonly kind: "pass"; readonly reason: string }
  | { readonly kind: "explicit"; readonly transaction: string }
  | { readonly kind: "transparent" };

export interface ScopeDeps {
  readonly namespaces: NamespaceLabels;
  readonly policy: () => Policy;
  /** kubetx's own user: its rollback writes are never transactional. */
  readonly selfUsername: string;
}

export async function scopeOf(request: AdmissionRequest, deps: ScopeDeps): Promise<Scope> {
  const policy = deps.policy();
  const quick = quickPass(request, policy, deps.selfUsername);
  if (quick) return { kind: "pass", reason: quick };
  const labels = await deps.namespaces.labelsOf(request.namespace ?? "");
  if (!selectorMatches(policy.namespaceSelector, labels)) return { kind: "pass", reason: "namespace not covered" };
  const named = annotationOf(request, ANNOTATION_TRANSACTION);
  if (named === OPT_OUT) return { kind: "pass", reason: "object opted out" };
  if (named) return { kind: "explicit", transaction: named };
  return policy.mode === "transparent" ? { kind: "transparent" } : { kind: "pass", reason: "no transaction named" };
}

/** Reasons to pass that need no lookup. */
function quickPass(request: AdmissionRequest, policy: Policy, self: string): string | undefined {
  if (policy.mode === "off") return "policy mode off";
  if (request.subResource) return "subresource";
  if (request.operation === "CONNECT") return "connect";
  if (request.userInfo.username === self) return "kubetx itself";
  if (isExempt(policy, request.userInfo)) return "exempt requester";
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
