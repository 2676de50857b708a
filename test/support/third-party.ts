/**
 * Another team's validating webhook beside kubetx, registered with the
 * real apiserver for one namespace: it denies objects labelled
 * `third-party: deny`, and answers slowly for writes of objects labelled `third-party: slow`, deletes included (the apiserver calls validating
 * webhooks in parallel, so a slow one holds a write kubetx already allowed),
 * and refuses the first write of each object labelled `third-party: throttle-once` with 429 and
 * Retry-After 1 s, as a webhook that rate-limits would: kubectl sends it again by itself.
 * (Not `deny: yes`: kubectl reads YAML 1.1, where an unquoted yes is a boolean.)
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { AdmissionHandler } from "../../src/admission/handler.ts";
import type { AdmissionRequest, AdmissionResponse } from "../../src/admission/review.ts";
import { allowed, denied } from "../../src/admission/response.ts";
import { createOrReplace } from "../../src/kube/index.ts";
import { createApp } from "../../src/server/app.ts";
import { listenHttps } from "../../src/server/https.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import { client, cluster } from "./cluster.ts";
import { webhookCertificate } from "./webhook.ts";

const CONFIGURATIONS = {
  validating: { path: "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", kind: "ValidatingWebhookConfiguration" },
  // Mutating webhooks run one after another before any validating one: a slow one holds a write before kubetx sees it.
  mutating: { path: "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", kind: "MutatingWebhookConfiguration" },
} as const;
export const THIRD_PARTY = "third-party-test";
/** The apiserver's default webhook timeout: what an ordinary third-party webhook gets. */
const TIMEOUT_SECONDS = 10;

export interface ThirdParty {
  /** How long it takes to answer for objects labelled `third-party: slow`, from now on. */
  delayMs: number;
  close(): Promise<void>;
}

export interface ThirdPartyOptions {
  readonly kind?: keyof typeof CONFIGURATIONS;
  /** Runs before it answers each request (not the tests' own admin writes), e.g. to write the same object meanwhile. */
  readonly meanwhile?: (request: AdmissionRequest) => Promise<void>;
}

export async function startThirdPartyWebhook(namespace: string, options: ThirdPartyOptions = {}): Promise<ThirdParty> {
  const configurations = CONFIGURATIONS[options.kind ?? "validating"];
  const state = { delayMs: 0 };
  const throttled = new Set<string>();
  const handler: AdmissionHandler = {
    async handle(request) {
      // A delete has no new object: the labels of the one it removes decide.
      const labels = (request.object ?? request.oldObject)?.metadata?.labels ?? {};
      // The tests' own setup writes (admin) are never held.
      if (request.userInfo?.username !== "admin") await holdUp(request, labels["third-party"] === "slow" ? state.delayMs : 0, options.meanwhile);
      if (labels["third-party"] === "throttle-once" && firstTime(throttled, request)) return throttle(request);
      return labels["third-party"] === "deny" ? denied(request, "objects labelled third-party=deny are not allowed here") : allowed(request);
    },
  };
  const server = await listenHttps(createApp({ logger: silentLogger(), handlers: { "/validate": handler } }), await webhookCertificate(), { host: "127.0.0.1", port: 0 });
  const admin = await client("admin");
  await createOrReplace(admin, configurations.path, {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: configurations.kind,
    metadata: { name: THIRD_PARTY },
    webhooks: [{
      name: "deny.third-party.example.com",
      admissionReviewVersions: ["v1"],
      clientConfig: { url: `https://127.0.0.1:${server.port}/validate`, caBundle: cluster().caData },
      rules: [{ operations: ["CREATE", "UPDATE", "DELETE"], apiGroups: ["*"], apiVersions: ["*"], resources: ["*"], scope: "Namespaced" }],
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
      sideEffects: "None",
      failurePolicy: "Fail",
      timeoutSeconds: TIMEOUT_SECONDS,
    }],
  });
  await untilCalled(namespace, true);
  return Object.assign(state, {
    close: async (): Promise<void> => {
      await admin.delete(`${configurations.path}/${THIRD_PARTY}`).catch(() => undefined);
      admin.close();
      // The apiserver learns of the deletion through its watch: until then it still calls this server, and a closed one
      // fails the next test's writes ("broken pipe"). It stays up until the apiserver stops calling it.
      await untilCalled(namespace, false).finally(() => server.close());
    },
  });
}

/** Whether this is the first write of the object by a test's user it has seen (and remembers it); dry runs and admin's writes do not count. */
function firstTime(seen: Set<string>, request: AdmissionRequest): boolean {
  if (request.userInfo?.username === "admin" || request.dryRun) return false;
  const key = `${request.namespace ?? ""}/${request.name ?? ""}`;
  if (seen.has(key)) return false;
  seen.add(key);
  return true;
}

/** A rate limiter's answer: 429 with Retry-After (details.retryAfterSeconds), which the apiserver passes on and client-go obeys. */
function throttle(request: AdmissionRequest): AdmissionResponse {
  return { uid: request.uid, allowed: false, status: { code: 429, reason: "TooManyRequests", message: "too many writes, try again in a second", details: { retryAfterSeconds: 1 } } };
}

/** What it does before answering a request of a test's user: wait, then whatever the test asked. */
async function holdUp(request: AdmissionRequest, delayMs: number, meanwhile: ThirdPartyOptions["meanwhile"]): Promise<void> {
  if (delayMs > 0) await sleep(delayMs);
  await meanwhile?.(request);
}

/** Waits until the apiserver calls the webhook (a dry run of a labelled object is denied by it), or no longer does. */
async function untilCalled(namespace: string, called: boolean): Promise<void> {
  const admin = await client("admin");
  try {
    for (let attempt = 0; attempt < 100; attempt += 1) {
      const probe = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "third-party-probe", labels: { "third-party": "deny" } } };
      const answer = await admin.create(`/api/v1/namespaces/${namespace}/configmaps`, probe, { query: { dryRun: "All" } }).then(() => "allowed", (error: unknown) => String(error));
      // Called: its own denial. No longer called: no mention of it at all (not even a failed call).
      if (called ? answer.includes("third-party=deny") : !answer.includes("third-party")) return;
      await sleep(100);
    }
    throw new Error(`the apiserver ${called ? "never called" : "kept calling"} the third-party webhook`);
  } finally {
    admin.close();
  }
}
