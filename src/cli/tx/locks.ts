/** `kubectl tx locks`: the lock Leases in kubetx-system, and who holds each. */
import { KUBETX_NAMESPACE } from "../../devcluster/identities.ts";
import type { KubeClient } from "../../kube/client.ts";
import type { KubeObject } from "../../kube/types.ts";
import { describeRef } from "../../kube/types.ts";
import { LOCK_ROLE, lockFromLease } from "../../locks/record.ts";
import type { Phase, Transaction } from "../../transactions/model.ts";
import { LABEL_ROLE, transactionPath } from "../../transactions/model.ts";
import type { ReviewDeps } from "./cluster-read.ts";
import { apiMessage, listAll, readFailure, withClient } from "./cluster-read.ts";
import { EXIT } from "./errors.ts";
import type { LocksOptions } from "./review-args.ts";
import { humanAge, renderJson, renderTable } from "./table.ts";

interface LeaseObject extends KubeObject {
  spec?: { holderIdentity?: string; acquireTime?: string; renewTime?: string; leaseDurationSeconds?: number };
}

export interface LockRow {
  /** `configmaps shop/settings`. */
  readonly object: string;
  readonly group: string;
  readonly resource: string;
  readonly namespace: string | null;
  readonly name: string;
  readonly transaction: string;
  /** The holding transaction's phase; null when its record could not be read. */
  readonly phase: Phase | null;
  readonly user: string;
  readonly operation: string;
  /** RFC 3339: the Lease's acquireTime, else when kubetx admitted the member. */
  readonly acquired: string;
  readonly leaseDurationSeconds: number | null;
  /** The Lease's name in kubetx-system. */
  readonly lease: string;
}

export const LOCK_COLUMNS = ["OBJECT", "TRANSACTION", "PHASE", "USER", "OPERATION", "ACQUIRED", "LEASE"] as const;
const LEASES_PATH = `/apis/coordination.k8s.io/v1/namespaces/${KUBETX_NAMESPACE}/leases`;

function acquiredOf(lease: LeaseObject, admittedAt: number): string {
  const ms = Date.parse(lease.spec?.acquireTime ?? "");
  return new Date(Number.isNaN(ms) ? admittedAt : ms).toISOString();
}

/** One row per kubetx lock (other Leases are left out), oldest first. Pure. */
export function lockRows(leases: readonly LeaseObject[], phases: ReadonlyMap<string, Phase>): LockRow[] {
  return leases
    .flatMap((lease) => {
      const lock = lockFromLease(lease);
      if (!lock) return [];
      const { member } = lock;
      return [{
        object: describeRef(member.ref), group: member.ref.group, resource: member.ref.resource,
        namespace: member.ref.namespace ?? null, name: member.ref.name, transaction: member.transaction,
        phase: phases.get(member.transaction) ?? null, user: member.user, operation: member.operation,
        acquired: acquiredOf(lease, member.admittedAt), leaseDurationSeconds: lease.spec?.leaseDurationSeconds ?? null, lease: lock.name,
      }];
    })
    .sort((a, b) => a.acquired.localeCompare(b.acquired) || a.object.localeCompare(b.object));
}

/** The table's lines (header first). Pure. */
export function locksTable(rows: readonly LockRow[], nowMs: number): string[] {
  const cells = rows.map((r) => [
    r.object, r.transaction, r.phase ?? "-", r.user, r.operation,
    `${r.acquired.slice(0, 19)}Z (${humanAge(nowMs - Date.parse(r.acquired))} ago)`,
    r.leaseDurationSeconds === null ? "-" : `${r.leaseDurationSeconds}s`,
  ]);
  return renderTable(LOCK_COLUMNS, cells);
}

async function readLeases(client: KubeClient): Promise<LeaseObject[]> {
  try {
    return await listAll<LeaseObject>(client, LEASES_PATH, { labelSelector: `${LABEL_ROLE}=${LOCK_ROLE}` });
  } catch (error) {
    throw readFailure(error, `list leases in ${KUBETX_NAMESPACE}, where kubetx keeps its locks`,
      `use an admin kubeconfig (--kubeconfig), or ask a cluster admin for a role that grants get and list on leases (coordination.k8s.io) in ${KUBETX_NAMESPACE}`);
  }
}

/** The phase of every transaction; empty (with a warning) when the records cannot be read: the locks still show. */
async function readPhases(client: KubeClient, warn: (line: string) => void): Promise<Map<string, Phase>> {
  try {
    const transactions = await listAll<Transaction>(client, transactionPath());
    return new Map(transactions.flatMap((t) => (t.status?.phase ? [[t.metadata?.name ?? "", t.status.phase] as const] : [])));
  } catch (error) {
    warn(`kubectl tx: warning: could not read the transactions' phases (${apiMessage(error)}); PHASE shows -`);
    return new Map();
  }
}

export async function runLocks(options: LocksOptions, deps: ReviewDeps): Promise<number> {
  const rows = await withClient(options, deps, async (client) => {
    const leases = await readLeases(client);
    return lockRows(leases, leases.length > 0 ? await readPhases(client, deps.warn) : new Map());
  });
  if (options.output === "json") deps.say(renderJson(rows));
  else if (rows.length === 0) deps.warn("No locks held.");
  else locksTable(rows, deps.now()).forEach((line) => deps.say(line));
  return EXIT.ok;
}
