/**
 * kubectl tx apply's side of a prepared transaction (resolver/prepare.ts):
 * it names the objects kubectl will write in the record, and runs kubectl
 * once kubetx has locked the ones it will create. A lock held by another
 * transaction then fails the apply before kubectl writes anything.
 */
import type { KubeClient } from "../../kube/client.ts";
import type { KubeObject } from "../../kube/types.ts";
import type { PrepareRef, PrepareSpec, Transaction } from "../../transactions/model.ts";
import { MAX_PREPARED, transactionPath } from "../../transactions/model.ts";
import type { Clock } from "./wait.ts";

/** A prepare of a hundred objects takes a few hundred milliseconds; reading the record this often adds little to it. */
const PREPARE_POLL_MS = 20;
/**
 * How long kubectl tx waits for the prepare before it runs kubectl
 * anyway: a kubetx too old to prepare, or one that is restarting. An
 * unprepared apply is as safe, only slower (every write locks on its own
 * request path).
 */
export const PREPARE_WAIT_MS = 10_000;

/**
 * The objects, named as kubectl will write them: an object without a
 * namespace goes to -n, else the kubeconfig context's namespace, else
 * "default" (kubetx ignores the namespace of a cluster-scoped kind).
 * Undefined when there are more than a record may name.
 */
export function prepareSpec(objects: readonly KubeObject[], namespace: string, groups: readonly string[]): PrepareSpec | undefined {
  const members = objects.flatMap((object): PrepareRef[] => {
    const { apiVersion, kind } = object;
    const name = object.metadata?.name;
    if (!apiVersion || !kind || !name) return [];
    return [{ apiVersion, kind, namespace: object.metadata?.namespace ?? namespace, name }];
  });
  if (members.length === 0 || members.length > MAX_PREPARED) return undefined;
  return { members, groups: [...groups] };
}

export type Prepared =
  | { readonly kind: "prepared"; readonly members: number }
  /** kubetx refused the prepare: the transaction rolls back, and kubectl must not run. */
  | { readonly kind: "refused"; readonly failure: string }
  /** Not prepared within PREPARE_WAIT_MS (or the record lost spec.prepare: a CRD that predates it): kubectl runs unprepared. */
  | { readonly kind: "unprepared"; readonly why: string };

export async function awaitPrepared(client: KubeClient, id: string, clock: Clock, waitMs: number = PREPARE_WAIT_MS): Promise<Prepared> {
  const deadline = clock.now() + waitMs;
  for (;;) {
    const tx = await client.get<Transaction>(transactionPath(id)).catch(() => undefined);
    const seen = tx ? preparedState(tx) : undefined;
    if (seen) return seen;
    if (clock.now() >= deadline) return { kind: "unprepared", why: `kubetx did not prepare it within ${waitMs / 1000} s` };
    await clock.sleep(PREPARE_POLL_MS);
  }
}

function preparedState(tx: Transaction): Prepared | undefined {
  if (!tx.spec.prepare) return { kind: "unprepared", why: "this cluster's Transaction resource has no spec.prepare (kubetx is older than this kubectl tx)" };
  const status = tx.status ?? {};
  if (status.prepared) return { kind: "prepared", members: status.preparedMembers ?? 0 };
  if (status.failure) return { kind: "refused", failure: status.failure };
  const phase = status.phase ?? "Open";
  return phase === "Open" ? undefined : { kind: "refused", failure: status.message ?? `it is ${phase}` };
}
