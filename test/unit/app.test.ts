import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdmissionHandler } from "../../src/admission/handler.ts";
import { allowed } from "../../src/admission/response.ts";
import { MAX_BODY_BYTES, MAX_NESTING_DEPTH, createApp } from "../../src/server/app.ts";
import { createLogger } from "../../src/telemetry/logger.ts";

const echo: AdmissionHandler = { handle: (request) => Promise.resolve(allowed(request)) };
const throwing: AdmissionHandler = { handle: () => Promise.reject(new Error("journal unavailable")) };
/** The signals /watch-signal's handler was given; it answers only once its signal aborts. */
const signals: AbortSignal[] = [];
const waitsForAbort: AdmissionHandler = {
  handle: (request, signal) => {
    if (signal) signals.push(signal);
    return new Promise((resolve) => signal?.addEventListener("abort", () => resolve(allowed(request)), { once: true }));
  },
};
const keepsSignal: AdmissionHandler = { handle: (request, signal) => (signal && signals.push(signal), Promise.resolve(allowed(request))) };

function review(uid: string): string {
  return JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid, operation: "CREATE", kind: { group: "", version: "v1", kind: "ConfigMap" },
      resource: { group: "", version: "v1", resource: "configmaps" }, userInfo: { username: "alice" },
    },
  });
}

describe("the admission HTTP layer", () => {
  let server: http.Server;
  let base: string;
  /** The JSON lines the app logged. */
  const logged: Record<string, unknown>[] = [];

  beforeAll(async () => {
    const logger = createLogger({ destination: { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) } });
    server = http.createServer(createApp({ logger, handlers: { "/validate": echo, "/broken": throwing, "/hold": waitsForAbort, "/keep": keepsSignal } }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  async function post(path: string, body: string | Buffer, type = "application/json"): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`${base}${path}`, { method: "POST", body, headers: { "content-type": type } });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  it("answers a valid review with the request uid", async () => {
    const { status, json } = await post("/validate", review("u-1"));
    expect(status).toBe(200);
    expect(json).toEqual({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "u-1", allowed: true } });
  });

  it.each([
    ["an empty body", "", "application/json", 400, /empty body/],
    ["a body that is not JSON", "{nope", "application/json", 400, /not JSON/],
    ["a wrong content type", review("u"), "text/plain", 415, /content type must be application\/json/],
    ["a v1beta1 review", review("u").replace("admission.k8s.io/v1", "admission.k8s.io/v1beta1"), "application/json", 400, /apiVersion/],
    ["a review without request", JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" }), "application/json", 400, /request is missing/],
  ])("rejects %s with a clear 4xx", async (_name, body, type, code, message) => {
    const { status, json } = await post("/validate", body, type);
    expect(status).toBe(code);
    expect(json.error).toMatch(message);
    expect(json.error).toMatch(/^kubetx: /);
  });

  it("rejects a body nested deeper than kubetx reads with 400, before anything walks it", async () => {
    const deep = review("u-deep").replace('"userInfo":', `"extra":${"[".repeat(MAX_NESTING_DEPTH + 1)}${"]".repeat(MAX_NESTING_DEPTH + 1)},"userInfo":`);
    const { status, json } = await post("/validate", deep);
    expect(status).toBe(400);
    expect(json.error).toMatch(/^kubetx: body nests deeper than 1000 levels/);
    const fine = review("u-ok").replace('"userInfo":', `"extra":${"[".repeat(50)}"[[{"${"]".repeat(50)},"userInfo":`);
    expect((await post("/validate", fine)).status).toBe(200);
  });

  it("rejects a body over the limit with 413", async () => {
    const { status, json } = await post("/validate", Buffer.alloc(MAX_BODY_BYTES + 1, 32));
    expect(status).toBe(413);
    expect(json.error).toMatch(/limit/);
  });

  it("aborts the handler's signal when the apiserver hangs up, and not for a review it answered", async () => {
    signals.length = 0;
    expect((await post("/keep", review("u-kept"))).status).toBe(200);
    const caller = new AbortController();
    const held = fetch(`${base}/hold`, { method: "POST", body: review("u-held"), headers: { "content-type": "application/json" }, signal: caller.signal }).catch(() => "hung up");
    while (signals.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(signals.map((s) => s.aborted)).toEqual([false, false]);
    caller.abort();
    expect(await held).toBe("hung up");
    while (!signals[1]?.aborted) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(signals[0]?.aborted).toBe(false);
  });

  it("turns a handler failure into an errored response and keeps serving", async () => {
    const failed = await post("/broken", review("u-2"));
    expect(failed.status).toBe(200);
    expect(failed.json.response).toMatchObject({ uid: "u-2", allowed: false, status: { code: 500, message: expect.stringContaining("journal unavailable") as unknown } });
    const next = await post("/validate", review("u-3"));
    expect(next.json.response).toEqual({ uid: "u-3", allowed: true });
  });

  it("annotates an errored answer decision: error, as every answer carries a decision", async () => {
    const failed = await post("/broken", review("u-4"));
    expect(failed.json.response).toMatchObject({ uid: "u-4", allowed: false, auditAnnotations: { decision: "error" } });
  });

  it("logs an errored answer as the usual admission decision line, at level error, with the error", async () => {
    await post("/broken", review("u-5"));
    const line = logged.find((l) => l.uid === "u-5");
    expect(line).toMatchObject({
      level: 50, msg: "admission decision", decision: "error", path: "/broken", user: "alice", operation: "CREATE", resource: "configmaps",
      err: { message: "journal unavailable" },
    });
    expect(logged.some((l) => l.msg === "admission handler failed")).toBe(false);
  });

  it("serves health and readiness", async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });
});
