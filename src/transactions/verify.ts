/** Whether an admitted write really persisted: pure, over the member and the live object. */
import { createHash } from "node:crypto";
import type { KubeObject } from "../kube/types.ts";
import type { Member } from "../locks/record.ts";
import { userIntent } from "../rollback/plan.ts";

/** A digest of what a user wrote, independent of key order and server-set fields. */
export function intentDigest(object: KubeObject): string {
  return createHash("sha256").update(canonical(userIntent(object))).digest("hex");
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export function persisted(member: Member, live: KubeObject | undefined): boolean {
  switch (member.operation) {
    case "CREATE":
      return live !== undefined && live.metadata?.uid === member.createdUid;
    case "UPDATE":
      return live !== undefined && updatePersisted(member, live);
    case "DELETE":
      // Gone, or going (finalizers still running).
      return live === undefined || Boolean(live.metadata?.deletionTimestamp);
  }
}

/** A new resourceVersion, or (for a write that changed nothing) the admitted content. */
function updatePersisted(member: Member, live: KubeObject): boolean {
  return live.metadata?.resourceVersion !== member.oldResourceVersion || intentDigest(live) === member.admittedDigest;
}
