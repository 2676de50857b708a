/** The Transaction record as the plugin uses it: who am I, create it, report kubectl's end. */
import type { KubeClient } from "../../kube/client.ts";
import { AlreadyExists, Forbidden, KubeError, NotFound } from "../../kube/errors.ts";
import { selfSubject } from "../../kube/identity.ts";
import type { RetryOptions } from "../../kube/retry.ts";
import { retry } from "../../kube/retry.ts";
import type { PrepareSpec } from "../../transactions/model.ts";
import { CLIENT_HEARTBEAT_TIMEOUT_MS, newTransaction, transactionPath } from "../../transactions/model.ts";
import { TxError } from "./errors.ts";
import type { ClientStatePatch } from "./outcome.ts";

/** Messages from the apiserver may span lines; kubectl tx prints one. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

function apiMessage(error: unknown): string {
  if (error instanceof KubeError) return oneLine(error.message.replace(`${error.method} ${error.path}: `, ""));
  return oneLine(error instanceof Error ? error.message : String(error));
}

/**
 * How long kubectl tx asks again when the answer is one a control plane in
 * motion gives for a moment: an apiserver that just restarted answers 403
 * until its authorizer has read the RBAC rules, 503 and 429 while it
 * starts, and a 500 "failed calling webhook" when the kubetx replica the
 * Service picked has just died. A real refusal is said a few seconds late.
 */
export const SETTLING: RetryOptions = { attempts: 10, deadlineMs: 5_000, initialDelayMs: 100, maxDelayMs: 1_000 };

/** An answer worth asking again: no answer at all (refused, reset), 403, 429 and 5xx. */
function passing(error: unknown): boolean {
  if (!(error instanceof KubeError)) return true;
  return error.status === 403 || error.status === 429 || error.status >= 500;
}

/** `call` until it answers, or until `options` run out on answers that pass; then its last failure. */
export async function settled<T>(call: () => Promise<T>, retrying: RetryOptions): Promise<T> {
  let last: unknown;
  const result = await retry<T>(retrying, async () => {
    try {
      return { done: true, value: await call() };
    } catch (error) {
      if (!passing(error)) throw error;
      last = error;
      return { done: false, why: apiMessage(error) };
    }
  });
  if (result.done) return result.value;
  throw last;
}

/** The user name the apiserver knows the caller by: the Transaction's spec.user. */
export async function whoAmI(client: KubeClient, retrying: RetryOptions = SETTLING): Promise<string> {
  return (await whoAmIWithGroups(client, retrying)).username;
}

/** whoAmI, with the groups the apiserver authenticated the caller into (a prepare's spec.prepare.groups). */
export async function whoAmIWithGroups(client: KubeClient, retrying: RetryOptions = SETTLING): Promise<{ username: string; groups: string[] }> {
  let user: { username: string; groups: string[] } | undefined;
  try {
    user = await settled(() => selfSubject(client), retrying);
  } catch (error) {
    const what = error instanceof KubeError ? "the apiserver would not say who you are" : `cannot reach the apiserver at ${client.server}`;
    throw new TxError(`kubectl tx: ${what} (${apiMessage(error)}); check your kubeconfig and context`, undefined, { cause: error });
  }
  if (!user) throw new TxError("kubectl tx: the apiserver's SelfSubjectReview named no user; check your kubeconfig's credentials");
  return user;
}

export interface RecordInput {
  readonly id: string;
  readonly user: string;
  readonly timeoutSeconds?: number;
  /** The objects for kubetx to prepare before kubectl runs (prepare.ts). */
  readonly prepare?: PrepareSpec;
}

/**
 * Creates the plugin-mode Transaction; 404 and 403 become the line that
 * says what to do. Its heartbeat starts at 0, so kubetx judges it by the
 * heartbeat from the start (see heartbeat.ts).
 */
export async function createRecord(client: KubeClient, input: RecordInput, retrying: RetryOptions = SETTLING): Promise<void> {
  const body = newTransaction(input.id, {
    user: input.user, mode: "plugin", clientState: "Applying", clientHeartbeat: 0,
    ...(input.timeoutSeconds !== undefined ? { timeoutSeconds: input.timeoutSeconds } : {}),
    ...(input.prepare ? { prepare: input.prepare } : {}),
  });
  let tries = 0;
  try {
    await settled(async () => {
      tries += 1;
      try {
        await client.create(transactionPath(), body);
      } catch (error) {
        // The id is new and random: after a create whose answer was lost, the record that exists is this one.
        if (!(error instanceof AlreadyExists && tries > 1)) throw error;
      }
    }, retrying);
  } catch (error) {
    throw createFailure(error, input.user);
  }
}

function createFailure(error: unknown, user: string): TxError {
  if (error instanceof NotFound) {
    return new TxError(
      "kubectl tx: kubetx is not installed in this cluster (it has no transactions.kubetx.io resource); ask a cluster admin to install kubetx, or use plain kubectl apply",
      undefined, { cause: error },
    );
  }
  if (error instanceof Forbidden) {
    return new TxError(
      `kubectl tx: ${user} may not create transactions.kubetx.io (${apiMessage(error)}); ask a cluster admin to allow it, or use plain kubectl apply`,
      undefined, { cause: error },
    );
  }
  return new TxError(`kubectl tx: could not create the transaction record (${apiMessage(error)})`, undefined, { cause: error });
}

/** One heartbeat: a new value of the record's spec.clientHeartbeat. */
export async function renewRecord(client: KubeClient, id: string, value: number): Promise<void> {
  await client.mergePatch(transactionPath(id), { spec: { clientHeartbeat: value } });
}

/** The line kubectl tx prints when a heartbeat did not get through. */
export function renewFailure(id: string, error: unknown, periodMs: number): string {
  return `kubectl tx: could not renew transaction ${id} (${apiMessage(error)}); trying again every ${periodMs / 1000} s. ` +
    `kubetx rolls it back if no renewal gets through for ${CLIENT_HEARTBEAT_TIMEOUT_MS / 1000} s`;
}

/** Tells kubetx how kubectl ended, through the record's spec.clientState. */
export async function reportClientState(client: KubeClient, id: string, patch: ClientStatePatch, retrying: RetryOptions = SETTLING): Promise<void> {
  try {
    await settled(() => client.mergePatch(transactionPath(id), patch), retrying);
  } catch (error) {
    throw new TxError(
      `kubectl tx: could not tell kubetx that kubectl ${patch.spec.clientState === "Applied" ? "finished" : "failed"} (${apiMessage(error)}); ` +
        `kubetx rolls back transaction ${id} about ${CLIENT_HEARTBEAT_TIMEOUT_MS / 1000} s after kubectl tx stopped renewing it; check: kubectl get transaction ${id}`,
      undefined, { cause: error },
    );
  }
}
