/**
 * Keeps the `kubetx` webhook configurations in step with the
 * TransactionPolicies. Runs in every replica; all replicas compute the same
 * entries from the same policies, so whichever writes first wins and the
 * others find nothing to change. A pass runs when the policies change, when
 * a configuration changes (an admin re-applying manifests/webhooks.yaml
 * puts the default coverage back; the next pass restores the policies'
 * one), and periodically, to repair drift a watch missed. It writes only
 * when an entry differs, with the resourceVersion it read: a Conflict means
 * someone else wrote in between, and the next pass re-reads.
 *
 * kubetx never creates a configuration: whoever installs kubetx does
 * (manifests/, `kubetx dev`, the tests), and that is the starting point.
 */
import type { KubeClient, KubeObject } from "../kube/index.ts";
import { Conflict, NotFound, getIfExists } from "../kube/index.ts";
import type { NamedPolicy } from "../policy/combine.ts";
import { pause } from "../telemetry/clock.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { ConfigurationKind } from "./configurations.ts";
import { CONFIGURATION_PATHS, MANAGED_CONFIGURATIONS, WEBHOOK_NAME } from "./configurations.ts";
import { objectWebhooks } from "./coverage.ts";
import type { CoveragePair, Reconciled, WebhookEntry } from "./reconcile.ts";
import { isSettling, reconcileWebhooks, settlingObserveEntries } from "./reconcile.ts";

/** A backstop: the watch brings changes within a moment; this repairs what a broken watch missed. */
export const DEFAULT_SYNC_PERIOD_MS = 30_000;
/** At most two passes a second, so replicas that disagree (two versions mid-upgrade) cannot keep the apiserver busy. */
const MIN_PASS_GAP_MS = 500;
/** Pause before watching again after a watch ended normally (the apiserver closes watches every few minutes). */
const REWATCH_DELAY_MS = 1_000;
/**
 * How long a configuration write is given to reach the apiserver's webhook
 * dispatch (it reads configurations through a watch) before the next step
 * of a coverage change relies on it.
 */
export const DEFAULT_SETTLE_MS = 2_000;
/** Steps of one pass at most: a coverage change takes three, plus a settle wait. */
const MAX_STEPS = 6;
/** The name kubetx's writes carry in the configurations' managedFields. */
const FIELD_MANAGER = "kubetx";

export interface WebhookSyncOptions {
  readonly client: KubeClient;
  readonly logger: Logger;
  /** The policies in force now. */
  readonly policies: () => readonly NamedPolicy[];
  /** Whether `policies` reflects the cluster yet: a watcher that has not listed them looks like "no policy". */
  readonly ready: () => boolean;
  readonly periodMs?: number;
  /** DEFAULT_SETTLE_MS unless a test says otherwise. */
  readonly settleMs?: number;
}

interface ConfigurationObject extends KubeObject {
  webhooks?: WebhookEntry[];
}

type Managed = (typeof MANAGED_CONFIGURATIONS)[number];

interface LiveConfigurations {
  readonly validate: ConfigurationObject;
  readonly observe: ConfigurationObject;
}

/** One step of a pass (see nextStep). */
type Step = { readonly kind: Managed; readonly result: Reconciled; readonly last: boolean } | "settle" | "done";

const [VALIDATING, MUTATING] = MANAGED_CONFIGURATIONS as readonly [Managed, Managed];

function pathOf(kind: Managed): string {
  return `${CONFIGURATION_PATHS[kind.kind]}/${WEBHOOK_NAME}`;
}

/** Both configurations' resourceVersions: equal on two reads, nothing was written between them. */
function versions(live: LiveConfigurations): string {
  return `${live.validate.metadata?.resourceVersion ?? ""}/${live.observe.metadata?.resourceVersion ?? ""}`;
}

export class WebhookSync {
  private readonly o: WebhookSyncOptions;
  private dirty = true;
  private wake: (() => void) | undefined;

  constructor(options: WebhookSyncOptions) {
    this.o = options;
  }

  /** Asks for a pass soon (the policies changed). */
  trigger(): void {
    this.dirty = true;
    this.wake?.();
  }

  /** Passes until `signal` aborts, and watches both configurations meanwhile. */
  async run(signal: AbortSignal): Promise<void> {
    const watches = MANAGED_CONFIGURATIONS.map((c) => this.watch(c.kind, signal));
    while (!signal.aborted) {
      await this.syncOnce(signal);
      await this.pause(signal);
    }
    await Promise.all(watches);
  }

  /**
   * One pass: brings both configurations in step with the policies, in the
   * order that keeps `/observe` from covering more than `/validate` in the
   * apiserver's view (reconcile.ts settlingObserveEntries): pause the
   * `/observe` entries that change, rewrite `/validate`, write `/observe`,
   * each write given the settle time to reach the apiserver before the
   * next. Every step reads both configurations again, so a policy change
   * or another replica's write meanwhile is taken into account. Failures
   * are logged, never thrown: the next pass tries again.
   */
  async syncOnce(signal: AbortSignal = new AbortController().signal): Promise<void> {
    this.dirty = false;
    if (!this.o.ready()) return;
    try {
      await this.syncInSteps(signal);
    } catch (error) {
      this.o.logger.warn({ err: error, configuration: WEBHOOK_NAME }, "could not bring the webhook configurations in step with the policies; retrying");
    }
  }

  /** Whether both configurations are as the policies want them now: a pass would write nothing. */
  async inStep(): Promise<boolean> {
    if (!this.o.ready()) return false;
    const live = await this.readBoth();
    return live !== undefined && this.nextStep(live, this.o.policies(), true) === "done";
  }

  private async syncInSteps(signal: AbortSignal): Promise<void> {
    // The configurations' resourceVersions as they were when the last settle wait began: read the same
    // after it, nothing was written for a whole settle time (by this pass or any other replica's).
    let before: string | undefined;
    for (let step = 0; step < MAX_STEPS && !signal.aborted; step++) {
      const live = await this.readBoth();
      if (!live) return;
      const policies = this.o.policies();
      const next = this.nextStep(live, policies, versions(live) === before);
      if (next === "done") return;
      before = versions(live);
      if (next !== "settle") {
        const slot = next.kind === VALIDATING ? "validate" : "observe";
        const written = await this.write(next.kind, live[slot], next.result, policies);
        if (written === undefined || next.last) return;
        before = versions({ ...live, [slot]: written });
      }
      await pause(this.settleMs, signal);
    }
  }

  /**
   * What a pass does next, from the configurations as they are now: a write
   * (`last` when nothing depends on it), "settle" (wait, then look again),
   * or "done". `settled`: nothing was written to either configuration for
   * a whole settle time, so the apiserver has what is read now.
   */
  private nextStep(live: LiveConfigurations, policies: readonly NamedPolicy[], settled: boolean): Step {
    const pair = (kind: Managed, object: ConfigurationObject): CoveragePair =>
      ({ baseName: kind.baseName, live: object.webhooks ?? [], desired: objectWebhooks(policies, kind.baseName, kind.extraConditions) });
    const validate = pair(VALIDATING, live.validate);
    const observe = pair(MUTATING, live.observe);
    const paused = settlingObserveEntries(observe, validate);
    if (paused.changes.length > 0) return { kind: MUTATING, result: paused, last: false };
    const validating = this.reconciled(VALIDATING, validate);
    if (!validating) return "done";
    if (validating.changes.length > 0) {
      // /observe entries paused by another replica a moment ago may not have reached the apiserver yet.
      return !settled && observe.live.some(isSettling) ? "settle" : { kind: VALIDATING, result: validating, last: false };
    }
    const observing = this.reconciled(MUTATING, observe);
    if (!observing || observing.changes.length === 0) return "done";
    // /validate may have changed a moment ago (in this pass or another replica's): let it reach the apiserver first.
    return settled ? { kind: MUTATING, result: observing, last: true } : "settle";
  }

  /** Both configurations, or undefined when either is missing: kubetx never creates them. */
  private async readBoth(): Promise<LiveConfigurations | undefined> {
    const [validate, observe] = await Promise.all([VALIDATING, MUTATING].map((c) => getIfExists<ConfigurationObject>(this.o.client, pathOf(c))));
    return validate && observe ? { validate, observe } : undefined;
  }

  /** The configuration as the policies want it, or undefined (and a warning) when it cannot be. */
  private reconciled(kind: Managed, pair: CoveragePair): Reconciled | undefined {
    const result = reconcileWebhooks(pair.live, pair.desired, kind.baseName);
    if (!result.problem) return result;
    this.o.logger.warn({ configuration: `${kind.kind}/${WEBHOOK_NAME}` }, `cannot keep the webhook configuration in step with the policies: ${result.problem}`);
    return undefined;
  }

  /** Replaces the configuration as read; what the apiserver stored, or undefined when it changed meanwhile or is gone (the next pass reads it again). */
  private async write(kind: Managed, live: ConfigurationObject, result: Reconciled, policies: readonly NamedPolicy[]): Promise<ConfigurationObject | undefined> {
    const configuration = `${kind.kind}/${WEBHOOK_NAME}`;
    // Without managedFields the apiserver keeps the ones it has; resourceVersion makes the write conditional.
    const { managedFields: _managed, ...metadata } = live.metadata ?? {};
    let stored: ConfigurationObject;
    try {
      stored = await this.o.client.replace<ConfigurationObject>(pathOf(kind), { ...live, metadata, webhooks: result.webhooks }, { query: { fieldManager: FIELD_MANAGER } });
    } catch (error) {
      if (error instanceof NotFound) return undefined;
      if (!(error instanceof Conflict)) throw error;
      this.o.logger.debug({ configuration }, "webhook configuration changed while kubetx wrote it; reading it again");
      this.dirty = true;
      return undefined;
    }
    this.o.logger.info({ configuration, policies: policies.map((p) => p.name), changes: result.changes }, "webhook configuration now matches the policies");
    return stored;
  }

  /** Any event (the first ones list what exists) asks for a pass; the pass finds out whether anything differs. */
  private async watch(kind: ConfigurationKind, signal: AbortSignal): Promise<void> {
    const query = { fieldSelector: `metadata.name=${WEBHOOK_NAME}` };
    while (!signal.aborted) {
      let delayMs = REWATCH_DELAY_MS;
      try {
        await this.o.client.watch(CONFIGURATION_PATHS[kind], query, (event) => {
          if (event.type !== "BOOKMARK") this.trigger();
        }, signal);
      } catch (error) {
        if (!signal.aborted) this.o.logger.warn({ err: error, configuration: `${kind}/${WEBHOOK_NAME}` }, "webhook configuration watch failed; the periodic pass still runs");
        // A refused watch (RBAC) would fail again at once; the periodic pass covers meanwhile.
        delayMs = this.period;
      }
      await pause(delayMs, signal);
    }
  }

  private get settleMs(): number {
    return this.o.settleMs ?? DEFAULT_SETTLE_MS;
  }

  private get period(): number {
    return this.o.periodMs ?? DEFAULT_SYNC_PERIOD_MS;
  }

  /** Waits for the next pass: soon after a trigger, else after the period; never sooner than the minimum gap. */
  private async pause(signal: AbortSignal): Promise<void> {
    await pause(MIN_PASS_GAP_MS, signal);
    if (this.dirty) return;
    await pause(this.period, signal, (wake) => (this.wake = wake));
    this.wake = undefined;
  }
}

