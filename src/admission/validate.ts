/**
 * POST /validate: decides whether a write joins a transaction, passes
 * through untouched, or is denied. Every answer carries the audit
 * annotation `decision` (and `transaction` and `lock` where it has them),
 * and every answer is logged, one line each.
 */
import type { AdmitResult, Coordinator, WriteIntent } from "../transactions/coordinator.ts";
import { newTransactionId } from "../transactions/grouping.ts";
import type { IntentTracker } from "../transactions/intents.ts";
import { validatedKeys } from "../transactions/intents.ts";
import type { MemberOperation, Mode, Transaction } from "../transactions/model.ts";
import { ANNOTATION_EXPECTED_MEMBERS, GROUP } from "../transactions/model.ts";
import type { SessionTransaction, Sessions } from "../transactions/sessions.ts";
import type { ObjectRef } from "../kube/types.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { AdmissionHandler } from "./handler.ts";
import { allowed, denied } from "./response.ts";
import type { AdmissionRequest, AdmissionResponse } from "./review.ts";
import type { ScopeDeps } from "./scope.ts";
import type { Scope } from "./scope.ts";
import { annotationOf, fieldManagerOf, scopeOf } from "./scope.ts";
import type { ContinuedDeps } from "./continued.ts";
import { continuedScope } from "./continued.ts";
import { guardPolicy } from "./policy-records.ts";
import { guardTransactionRecord } from "./transaction-records.ts";

export interface ValidateDeps extends ScopeDeps, ContinuedDeps {
  readonly coordinator: Coordinator;
  readonly sessions: Sessions;
  /** Absent with the audit sink, which sees every failed write itself. */
  readonly intents: IntentTracker | undefined;
  readonly logger: Logger;
}

export function validateHandler(deps: ValidateDeps): AdmissionHandler {
  return {
    async handle(request: AdmissionRequest, signal?: AbortSignal): Promise<AdmissionResponse> {
      const { response, reason } = await decide(request, deps, signal);
      log(deps.logger, request, response, reason);
      return response;
    },
  };
}

/** The answer, and for a pass-through why kubetx stays out (for the log line). */
async function decide(request: AdmissionRequest, deps: ValidateDeps, signal: AbortSignal | undefined): Promise<{ response: AdmissionResponse; reason?: string }> {
  deps.intents?.validated(validatedKeys(request.userInfo, request.operation, refOf(request), request.object));
  if (request.resource.group === GROUP && request.resource.resource === "transactions") return { response: await guardTransactionRecord(request) };
  if (request.resource.group === GROUP && request.resource.resource === "transactionpolicies") return { response: guardPolicy(request) };
  const result = await admit(request, await scopeOf(request, deps), deps, signal);
  if (result.kind === "pass") return { response: allowed(request, { auditAnnotations: { decision: "pass" } }), reason: result.reason };
  // kubectl tx apply's prune deletes name no transaction: point the user's session at it so they join.
  if (result.kind === "member" && result.mode === "plugin") await deps.sessions.adopt(request.userInfo, result.transaction);
  return { response: respond(request, result) };
}

type Passed = { readonly kind: "pass"; readonly reason: string };

/**
 * The write's admission in its scope, or, when it is a later write of a
 * member of the requester's open named transaction that leaves the
 * annotation as it was, in that transaction (continued.ts).
 */
async function admit(request: AdmissionRequest, scope: Scope, deps: ValidateDeps, signal: AbortSignal | undefined): Promise<AdmitResult | Passed> {
  const continued = await continuedScope(request, scope, refOf(request), deps);
  const result = await admitOnce(request, continued ?? scope, deps, { signal, fresh: false });
  // A transaction that closed under this write leaves the write to its own scope: for a transparent one, the requester's next transaction, read afresh.
  if (result.kind === "closed" && (continued !== undefined || scope.kind === "transparent")) return admitOnce(request, scope, deps, { signal, fresh: true });
  return result;
}

/** One attempt: which transaction the write joins, and what the coordinator says; a pass when it joins none. */
async function admitOnce(request: AdmissionRequest, scope: Scope, deps: ValidateDeps, attempt: { signal: AbortSignal | undefined; fresh: boolean }): Promise<AdmitResult | Passed> {
  const { signal } = attempt;
  const joining = await joinWhat(request, scope, deps, attempt.fresh);
  if ("reason" in joining) return { kind: "pass", reason: joining.reason };
  const intent = intentOf(request, joining.transaction, joining.mode, joining.record);
  if (typeof intent === "string") return { kind: "denied", transaction: joining.transaction, message: intent };
  return deps.coordinator.admit(intent, signal);
}

/** Which transaction (and mode) the write joins, or why it joins none. */
async function joinWhat(request: AdmissionRequest, scope: Scope, deps: Pick<ValidateDeps, "sessions" | "locks">, fresh = false): Promise<{ transaction: string; mode: Mode; record?: Transaction } | { reason: string }> {
  const { sessions } = deps;
  switch (scope.kind) {
    case "pass":
      return { reason: scope.reason };
    case "explicit":
      return { transaction: scope.transaction, mode: "explicit", ...(scope.record ? { record: scope.record } : {}) };
    case "transparent": {
      const joined = await transparentTransaction(request, deps, fresh);
      return { transaction: joined.id, mode: "transparent", ...(joined.record ? { record: joined.record } : {}) };
    }
    case "session-only": {
      const open = await sessions.current(request.userInfo, request.operation);
      return open ? { transaction: open, mode: "explicit" } : { reason: "explicit mode, and the write names no transaction" };
    }
  }
}

/**
 * A dry run looks at the requester's open transaction but never starts one.
 * An update or delete that the session's transaction does not take
 * continues the user's open transaction that holds the object (sessions.ts
 * takesOver). Not a create: the object it names exists (the holder wrote
 * it), so it would fail AlreadyExists and, as a member, roll back the
 * apply it joined (`kubectl apply -f x.yaml && kubectl create -f x.yaml ||
 * true`); in a transaction of its own the lock refuses it, as before.
 */
async function transparentTransaction(request: AdmissionRequest, deps: Pick<ValidateDeps, "sessions" | "locks">, fresh: boolean): Promise<SessionTransaction> {
  if (request.dryRun) return { id: (await deps.sessions.current(request.userInfo, request.operation)) ?? newTransactionId() };
  const holder = async (): Promise<string | undefined> => (await deps.locks.lockNow(refOf(request)))?.member.transaction;
  return deps.sessions.transactionFor(request.userInfo, fieldManagerOf(request), request.operation, { fresh, ...(request.operation === "CREATE" ? {} : { holder }) });
}

/** The write as the coordinator needs it, or why it cannot join. */
function intentOf(request: AdmissionRequest, transaction: string, mode: Mode, record: Transaction | undefined): WriteIntent | string {
  const count = expectedMembersOf(request);
  if (typeof count === "string") return count;
  return {
    requestUid: request.uid,
    operation: request.operation as MemberOperation,
    ref: refOf(request),
    kind: request.kind.kind,
    requester: request.userInfo,
    ...(request.object ? { object: request.object } : {}),
    ...(request.oldObject ? { oldObject: request.oldObject } : {}),
    dryRun: request.dryRun === true,
    transaction,
    mode,
    ...(record ? { record } : {}),
    ...(count !== undefined ? { expectedMembers: count } : {}),
  };
}

/** The object a request writes; a `generateName` create has its generated name by validating admission. */
function refOf(request: AdmissionRequest): ObjectRef {
  const name = request.name || request.object?.metadata?.name || "";
  return { ...request.resource, name, ...(request.namespace ? { namespace: request.namespace } : {}) };
}

function expectedMembersOf(request: AdmissionRequest): number | undefined | string {
  const expected = annotationOf(request, ANNOTATION_EXPECTED_MEMBERS);
  if (expected === undefined) return undefined;
  const count = Number(expected);
  if (Number.isInteger(count) && count >= 1) return count;
  return `annotation ${ANNOTATION_EXPECTED_MEMBERS} must be a whole number of objects (at least 1), got '${expected}'`;
}

/** Audit annotations name a transaction and a lock only where there is one (a dry run's may not exist). */
function respond(request: AdmissionRequest, result: AdmitResult): AdmissionResponse {
  const audit = {
    ...(result.transaction ? { transaction: result.transaction } : {}),
    decision: result.kind === "closed" ? "denied" : result.kind,
    ...("lock" in result && result.lock ? { lock: result.lock } : {}),
  };
  switch (result.kind) {
    case "member":
      return allowed(request, {
        auditAnnotations: audit,
        warnings: [`kubetx: joined transaction ${result.transaction} (${result.members} member${result.members === 1 ? "" : "s"})`],
      });
    case "dry-run": {
      const would = result.transaction ? `would join transaction ${result.transaction}` : "would start a new transaction";
      return allowed(request, { auditAnnotations: audit, warnings: [`kubetx: dry run: ${would}`] });
    }
    case "denied":
    case "closed":
      return denied(request, result.message, { auditAnnotations: audit });
  }
}

/** One line per answer, with what its audit annotations say and, for a denial or a pass-through, why. */
function log(logger: Logger, request: AdmissionRequest, response: AdmissionResponse, passReason: string | undefined): void {
  const audit = response.auditAnnotations ?? {};
  const reason = response.allowed ? passReason : response.status?.message;
  logger.info({
    uid: request.uid, decision: audit.decision, user: request.userInfo.username, operation: request.operation,
    resource: request.resource.resource, namespace: request.namespace, name: request.name,
    ...(audit.transaction ? { transaction: audit.transaction } : {}),
    ...(audit.lock ? { lock: audit.lock } : {}),
    ...(request.dryRun ? { dryRun: true } : {}),
    ...(reason ? { reason } : {}),
  }, "admission decision");
}
