/**
 * Keeps the combined view of every TransactionPolicy current: listed at
 * start, then watched, so a changed policy applies without a restart.
 */
import type { KubeClient, KubeObject, ObjectList } from "../kube/index.ts";
import type { Logger } from "../telemetry/logger.ts";
import type { NamedPolicy, PolicyView } from "./combine.ts";
import { combine } from "./combine.ts";
import { validatePolicySpec } from "./validate.ts";

export const POLICIES_PATH = "/apis/kubetx.io/v1alpha1/transactionpolicies";
/** Pause before re-listing after a watch ends or fails. */
const REWATCH_DELAY_MS = 1_000;

export interface PolicySource {
  /** The view in force now. */
  view(): PolicyView;
  readonly ready: boolean;
  /** Calls `listener` after every change of the view (the first list included); returns a function that stops it. */
  onChange(listener: () => void): () => void;
}

/** A fixed set of policies (tests, and `kubetx serve --policy-source=flags`): it never changes. */
export function staticPolicies(policies: readonly NamedPolicy[]): PolicySource {
  const view = combine(policies);
  return { view: () => view, ready: true, onChange: () => () => undefined };
}

export class PolicyWatcher implements PolicySource {
  private readonly client: KubeClient;
  private readonly logger: Logger;
  private readonly specs = new Map<string, NamedPolicy>();
  private readonly listeners = new Set<() => void>();
  private current: PolicyView = combine([]);
  private synced = false;

  constructor(client: KubeClient, logger: Logger) {
    this.client = client;
    this.logger = logger;
  }

  view(): PolicyView {
    return this.current;
  }

  get ready(): boolean {
    return this.synced;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const list = await this.client.get<ObjectList>(POLICIES_PATH);
        this.specs.clear();
        for (const policy of list.items) this.remember(policy);
        this.synced = true;
        this.recompute();
        await this.client.watch(POLICIES_PATH, { resourceVersion: list.metadata?.resourceVersion }, (event) => {
          if (event.type === "DELETED") this.specs.delete(event.object.metadata?.name ?? "");
          else if (event.type === "ADDED" || event.type === "MODIFIED") this.remember(event.object);
          else return;
          this.recompute();
        }, signal);
      } catch (error) {
        if (!signal.aborted) this.logger.warn({ err: error }, "policy watch failed; keeping the last policies and retrying");
      }
      if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, REWATCH_DELAY_MS));
    }
  }

  private remember(object: KubeObject): void {
    const name = object.metadata?.name ?? "";
    const check = validatePolicySpec(object.spec);
    if (check.ok) this.specs.set(name, { name, spec: check.spec });
    else {
      this.specs.delete(name);
      this.logger.error({ policy: name, problems: check.problems }, "ignoring invalid TransactionPolicy");
    }
  }

  private recompute(): void {
    this.current = combine([...this.specs.values()]);
    this.logger.info({ policies: this.current.names, limits: this.current.limits }, "policies in force");
    for (const listener of this.listeners) listener();
  }
}
