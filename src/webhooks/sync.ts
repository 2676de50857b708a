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
import type { WebhookEntry } from "./reconcile.ts";
import { reconcileWebhooks } from "./reconcile.ts";

/** A backstop: the watch brings changes within a moment; this repairs what a broken watch missed. */
export const DEFAULT_SYNC_PERIOD_MS = 30_000;
/** At most two passes a second, so replicas that disagree (two versions mid-upgrade) cannot keep the apiserver busy. */
const MIN_PASS_GAP_MS = 500;
/** Pause before watching again after a watch ended normally (the apiserver closes watches every few minutes). */
const REWATCH_DELAY_MS = 1_000;
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
}

interface ConfigurationObject extends KubeObject {
  webhooks?: WebhookEntry[];
}

type Managed = (typeof MANAGED_CONFIGURATIONS)[number];

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
      await this.syncOnce();
      await this.pause(signal);
    }
    await Promise.all(watches);
  }

  /** One pass over both configurations. Failures are logged, never thrown: the next pass tries again. */
  async syncOnce(): Promise<void> {
    this.dirty = false;
    if (!this.o.ready()) return;
    for (const configuration of MANAGED_CONFIGURATIONS) {
      try {
        await this.syncConfiguration(configuration);
      } catch (error) {
        this.o.logger.warn({ err: error, configuration: `${configuration.kind}/${WEBHOOK_NAME}` }, "could not bring the webhook configuration in step with the policies; retrying");
      }
    }
  }

  private async syncConfiguration({ kind, baseName, extraConditions }: Managed): Promise<void> {
    const path = `${CONFIGURATION_PATHS[kind]}/${WEBHOOK_NAME}`;
    const live = await getIfExists<ConfigurationObject>(this.o.client, path);
    if (!live) return;
    const policies = this.o.policies();
    const result = reconcileWebhooks(live.webhooks ?? [], objectWebhooks(policies, baseName, extraConditions), baseName);
    const configuration = `${kind}/${WEBHOOK_NAME}`;
    if (result.problem) {
      this.o.logger.warn({ configuration }, `cannot keep the webhook configuration in step with the policies: ${result.problem}`);
      return;
    }
    if (result.changes.length === 0) return;
    // Without managedFields the apiserver keeps the ones it has; resourceVersion makes the write conditional.
    const { managedFields: _managed, ...metadata } = live.metadata ?? {};
    try {
      await this.o.client.replace(path, { ...live, metadata, webhooks: result.webhooks }, { query: { fieldManager: FIELD_MANAGER } });
    } catch (error) {
      if (error instanceof NotFound) return;
      if (!(error instanceof Conflict)) throw error;
      this.o.logger.debug({ configuration }, "webhook configuration changed while kubetx wrote it; reading it again");
      this.dirty = true;
      return;
    }
    this.o.logger.info({ configuration, policies: policies.map((p) => p.name), changes: result.changes }, "webhook configuration now matches the policies");
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

