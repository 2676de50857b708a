/**
 * Many objects read at once: several of one collection (a kind in a
 * namespace) by one consistent list of their metadata, a few by a read
 * each. A hundred ConfigMaps of one apply cost one call instead of a
 * hundred. Consistent: the list is read from etcd, as a read by name is,
 * never from the watch cache, which may miss a write of a moment ago.
 */
import type { KubeClient, KubeObject, ObjectList, ObjectRef } from "../kube/index.ts";
import { METADATA_LIST, getIfExists } from "../kube/index.ts";
import { resourcePath } from "../kube/types.ts";
import { mapLimit } from "./concurrency.ts";

export interface ReadManyOptions {
  /** From this many objects of one collection, one list instead of a read each. */
  readonly listFrom: number;
  /** Requests in flight at once. */
  readonly parallel: number;
}

/**
 * Each object by `resourcePath(ref)`: the object (only its metadata when it
 * was listed), or undefined when it does not exist.
 */
export async function readMany(client: KubeClient, refs: readonly ObjectRef[], options: ReadManyOptions): Promise<Map<string, KubeObject | undefined>> {
  const byCollection = new Map<string, ObjectRef[]>();
  for (const ref of refs) {
    const collection = resourcePath({ group: ref.group, version: ref.version, resource: ref.resource, ...(ref.namespace ? { namespace: ref.namespace } : {}) });
    byCollection.set(collection, [...(byCollection.get(collection) ?? []), ref]);
  }
  const found = new Map<string, KubeObject | undefined>();
  await mapLimit([...byCollection.entries()], options.parallel, async ([collection, group]) => {
    if (group.length < options.listFrom) {
      await mapLimit(group, options.parallel, async (ref) => void found.set(resourcePath(ref), await getIfExists(client, resourcePath(ref))));
      return;
    }
    const list = await client.get<ObjectList>(collection, { accept: METADATA_LIST });
    const byName = new Map(list.items.map((o) => [o.metadata?.name ?? "", o]));
    for (const ref of group) found.set(resourcePath(ref), byName.get(ref.name));
  });
  return found;
}
