/** Carries out a restore plan against the API, re-planning when the object changes underneath. */
import type { KubeClient, KubeObject } from "../kube/index.ts";
import { AlreadyExists, Conflict, NotFound, getIfExists } from "../kube/index.ts";
import type { Member } from "../locks/record.ts";
import type { RestoreAction } from "./plan.ts";
import { objectPath, planRestore } from "./plan.ts";

/** A concurrent change (a controller writing status) can race one patch; a few re-reads settle it. */
const MAX_ATTEMPTS = 4;

export type RestoreOutcome =
  | { readonly kind: "restored"; readonly action: RestoreAction["kind"]; readonly detail: string }
  | { readonly kind: "unchanged"; readonly detail: string }
  | { readonly kind: "impossible"; readonly detail: string };

export async function restoreMember(client: KubeClient, member: Member, preImage: KubeObject | undefined): Promise<RestoreOutcome> {
  let lastConflict = "";
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    const live = await getIfExists(client, objectPath(member.ref));
    const action = planRestore(member, preImage, live);
    try {
      return await execute(client, action);
    } catch (error) {
      if (!(error instanceof Conflict || error instanceof AlreadyExists || error instanceof NotFound)) throw error;
      lastConflict = error.message;
    }
  }
  return { kind: "impossible", detail: `the object kept changing during the restore: ${lastConflict}` };
}


async function execute(client: KubeClient, action: RestoreAction): Promise<RestoreOutcome> {
  switch (action.kind) {
    case "none":
      return { kind: "unchanged", detail: action.reason };
    case "impossible":
      return { kind: "impossible", detail: action.reason };
    case "delete":
      await client.delete(action.path, { body: { preconditions: { uid: action.uid }, propagationPolicy: "Background" } });
      return { kind: "restored", action: "delete", detail: "deleted the object this transaction created" };
    case "patch":
      await client.jsonPatch(action.path, action.ops);
      return { kind: "restored", action: "patch", detail: `restored the pre-image (${action.ops.length - 1} patch operations)` };
    case "create":
      await client.create(action.collectionPath, action.body);
      return { kind: "restored", action: "create", detail: "re-created the object from its pre-image" };
  }
}
