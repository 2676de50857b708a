/**
 * The only way kubetx builds an admission response: every helper takes the
 * request, so its uid is always copied back.
 */
import type { AdmissionRequest, AdmissionResponse, AdmissionReview } from "./review.ts";

/** The prefix of every message kubetx shows a user (DESIGN.md section 2). */
export const MESSAGE_PREFIX = "kubetx:";

export interface Decoration {
  readonly warnings?: readonly string[];
  readonly auditAnnotations?: Readonly<Record<string, string>>;
}

export function allowed(request: Pick<AdmissionRequest, "uid">, decoration: Decoration = {}): AdmissionResponse {
  return { uid: request.uid, allowed: true, ...decorate(decoration) };
}

/** A refusal the user can act on; `message` says what to do next. */
export function denied(request: Pick<AdmissionRequest, "uid">, message: string, decoration: Decoration = {}): AdmissionResponse {
  return {
    uid: request.uid,
    allowed: false,
    status: { code: 403, reason: "Forbidden", message: prefixed(message) },
    ...decorate(decoration),
  };
}

/** The audit annotation `decision` of an answer kubetx gave because it failed itself. */
export const ERROR_DECISION = "error";

/**
 * kubetx itself failed: the write is refused, with the audit annotation
 * `decision: error` that every answer carries (README, "For auditors").
 */
export function errored(request: Pick<AdmissionRequest, "uid">, code: number, error: unknown): AdmissionResponse {
  const detail = error instanceof Error ? error.message : String(error);
  return {
    uid: request.uid,
    allowed: false,
    status: { code, reason: "InternalError", message: prefixed(`internal error: ${detail}; retry, and if it persists see the kubetx logs`) },
    auditAnnotations: { decision: ERROR_DECISION },
  };
}

export function review(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response };
}

function prefixed(message: string): string {
  return message.startsWith(MESSAGE_PREFIX) ? message : `${MESSAGE_PREFIX} ${message}`;
}

function decorate(decoration: Decoration): Decoration {
  const out: { warnings?: readonly string[]; auditAnnotations?: Readonly<Record<string, string>> } = {};
  if (decoration.warnings?.length) out.warnings = decoration.warnings;
  if (decoration.auditAnnotations && Object.keys(decoration.auditAnnotations).length > 0) out.auditAnnotations = decoration.auditAnnotations;
  return out;
}
