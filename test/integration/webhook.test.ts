import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AdmissionHandler } from "../../src/admission/handler.ts";
import { allowAllHandler } from "../support/allow-all.ts";
import { allowed } from "../../src/admission/response.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";
import { createNamespace, kubectl, uniqueName } from "../support/cluster.ts";
import type { TestWebhook } from "../support/webhook.ts";
import { startTestWebhook } from "../support/webhook.ts";

describe("the admission webhook on the real apiserver", () => {
  const namespace = uniqueName("webhook");
  let webhook: TestWebhook | undefined;
  beforeAll(() => createNamespace(namespace, { "kubetx.io/enabled": "true" }));
  afterEach(async () => {
    await webhook?.close();
    webhook = undefined;
  });

  it("is called for a kubectl write and echoes the request uid", async () => {
    webhook = await startTestWebhook(allowAllHandler(silentLogger()));
    const created = await createUntilSeen(webhook, "seen-by-webhook");
    expect(created.code).toBe(0);
    const exchange = webhook.exchanges.find((e) => e.request.name === "seen-by-webhook");
    expect(exchange?.request.operation).toBe("CREATE");
    expect(exchange?.request.userInfo.username).toBe("alice");
    expect(exchange?.response.uid).toBe(exchange?.request.uid);
    expect(exchange?.response.allowed).toBe(true);
  });

  it("makes the apiserver refuse the write when a response carries another uid", async () => {
    const wrongUid: AdmissionHandler = { handle: () => Promise.resolve(allowed({ uid: "not-the-request-uid" })) };
    webhook = await startTestWebhook(wrongUid);
    const result = await createUntilSeen(webhook, "wrong-uid");
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/uid/i);
    const read = await kubectl(["-n", namespace, "get", "configmap", "wrong-uid"]);
    expect(read.stderr).toContain("NotFound");
  });

  /** The apiserver picks up a new configuration within a second or so: retry until the webhook sees the write. */
  async function createUntilSeen(hook: TestWebhook, name: string): Promise<{ code: number; stderr: string }> {
    for (let attempt = 0; attempt < 50; attempt += 1) {
      const result = await kubectl(["-n", namespace, "create", "configmap", name, "--from-literal=k=v"], { user: "alice" });
      if (hook.exchanges.some((e) => e.request.name === name)) return result;
      if (result.code === 0) await kubectl(["-n", namespace, "delete", "configmap", name]);
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`the webhook never saw configmap ${name}`);
  }
});
