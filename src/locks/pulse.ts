/**
 * How old this replica's Lease cache may be, proven rather than hoped: the
 * replica writes a Lease of its own (its pulse) every PULSE_PERIOD_MS,
 * remembering on its monotonic clock when it sent each beat. A watch
 * delivers events in etcd's order, so once the cache holds beat n, it holds
 * every Lease written before beat n was sent: a closing mark among them.
 * `freshness()` is when the newest beat the cache holds was sent.
 *
 * Admission of a prepared create makes no apiserver call and relies on the
 * cache to say that its transaction has no closing mark; it does so only
 * while the cache is fresher than PREPARED_FRESHNESS_MS, and a rollback
 * holds a prepared transaction's locks long enough for any write admitted
 * that way to land (PREPARED_HOLD_EXTRA_MS).
 * A replica paused (SIGSTOP, a GC stall) wakes with an old beat and admits
 * nothing from memory until its watch has caught up.
 */
import { createHash } from "node:crypto";
import type { KubeClient, KubeObject } from "../kube/index.ts";
import { NotFound } from "../kube/index.ts";
import { LABEL_ROLE } from "../kube/vocabulary.ts";
import type { Clock } from "../telemetry/clock.ts";
import type { Logger } from "../telemetry/logger.ts";
import { microTime, pause } from "../telemetry/clock.ts";
import type { LeaseCache } from "./store.ts";
import { WEBHOOK_TIMEOUT_SECONDS } from "../webhooks/configurations.ts";

export const PULSE_ROLE = "pulse";
const ANNOTATION_BEAT = "kubetx.io/beat";
export const PULSE_PERIOD_MS = 1_000;
/** The oldest cache a prepared create is admitted from. */
export const PREPARED_FRESHNESS_MS = 3_000;
/** The apiserver waits this long for kubetx's answer (the timeoutSeconds kubetx writes into its webhook configurations), then fails the request. */
export const WEBHOOK_TIMEOUT_MS = WEBHOOK_TIMEOUT_SECONDS * 1000;
/**
 * How much longer than the late-write window a rollback of a prepared
 * transaction holds its locks: a create admitted from a cache
 * that had not yet seen the closing mark was admitted at most
 * PREPARED_FRESHNESS_MS after the mark, and its answer reached the
 * apiserver within its webhook timeout.
 */
export const PREPARED_HOLD_EXTRA_MS = PREPARED_FRESHNESS_MS + WEBHOOK_TIMEOUT_MS;
/** Beats remembered: far more than a cache can lag while still fresh. */
const REMEMBERED_BEATS = 64;

export function pulseName(identity: string): string {
  return `pu-${createHash("sha256").update(identity).digest("hex").slice(0, 40)}`;
}

export interface PulseOptions {
  readonly client: KubeClient;
  readonly namespace: string;
  readonly identity: string;
  readonly clock: Clock;
  readonly cache: Pick<LeaseCache, "ready" | "get">;
  readonly periodMs?: number;
  readonly logger?: Pick<Logger, "warn">;
}

export class Pulse {
  private readonly o: PulseOptions;
  private readonly name: string;
  private readonly path: string;
  private readonly sent = new Map<number, number>();
  private beat = 0;
  /** The pulse Lease's resourceVersion as this process last wrote or read it; unknown after a failure. */
  private version: string | undefined;
  /** A random start, so a restarted replica never takes its predecessor's beat for one of its own. */
  private readonly epoch = createHash("sha256").update(`${Math.random()}${Date.now()}`).digest("hex").slice(0, 8);

  constructor(options: PulseOptions) {
    this.o = options;
    this.name = pulseName(options.identity);
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(options.namespace)}/leases`;
  }

  /** Beats until `signal` aborts; a beat that fails is not seen, the cache counts as older, and the first failure of a run of them is logged. */
  async run(signal: AbortSignal): Promise<void> {
    let failing = false;
    while (!signal.aborted) {
      try {
        await this.send();
        failing = false;
      } catch (error) {
        if (!failing && !signal.aborted) this.o.logger?.warn({ err: error }, "could not write this replica's pulse Lease; creates of prepared transactions take the usual path until it works again");
        failing = true;
      }
      await pause(this.o.periodMs ?? PULSE_PERIOD_MS, signal);
    }
  }

  /** When (monotonic ms) the newest beat the cache holds was sent; -Infinity when it holds none of this process's. */
  freshness(): number {
    if (!this.o.cache.ready) return -Infinity;
    const value = this.o.cache.get(this.name)?.metadata?.annotations?.[ANNOTATION_BEAT] ?? "";
    const [epoch, beat] = value.split("/");
    if (epoch !== this.epoch) return -Infinity;
    return this.sent.get(Number(beat)) ?? -Infinity;
  }

  /** Whether the cache is fresher than `maxAgeMs` now; the time is read after the cache, as a decision must be. */
  fresh(maxAgeMs: number = PREPARED_FRESHNESS_MS): boolean {
    const at = this.freshness();
    return this.o.clock.monotonic() - at < maxAgeMs;
  }

  private async send(): Promise<void> {
    this.beat += 1;
    const beat = this.beat;
    // Noted before the write leaves: the cache holding this beat holds everything written before this moment.
    this.sent.set(beat, this.o.clock.monotonic());
    this.sent.delete(beat - REMEMBERED_BEATS);
    const body = this.lease({ [ANNOTATION_BEAT]: `${this.epoch}/${beat}` }, microTime(this.o.clock.now()));
    try {
      // An update (kubetx's Role has update, not patch, on Leases), of the version this process last wrote or read.
      this.version ??= (await this.o.client.get<KubeObject>(`${this.path}/${this.name}`)).metadata?.resourceVersion;
      body.metadata = { ...body.metadata, resourceVersion: this.version ?? "" };
      this.version = (await this.o.client.replace<KubeObject>(`${this.path}/${this.name}`, body)).metadata?.resourceVersion;
    } catch (error) {
      this.version = undefined;
      if (!(error instanceof NotFound)) throw error;
      const { resourceVersion: _none, ...metadata } = body.metadata ?? {};
      this.version = (await this.o.client.create<KubeObject>(this.path, { ...body, metadata })).metadata?.resourceVersion;
    }
  }

  private lease(annotations: Record<string, string>, renewTime: string): KubeObject {
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: this.name, labels: { [LABEL_ROLE]: PULSE_ROLE }, annotations },
      spec: { holderIdentity: this.o.identity, renewTime },
    };
  }
}
