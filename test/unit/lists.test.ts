/**
 * Lists read at least as new as a known revision (the apiserver's watch
 * cache answers them), and the consistent read they fall back to.
 */
import { describe, expect, it } from "vitest";
import { KubeError } from "../../src/kube/errors.ts";
import type { ListQuery } from "../../src/kube/lists.ts";
import { listNotOlderThan } from "../../src/kube/lists.ts";

function recording(answers: ((query: ListQuery) => Promise<string>)[]): { asked: ListQuery[]; read: (query: ListQuery) => Promise<string> } {
  const asked: ListQuery[] = [];
  return { asked, read: (query) => (asked.push(query), (answers[asked.length - 1] ?? (() => Promise.resolve("consistent")))(query)) };
}

const error = (status: number, reason: string): KubeError => new KubeError({ status, reason, message: reason, method: "GET", path: "/api/v1/namespaces/kubetx-system/secrets" });

describe("a list at least as new as a revision", () => {
  it("asks for NotOlderThan the revision", async () => {
    const { asked, read } = recording([() => Promise.resolve("cached")]);
    expect(await listNotOlderThan(read, "1234")).toBe("cached");
    expect(asked).toEqual([{ resourceVersion: "1234", resourceVersionMatch: "NotOlderThan" }]);
  });

  it("reads consistently without a revision, or with one that is not an etcd revision", async () => {
    for (const revision of [undefined, "", "abc"]) {
      const { asked, read } = recording([]);
      expect(await listNotOlderThan(read, revision)).toBe("consistent");
      expect(asked).toEqual([{}]);
    }
  });

  it("reads consistently when the apiserver cannot serve the revision (its cache did not reach it in time)", async () => {
    const { asked, read } = recording([() => Promise.reject(error(504, "Timeout"))]);
    expect(await listNotOlderThan(read, "99999999")).toBe("consistent");
    expect(asked).toEqual([{ resourceVersion: "99999999", resourceVersionMatch: "NotOlderThan" }, {}]);
  });

  it("passes on an error a consistent read would meet too", async () => {
    const { read } = recording([() => Promise.reject(error(403, "Forbidden"))]);
    await expect(listNotOlderThan(read, "1234")).rejects.toThrow("403 Forbidden");
  });
});
