/**
 * Typed errors for everything that crosses the Kubernetes API. Callers branch
 * on the class, never on status codes or message text.
 */

/** The apiserver's `Status` body, as far as kubetx reads it. */
export interface ApiStatus {
  readonly kind?: string;
  readonly status?: string;
  readonly message?: string;
  readonly reason?: string;
  readonly code?: number;
}

export class KubeError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly method: string;
  readonly path: string;

  constructor(init: { status: number; reason: string; message: string; method: string; path: string }) {
    super(`${init.method} ${init.path}: ${init.status} ${init.reason}: ${init.message}`);
    this.name = new.target.name;
    this.status = init.status;
    this.reason = init.reason;
    this.method = init.method;
    this.path = init.path;
  }
}

/** 404: the object (or its kind) does not exist. */
export class NotFound extends KubeError {}
/** 409 on create: an object with that name exists. */
export class AlreadyExists extends KubeError {}
/** 409 otherwise: a resourceVersion or uid precondition failed. */
export class Conflict extends KubeError {}
/** 410: a watch or list continuation is too old. */
export class Expired extends KubeError {}
/** 401: the apiserver did not accept the credentials (expired or rotated). */
export class Unauthorized extends KubeError {}
/** 403: RBAC (or an admission webhook) refused the request. */
export class Forbidden extends KubeError {}
/** 422: the object failed validation. */
export class Invalid extends KubeError {}

/** Maps an HTTP status and Status body to the typed error for it. */
export function toKubeError(method: string, path: string, status: number, body: ApiStatus | undefined): KubeError {
  const init = {
    status,
    method,
    path,
    reason: body?.reason ?? "Unknown",
    message: body?.message ?? `HTTP ${status}`,
  };
  switch (status) {
    case 404:
      return new NotFound(init);
    case 409:
      return init.reason === "AlreadyExists" ? new AlreadyExists(init) : new Conflict(init);
    case 410:
      return new Expired(init);
    case 401:
      return new Unauthorized(init);
    case 403:
      return new Forbidden(init);
    case 422:
      return new Invalid(init);
    default:
      return new KubeError(init);
  }
}

/**
 * Whether a failed call may well succeed if made again: the apiserver
 * answered 429 or 5xx (it restarts, a webhook it called failed or timed
 * out), or there was no answer at all (every HTTP answer is a KubeError, so
 * anything else is the connection's failure).
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof KubeError) return error.status === 429 || error.status >= 500;
  return error instanceof Error;
}

