/**
 * AdmissionReview v1 wire types and the pure check that turns an untrusted
 * JSON body into a typed request, with a reason when it cannot.
 */
import type { GroupVersionResource, KubeObject } from "../kube/types.ts";

export type Operation = "CREATE" | "UPDATE" | "DELETE" | "CONNECT";

export interface UserInfo {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: { readonly group: string; readonly version: string; readonly kind: string };
  readonly resource: GroupVersionResource;
  readonly subResource?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly operation: Operation;
  readonly userInfo: UserInfo;
  readonly object?: KubeObject | null;
  readonly oldObject?: KubeObject | null;
  readonly dryRun?: boolean;
  readonly options?: KubeObject | null;
}

export interface AdmissionStatus {
  readonly code?: number;
  readonly message?: string;
  readonly reason?: string;
  /** metav1.StatusDetails; kubetx sets none (other webhooks may: retryAfterSeconds makes the apiserver send Retry-After). */
  readonly details?: { readonly retryAfterSeconds?: number };
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: AdmissionStatus;
  readonly warnings?: readonly string[];
  readonly auditAnnotations?: Readonly<Record<string, string>>;
  readonly patch?: string;
  readonly patchType?: "JSONPatch";
}

export interface AdmissionReview {
  readonly apiVersion: "admission.k8s.io/v1";
  readonly kind: "AdmissionReview";
  readonly request?: AdmissionRequest;
  readonly response?: AdmissionResponse;
}

export type ParseResult = { readonly ok: true; readonly request: AdmissionRequest } | { readonly ok: false; readonly reason: string };

const OPERATIONS: ReadonlySet<string> = new Set(["CREATE", "UPDATE", "DELETE", "CONNECT"]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isString(value: unknown): value is string {
  return typeof value === "string";
}

/** Longest piece of a rejected value quoted back in a reason: a reason names the value, it does not echo a body. */
const QUOTE_MAX_CHARS = 100;

/**
 * A value from an untrusted body, for a reason: a string quoted and
 * shortened, a list or object only named. Never walks the value, so a
 * deeply nested one cannot exhaust the stack.
 */
export function quoted(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > QUOTE_MAX_CHARS ? `${value.slice(0, QUOTE_MAX_CHARS)}...` : value);
  if (Array.isArray(value)) return "a list";
  if (value === null || typeof value !== "object") return String(value);
  return "an object";
}

/** Checks the envelope and the fields kubetx relies on; everything else passes through. */
export function parseAdmissionReview(body: unknown): ParseResult {
  if (!isRecord(body)) return { ok: false, reason: "body is not a JSON object" };
  if (body.apiVersion !== "admission.k8s.io/v1") {
    return { ok: false, reason: `apiVersion must be admission.k8s.io/v1, got ${quoted(body.apiVersion)}` };
  }
  if (body.kind !== "AdmissionReview") return { ok: false, reason: `kind must be AdmissionReview, got ${quoted(body.kind)}` };
  const request = body.request;
  if (!isRecord(request)) return { ok: false, reason: "request is missing" };
  const problem = requestProblem(request);
  if (problem) return { ok: false, reason: problem };
  return { ok: true, request: request as unknown as AdmissionRequest };
}

function requestProblem(request: Record<string, unknown>): string | undefined {
  if (!isString(request.uid) || request.uid === "") return "request.uid is missing";
  if (!isString(request.operation) || !OPERATIONS.has(request.operation)) {
    return `request.operation must be one of ${[...OPERATIONS].join(", ")}`;
  }
  return resourceProblem(request) ?? userProblem(request) ?? scalarsProblem(request) ?? objectProblem(request);
}

function resourceProblem(request: Record<string, unknown>): string | undefined {
  const { resource, kind } = request;
  const fields = isRecord(resource) ? [resource.group, resource.version, resource.resource] : [];
  if (fields.length === 0 || !fields.every(isString)) return "request.resource must have group, version and resource";
  if (!isRecord(kind) || !isString(kind.kind)) return "request.kind must have a kind";
  return undefined;
}

function userProblem(request: Record<string, unknown>): string | undefined {
  const user = request.userInfo;
  if (!isRecord(user) || !isString(user.username)) return "request.userInfo.username is missing";
  if (user.uid !== undefined && !isString(user.uid)) return `request.userInfo.uid must be a string, got ${quoted(user.uid)}`;
  if (user.groups !== undefined && !isStringList(user.groups)) return `request.userInfo.groups must be a list of strings, got ${quoted(user.groups)}`;
  if (user.extra !== undefined && !(isRecord(user.extra) && Object.values(user.extra).every(isStringList))) {
    return "request.userInfo.extra must map names to lists of strings";
  }
  return undefined;
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every(isString);
}

/** The optional scalars kubetx reads, each of its type when present. */
function scalarsProblem(request: Record<string, unknown>): string | undefined {
  for (const field of ["name", "namespace", "subResource"] as const) {
    const value = request[field];
    if (value !== undefined && !isString(value)) return `request.${field} must be a string, got ${quoted(value)}`;
  }
  if (request.dryRun !== undefined && typeof request.dryRun !== "boolean") return `request.dryRun must be true or false, got ${quoted(request.dryRun)}`;
  return undefined;
}

function objectProblem(request: Record<string, unknown>): string | undefined {
  for (const field of ["object", "oldObject"] as const) {
    const value = request[field];
    if (value !== undefined && value !== null && !isRecord(value)) return `request.${field} must be an object`;
  }
  return undefined;
}

/** The uid to echo back even for a request that failed the checks, when it has one. */
export function uidOf(body: unknown): string {
  if (isRecord(body) && isRecord(body.request) && isString(body.request.uid)) return body.request.uid;
  return "";
}
