import type { KubeClient } from "./client.ts";
import { AlreadyExists, NotFound } from "./errors.ts";
import type { KubeObject } from "./types.ts";

/**
 * Creates `body` in the collection at `collectionPath`, or replaces the
 * existing object of that name (keeping its resourceVersion), so bootstrap
 * steps can run on every start.
 */
export async function createOrReplace(client: KubeClient, collectionPath: string, body: KubeObject): Promise<KubeObject> {
  try {
    return await client.create(collectionPath, body);
  } catch (error) {
    if (!(error instanceof AlreadyExists)) throw error;
    const path = `${collectionPath}/${encodeURIComponent(body.metadata?.name ?? "")}`;
    const current = await client.get(path);
    return client.replace(path, { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion } });
  }
}

/** Creates `body` unless an object of that name exists; never changes an existing one. */
export async function createIfMissing(client: KubeClient, collectionPath: string, body: KubeObject): Promise<void> {
  try {
    await client.create(collectionPath, body);
  } catch (error) {
    if (!(error instanceof AlreadyExists)) throw error;
  }
}

/** The object at `path`, or undefined when it does not exist. */
export async function getIfExists<T extends KubeObject = KubeObject>(client: KubeClient, path: string): Promise<T | undefined> {
  try {
    return await client.get<T>(path);
  } catch (error) {
    if (error instanceof NotFound) return undefined;
    throw error;
  }
}
