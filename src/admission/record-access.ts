/**
 * Who may list which Transaction records: kubetx as an authorization
 * webhook of the apiserver (POST /authorize, a SubjectAccessReview per
 * decision). RBAC grants a verb on a resource, never "only the objects
 * you own", so users get `get` from RBAC (kubetx:user) and `list` and
 * `watch` of everyone's records only through a role an admin grants
 * (kubetx:viewer). This webhook adds the one thing RBAC cannot say: a
 * user may list and watch the records whose `spec.user` is their own,
 * when the request says so with a field selector (`spec.user=alice`,
 * a selectable field of the CRD) that the apiserver then enforces.
 *
 * Anything else gets no opinion: the apiserver's other authorizers (RBAC)
 * decide, so this webhook can only add that one permission, never take
 * one away. Pure: parse and decide; the HTTP layer does the rest.
 */
import { GROUP } from "../kube/vocabulary.ts";
import { quoted } from "./review.ts";

export const AUTHORIZE_PATH = "/authorize";
/** The selectable field of transactions.kubetx.io that names the owner. */
export const OWNER_FIELD = "spec.user";

interface FieldRequirement {
  readonly key: string;
  readonly operator: string;
  readonly values?: readonly string[];
}

/** The parts of a SubjectAccessReview (authorization.k8s.io/v1) this decision reads. */
export interface AccessQuestion {
  readonly user: string;
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource: string;
  readonly fieldRequirements: readonly FieldRequirement[];
}

export interface AccessAnswer {
  readonly allowed: boolean;
  readonly reason: string;
}

export type ReviewParse = { readonly ok: true; readonly question: AccessQuestion } | { readonly ok: false; readonly reason: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** Checks the envelope; a non-resource request (no resourceAttributes) is a question too, answered with no opinion. */
export function parseSubjectAccessReview(body: unknown): ReviewParse {
  if (!isRecord(body)) return { ok: false, reason: "body is not a JSON object" };
  if (body.apiVersion !== "authorization.k8s.io/v1") return { ok: false, reason: `apiVersion must be authorization.k8s.io/v1, got ${quoted(body.apiVersion)}` };
  if (body.kind !== "SubjectAccessReview") return { ok: false, reason: `kind must be SubjectAccessReview, got ${quoted(body.kind)}` };
  const spec = body.spec;
  if (!isRecord(spec)) return { ok: false, reason: "spec is missing" };
  if (typeof spec.user !== "string") return { ok: false, reason: "spec.user must be a string" };
  const attributes = isRecord(spec.resourceAttributes) ? spec.resourceAttributes : {};
  const selector = isRecord(attributes.fieldSelector) ? attributes.fieldSelector : {};
  const requirements = Array.isArray(selector.requirements) ? selector.requirements.filter(isRecord) : [];
  return {
    ok: true,
    question: {
      user: spec.user, verb: text(attributes.verb), group: text(attributes.group), resource: text(attributes.resource), subresource: text(attributes.subresource),
      fieldRequirements: requirements.map((r) => ({
        key: text(r.key), operator: text(r.operator),
        ...(Array.isArray(r.values) ? { values: r.values.filter((v): v is string => typeof v === "string") } : {}),
      })),
    },
  };
}

const OWN_RECORD_VERBS: ReadonlySet<string> = new Set(["list", "watch"]);

/**
 * Allowed only: a list or watch of Transaction records narrowed to the
 * requester's own by a field selector. The reasons carry no `kubetx:`: the
 * apiserver prefixes each authorizer's reason with its name, which is
 * `kubetx` (authorizationConfiguration in devcluster/apiserver-config.ts).
 */
export function decideRecordAccess(question: AccessQuestion): AccessAnswer {
  const { user, verb, group, resource, subresource } = question;
  if (group !== GROUP || resource !== "transactions" || subresource !== "" || !OWN_RECORD_VERBS.has(verb)) {
    return { allowed: false, reason: "no opinion on this request" };
  }
  const own = question.fieldRequirements.some((r) => r.key === OWNER_FIELD && r.operator === "In" && r.values?.length === 1 && r.values[0] === user && user !== "");
  if (own) return { allowed: true, reason: `${user} may ${verb} their own transactions` };
  return { allowed: false, reason: `you may list only your own transactions, with the field selector ${OWNER_FIELD}=${user} (kubectl tx list does this); everyone's needs the kubetx:viewer role` };
}

/** The response body the apiserver expects. */
export function accessReviewResponse(answer: AccessAnswer): Record<string, unknown> {
  return { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", status: { allowed: answer.allowed, reason: answer.reason } };
}
