/**
 * Guards writes of Transaction records: a user may open, close and delete
 * only their own transactions, and cannot rewrite who owns one. The owner
 * may change the rest of their record's spec: kubectl tx apply reports how
 * kubectl ended (clientState) and keeps its transaction alive
 * (clientHeartbeat); nobody else can, so no one keeps another user's
 * transaction open or closes it. A record that asks kubetx to prepare
 * objects (spec.prepare) must carry its creator's own groups, which the
 * preparer judges policy and RBAC by, and cannot change what it asked.
 */
import { isDeepStrictEqual } from "node:util";
import type { KubeObject } from "../kube/types.ts";
import { allowed, denied } from "./response.ts";
import type { AdmissionRequest, AdmissionResponse } from "./review.ts";

/** Cluster admins may clean up anyone's records. */
const ADMIN_GROUP = "system:masters";

interface RecordShape extends KubeObject {
  spec?: { user?: string; mode?: string; undoOf?: string; prepare?: { groups?: unknown } };
}

export function guardTransactionRecord(request: AdmissionRequest): Promise<AdmissionResponse> {
  const problem = recordProblem(request);
  const audit = { transaction: request.name ?? "", decision: problem ? "denied" : "record" };
  return Promise.resolve(problem ? denied(request, problem, { auditAnnotations: audit }) : allowed(request, { auditAnnotations: audit }));
}

function recordProblem(request: AdmissionRequest): string | undefined {
  const user = request.userInfo.username;
  const object: RecordShape | undefined = request.object ?? undefined;
  if (request.operation === "CREATE") return creatorProblem(user, object) ?? groupsProblem(request.userInfo.groups ?? [], object);
  const old: RecordShape | undefined = request.oldObject ?? undefined;
  const notOwner = ownerProblem(request, old);
  if (notOwner) return notOwner;
  return request.operation === "UPDATE" ? updateProblem(object, old) : undefined;
}

function updateProblem(object: RecordShape | undefined, old: RecordShape | undefined): string | undefined {
  if (!sameOwnership(object, old)) return "spec.user and spec.mode of a transaction cannot change";
  if (!isDeepStrictEqual(object?.spec?.prepare, old?.spec?.prepare)) return "spec.prepare of a transaction cannot change";
  return undefined;
}

function ownerProblem(request: AdmissionRequest, old: RecordShape | undefined): string | undefined {
  const owner = old?.spec?.user;
  if (owner === request.userInfo.username || request.userInfo.groups?.includes(ADMIN_GROUP)) return undefined;
  return `transaction ${request.name ?? ""} belongs to ${owner ?? "someone else"}; you may only change your own transactions`;
}

function creatorProblem(user: string, object: RecordShape | undefined): string | undefined {
  const claimed = object?.spec?.user ?? "";
  if (claimed !== user) return `spec.user of a new transaction must be your own user name '${user}', got '${claimed}'`;
  if (object?.spec?.mode === "undo" && !object.spec.undoOf) return "spec.undoOf must name the committed transaction to undo";
  return undefined;
}

/** spec.prepare.groups, when present, must be exactly the creator's groups (in any order). */
function groupsProblem(groups: readonly string[], object: RecordShape | undefined): string | undefined {
  const prepare = object?.spec?.prepare;
  if (prepare === undefined) return undefined;
  const claimed = Array.isArray(prepare.groups) ? prepare.groups.map(String) : [];
  if (isDeepStrictEqual([...claimed].sort(), [...groups].sort())) return undefined;
  return `spec.prepare.groups must be your own groups (${JSON.stringify([...groups].sort())}), got ${JSON.stringify([...claimed].sort())}`;
}

function sameOwnership(object: RecordShape | undefined, old: RecordShape | undefined): boolean {
  return object?.spec?.user === old?.spec?.user && object?.spec?.mode === old?.spec?.mode;
}
