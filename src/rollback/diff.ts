/**
 * What a write changed, path by path: pure helpers over plain JSON. Objects
 * are compared key by key; arrays and scalars are single values (a list
 * element has no identity a three-way merge could rely on).
 */

/** A path as a list of object keys, e.g. ["spec", "template", "spec", "containers"]. */
export type Path = readonly string[];

type Json = unknown;

function isPlainObject(value: Json): value is Record<string, Json> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) if (!deepEqual(a[key], b[key])) return false;
  return true;
}

/** Every leaf path where `before` and `after` differ (a key added or removed counts as changed). */
export function changedPaths(before: Json, after: Json, prefix: Path = []): Path[] {
  if (deepEqual(before, after)) return [];
  if (!isPlainObject(before) || !isPlainObject(after)) return [prefix];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.flatMap((key) => changedPaths(before[key], after[key], [...prefix, key]));
}

/** The value at `path`, or undefined when any step is missing. */
export function valueAt(value: Json, path: Path): Json {
  let current = value;
  for (const key of path) {
    if (!isPlainObject(current)) return undefined;
    current = current[key];
  }
  return current;
}

/** RFC 6901: `~` and `/` in a key are escaped. */
export function pointer(path: Path): string {
  return path.map((key) => `/${key.replace(/~/g, "~0").replace(/\//g, "~1")}`).join("");
}

/** `spec.template.spec.containers`, or `metadata.annotations["a/b"]` for keys with dots or slashes: how messages name a path. */
export function describePath(path: Path): string {
  return path.map((key, i) => (/^[A-Za-z_$][\w$-]*$/.test(key) ? `${i === 0 ? "" : "."}${key}` : `[${JSON.stringify(key)}]`)).join("");
}
