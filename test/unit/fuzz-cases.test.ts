/** The fuzzer's own parts: reproducible cases, and what counts as an answer kubetx may give. */
import { describe, expect, it } from "vitest";
import { planCase } from "../../bench/fuzz/campaign.ts";
import { classify, messageShape } from "../../bench/fuzz/check.ts";
import { mutate, prng } from "../../bench/fuzz/mutate.ts";
import { parseAdmissionReview } from "../../src/admission/review.ts";

const review = { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "u-1", operation: "CREATE", userInfo: { username: "alice" }, dryRun: true } };
const seeds = { admission: [review], audit: [{ apiVersion: "audit.k8s.io/v1", kind: "EventList", items: [] }] };

describe("fuzz cases", () => {
  it("are the same for the same seed and index, and differ between indexes", () => {
    const options = { seed: 42, seeds, unauthenticatedShare: 0.2 };
    expect(planCase(options, 7).fuzz.body.equals(planCase(options, 7).fuzz.body)).toBe(true);
    const bodies = new Set(Array.from({ length: 50 }, (_, i) => planCase(options, i).fuzz.body.toString("base64")));
    expect(bodies.size).toBeGreaterThan(40);
  });

  it("keep a review's dry run whatever the mutation did, wherever kubetx would read the review", { timeout: 60_000 }, () => {
    const options = { seed: 1, seeds: { ...seeds, audit: seeds.audit }, unauthenticatedShare: 0 };
    for (let i = 0; i < 600; i += 1) {
      const planned = planCase(options, i);
      if (planned.target !== "admission") continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(planned.fuzz.body.toString("utf8"));
      } catch {
        continue;
      }
      const review = parseAdmissionReview(parsed);
      if (review.ok) expect(review.request.dryRun, `case ${i}`).toBe(true);
    }
  });

  it("use every kind of mutation", { timeout: 60_000 }, () => {
    const names = new Set<string>();
    const random = prng(3);
    for (let i = 0; i < 800; i += 1) for (const name of mutate(review, random).mutations) names.add(name);
    expect([...names].sort()).toEqual([
      "content type", "deep nesting", "duplicate key", "empty body", "extra key", "huge array", "huge string", "invalid UTF-8", "missing key",
      "odd number", "odd unicode", "prototype key", "trailing garbage", "truncated", "wrong type",
    ]);
  });
});

describe("what counts as kubetx's answer", () => {
  const denial = (message: string, code = 403): string => JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "u", allowed: false, status: { code, message } } });

  it.each([
    ["a refusal with kubetx's error", "admission", true, 400, '{"error":"kubetx: body is not JSON"}', "400"],
    ["an allowed review", "admission", true, 200, JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "u", allowed: true } }), "allowed"],
    ["a denial that says kubetx", "admission", true, 200, denial("kubetx: no"), "denied"],
    ["an audit receipt", "audit", true, 200, '{"received":3,"members":0,"failed":0}', "received"],
    ["a stranger refused", "admission", false, 401, '{"error":"kubetx: a client certificate is required"}', "401"],
  ] as const)("accepts %s", (_what, target, authenticated, status, body, category) => {
    expect(classify(target, authenticated, { status, body })).toEqual({ category });
  });

  it.each([
    ["a 500", "admission", true, 500, '{"error":"kubetx: boom"}'],
    ["a 503 from the sink", "audit", true, 503, '{"error":"kubetx: apiserver unavailable"}'],
    ["a 400 that is not kubetx's", "admission", true, 400, "Bad Request"],
    ["a review without the uid", "admission", true, 200, JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { allowed: true } })],
    ["a denial without a message", "admission", true, 200, denial("")],
    ["a stranger's review answered", "admission", false, 200, JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "u", allowed: true } })],
  ] as const)("flags %s as a problem", (_what, target, authenticated, status, body) => {
    expect(classify(target, authenticated, { status, body }).problem).toBeDefined();
  });
});

describe("the fuzzer's tally of internal-error denials", () => {
  it("counts alike messages together: names, ids and numbers blanked", () => {
    const a = messageShape(`kubetx: GET /api/v1/namespaces/"ns-1"/configmaps/x: 404 NotFound for transaction t-abc12345 (uid 0b4f2c1e-1111-2222-3333-444455556666)`);
    const b = messageShape(`kubetx: GET /api/v1/namespaces/"other"/configmaps/x: 404 NotFound for transaction t-zz9 (uid 9a8b7c6d-aaaa-bbbb-cccc-ddddeeeeffff)`);
    expect(a).toBe(b);
    expect(a).toContain("N NotFound");
    expect(messageShape("x".repeat(500))).toHaveLength(160);
  });
});
