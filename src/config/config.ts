/**
 * Typed, validated, frozen configuration of one kubetx process. Built by
 * the composition root from flags; nothing else reads flags or the
 * environment.
 */
import { hostname } from "node:os";
import type { Policy } from "../policy/policy.ts";
import { DEFAULT_POLICY } from "../policy/policy.ts";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export interface EngineConfig {
  /** Where kubetx keeps its Leases and journal Secrets. */
  readonly namespace: string;
  /** This replica's name in heartbeats: unique per process. */
  readonly identity: string;
  /** How often the resolver looks at open transactions. */
  readonly resolverPeriodMs: number;
  /** How long an admitted write may take to become visible before it counts as lost. */
  readonly persistGraceMs: number;
  /** How long a write seen by /observe may take to reach /validate before it counts as rejected. */
  readonly intentGraceMs: number;
  readonly policy: Policy;
}

/**
 * A quarter second: commits land soon after kubectl finishes, and a pass
 * over a handful of open transactions costs a few list requests.
 */
export const DEFAULT_RESOLVER_PERIOD_MS = 250;
/** A write the apiserver allowed is in etcd within milliseconds; two seconds is generous. */
export const DEFAULT_PERSIST_GRACE_MS = 2_000;

/**
 * Mutating to validating admission of one request takes milliseconds; half
 * a second also covers a slow second mutating webhook.
 */
export const DEFAULT_INTENT_GRACE_MS = 500;

export interface ConfigInput {
  readonly namespace?: string;
  readonly identity?: string;
  readonly resolverPeriodMs?: string | number;
  readonly persistGraceMs?: string | number;
  readonly intentGraceMs?: string | number;
  readonly exemptUsers?: readonly string[];
  readonly lockTtlSeconds?: string | number;
  readonly maxOpenSeconds?: string | number;
  readonly quietWindowMs?: string | number;
}

export function loadConfig(input: ConfigInput): EngineConfig {
  const policy: Policy = {
    ...DEFAULT_POLICY,
    lockTtlSeconds: positive("lock TTL (--lock-ttl, seconds)", input.lockTtlSeconds, DEFAULT_POLICY.lockTtlSeconds),
    maxOpenSeconds: positive("maximum open time (--max-open, seconds)", input.maxOpenSeconds, DEFAULT_POLICY.maxOpenSeconds),
    quietWindowMs: positive("quiet window (--quiet-window, ms)", input.quietWindowMs, DEFAULT_POLICY.quietWindowMs),
    exemptUsers: input.exemptUsers ?? DEFAULT_POLICY.exemptUsers,
  };
  const config: EngineConfig = {
    namespace: input.namespace ?? "kubetx-system",
    identity: input.identity ?? `${hostname()}-${process.pid}`,
    resolverPeriodMs: positive("resolver period (--resolver-period, ms)", input.resolverPeriodMs, DEFAULT_RESOLVER_PERIOD_MS),
    persistGraceMs: positive("persist grace (ms)", input.persistGraceMs, DEFAULT_PERSIST_GRACE_MS),
    intentGraceMs: positive("intent grace (ms)", input.intentGraceMs, DEFAULT_INTENT_GRACE_MS),
    policy,
  };
  if (config.intentGraceMs * 2 > policy.quietWindowMs) {
    throw new ConfigError(`kubetx: the quiet window (${policy.quietWindowMs} ms) must be at least twice the intent grace (${config.intentGraceMs} ms), or a rejected last write could be missed`);
  }
  if (policy.lockTtlSeconds * 1000 < 3 * config.resolverPeriodMs) {
    throw new ConfigError(`kubetx: lock TTL ${policy.lockTtlSeconds} s must be at least three resolver periods (${config.resolverPeriodMs} ms)`);
  }
  return Object.freeze(config);
}

function positive(name: string, value: string | number | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`kubetx: ${name} must be a positive number, got '${String(value)}'`);
  return n;
}
