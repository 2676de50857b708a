/**
 * What a requester may do, as far as taking a lock depends on it. The
 * apiserver authorizes a request before admission, but only for its own
 * verb: a create reaches kubetx before storage finds that the object
 * already exists, so a user who may only create could otherwise lock
 * (and so block) objects they may not change. A create locks an existing
 * object only for a requester who may update it.
 *
 * SubjectAccessReviews are cached for a few seconds per subject and
 * object; RBAC changes reach kubetx within that time. The first asks for
 * every name in the namespace (RBAC allows that only by a rule that names
 * no objects, which then allows each of them); only a requester refused
 * that is asked about the object itself.
 */
import type { KubeClient } from "../kube/client.ts";
import { getIfExists } from "../kube/apply.ts";
import type { Subject } from "../kube/identity.ts";
import { userMay } from "../kube/identity.ts";
import type { ObjectRef } from "../kube/types.ts";
import { resourcePath } from "../kube/types.ts";
import type { Clock } from "../telemetry/clock.ts";

/** Long enough to spare the apiserver a review per write of one apply, short enough that a revoked role bites soon. */
const CACHE_TTL_MS = 10_000;
/** Reviews remembered at most; the oldest are dropped first. */
const MAX_CACHED = 10_000;

export interface AccessChecks {
  /** Whether the requester may update the object (or would be refused, so the lock is not theirs to take). */
  mayUpdate(requester: Subject, ref: ObjectRef): Promise<boolean>;
  /** Whether the requester may create the object: a prepare locks only what its requester's own create could have (resolver/prepare.ts). */
  mayCreate(requester: Subject, ref: ObjectRef): Promise<boolean>;
  exists(ref: ObjectRef): Promise<boolean>;
}

export class CachedAccess implements AccessChecks {
  private readonly client: KubeClient;
  private readonly clock: Clock;
  private readonly cache = new Map<string, { allowed: boolean; at: number }>();
  /** Reviews on their way: a prepare asks about 100 objects of one namespace at once, and one review answers them all. */
  private readonly asking = new Map<string, Promise<boolean>>();

  constructor(client: KubeClient, clock: Clock) {
    this.client = client;
    this.clock = clock;
  }

  async mayUpdate(requester: Subject, ref: ObjectRef): Promise<boolean> {
    // An empty name asks for every object of the resource in the namespace: one review answers a whole apply by an editor.
    return (await this.review(requester, { ...ref, name: "" })) || this.review(requester, ref);
  }

  async mayCreate(requester: Subject, ref: ObjectRef): Promise<boolean> {
    // RBAC's create rules name no objects (the name is not known before the create).
    return this.review(requester, { ...ref, name: "" }, "create");
  }

  private async review(requester: Subject, ref: ObjectRef, verb = "update"): Promise<boolean> {
    const key = JSON.stringify([verb, requester.username, requester.uid ?? "", [...(requester.groups ?? [])].sort(), requester.extra ?? {}, ref.group, ref.resource, ref.namespace ?? "", ref.name]);
    const now = this.clock.monotonic();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < CACHE_TTL_MS) return hit.allowed;
    const asked = this.asking.get(key);
    if (asked) return asked;
    const asking = this.ask(key, requester, { ...ref, verb }, now);
    this.asking.set(key, asking);
    try {
      return await asking;
    } finally {
      this.asking.delete(key);
    }
  }

  private async ask(key: string, requester: Subject, ref: ObjectRef & { readonly verb: string }, now: number): Promise<boolean> {
    const allowed = await userMay(this.client, requester, {
      verb: ref.verb, group: ref.group, version: ref.version, resource: ref.resource,
      ...(ref.name ? { name: ref.name } : {}), ...(ref.namespace ? { namespace: ref.namespace } : {}),
    });
    this.cache.delete(key);
    this.cache.set(key, { allowed, at: now });
    if (this.cache.size > MAX_CACHED) this.cache.delete(this.cache.keys().next().value ?? "");
    return allowed;
  }

  async exists(ref: ObjectRef): Promise<boolean> {
    return (await getIfExists(this.client, resourcePath(ref))) !== undefined;
  }
}
