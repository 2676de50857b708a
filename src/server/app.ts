/**
 * The HTTP layer: the only code that parses request bodies and writes
 * responses. Handlers see typed AdmissionRequests and never see express.
 */
import type { NextFunction, Request, Response } from "express";
import express from "express";
import type { AdmissionHandler } from "../admission/handler.ts";
import { errored, review } from "../admission/response.ts";
import type { AdmissionRequest, AdmissionResponse } from "../admission/review.ts";
import { parseAdmissionReview, uidOf } from "../admission/review.ts";
import type { Logger } from "../telemetry/logger.ts";

/**
 * An AdmissionReview carries the object and its old version; the apiserver
 * accepts request bodies up to 3 MiB, so two copies plus JSON overhead fit
 * well inside 7 MiB. Anything larger is not from an apiserver.
 */
export const MAX_BODY_BYTES = 7 * 1024 * 1024;
/** The apiserver gives up on a webhook after its timeoutSeconds; answer before that. */
const HANDLER_TIMEOUT_MS = 8_000;

export interface AppOptions {
  readonly logger: Logger;
  /** Path (e.g. `/validate`) to the handler that serves it. */
  readonly handlers: Readonly<Record<string, AdmissionHandler>>;
  /** Whether the process can serve admission requests now (for /readyz). */
  readonly ready?: () => boolean;
  /** Called after each answered review, e.g. to count decisions. */
  readonly onReview?: (path: string, request: AdmissionRequest, response: AdmissionResponse, seconds: number) => void;
  /** Extra routes, such as /metrics, added by the composition root. */
  readonly extend?: (app: express.Express) => void;
}

export function createApp(options: AppOptions): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.get("/healthz", (_req, res) => void res.type("text/plain").send("ok"));
  app.get("/readyz", (_req, res) => {
    const ready = options.ready?.() ?? true;
    res.status(ready ? 200 : 503).type("text/plain").send(ready ? "ok" : "not ready");
  });
  options.extend?.(app);
  const body = express.raw({ type: () => true, limit: MAX_BODY_BYTES });
  for (const [path, handler] of Object.entries(options.handlers)) {
    app.post(path, body, (req, res) => void serveReview(handler, req, res, options));
  }
  app.use((_req: Request, res: Response) => void res.status(404).json({ error: "kubetx: no such path; webhooks are served at " + Object.keys(options.handlers).join(", ") }));
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
  const signal = AbortSignal.timeout(HANDLER_TIMEOUT_MS);
  const started = process.hrtime.bigint();
  let response: AdmissionResponse;
  try {
    response = await handler.handle(parsed.request, signal);
  } catch (error) {
    logger.error({ err: error, uid: parsed.request.uid, path: req.path }, "admission handler failed");
    response = errored(parsed.request, 500, error);
  }
  res.json(review(response));
  options.onReview?.(req.path, parsed.request, response, Number(process.hrtime.bigint() - started) / 1e9);
}

type ReadResult = { ok: true; request: AdmissionRequest } | { ok: false; status: number; reason: string };

function readReview(req: Request): ReadResult {
  const type = req.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) {
    return { ok: false, status: 415, reason: `content type must be application/json, got ${JSON.stringify(type)}` };
  }
  const raw: unknown = req.body;
  if (!Buffer.isBuffer(raw) || raw.length === 0) return { ok: false, status: 400, reason: "empty body; send an AdmissionReview" };
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch (error) {
    return { ok: false, status: 400, reason: `body is not JSON: ${errorMessage(error)}` };
  }
  const result = parseAdmissionReview(json);
  if (!result.ok) return { ok: false, status: 400, reason: `${result.reason} (request uid ${JSON.stringify(uidOf(json))})` };
  return result;
}

function httpStatusOf(error: unknown): number {
  const status = (error as { status?: unknown }).status;
  return typeof status === "number" && status >= 400 && status < 600 ? status : 500;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
