/**
 * A third-party validating webhook, as a cluster's policy engine would be:
 * registered for the trial namespaces' ConfigMaps and Deployments beside
 * kubetx, it allows everything until a fault makes it answer slowly or
 * deny some of the users' writes (never kubetx's own: a real policy engine
 * that refused rollbacks would make every restore impossible).
 */
import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { USERS } from "./history.ts";

export const THIRD_PARTY_NAME = "chaos-third-party";
/** The label that puts a namespace under this webhook. */
export const WORKLOAD_LABEL = "chaos.kubetx.io/workload";
/** Above the slowest fault delay (4 s), so slowness never becomes a timeout. */
const TIMEOUT_SECONDS = 10;
/** AdmissionReviews are small; this caps a broken caller. */
const MAX_REVIEW_BYTES = 4 * 1024 * 1024;

export type ThirdPartyMode =
  | { readonly kind: "pass" }
  | { readonly kind: "slow"; readonly delayMs: number }
  | { readonly kind: "deny"; readonly probability: number }
  /** Refuses with 429 and Retry-After 1 s, as a rate limiter: kubectl's client sends the write again by itself. */
  | { readonly kind: "throttle"; readonly probability: number };

interface Review {
  readonly request?: { readonly uid?: string; readonly userInfo?: { readonly username?: string } };
}

export class ThirdPartyWebhook {
  mode: ThirdPartyMode = { kind: "pass" };
  calls = 0;
  denied = 0;
  private readonly server: https.Server;
  private readonly random: () => number;

  private constructor(tls: { cert: string; key: string }, random: () => number) {
    this.random = random;
    this.server = https.createServer({ ...tls, minVersion: "TLSv1.2" }, (req, res) => void this.handle(req, res));
  }

  static async start(tls: { cert: string; key: string }, random: () => number): Promise<ThirdPartyWebhook> {
    const webhook = new ThirdPartyWebhook(tls, random);
    await new Promise<void>((resolve, reject) => {
      webhook.server.once("error", reject);
      webhook.server.listen(0, "127.0.0.1", () => resolve());
    });
    return webhook;
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === "object" && address ? address.port : 0;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** The ValidatingWebhookConfiguration that registers it. */
  configuration(caBundle: string): { metadata: { name: string }; [field: string]: unknown } {
    return {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingWebhookConfiguration",
      metadata: { name: THIRD_PARTY_NAME },
      webhooks: [{
        name: "policy.chaos.kubetx.io",
        admissionReviewVersions: ["v1"],
        clientConfig: { url: `https://127.0.0.1:${this.port}/validate`, caBundle },
        rules: [
          { operations: ["CREATE", "UPDATE", "DELETE"], apiGroups: [""], apiVersions: ["v1"], resources: ["configmaps"], scope: "Namespaced" },
          { operations: ["CREATE", "UPDATE", "DELETE"], apiGroups: ["apps"], apiVersions: ["v1"], resources: ["deployments"], scope: "Namespaced" },
        ],
        namespaceSelector: { matchLabels: { [WORKLOAD_LABEL]: "true" } },
        sideEffects: "None",
        failurePolicy: "Fail",
        timeoutSeconds: TIMEOUT_SECONDS,
      }],
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.calls += 1;
    const review = await readJson(req).catch(() => undefined);
    const mode = this.mode;
    if (mode.kind === "slow") await sleep(mode.delayMs);
    const response = this.decide(mode, review?.request ?? {});
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response }));
  }

  /** Denies (or throttles) only the workload's users, and only some of their writes. */
  private decide(mode: ThirdPartyMode, request: NonNullable<Review["request"]>): Record<string, unknown> {
    const uid = request.uid ?? "";
    const user = request.userInfo?.username ?? "";
    if (mode.kind === "pass" || mode.kind === "slow" || !(USERS as readonly string[]).includes(user) || this.random() >= mode.probability) return { uid, allowed: true };
    this.denied += 1;
    if (mode.kind === "throttle") return { uid, allowed: false, status: { code: 429, reason: "TooManyRequests", message: "chaos: the third party is rate-limiting (fault injection)", details: { retryAfterSeconds: 1 } } };
    return { uid, allowed: false, status: { code: 403, message: "chaos: the third-party policy refused this write (fault injection)" } };
  }
}

function readJson(req: IncomingMessage): Promise<Review> {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
      if (body.length > MAX_REVIEW_BYTES) req.destroy(new Error("review too large"));
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(body) as Review);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    req.on("error", reject);
  });
}
