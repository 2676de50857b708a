/**
 * The audit sink's wire format and what kubetx learns from one event: pure.
 * The apiserver's audit webhook backend POSTs `audit.k8s.io/v1` EventLists;
 * kubetx reads the ResponseComplete event of each write:
 *  - a write of a transaction member (kubetx's `decision: member`
 *    annotation): its final status code says whether it persisted;
 *  - a failed write kubetx never answered (rejected before validating
 *    admission: unknown fields, decode errors, an invalid object, RBAC):
 *    it fails its requester's transparent transaction.
 * and, of every covered write, when the apiserver received it
 * (`RequestReceived`) and when it finished: a transparent transaction
 * stays open while a write of its requester is in flight (a paused replica
 * or a slow webhook can hold it for seconds before kubetx admits it).
 */
import type { AuditEntry, AuditEvent } from "../audit/events.ts";
import { COMPLETE_STAGE, auditEventOf, entryOf, isDryRun, requesterOf, writeTargetOf } from "../audit/events.ts";
import { WRITE_VERBS, isFailedWrite, isRejectedBeforeKubetx, isRetriedByClient } from "../audit/rules.ts";
import type { Requester } from "../transactions/coordinator.ts";
import type { RetryingWrite } from "../transactions/model.ts";
import { isValidTransactionId, transactionOfUserAgent } from "../transactions/model.ts";
import { quoted } from "./review.ts";

/** What lockName() makes: `lk-` and 40 hex digits. */
const LOCK_NAME = /^lk-[0-9a-f]{40}$/;

/** The apiserver sends at most --audit-webhook-batch-max-size events (400 by default); far more is not an apiserver. */
export const MAX_EVENTS_PER_LIST = 10_000;

/** Events stay untyped until findingOf reads each one defensively. */
export type EventListParse = { readonly ok: true; readonly events: readonly unknown[] } | { readonly ok: false; readonly reason: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Checks the envelope; each event's fields are read defensively later, so an odd event is skipped, never trusted. */
export function parseEventList(body: unknown): EventListParse {
  if (!isRecord(body)) return { ok: false, reason: "body is not a JSON object" };
  if (body.apiVersion !== "audit.k8s.io/v1") return { ok: false, reason: `apiVersion must be audit.k8s.io/v1, got ${quoted(body.apiVersion)}` };
  if (body.kind !== "EventList") return { ok: false, reason: `kind must be EventList, got ${quoted(body.kind)}` };
  if (!Array.isArray(body.items)) return { ok: false, reason: "items must be a list of audit events" };
  if (body.items.length > MAX_EVENTS_PER_LIST) return { ok: false, reason: `at most ${MAX_EVENTS_PER_LIST} events per list, got ${body.items.length}` };
  if (!body.items.every(isRecord)) return { ok: false, reason: "every item must be an audit event object" };
  return { ok: true, events: body.items };
}

/** The outcome of a member's own request. */
export interface MemberOutcome {
  readonly kind: "member";
  readonly transaction: string;
  readonly lock: string;
  readonly code: number;
  /** Set when the request failed for good: why, in the apiserver's words. */
  readonly failure?: string;
  /** Set instead when the client sends it again by itself (isRetriedByClient): the transaction waits for the retry. */
  readonly retrying?: RetryingWrite;
}

/** A write that failed before kubetx saw it. */
export interface Rejection {
  readonly kind: "rejected";
  readonly requester: Requester;
  readonly fieldManager?: string;
  readonly namespace: string;
  readonly group: string;
  readonly resource: string;
  /** The object's name, when the apiserver knew it (a create whose body decoded, any write by URL). */
  readonly name?: string;
  /** When the apiserver received the request (its clock), ms. */
  readonly receivedAtMs: number;
  /** The transaction its User-Agent names: kubectl tx's kubectl made it (kubectlNameFor). */
  readonly userAgentTransaction?: string;
  /** The client sends it again by itself (isRetriedByClient): a failure only if no retry gets through. */
  readonly retried?: true;
  readonly reason: string;
}

export type Finding = MemberOutcome | Rejection;

/** What one event tells kubetx, if anything. */
export function findingOf(raw: unknown): Finding | undefined {
  const event = auditEventOf(raw);
  const entry = entryOf(event);
  if (!entry || entry.dryRun) return undefined;
  const what = `${entry.verb} of ${entry.object}`;
  const quoted = `${entry.code}${entry.message ? `: ${entry.message}` : ""}`;
  if (entry.decision === "member" && entry.transaction && entry.lock) {
    // Names kubetx itself wrote; anything else is no transaction of kubetx's (and no path to put in a request).
    if (!isValidTransactionId(entry.transaction) || !LOCK_NAME.test(entry.lock)) return undefined;
    return {
      kind: "member", transaction: entry.transaction, lock: entry.lock, code: entry.code,
      ...memberFailure(entry, event.requestReceivedTimestamp ?? entry.time, `the apiserver refused the ${what} after kubetx admitted it (${quoted})`),
    };
  }
  return rejectionOf(event, entry, `the apiserver rejected the ${what} before it reached kubetx (${quoted})`);
}

/** A member's failed request fails its transaction, unless the client sends it again by itself: then the transaction waits for the retry. */
function memberFailure(entry: AuditEntry, receivedAt: string, reason: string): Pick<MemberOutcome, "failure" | "retrying"> {
  if (!isFailedWrite(entry)) return {};
  return isRetriedByClient(entry) ? { retrying: { receivedAt, reason, admitted: true } } : { failure: reason };
}

/** The rule `kubectl tx audit` applies too (audit/rules.ts), over the same requester and object (audit/events.ts). */
function rejectionOf(event: AuditEvent, entry: AuditEntry, reason: string): Rejection | undefined {
  // The rule already required a requester (entry.user); reading it again gives its uid and groups.
  const requester = requesterOf(event);
  if (!isRejectedBeforeKubetx(entry) || !requester) return undefined;
  const receivedAtMs = Date.parse(event.requestReceivedTimestamp ?? "");
  const fieldManager = fieldManagerOf(event.requestURI);
  const userAgentTransaction = transactionOfUserAgent(event.userAgent);
  return {
    kind: "rejected",
    requester,
    ...(fieldManager ? { fieldManager } : {}),
    ...entry.target,
    ...(event.objectRef?.name ? { name: event.objectRef.name } : {}),
    receivedAtMs: Number.isNaN(receivedAtMs) ? entry.timeMs : receivedAtMs,
    ...(userAgentTransaction ? { userAgentTransaction } : {}),
    ...(isRetriedByClient(entry) ? { retried: true as const } : {}),
    reason,
  };
}

/** The apiserver received a write (`received`) or finished it (`done`). */
export interface WriteProgress {
  readonly auditID: string;
  readonly stage: "received" | "done";
  readonly requester: Requester;
  readonly namespace: string;
  readonly group: string;
  readonly resource: string;
  /** requestReceivedTimestamp as the apiserver wrote it. */
  readonly receivedAt: string;
}

const RECEIVED_STAGE = "RequestReceived";

/** Where a write of a user to a namespaced object is, if the event is one. */
export function progressOf(raw: unknown): WriteProgress | undefined {
  const event = auditEventOf(raw);
  const stage = STAGES.get(event.stage ?? "");
  const target = writeTargetOf(event);
  const requester = requesterOf(event);
  if (!stage || !event.auditID || !WRITE_VERBS.has(event.verb ?? "") || isDryRun(event) || !target || !requester) return undefined;
  return {
    auditID: event.auditID, stage, requester, ...target,
    receivedAt: event.requestReceivedTimestamp ?? event.stageTimestamp ?? "",
  };
}

const STAGES: ReadonlyMap<string, WriteProgress["stage"]> = new Map([[RECEIVED_STAGE, "received"], [COMPLETE_STAGE, "done"]]);

/** kubectl names itself in the query (`?fieldManager=kubectl-client-side-apply`), as admission sees it in its options. */
function fieldManagerOf(requestURI: string | undefined): string | undefined {
  const query = requestURI?.split("?", 2)[1];
  return query ? (new URLSearchParams(query).get("fieldManager") ?? undefined) : undefined;
}
