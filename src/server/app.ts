/**
 * The HTTP layer: the only code that parses request bodies and writes
 * responses. Handlers see typed AdmissionRequests and never see express.
 */
import type { NextFunction, Request, Response } from "express";
import express from "express";
import type { AdmissionHandler } from "../admission/handler.ts";
import { ERROR_DECISION, errored, review } from "../admission/response.ts";
import type { AdmissionRequest, AdmissionResponse } from "../admission/review.ts";
import { parseAdmissionReview, quoted, uidOf } from "../admission/review.ts";
import { onRequestPath } from "../kube/request-path.ts";
import type { AuditSink } from "../admission/audit-sink.ts";
import { parseEventList } from "../admission/audit-events.ts";
import type { AccessAnswer, AccessQuestion } from "../admission/record-access.ts";
import { AUTHORIZE_PATH, accessReviewResponse, parseSubjectAccessReview } from "../admission/record-access.ts";
import type { Logger } from "../telemetry/logger.ts";
import { nestingDepth } from "./nesting.ts";

/**
 * An AdmissionReview carries the object and its old version; the apiserver
 * accepts request bodies up to 3 MiB, so two copies plus JSON overhead fit
 * well inside 7 MiB. Anything larger is not from an apiserver.
 */
export const MAX_BODY_BYTES = 7 * 1024 * 1024;
/**
 * The deepest nesting of objects and arrays kubetx reads. kubetx walks
 * what it is sent recursively (diffs, digests, logging), and a body nested
 * 100,000 levels deep exhausted the stack in fuzzing (an HTTP 500); it is
 * refused with 400 before it is parsed instead. Objects people apply nest a
 * few dozen levels; 1,000 is far above them and far below the stack.
 */
export const MAX_NESTING_DEPTH = 1_000;
/** Where the apiserver's audit webhook backend sends EventLists. */
export const AUDIT_PATH = "/audit";
/**
 * kubetx registers its webhooks with timeoutSeconds 5; the apiserver gives
 * up then. A handler stops writing (locks, journal) after 4.5 s, so nothing
 * it writes outlives the request it was for.
 */
const HANDLER_TIMEOUT_MS = 4_500;

/**
 * An audit batch holds at most --audit-webhook-batch-max-size events (400
 * by default) at Metadata level, a few KiB each; 16 MiB also covers an
 * apiserver configured for larger batches or Request-level events.
 */
export const MAX_AUDIT_BODY_BYTES = 16 * 1024 * 1024;

/**
 * A SubjectAccessReview names a user, their groups and one request's
 * attributes: a few KiB even with many groups and extra fields.
 */
const MAX_AUTHORIZE_BODY_BYTES = 64 * 1024;

/** Who may call a path: the verified client certificate's common name must be one of these. */
export type CallerCheck = (req: Request) => { readonly ok: true } | { readonly ok: false; readonly status: 401 | 403; readonly reason: string };

/** What answering one review took: its time, and the apiserver calls made on its path (kube/request-path.ts). */
export interface ReviewCost {
  readonly seconds: number;
  readonly calls: number;
}

export interface AppOptions {
  readonly logger: Logger;
  /** Path (e.g. `/validate`) to the handler that serves it. */
  readonly handlers: Readonly<Record<string, AdmissionHandler>>;
  /** Whether the process can serve admission requests now (for /readyz). */
  readonly ready?: () => boolean;
  /** Called after each answered review, e.g. to count decisions. */
  readonly onReview?: (path: string, request: AdmissionRequest, response: AdmissionResponse, cost: ReviewCost) => void;
  /** Receives the apiserver's audit EventLists at /audit (absent: no such path). */
  readonly auditSink?: AuditSink;
  /**
   * Decides who may call /audit and the admission paths (kubetx: only the
   * apiserver); absent: anyone. A refused caller is answered before its
   * body is read, and nothing is written for it.
   */
  readonly callers?: { readonly audit?: CallerCheck; readonly admission?: CallerCheck };
  /** Answers the apiserver's authorization webhook at /authorize (absent: no such path); the admission callers' check applies. */
  readonly authorize?: (question: AccessQuestion) => AccessAnswer;
}

export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.get("/healthz", (_req, res) => void res.type("text/plain").send("ok"));
  app.get("/readyz", (_req, res) => {
    const ready = options.ready?.() ?? true;
    res.status(ready ? 200 : 503).type("text/plain").send(ready ? "ok" : "not ready");
  });
  const body = express.raw({ type: () => true, limit: MAX_BODY_BYTES });
  const admissionCaller = gate(options.callers?.admission);
  const logger = options.logger;
  for (const [path, handler] of Object.entries(options.handlers)) {
    app.post(path, admissionCaller, body, guarded(logger, (req, res) => serveReview(handler, req, res, options)));
  }
  const sink = options.auditSink;
  if (sink) {
    const auditBody = express.raw({ type: () => true, limit: MAX_AUDIT_BODY_BYTES });
    app.post(AUDIT_PATH, gate(options.callers?.audit), auditBody, guarded(logger, (req, res) => serveAudit(sink, req, res, logger)));
  }
  const authorize = options.authorize;
  if (authorize) {
    const authorizeBody = express.raw({ type: () => true, limit: MAX_AUTHORIZE_BODY_BYTES });
    app.post(AUTHORIZE_PATH, admissionCaller, authorizeBody, guarded(logger, (req, res) => serveAuthorize(authorize, req, res, logger)));
  }
  const paths = [...Object.keys(options.handlers), ...(sink ? [AUDIT_PATH] : []), ...(authorize ? [AUTHORIZE_PATH] : [])];
  app.use((_req: Request, res: Response) => void res.status(404).json({ error: "kubetx: no such path; webhooks are served at " + paths.join(", ") }));
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = httpStatusOf(error);
    const message = status === 413 ? `kubetx: request body over the ${MAX_BODY_BYTES} byte limit` : `kubetx: ${errorMessage(error)}`;
    res.status(status).json({ error: message });
  });
  return app;
}

async function serveReview(handler: AdmissionHandler, req: Request, res: Response, options: AppOptions): Promise<void> {
  const logger = options.logger;
  const parsed = readReview(req);
  if (!parsed.ok) {
    logger.warn({ path: req.path, status: parsed.status, reason: parsed.reason }, "rejected admission request");
    res.status(parsed.status).json({ error: `kubetx: ${parsed.reason}` });
    return;
  }
  // Aborted at the deadline, or as soon as the apiserver hangs up. One controller and a timer cleared with the answer:
  // AbortSignal.any over AbortSignal.timeout cost 10 to 20 µs more per review and kept each timer 4.5 s after it.
  const abort = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) abort.abort(new Error("kubetx: the apiserver hung up before the answer"));
  });
  const deadline = setTimeout(() => abort.abort(new Error(`kubetx: no answer within ${HANDLER_TIMEOUT_MS} ms`)), HANDLER_TIMEOUT_MS);
  const started = process.hrtime.bigint();
  let response: AdmissionResponse;
  let calls = 0;
  try {
    const handled = await onRequestPath(() => handler.handle(parsed.request, abort.signal));
    ({ value: response, calls } = handled);
  } catch (error) {
    response = errored(parsed.request, 500, error);
    logErrored(logger, req.path, parsed.request, error);
  } finally {
    clearTimeout(deadline);
  }
  res.json(review(response));
  options.onReview?.(req.path, parsed.request, response, { seconds: Number(process.hrtime.bigint() - started) / 1e9, calls });
}

/**
 * The `admission decision` line every answer gets (admission/validate.ts
 * logs the others), here for an answer the handler could not give: at
 * level error, with the error.
 */
function logErrored(logger: Logger, path: string, request: AdmissionRequest, error: unknown): void {
  logger.error({
    err: error, path, uid: request.uid, decision: ERROR_DECISION, user: request.userInfo.username, operation: request.operation,
    resource: request.resource.resource, namespace: request.namespace, name: request.name,
    ...(request.dryRun ? { dryRun: true } : {}),
  }, "admission decision");
}

type Refusal = { ok: false; status: number; reason: string };
type ReadResult = { ok: true; request: AdmissionRequest } | Refusal;

/** Content type and JSON syntax, the same for every POST kubetx serves. */
function readJson(req: Request, what: string): { ok: true; json: unknown } | Refusal {
  const type = req.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) {
    return { ok: false, status: 415, reason: `content type must be application/json, got ${quoted(type)}` };
  }
  const raw: unknown = req.body;
  if (!Buffer.isBuffer(raw) || raw.length === 0) return { ok: false, status: 400, reason: `empty body; send ${what}` };
  if (nestingDepth(raw, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH) {
    return { ok: false, status: 400, reason: `body nests deeper than ${MAX_NESTING_DEPTH} levels; no ${what.replace(/^an? /, "")} from the apiserver does` };
  }
  try {
    return { ok: true, json: JSON.parse(raw.toString("utf8")) };
  } catch (error) {
    return { ok: false, status: 400, reason: `body is not JSON: ${errorMessage(error)}` };
  }
}

function readReview(req: Request): ReadResult {
  const read = readJson(req, "an AdmissionReview");
  if (!read.ok) return read;
  const result = parseAdmissionReview(read.json);
  if (!result.ok) return { ok: false, status: 400, reason: `${result.reason} (request uid ${quoted(uidOf(read.json))})` };
  return result;
}

function readEventList(req: Request): { ok: true; events: readonly unknown[] } | Refusal {
  const read = readJson(req, "an audit.k8s.io/v1 EventList");
  if (!read.ok) return read;
  const list = parseEventList(read.json);
  return list.ok ? list : { ok: false, status: 400, reason: list.reason };
}

/**
 * An EventList: acted on, then answered 200. A failure to act (the
 * apiserver unreachable a moment) answers 503, so the apiserver's backend
 * sends the batch again; acting twice on one event changes nothing.
 */
async function serveAudit(sink: AuditSink, req: Request, res: Response, logger: Logger): Promise<void> {
  const parsed = readEventList(req);
  if (!parsed.ok) {
    logger.warn({ path: req.path, status: parsed.status, reason: parsed.reason }, "rejected audit batch");
    res.status(parsed.status).json({ error: `kubetx: ${parsed.reason}` });
    return;
  }
  try {
    const report = await sink.receive(parsed.events);
    res.json({ received: parsed.events.length, ...report });
  } catch (error) {
    logger.warn({ err: error, events: parsed.events.length }, "could not act on an audit batch; the apiserver will send it again");
    res.status(503).json({ error: `kubetx: ${errorMessage(error)}` });
  }
}

/** A SubjectAccessReview: answered with the decision, or 400 when it is not one. */
function serveAuthorize(authorize: (question: AccessQuestion) => AccessAnswer, req: Request, res: Response, logger: Logger): void {
  const read = readJson(req, "an authorization.k8s.io/v1 SubjectAccessReview");
  const parsed = read.ok ? parseSubjectAccessReview(read.json) : read;
  if (parsed.ok) {
    res.json(accessReviewResponse(authorize(parsed.question)));
    return;
  }
  const status = read.ok ? 400 : read.status;
  logger.warn({ path: req.path, status, reason: parsed.reason }, "rejected authorization request");
  res.status(status).json({ error: `kubetx: ${parsed.reason}` });
}

/**
 * A route whose own code failed (a bug, or a body it could not cope with)
 * answers 500 with kubetx's error body; the failure never escapes as an
 * unhandled rejection, which would stop the process.
 */
function guarded(logger: Logger, serve: (req: Request, res: Response) => Promise<void> | void): express.RequestHandler {
  return (req, res) => {
    Promise.resolve().then(() => serve(req, res)).catch((error: unknown) => {
      logger.error({ err: error, path: req.path }, "request handling failed");
      if (!res.headersSent) res.status(500).json({ error: `kubetx: internal error: ${errorMessage(error)}` });
    });
  };
}

/** Express middleware from a caller check: refused callers never reach the body parser. */
function gate(check: CallerCheck | undefined): express.RequestHandler {
  return (req, res, next) => {
    const verdict = check?.(req) ?? { ok: true };
    if (verdict.ok) return next();
    res.status(verdict.status).json({ error: `kubetx: ${verdict.reason}` });
  };
}

function httpStatusOf(error: unknown): number {
  const status = (error as { status?: unknown }).status;
  return typeof status === "number" && status >= 400 && status < 600 ? status : 500;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
