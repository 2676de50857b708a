/**
 * Malformed and adversarial bodies made from real ones (pure, seeded):
 * wrong types, missing and extra keys, deep nesting, huge strings, odd
 * unicode, duplicate keys, extreme numbers, prototype keys, truncation,
 * invalid UTF-8 and wrong content types. The same seed always makes the
 * same case, so a failure is reproduced with its seed and index.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A small fast PRNG (mulberry32): reproducible cases from one 32-bit seed. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Random = () => number;

export function pick<T>(random: Random, items: readonly T[]): T {
  if (items.length === 0) throw new Error("pick from an empty list");
  return items[Math.floor(random() * items.length)] as T;
}

export interface FuzzCase {
  readonly body: Buffer;
  readonly contentType: string | undefined;
  /** What was done to the seed, for the report. */
  readonly mutations: readonly string[];
}

/**
 * Deep structures are spliced into the text after JSON.stringify (which
 * would recurse into them): a marker string stands in for them until then.
 */
const DEEP_MARKER = "\u0000kubetx-fuzz-deep:";
/** Big enough to blow a naive recursive walk, small enough to send a few hundred per second. */
const DEEP_LEVELS = [64, 1_000, 10_000, 100_000];
/** Up to 6 MiB: near the 7 MiB body limit, and once over it. */
const HUGE_LENGTHS = [64 * 1024, 1024 * 1024, 6 * 1024 * 1024, 8 * 1024 * 1024];
const ODD_STRINGS = [
  "", " ", "\u0000", "\ud800", "\udfff", "\ud83d\ude00", "\u202e\u0631\u0644", "a\u0301\u0301\u0301", "\u200b\u200d\ufeff", "%00", "../../etc",
  "t-../../x", "kubetx-system", "system:masters", "\\", "\"", "${jndi:x}", "<script>", "NaN", "-1", "9".repeat(400),
];
const ODD_NUMBERS = [0, -0, -1, 1e308, -1e308, 2 ** 53 + 1, 0.5, 1e-300];
const PROTOTYPE_KEYS = ["__proto__", "constructor", "prototype", "hasOwnProperty", "toString"];
const CONTENT_TYPES = [undefined, "text/plain", "application/json; charset=utf-16", "application/yaml", "application/jsonx", "multipart/form-data"];

type Mutation = (value: Json, random: Random) => { value: Json; name: string };

/** Every node's path in `value`, the root first. */
function paths(value: Json, prefix: (string | number)[] = [], out: (string | number)[][] = [], limit = 400): (string | number)[][] {
  out.push(prefix);
  if (out.length >= limit || value === null || typeof value !== "object") return out;
  const entries: [string | number, Json][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  for (const [key, child] of entries) paths(child, [...prefix, key], out, limit);
  return out;
}

/** `value` with the node at `path` replaced by `replacement(old)`, or removed when that is undefined. Copies, never changes `value`. */
function replaceAt(value: Json, path: readonly (string | number)[], replacement: (old: Json) => Json | undefined): Json {
  if (path.length === 0) return replacement(value) ?? null;
  if (value === null || typeof value !== "object") return value;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  const copy: Json[] | { [key: string]: Json } = Array.isArray(value) ? [...value] : { ...value };
  const slot = copy as Record<string | number, Json>;
  const next = rest.length === 0 ? replacement(slot[head] ?? null) : replaceAt(slot[head] ?? null, rest, replacement);
  if (next !== undefined) slot[head] = next;
  else if (Array.isArray(copy)) copy.splice(head as number, 1);
  else delete slot[head];
  return copy;
}

function randomOfType(random: Random): Json {
  switch (Math.floor(random() * 7)) {
    case 0: return null;
    case 1: return random() < 0.5;
    case 2: return pick(random, ODD_NUMBERS);
    case 3: return pick(random, ODD_STRINGS);
    case 4: return [pick(random, ODD_STRINGS), null, 1];
    case 5: return { [pick(random, ODD_STRINGS)]: pick(random, ODD_STRINGS) };
    default: return pick(random, ODD_STRINGS).repeat(1 + Math.floor(random() * 50));
  }
}

const MUTATIONS: readonly Mutation[] = [
  (value, random) => ({ value: replaceAt(value, pick(random, paths(value)), () => randomOfType(random)), name: "wrong type" }),
  (value, random) => ({ value: replaceAt(value, pick(random, paths(value).slice(1).concat([[]])), () => undefined), name: "missing key" }),
  (value, random) => ({ value: replaceAt(value, pick(random, paths(value)), () => `${DEEP_MARKER}${pick(random, DEEP_LEVELS)}`), name: "deep nesting" }),
  (value, random) => ({ value: replaceAt(value, pick(random, paths(value)), () => "x".repeat(pick(random, HUGE_LENGTHS))), name: "huge string" }),
  (value, random) => ({ value: replaceAt(value, pick(random, paths(value)), () => pick(random, ODD_STRINGS)), name: "odd unicode" }),
  (value, random) => ({ value: replaceAt(value, pick(random, paths(value)), () => pick(random, ODD_NUMBERS)), name: "odd number" }),
  (value, random) => ({ value: addKey(value, pick(random, paths(value)), pick(random, PROTOTYPE_KEYS), { allowed: true, polluted: true }), name: "prototype key" }),
  (value, random) => ({ value: replaceAt(value, pick(random, paths(value)), () => Array.from({ length: pick(random, [1_000, 100_000]) }, () => 0)), name: "huge array" }),
  (value, random) => ({ value: addKey(value, pick(random, paths(value)), pick(random, ODD_STRINGS), randomOfType(random)), name: "extra key" }),
];

function addKey(value: Json, path: readonly (string | number)[], key: string, extra: Json): Json {
  return replaceAt(value, path, (old) => (old !== null && typeof old === "object" && !Array.isArray(old) ? { ...old, [key]: extra } : old));
}

/** The text of a value, with deep markers expanded and, sometimes, a key written twice. */
function serialize(value: Json, random: Random, names: string[]): string {
  let text = JSON.stringify(value);
  text = text.replace(new RegExp(`"${DEEP_MARKER.replace("\u0000", "\\\\u0000")}(\\d+)"`, "g"), (_m, n: string) => {
    const depth = Number(n);
    return random() < 0.5 ? `${"[".repeat(depth)}${"]".repeat(depth)}` : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
  });
  if (random() < 0.15) {
    const keys = [...text.matchAll(/"([A-Za-z]+)":/g)];
    const chosen = keys.length > 0 ? pick(random, keys) : undefined;
    if (chosen?.index !== undefined) {
      text = `${text.slice(0, chosen.index)}"${chosen[1] ?? ""}":${JSON.stringify(randomOfType(random))},${text.slice(chosen.index)}`;
      names.push("duplicate key");
    }
  }
  return text;
}

/** Damage to the bytes themselves: truncation, trailing garbage, invalid UTF-8, nothing at all. */
function damage(text: string, random: Random, names: string[]): Buffer {
  const roll = random();
  if (roll < 0.04) return (names.push("truncated"), Buffer.from(text.slice(0, Math.floor(random() * text.length))));
  if (roll < 0.06) return (names.push("trailing garbage"), Buffer.from(`${text}}]garbage`));
  // Right after the opening brace, so the bytes land in a key of their own: spliced anywhere else they
  // could garble the name of a field the case pins (a review's dryRun).
  if (roll < 0.08 && text.startsWith("{")) return (names.push("invalid UTF-8"), Buffer.concat([Buffer.from('{"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from(`":1,${text.slice(1)}`)]));
  if (roll < 0.09) return (names.push("empty body"), Buffer.alloc(0));
  return Buffer.from(text);
}

/**
 * One case from a seed: one to three structured mutations, then `pin`
 * (which puts back what must stay, e.g. a review's dryRun), then perhaps
 * a duplicated key, damage to the bytes and a wrong content type.
 */
export function mutate(seed: Json, random: Random, pin: (value: Json) => Json = (v) => v): FuzzCase {
  const names: string[] = [];
  let value = seed;
  const rounds = 1 + Math.floor(random() * 3);
  for (let i = 0; i < rounds; i += 1) {
    const step = pick(random, MUTATIONS)(value, random);
    value = step.value;
    names.push(step.name);
  }
  const body = damage(serialize(pin(value), random, names), random, names);
  const wrongType = random() < 0.03;
  if (wrongType) names.push("content type");
  return { body, contentType: wrongType ? pick(random, CONTENT_TYPES) : "application/json", mutations: names };
}
