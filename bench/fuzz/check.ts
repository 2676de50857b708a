/**
 * What an answer to a fuzz case must be (pure). kubetx may refuse a body
 * (4xx with `{"error": "kubetx: ..."}`) or answer it (an AdmissionReview
 * with the request's uid and a decision; an audit batch's receipt); it may
 * never crash, hang up, answer 5xx or answer in any other shape. A caller
 * without the apiserver's certificate only ever gets 401 or 403.
 */

export type Target = "admission" | "audit";

export interface Answer {
  readonly status: number;
  readonly body: string;
}

/** The category an answer falls in; `problem` when it is not an answer kubetx may give. */
export interface Verdict {
  readonly category: string;
  readonly problem?: string;
  /** For a denial with code 500 (an error inside kubetx, caught): its message, with names and numbers blanked so alike ones count together. */
  readonly internalError?: string;
}

/** A denial's message with what varies between cases (ids, names, numbers, quoted values) blanked. Pure. */
export function messageShape(message: string): string {
  return message.replace(/"[^"]*"|'[^']*'/g, "…").replace(/\bt-[a-z0-9-]+/g, "t-…").replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "uid").replace(/\d+/g, "N").slice(0, 160);
}

function json(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function refusal(answer: Answer, allowed: readonly number[]): Verdict | undefined {
  if (!allowed.includes(answer.status)) return undefined;
  const body = json(answer.body);
  if (!isRecord(body) || typeof body.error !== "string" || !body.error.startsWith("kubetx: ")) {
    return { category: `${answer.status}`, problem: `a ${answer.status} without kubetx's error body: ${answer.body.slice(0, 200)}` };
  }
  return { category: `${answer.status}` };
}

/** A 200 AdmissionReview answer: the uid echoed, a boolean decision, a denial that says kubetx and why. */
function reviewAnswer(answer: Answer): Verdict {
  const response = reviewResponse(json(answer.body));
  if (!response) return { category: "malformed", problem: `not an AdmissionReview: ${answer.body.slice(0, 200)}` };
  if (typeof response.uid !== "string" || response.uid === "") return { category: "malformed", problem: "the response has no uid" };
  if (response.allowed === true) return { category: "allowed" };
  if (response.allowed !== false) return { category: "malformed", problem: `allowed is ${JSON.stringify(response.allowed)}` };
  const status = isRecord(response.status) ? response.status : {};
  if (typeof status.message !== "string" || !status.message.startsWith("kubetx:")) return { category: "malformed", problem: "a denial without a kubetx: message" };
  if (status.code === 500) return { category: "denied (internal error)", internalError: messageShape(status.message) };
  return { category: "denied" };
}

function reviewResponse(body: unknown): Record<string, unknown> | undefined {
  if (!isRecord(body) || body.apiVersion !== "admission.k8s.io/v1" || body.kind !== "AdmissionReview") return undefined;
  return isRecord(body.response) ? body.response : undefined;
}

function auditAnswer(answer: Answer): Verdict {
  const body = json(answer.body);
  if (!isRecord(body) || typeof body.received !== "number") return { category: "malformed", problem: `not an audit receipt: ${answer.body.slice(0, 200)}` };
  return { category: "received" };
}

export function classify(target: Target, authenticated: boolean, answer: Answer): Verdict {
  if (!authenticated) return refusal(answer, [401, 403]) ?? { category: `${answer.status}`, problem: `a caller without the apiserver's certificate got ${answer.status}` };
  const refused = refusal(answer, [400, 413, 415]);
  if (refused) return refused;
  if (answer.status !== 200) return { category: `${answer.status}`, problem: `HTTP ${answer.status}: ${answer.body.slice(0, 200)}` };
  return target === "admission" ? reviewAnswer(answer) : auditAnswer(answer);
}
