/**
 * Lists read "at least as new as" a revision the caller already knows of:
 * the apiserver answers them from its watch cache as it stands. A
 * consistent read must first be made as new as etcd is now (a round trip
 * to etcd, then a wait for the cache, or a range read over every object
 * of the kind in the namespace: every retained journal Secret, every
 * closing mark kept after its transaction). The bench measured the
 * verifier's journal list at 61 ms consistent and 12 ms this way (README).
 */
import { KubeError } from "./errors.ts";

export type ListQuery = Readonly<Record<string, string>>;

/**
 * `read` with a query at least as new as `revision` (an etcd revision,
 * such as a resourceVersion the caller read), or a consistent read when
 * there is none. An apiserver that cannot serve it (its cache does not
 * reach the revision in time: a 504; a revision of another etcd) is asked
 * again for a consistent read.
 */
export async function listNotOlderThan<T>(read: (query: ListQuery) => Promise<T>, revision: string | undefined): Promise<T> {
  if (!revision || !/^\d+$/.test(revision)) return read({});
  try {
    return await read({ resourceVersion: revision, resourceVersionMatch: "NotOlderThan" });
  } catch (error) {
    if (!(error instanceof KubeError) || (error.status < 500 && error.status !== 410)) throw error;
    return read({});
  }
}
