/**
 * Namespace labels, kept current by a watch so the admission path does not
 * ask the apiserver on every request. A namespace the cache has not seen
 * yet (created a moment ago) is read directly.
 */
import type { KubeClient, KubeObject, ObjectList } from "../kube/index.ts";
import { NotFound } from "../kube/index.ts";
import type { Logger } from "../telemetry/logger.ts";

/** Pause before re-listing after a watch ends or fails. */
const REWATCH_DELAY_MS = 1_000;

type Labels = Readonly<Record<string, string>>;

export class NamespaceLabels {
  private readonly client: KubeClient;
  private readonly logger: Logger;
  private readonly labels = new Map<string, Labels>();
  private synced = false;

  constructor(client: KubeClient, logger: Logger) {
    this.client = client;
    this.logger = logger;
  }

  get ready(): boolean {
    return this.synced;
  }

  async labelsOf(namespace: string): Promise<Labels | undefined> {
    const cached = this.labels.get(namespace);
    if (cached) return cached;
    try {
      const ns = await this.client.get(`/api/v1/namespaces/${encodeURIComponent(namespace)}`);
      this.remember(ns);
      return ns.metadata?.labels ?? {};
    } catch (error) {
      if (error instanceof NotFound) return undefined;
      throw error;
    }
  }

  /** Lists and watches namespaces until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const list = await this.client.get<ObjectList>("/api/v1/namespaces");
        for (const ns of list.items) this.remember(ns);
        this.synced = true;
        await this.client.watch("/api/v1/namespaces", { resourceVersion: list.metadata?.resourceVersion }, (event) => {
          if (event.type === "DELETED") this.labels.delete(event.object.metadata?.name ?? "");
          else if (event.type === "ADDED" || event.type === "MODIFIED") this.remember(event.object);
        }, signal);
      } catch (error) {
        if (!signal.aborted) this.logger.warn({ err: error }, "namespace watch failed; retrying");
      }
      if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, REWATCH_DELAY_MS));
    }
  }

  private remember(ns: KubeObject): void {
    const name = ns.metadata?.name;
    if (name) this.labels.set(name, ns.metadata?.labels ?? {});
  }
}
