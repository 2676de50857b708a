/** Carries out a restore plan against the API, re-planning when the object changes underneath. */
import type { StoredEntry } from "../journal/journal.ts";
import type { KubeClient } from "../kube/index.ts";
import { AlreadyExists, Conflict, Invalid, NotFound, getIfExists } from "../kube/index.ts";
import type { Member } from "../locks/record.ts";
import type { RestoreAction } from "./plan.ts";
import { objectPath, planRestore } from "./plan.ts";

/** A concurrent change (a controller writing status) can race one patch; a few re-reads settle it. */
const MAX_ATTEMPTS = 4;

export type RestoreOutcome =
  | { readonly kind: "restored"; readonly action: "delete" | "patch" | "create" | "recreate"; readonly detail: string; readonly conflicts?: readonly string[] }
  | { readonly kind: "unchanged"; readonly detail: string; readonly conflicts?: readonly string[] }
  /** Someone else's change to the object won; nothing was written. */
  | { readonly kind: "conflict"; readonly detail: string }
  | { readonly kind: "impossible"; readonly detail: string };

export async function restoreMember(client: KubeClient, member: Member, entry: StoredEntry | undefined): Promise<RestoreOutcome> {
  let lastConflict = "";
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    const live = await getIfExists(client, objectPath(member.ref));
    const action = planRestore(member, entry, live);
    try {
      return await execute(client, action);
    } catch (error) {
      if (!isRace(error)) throw error;
      lastConflict = error.message;
    }
  }
  return { kind: "impossible", detail: `the object kept changing during the restore: ${lastConflict}` };
}

/**
 * A guard that failed because the object changed between the read and the
 * write: a precondition (409), a `test` operation (422), or the object
 * appearing or going away.
 */
function isRace(error: unknown): error is Error {
  if (error instanceof Invalid) return /test operation|testing value/i.test(error.message);
  return error instanceof Conflict || error instanceof AlreadyExists || error instanceof NotFound;
}

async function execute(client: KubeClient, action: RestoreAction): Promise<RestoreOutcome> {
  switch (action.kind) {
    case "none":
      return { kind: "unchanged", detail: action.reason, ...(action.conflicts?.length ? { conflicts: action.conflicts } : {}) };
    case "conflict":
      return { kind: "conflict", detail: action.reason };
    case "impossible":
      return { kind: "impossible", detail: action.reason };
    case "delete":
      await client.delete(action.path, { body: { preconditions: { uid: action.uid }, propagationPolicy: "Background" } });
      return { kind: "restored", action: "delete", detail: "deleted the object this transaction created" };
    case "patch":
      await client.jsonPatch(action.path, action.ops);
      return {
        kind: "restored", action: "patch",
        detail: `restored what this transaction changed (${action.ops.length - 1} patch operations)${action.conflicts.length ? `; kept changes someone else made since to ${action.conflicts.join(", ")}` : ""}`,
        ...(action.conflicts.length ? { conflicts: action.conflicts } : {}),
      };
    case "create":
      await client.create(action.collectionPath, action.body);
      return { kind: "restored", action: "create", detail: "re-created the object from its pre-image" };
    case "recreate":
      await client.delete(action.path, { body: { preconditions: { uid: action.uid }, propagationPolicy: "Background" } });
      await client.create(action.collectionPath, action.body);
      return { kind: "restored", action: "recreate", detail: "removed the copy this transaction created and re-created the original from its pre-image" };
  }
}
