/**
 * Reads what the checker judges at the end of a trial: the Transaction
 * records and kubetx's bookkeeping in kubetx-system, through the API names
 * DESIGN.md section 2 promises (the kubetx.io/v1alpha1 Transaction kind,
 * the kubetx.io/role and kubetx.io/transaction labels).
 */
import type { LeftoverView, MemberView, RecordView } from "../history.ts";
import type { Http } from "./http.ts";

const TRANSACTIONS = "/apis/kubetx.io/v1alpha1/transactions";
const KUBETX_NAMESPACE = "kubetx-system";
const ROLE = "kubetx.io/role";
const TRANSACTION = "kubetx.io/transaction";

interface Meta {
  readonly name?: string;
  readonly creationTimestamp?: string;
  readonly labels?: Record<string, string>;
}

interface RawRecord {
  readonly metadata?: Meta;
  readonly spec?: { readonly user?: string; readonly mode?: string };
  readonly status?: {
    readonly phase?: string;
    readonly reason?: string;
    readonly message?: string;
    readonly failure?: string;
    readonly resolvedAt?: string;
    readonly members?: readonly Partial<MemberView>[];
  };
}

export async function readRecords(http: Http): Promise<RecordView[]> {
  const list = await http.get<{ items: RawRecord[] }>(TRANSACTIONS);
  return list.items.map(recordView);
}

export function recordView(raw: RawRecord): RecordView {
  const s = raw.status ?? {};
  return {
    id: raw.metadata?.name ?? "",
    user: raw.spec?.user ?? "",
    mode: raw.spec?.mode ?? "",
    // A member's failure names the member; the record's message then only sums it up (applies.ts knewOfFailure reads the name).
    ...defined({ phase: s.phase, reason: s.reason, message: s.failure ?? s.message, createdAt: raw.metadata?.creationTimestamp, resolvedAt: s.resolvedAt }),
    members: (s.members ?? []).map((m) => ({
      group: m.group ?? "", resource: m.resource ?? "", namespace: m.namespace ?? "", name: m.name ?? "",
      operation: m.operation ?? "", outcome: m.outcome ?? "", ...defined({ message: m.message }),
    })),
  };
}

/** The fields that are set: optional fields stay absent rather than undefined (the views round-trip through JSON). */
function defined(fields: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""));
}

/** Lock and heartbeat Leases and journal Secrets, each with the transaction it belongs to. */
export async function readLeftovers(http: Http): Promise<LeftoverView[]> {
  const [leases, secrets] = await Promise.all([
    http.get<{ items: { metadata?: Meta }[] }>(`/apis/coordination.k8s.io/v1/namespaces/${KUBETX_NAMESPACE}/leases`, { labelSelector: `${ROLE} in (lock,heartbeat)` }),
    http.get<{ items: { metadata?: Meta }[] }>(`/api/v1/namespaces/${KUBETX_NAMESPACE}/secrets`, { labelSelector: `${ROLE}=journal` }),
  ]);
  return [...leases.items, ...secrets.items].map(({ metadata }) => ({
    kind: (metadata?.labels?.[ROLE] ?? "lock") as LeftoverView["kind"],
    name: metadata?.name ?? "",
    transaction: metadata?.labels?.[TRANSACTION] ?? "",
    ...(metadata?.creationTimestamp ? { createdAt: metadata.creationTimestamp } : {}),
  }));
}
