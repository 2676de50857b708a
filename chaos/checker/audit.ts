/**
 * The apiserver's audit log (JSON lines, one event per request stage),
 * read for the workload's writes: when each reached the apiserver, how it
 * ended, and which transaction kubetx put it in. Independent of kubetx's
 * own reader (src/audit): only the audit.k8s.io/v1 Event format.
 */
import { open } from "node:fs/promises";
import type { AuditRequest } from "../history.ts";

const WRITE_VERBS: ReadonlySet<string> = new Set(["create", "update", "patch", "delete"]);
/** kubetx's validating webhook name prefixes its audit annotations. */
const TRANSACTION_ANNOTATION = "validate.kubetx.io/transaction";

interface RawEvent {
  readonly stage?: string;
  readonly verb?: string;
  readonly requestURI?: string;
  readonly user?: { readonly username?: string };
  readonly objectRef?: { readonly resource?: string; readonly subresource?: string; readonly namespace?: string; readonly name?: string };
  readonly responseStatus?: { readonly code?: number };
  readonly requestReceivedTimestamp?: string;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The completed writes of `users` to `namespaces` in these log lines, dry runs left out. Pure. */
export function workloadRequests(text: string, users: ReadonlySet<string>, namespaces: ReadonlySet<string>): AuditRequest[] {
  return text.split("\n").map(parse)
    .filter((event): event is RawEvent => event !== undefined && isWorkloadWrite(event, users, namespaces))
    .map(requestOf)
    .sort((a, b) => a.at - b.at);
}

function isWorkloadWrite(event: RawEvent, users: ReadonlySet<string>, namespaces: ReadonlySet<string>): boolean {
  const ref = event.objectRef ?? {};
  const complete = event.stage === "ResponseComplete" && WRITE_VERBS.has(event.verb ?? "");
  const ours = users.has(event.user?.username ?? "") && namespaces.has(ref.namespace ?? "");
  return complete && ours && !ref.subresource && !(event.requestURI ?? "").includes("dryRun=");
}

function requestOf(event: RawEvent): AuditRequest {
  const ref = { resource: "", namespace: "", name: "", ...event.objectRef };
  const transaction = event.annotations?.[TRANSACTION_ANNOTATION];
  return {
    at: Date.parse(event.requestReceivedTimestamp ?? ""),
    user: event.user?.username ?? "",
    verb: event.verb ?? "",
    resource: ref.resource,
    namespace: ref.namespace,
    ...(ref.name ? { name: ref.name } : {}),
    code: event.responseStatus?.code ?? 0,
    ...(transaction ? { transaction } : {}),
  };
}

function parse(line: string): RawEvent | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as RawEvent;
  } catch {
    // The last line of a log being written can be incomplete.
    return undefined;
  }
}

/** The log's size now: where a trial's reading starts. */
export async function logSize(file: string): Promise<number> {
  try {
    const handle = await open(file, "r");
    try {
      return (await handle.stat()).size;
    } finally {
      await handle.close();
    }
  } catch {
    return 0;
  }
}

/** What was written to the log from `offset` on. */
export async function readLogFrom(file: string, offset: number): Promise<string> {
  const handle = await open(file, "r");
  try {
    const size = (await handle.stat()).size;
    const buffer = Buffer.alloc(Math.max(0, size - offset));
    await handle.read(buffer, 0, buffer.length, offset);
    return buffer.toString("utf8");
  } finally {
    await handle.close();
  }
}
