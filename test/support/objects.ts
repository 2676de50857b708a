/** Small builders and readers for the objects the stories use. */
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeClient, KubeObject } from "../../src/kube/index.ts";
import { KubeError, getIfExists } from "../../src/kube/index.ts";
import type { Phase, Transaction } from "../../src/transactions/model.ts";
import { TERMINAL_PHASES, transactionPath } from "../../src/transactions/model.ts";
import { stringify } from "yaml";

export function configMap(namespace: string, name: string, data: Record<string, string>, meta: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace, ...meta }, data };
}

export function inTransaction(object: KubeObject, id: string, expected?: number): KubeObject {
  const annotations = { ...object.metadata?.annotations, "kubetx.io/transaction": id, ...(expected ? { "kubetx.io/expected-members": String(expected) } : {}) };
  return { ...object, metadata: { ...object.metadata, annotations } };
}

export function yamlOf(objects: readonly KubeObject[]): string {
  return objects.map((o) => stringify(o)).join("---\n");
}

export function readOrUndefined(admin: KubeClient, path: string): Promise<KubeObject | undefined> {
  return getIfExists(admin, path);
}

/** Polls the Transaction record until it reaches a terminal phase. */
export async function waitResolved(admin: KubeClient, id: string, timeoutMs = 30_000): Promise<Transaction> {
  const deadline = Date.now() + timeoutMs;
  let last: Transaction | undefined;
  while (Date.now() < deadline) {
    // A restarting apiserver answers 503 for a moment: that is a reason to poll again, not to fail.
    last = ((await readOrUndefined(admin, transactionPath(id)).catch((error: unknown) => {
      if (error instanceof KubeError && error.status >= 500) return last;
      throw error;
    })) as Transaction | undefined);
    if (last && TERMINAL_PHASES.has(last.status?.phase ?? "Open")) return last;
    await sleep(100);
  }
  throw new Error(`transaction ${id} did not resolve within ${timeoutMs} ms; last phase ${last?.status?.phase ?? "none"}`);
}

export async function phaseOf(admin: KubeClient, id: string): Promise<Phase | undefined> {
  const tx = (await readOrUndefined(admin, transactionPath(id))) as Transaction | undefined;
  return tx ? (tx.status?.phase ?? "Open") : undefined;
}

/**
 * kubetx's Leases and Secrets left for a resolved transaction once its
 * cleanup (which follows the final phase) has had a moment: empty when
 * everything was released.
 */
export async function leftoversSettled(admin: KubeClient, id: string, timeoutMs = 5_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let left = await leftovers(admin, id);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(100);
    left = await leftovers(admin, id);
  }
  return left;
}

/**
 * kubetx's Leases and Secrets that carry a transaction's label, but for its
 * closing mark, which stays ten minutes after it resolved (gc.ts).
 */
export async function leftovers(admin: KubeClient, id: string): Promise<string[]> {
  const selector = { labelSelector: `kubetx.io/transaction=${id}` };
  const leases = await admin.get<{ items: KubeObject[] }>("/apis/coordination.k8s.io/v1/namespaces/kubetx-system/leases", { query: { labelSelector: `${selector.labelSelector},kubetx.io/role!=closing` } });
  const secrets = await admin.get<{ items: KubeObject[] }>("/api/v1/namespaces/kubetx-system/secrets", { query: selector });
  return [...leases.items, ...secrets.items].map((o) => `${o.kind ?? "?"}/${o.metadata?.name ?? "?"}`);
}

/** Polls of `until`: often enough for controllers that act within a second. */
const UNTIL_POLL_MS = 100;

/** Resolves with the first defined value `probe` gives; throws, naming `what`, after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(UNTIL_POLL_MS);
  }
}
