/**
 * Session Leases: one per requester, naming the transparent transaction
 * that requester's writes currently join. Shared by every replica, so one
 * apply spread over several replicas still forms one transaction.
 */
import type { KubeClient, KubeObject, ObjectList } from "../kube/index.ts";
import { AlreadyExists, Conflict, NotFound } from "../kube/index.ts";
import { microTime } from "../telemetry/clock.ts";
import { LABEL_ROLE } from "../kube/vocabulary.ts";

export const SESSION_ROLE = "session";
const ANNOTATION_FIELD_MANAGER = "kubetx.io/field-manager";

export interface Session {
  readonly key: string;
  readonly transaction: string;
  readonly fieldManager?: string;
  readonly resourceVersion: string;
}

interface LeaseObject extends KubeObject {
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string };
}

export class SessionStore {
  private readonly client: KubeClient;
  private readonly leases: string;
  private readonly ttlSeconds: () => number;
  private readonly cache: { readonly ready: boolean; get(name: string): KubeObject | undefined } | undefined;

  /** With `cache` (a watch of kubetx's Leases), `read(key, { cached: true })` asks it instead of the apiserver. */
  constructor(client: KubeClient, namespace: string, ttlSeconds: () => number, cache?: { readonly ready: boolean; get(name: string): KubeObject | undefined }) {
    this.client = client;
    this.leases = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
    this.ttlSeconds = ttlSeconds;
    this.cache = cache;
  }

  /** Removes a session Lease if it is still at the version read (nobody claimed it since). */
  async remove(session: Session): Promise<void> {
    try {
      await this.client.delete(`${this.leases}/ss-${session.key}`, { body: { preconditions: { resourceVersion: session.resourceVersion } } });
    } catch (error) {
      if (!(error instanceof NotFound || error instanceof Conflict)) throw error;
    }
  }

  async list(): Promise<Session[]> {
    const list = await this.client.get<ObjectList<LeaseObject>>(this.leases, { query: { labelSelector: `${LABEL_ROLE}=${SESSION_ROLE}` } });
    return list.items.map((lease) => toSession((lease.metadata?.name ?? "").replace(/^ss-/, ""), lease));
  }

  /**
   * The session, from the cache when asked and synced (it may lag: a claim
   * based on it fails its resourceVersion check and the caller reads again
   * without the cache).
   */
  async read(key: string, options: { cached?: boolean } = {}): Promise<Session | undefined> {
    if (options.cached && this.cache?.ready) {
      const lease = this.cache.get(`ss-${key}`);
      return lease ? toSession(key, lease) : undefined;
    }
    try {
      return toSession(key, await this.client.get<LeaseObject>(`${this.leases}/ss-${key}`));
    } catch (error) {
      if (error instanceof NotFound) return undefined;
      throw error;
    }
  }

  /**
   * Points the session at `transaction`, replacing `previous` (or creating
   * the Lease when there is none). Undefined when another replica moved
   * the session first: the caller re-reads and joins that one.
   */
  async claim(claim: { key: string; transaction: string; fieldManager?: string | undefined; nowMs: number }, previous: Session | undefined): Promise<Session | undefined> {
    const { key, transaction, fieldManager, nowMs } = claim;
    const body: LeaseObject = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name: `ss-${key}`,
        labels: { [LABEL_ROLE]: SESSION_ROLE },
        ...(fieldManager ? { annotations: { [ANNOTATION_FIELD_MANAGER]: fieldManager } } : {}),
        ...(previous ? { resourceVersion: previous.resourceVersion } : {}),
      },
      spec: { holderIdentity: transaction, leaseDurationSeconds: this.ttlSeconds(), acquireTime: microTime(nowMs), renewTime: microTime(nowMs) },
    };
    try {
      const lease = previous ? await this.client.replace<LeaseObject>(`${this.leases}/ss-${key}`, body) : await this.client.create<LeaseObject>(this.leases, body);
      return toSession(key, lease);
    } catch (error) {
      if (error instanceof AlreadyExists || error instanceof Conflict || error instanceof NotFound) return undefined;
      throw error;
    }
  }
}

function toSession(key: string, lease: LeaseObject): Session {
  const fieldManager = lease.metadata?.annotations?.[ANNOTATION_FIELD_MANAGER];
  return {
    key,
    transaction: lease.spec?.holderIdentity ?? "",
    resourceVersion: lease.metadata?.resourceVersion ?? "",
    ...(fieldManager ? { fieldManager } : {}),
  };
}
