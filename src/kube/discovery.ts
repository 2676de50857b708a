/**
 * Kinds to resources, as the apiserver's discovery documents say: what a
 * manifest names (apiVersion, kind) to the resource a request writes.
 * One document per group version, kept a minute; a kind it does not list
 * (a CRD created a moment ago) asks again once the copy is a few seconds old.
 */
import type { KubeClient } from "./client.ts";
import { NotFound } from "./errors.ts";

export interface ResourceOfKind {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  readonly namespaced: boolean;
}

interface ApiResourceList {
  resources?: { name?: string; kind?: string; namespaced?: boolean }[];
}

const KEEP_MS = 60_000;
const REASK_MISS_MS = 5_000;

export class Discovery {
  private readonly client: KubeClient;
  private readonly now: () => number;
  private readonly documents = new Map<string, { at: number; kinds: Promise<Map<string, ResourceOfKind>> }>();

  constructor(client: KubeClient, now: () => number = () => performance.now()) {
    this.client = client;
    this.now = now;
  }

  /** The resource `kind` of `apiVersion` is written as; undefined when the apiserver serves no such kind. */
  async resourceOf(apiVersion: string, kind: string): Promise<ResourceOfKind | undefined> {
    const cached = this.documents.get(apiVersion);
    const age = cached ? this.now() - cached.at : Infinity;
    const found = cached && age < KEEP_MS ? (await cached.kinds.catch(() => new Map<string, ResourceOfKind>())).get(kind) : undefined;
    if (found || (cached && age < Math.min(KEEP_MS, REASK_MISS_MS))) return found;
    const kinds = this.read(apiVersion);
    this.documents.set(apiVersion, { at: this.now(), kinds });
    return (await kinds).get(kind);
  }

  private async read(apiVersion: string): Promise<Map<string, ResourceOfKind>> {
    const [group, version] = apiVersion.includes("/") ? (apiVersion.split("/", 2) as [string, string]) : ["", apiVersion];
    const path = group === "" ? `/api/${version}` : `/apis/${group}/${version}`;
    let list: ApiResourceList;
    try {
      list = await this.client.get<ApiResourceList>(path);
    } catch (error) {
      if (error instanceof NotFound) return new Map();
      throw error;
    }
    const kinds = new Map<string, ResourceOfKind>();
    for (const r of list.resources ?? []) {
      // Subresources (deployments/scale) name a kind too; the object is written through the resource itself.
      if (!r.name || !r.kind || r.name.includes("/") || kinds.has(r.kind)) continue;
      kinds.set(r.kind, { group, version, resource: r.name, namespaced: r.namespaced === true });
    }
    return kinds;
  }
}
