/**
 * POST /validate: decides whether a write joins a transaction, passes
 * through untouched, or is denied; every answer carries audit annotations.
 */
import type { KubeObject } from "../kube/types.ts";
import type { NamespaceLabels } from "../policy/namespaces.ts";
import type { Policy } from "../policy/policy.ts";
import { selectorMatches } from "../policy/policy.ts";
import type { AdmitResult, Coordinator, WriteIntent } from "../transactions/coordinator.ts";
import type { MemberOperation } from "../transactions/model.ts";
import { ANNOTATION_EXPECTED_MEMBERS, ANNOTATION_TRANSACTION, GROUP } from "../transactions/model.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { AdmissionHandler } from "./handler.ts";
import { allowed, denied } from "./response.ts";
import type { AdmissionRequest, AdmissionResponse } from "./review.ts";
import { guardTransactionRecord } from "./transaction-records.ts";

export interface ValidateDeps {
  readonly coordinator: Coordinator;
  readonly namespaces: NamespaceLabels;
  readonly policy: () => Policy;
  /** kubetx's own user: its rollback writes are never transactional. */
  readonly selfUsername: string;
  readonly logger: Logger;
}

export function validateHandler(deps: ValidateDeps): AdmissionHandler {
  return {
    async handle(request: AdmissionRequest): Promise<AdmissionResponse> {
      if (request.resource.group === GROUP && request.resource.resource === "transactions") return guardTransactionRecord(request);
      const skip = await passReason(request, deps);
      if (skip) return allowed(request, { auditAnnotations: { decision: "pass" } });
      const intent = intentOf(request);
      if (typeof intent === "string") return denied(request, intent, { auditAnnotations: { decision: "denied" } });
      const result = await deps.coordinator.admit(intent);
      log(deps.logger, request, result);
      return respond(request, result);
    },
  };
}

async function passReason(request: AdmissionRequest, deps: ValidateDeps): Promise<string | undefined> {
  if (request.subResource) return "subresource";
  if (request.operation === "CONNECT") return "connect";
  if (request.userInfo.username === deps.selfUsername) return "kubetx itself";
  if (!request.namespace) return "cluster-scoped";
  const labels = await deps.namespaces.labelsOf(request.namespace);
  if (!selectorMatches(deps.policy().namespaceSelector, labels)) return "namespace not covered";
  if (!annotationOf(request, ANNOTATION_TRANSACTION)) return "no transaction";
  return undefined;
}

function annotationOf(request: AdmissionRequest, key: string): string | undefined {
  const source: KubeObject | null | undefined = request.operation === "DELETE" ? request.oldObject : request.object;
  return source?.metadata?.annotations?.[key];
}

/** The write as the coordinator needs it, or why it cannot join. */
function intentOf(request: AdmissionRequest): WriteIntent | string {
  const count = expectedMembersOf(request);
  if (typeof count === "string") return count;
  const name = request.name ?? request.object?.metadata?.name ?? "";
  return {
    requestUid: request.uid,
    operation: request.operation as MemberOperation,
    ref: { ...request.resource, name, ...(request.namespace ? { namespace: request.namespace } : {}) },
    kind: request.kind.kind,
    requester: request.userInfo,
    ...(request.object ? { object: request.object } : {}),
    ...(request.oldObject ? { oldObject: request.oldObject } : {}),
    dryRun: request.dryRun === true,
    transaction: annotationOf(request, ANNOTATION_TRANSACTION) ?? "",
    mode: "explicit",
    ...(count !== undefined ? { expectedMembers: count } : {}),
  };
}

function expectedMembersOf(request: AdmissionRequest): number | undefined | string {
  const expected = annotationOf(request, ANNOTATION_EXPECTED_MEMBERS);
  if (expected === undefined) return undefined;
  const count = Number(expected);
  if (Number.isInteger(count) && count >= 1) return count;
  return `annotation ${ANNOTATION_EXPECTED_MEMBERS} must be a whole number of objects (at least 1), got '${expected}'`;
}

function respond(request: AdmissionRequest, result: AdmitResult): AdmissionResponse {
  const audit = { transaction: result.transaction, decision: result.kind, ...("lock" in result && result.lock ? { lock: result.lock } : {}) };
  switch (result.kind) {
    case "member":
      return allowed(request, {
        auditAnnotations: audit,
        warnings: [`kubetx: joined transaction ${result.transaction} (${result.members} member${result.members === 1 ? "" : "s"})`],
      });
    case "dry-run":
      return allowed(request, { auditAnnotations: audit, warnings: [`kubetx: dry run: would join transaction ${result.transaction}`] });
    case "denied":
      return denied(request, result.message, { auditAnnotations: audit });
  }
}

function log(logger: Logger, request: AdmissionRequest, result: AdmitResult): void {
  logger.info({
    uid: request.uid, transaction: result.transaction, decision: result.kind, user: request.userInfo.username,
    operation: request.operation, resource: request.resource.resource, namespace: request.namespace, name: request.name,
    ...(result.kind === "denied" ? { reason: result.message } : {}),
  }, "admission decision");
}
