/**
 * The apiserver calls of one review are counted for that review alone,
 * though reviews and background work run at the same time.
 */
import { describe, expect, it } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import { countingRequestPath, onRequestPath } from "../../src/kube/request-path.ts";

const fake = {
  server: "https://127.0.0.1:1",
  get: () => new Promise((resolve) => setTimeout(() => resolve({}), 5)),
  create: () => Promise.resolve({}),
  watch: () => Promise.resolve(),
} as unknown as KubeClient;

describe("calls on the request path", () => {
  it("counts each review's own calls, not a concurrent review's, not background work's, and not watches", async () => {
    const client = countingRequestPath(fake);
    const background = client.get("/background");
    const [one, two] = await Promise.all([
      onRequestPath(async () => {
        await client.get("/a");
        await client.create("/a", {});
        void client.watch("/w", {}, () => undefined, new AbortController().signal);
        return "one";
      }),
      onRequestPath(async () => {
        await Promise.all([client.get("/b"), client.get("/c"), client.get("/d")]);
        return "two";
      }),
    ]);
    await background;
    expect(one).toEqual({ value: "one", calls: 2 });
    expect(two).toEqual({ value: "two", calls: 3 });
  });
});
