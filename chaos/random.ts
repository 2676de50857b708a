/**
 * A small seeded PRNG (mulberry32: 32 bits of state, passes the usual
 * statistical batteries well enough for picking workloads), so a seed and a
 * trial number always give the same plan. Not for anything secret.
 */

export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max], both included. */
  int(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** Picks by weight: `{ a: 3, b: 1 }` gives "a" three times as often as "b". */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K;
  /** `count` distinct items in random order. */
  sample<T>(items: readonly T[], count: number): T[];
  /** `digits` lowercase hex digits. */
  hex(digits: number): string;
}

const GOLDEN_GAMMA = 0x9e3779b9;

export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return randomFrom(next);
}

/** The generator of one trial of a campaign: independent of every other trial, so a trial replays alone. */
export function trialRandom(seed: number, trial: number): Random {
  return mulberry32(Math.imul(seed >>> 0, GOLDEN_GAMMA) ^ Math.imul(trial + 1, 0x85ebca6b));
}

function randomFrom(next: () => number): Random {
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => {
    if (items.length === 0) throw new Error("cannot pick from an empty list");
    return items[int(0, items.length - 1)] as T;
  };
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick,
    weighted: <K extends string>(weights: Readonly<Record<K, number>>): K => {
      const entries = Object.entries(weights) as [K, number][];
      const total = entries.reduce((sum, [, w]) => sum + w, 0);
      let roll = next() * total;
      for (const [key, weight] of entries) {
        roll -= weight;
        if (roll < 0) return key;
      }
      return (entries.at(-1) as [K, number])[0];
    },
    sample: <T>(items: readonly T[], count: number): T[] => {
      const pool = [...items];
      for (let i = pool.length - 1; i > 0; i -= 1) {
        const j = int(0, i);
        [pool[i], pool[j]] = [pool[j] as T, pool[i] as T];
      }
      return pool.slice(0, Math.min(count, pool.length));
    },
    hex: (digits) => Array.from({ length: digits }, () => int(0, 15).toString(16)).join(""),
  };
}
