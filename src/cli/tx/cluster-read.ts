/**
 * What the review commands (list, describe, locks) need from the cluster:
 * a client for the user's kubeconfig, paged lists, and failures turned into
 * the one line that says what to do.
 */
import type { KubeClient } from "../../kube/client.ts";
import { Forbidden, KubeError, NotFound } from "../../kube/errors.ts";
import type { KubeObject, ObjectList } from "../../kube/types.ts";
import { TxError } from "./errors.ts";
import type { ClusterFlags } from "./review-args.ts";

export interface ReviewDeps {
  /** A client for the kubeconfig and context, as kubectl would pick them. */
  readonly connect: (kubeconfig: string | undefined, context: string | undefined) => Promise<KubeClient>;
  /** Milliseconds since the epoch: ages and --since are relative to it. */
  readonly now: () => number;
  /** The result (stdout). */
  readonly say: (line: string) => void;
  /** Notes and warnings (stderr). */
  readonly warn: (line: string) => void;
}

/** kubectl's own page size for lists (its --chunk-size default). */
export const LIST_PAGE_SIZE = 500;

/** Messages from the apiserver may span lines; kubectl tx prints one. */
export function apiMessage(error: unknown): string {
  const text = error instanceof KubeError ? error.message.replace(`${error.method} ${error.path}: `, "") : error instanceof Error ? error.message : String(error);
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** Runs `use` with a client for the flags' kubeconfig and closes it afterwards. */
export async function withClient<T>(flags: ClusterFlags, deps: ReviewDeps, use: (client: KubeClient) => Promise<T>): Promise<T> {
  let client: KubeClient;
  try {
    client = await deps.connect(flags.kubeconfig, flags.context);
  } catch (error) {
    const message = (error as Error).message.replace(/^kubetx: /, "");
    throw new TxError(`kubectl tx: cannot use the kubeconfig: ${message}`, undefined, { cause: error });
  }
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

/** Every item of a collection, a page at a time. */
export async function listAll<T extends KubeObject>(client: KubeClient, path: string, query: Record<string, string> = {}): Promise<T[]> {
  const items: T[] = [];
  let continueToken: string | undefined;
  do {
    const page = await client.get<ObjectList<T>>(path, { query: { ...query, limit: String(LIST_PAGE_SIZE), continue: continueToken } });
    items.push(...(page.items ?? []));
    continueToken = page.metadata?.continue || undefined;
  } while (continueToken);
  return items;
}

/** The line for a failed read of Transaction records: not installed, not allowed, or not reachable. */
export function transactionReadFailure(error: unknown, what: string, forbiddenHint = "ask a cluster admin for kubetx's user role (kubetx:user), which grants get on transactions.kubetx.io"): TxError {
  if (error instanceof NotFound) {
    return new TxError("kubectl tx: kubetx is not installed in this cluster (it has no transactions.kubetx.io resource); ask a cluster admin to install kubetx", undefined, { cause: error });
  }
  return readFailure(error, what, forbiddenHint);
}

/** Forbidden gets `forbiddenHint`; anything else says the apiserver could not be read. */
export function readFailure(error: unknown, what: string, forbiddenHint: string): TxError {
  if (error instanceof Forbidden) return new TxError(`kubectl tx: you may not ${what} (${apiMessage(error)}); ${forbiddenHint}`, undefined, { cause: error });
  if (error instanceof KubeError) return new TxError(`kubectl tx: could not ${what} (${apiMessage(error)}); try again, or check the apiserver`, undefined, { cause: error });
  return new TxError(`kubectl tx: cannot reach the apiserver to ${what} (${apiMessage(error)}); check your kubeconfig and context`, undefined, { cause: error });
}
