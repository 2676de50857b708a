/**
 * The audit sink and `kubectl tx audit` judge an audit event by one rule:
 * each case feeds the same event to both and expects the same verdict.
 */
import { describe, expect, it } from "vitest";
import { findingOf } from "../../src/admission/audit-events.ts";
import { AuditCollector } from "../../src/audit/group.ts";
import { parseLine } from "../../src/audit/read.ts";

const LOCK = `lk-${"0a".repeat(20)}`;
const TRANSACTION = "t-0a1b2c3d";
const member = { "validate.kubetx.io/transaction": TRANSACTION, "validate.kubetx.io/decision": "member", "validate.kubetx.io/lock": LOCK };
const strictDecoding = { code: 400, reason: "BadRequest", message: 'strict decoding error: unknown field "spec.replica"' };
const invalid = { code: 422, reason: "Invalid", message: "is invalid" };

/** A ResponseComplete event of alice at Metadata level, 10 ms after her transaction's first request. */
function event(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: "Event", apiVersion: "audit.k8s.io/v1", level: "Metadata", auditID: "under-test", stage: "ResponseComplete",
    requestURI: "/apis/apps/v1/namespaces/shop/deployments/web?fieldManager=kubectl-client-side-apply", verb: "patch",
    user: { username: "alice", groups: ["developers", "system:authenticated"] },
    objectRef: { apiGroup: "apps", resource: "deployments", namespace: "shop", name: "web", apiVersion: "v1" },
    responseStatus: { code: 200 },
    requestReceivedTimestamp: "2026-11-30T10:00:00.008000Z", stageTimestamp: "2026-11-30T10:00:00.010000Z",
    ...fields,
  };
}

/** The first request of alice's transparent transaction, which kubetx admitted. */
const first = event({
  auditID: "first", verb: "create", requestURI: "/api/v1/namespaces/shop/configmaps", objectRef: { resource: "configmaps", namespace: "shop", name: "settings" },
  responseStatus: { code: 201 }, annotations: member, requestReceivedTimestamp: "2026-11-30T10:00:00.000000Z", stageTimestamp: "2026-11-30T10:00:00.001000Z",
});

type Verdict = "rejected" | "member" | "nothing";

function sinkVerdict(raw: unknown): Verdict {
  return findingOf(raw)?.kind ?? "nothing";
}

/** What kubectl tx audit makes of the event, read as a log line beside the transaction's first request. */
function cliVerdict(raw: unknown): { verdict: Verdict; users: readonly string[] } {
  const collector = new AuditCollector();
  for (const line of [first, raw].map((e) => JSON.stringify(e))) {
    const entry = parseLine(line);
    if (typeof entry === "object") collector.add(entry);
  }
  const [timeline] = collector.timelines();
  const entry = timeline?.entries.find((e) => e.auditID === "under-test");
  const verdict = entry?.rejectedBeforeKubetx ? "rejected" : entry?.decision === "member" ? "member" : "nothing";
  return { verdict, users: timeline?.users ?? [] };
}

function verdicts(raw: unknown): { sink: Verdict; cli: Verdict } {
  return { sink: sinkVerdict(raw), cli: cliVerdict(raw).verdict };
}

describe("the sink and kubectl tx audit give the same verdict", () => {
  it.each([
    ["a patch rejected while decoding", event({ responseStatus: strictDecoding }), "rejected"],
    ["a create of an invalid object", event({ verb: "create", responseStatus: invalid }), "rejected"],
    ["a patch that failed with 500", event({ responseStatus: { code: 500, reason: "InternalError", message: "etcdserver: request timed out" } }), "rejected"],
    ["a /scale subresource write that failed with 422", event({ objectRef: { apiGroup: "apps", resource: "deployments", subresource: "scale", namespace: "shop", name: "web" }, responseStatus: invalid }), "nothing"],
    ["a cluster-scoped create that failed with 422", event({ verb: "create", objectRef: { resource: "namespaces", name: "shop" }, responseStatus: invalid }), "nothing"],
    ["a patch's resourceVersion conflict (409), which kubectl retries by itself", event({ responseStatus: { code: 409, reason: "Conflict", message: "the object has been modified" } }), "nothing"],
    ["a server-side apply's conflict with another field manager (409), which is final", event({
      requestURI: "/apis/apps/v1/namespaces/shop/deployments/web?fieldManager=kubectl&force=false",
      responseStatus: { code: 409, reason: "Conflict", message: "Apply failed with 1 conflict: conflict with \"kubetx\" using apps/v1: .spec.replicas", details: { causes: [{ reason: "FieldManagerConflict", message: "conflict with \"kubetx\" using apps/v1", field: ".spec.replicas" }] } },
    }), "rejected"],
    ["a delete of an object that is not there (404), which changed nothing", event({ verb: "delete", responseStatus: { code: 404, reason: "NotFound" } }), "nothing"],
    ["a create that found its object already there (409), which admission would have seen", event({ verb: "create", responseStatus: { code: 409, reason: "AlreadyExists" } }), "nothing"],
    ["a dry run rejected while decoding", event({ requestURI: "/apis/apps/v1/namespaces/shop/deployments/web?dryRun=All", responseStatus: strictDecoding }), "nothing"],
    ["a failed read", event({ verb: "get", responseStatus: { code: 404, reason: "NotFound" } }), "nothing"],
    ["a write kubetx answered, then another webhook refused", event({ annotations: { "validate.kubetx.io/decision": "pass" }, responseStatus: { code: 403, reason: "Forbidden" } }), "nothing"],
    ["a member's request, which carries kubetx's transaction annotation, refused after kubetx admitted it", event({ annotations: member, responseStatus: { code: 403, reason: "Forbidden", message: "denied" } }), "member"],
  ])("%s", (_name, raw, expected) => {
    expect(verdicts(raw)).toEqual({ sink: expected, cli: expected });
  });

  it("a rejected write made by impersonation is the impersonated user's in both", () => {
    const raw = event({ user: { username: "admin", groups: ["system:masters"] }, impersonatedUser: { username: "alice", groups: ["developers"] }, responseStatus: strictDecoding });
    const sink = findingOf(raw);
    expect(sink?.kind === "rejected" ? sink.requester.username : undefined).toBe("alice");
    expect(cliVerdict(raw)).toEqual({ verdict: "rejected", users: ["alice"] });
  });

  it("a rejected write of the impersonating user's own is not the impersonated user's in either", () => {
    const asAdmin = event({ user: { username: "admin" }, responseStatus: strictDecoding });
    const sink = findingOf(asAdmin);
    expect(sink?.kind === "rejected" ? sink.requester.username : undefined).toBe("admin");
    expect(cliVerdict(asAdmin).verdict).toBe("nothing");
  });
});
