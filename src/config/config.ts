/**
 * Typed, validated, frozen configuration of one kubetx process. Built by
 * the composition root from flags; nothing else reads flags or the
 * environment.
 */
import { hostname } from "node:os";
import type { NamedPolicy } from "../policy/combine.ts";
import type { PolicySpec } from "../policy/policy.ts";
import { POLICY_DEFAULTS, deepFreeze } from "../policy/policy.ts";
import { validatePolicySpec } from "../policy/validate.ts";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * cluster: the TransactionPolicy objects, watched (production, kubetx dev).
 * flags: one policy built from command-line flags (tests, experiments).
 */
export type PolicySourceKind = "cluster" | "flags";

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
  readonly policySource: PolicySourceKind;
  /** The policy in force when policySource is `flags`. */
  readonly flagPolicy: PolicySpec;
  /**
   * Set when the apiserver's audit webhook backend reports to this
   * process's /audit: how long after a request its event may arrive. A
   * transparent transaction then closes only this much after its quiet
   * window, so a failure the sink reports is known before it commits.
   */
  readonly auditSinkDelayMs?: number;
  /** How long a rolled-back transaction keeps the locks of members whose write may still land (see ResolverTiming). */
  readonly lateWriteMs: number;
}

/**
 * A quarter second: commits land soon after kubectl finishes, and a pass
 * over a handful of open transactions costs a few list requests.
 */
export const DEFAULT_RESOLVER_PERIOD_MS = 250;
/** A write the apiserver allowed is in etcd within milliseconds; two seconds is generous. */
export const DEFAULT_PERSIST_GRACE_MS = 2_000;
/**
 * Mutating to validating admission of one request takes milliseconds; a
 * second also covers a slow second mutating webhook and a loaded machine
 * (the chaos campaign saw half a second run out there and roll back valid
 * applies). Policies' quiet windows are at least twice this (see
 * src/policy/validate.ts). Used only without the audit sink.
 */
export const DEFAULT_INTENT_GRACE_MS = 1_000;
/**
 * The apiserver's batch backend with --audit-webhook-batch-max-wait=250ms
 * (what kubetx dev configures) delivers an event within about a quarter
 * second; a second leaves room for a loaded machine and one retry.
 */
export const DEFAULT_AUDIT_SINK_DELAY_MS = 1_000;
/**
 * A write kubetx allowed can still be held by another validating webhook
 * for that webhook's timeout: 10 s is the apiserver's default timeoutSeconds.
 * Raise it to your slowest validating webhook's timeout (at most 30 s).
 */
export const DEFAULT_LATE_WRITE_MS = 10_000;

export interface ConfigInput {
  readonly namespace?: string;
  readonly identity?: string;
  readonly resolverPeriodMs?: string | number;
  readonly persistGraceMs?: string | number;
  readonly intentGraceMs?: string | number;
  readonly policySource?: string;
  readonly exemptUsers?: readonly string[];
  readonly lockTtlSeconds?: string | number;
  readonly maxOpenSeconds?: string | number;
  readonly quietWindowMs?: string | number;
  /** Receive the apiserver's audit events at /audit; the delay is DEFAULT_AUDIT_SINK_DELAY_MS unless given. */
  readonly auditSink?: boolean;
  readonly auditSinkDelayMs?: string | number;
  readonly lateWriteMs?: string | number;
}

export function loadConfig(input: ConfigInput): EngineConfig {
  const source = input.policySource ?? "cluster";
  if (source !== "cluster" && source !== "flags") throw new ConfigError(`kubetx: --policy-source must be cluster or flags, got '${source}'`);
  const config: EngineConfig = {
    namespace: input.namespace ?? "kubetx-system",
    identity: input.identity ?? `${hostname()}-${process.pid}`,
    resolverPeriodMs: positive("resolver period (--resolver-period, ms)", input.resolverPeriodMs, DEFAULT_RESOLVER_PERIOD_MS),
    persistGraceMs: positive("persist grace (ms)", input.persistGraceMs, DEFAULT_PERSIST_GRACE_MS),
    intentGraceMs: intentGrace(input),
    policySource: source,
    flagPolicy: flagPolicy(input),
    lateWriteMs: positive("late-write window (--late-write-window, ms)", input.lateWriteMs, DEFAULT_LATE_WRITE_MS),
    ...(input.auditSink ? { auditSinkDelayMs: positive("audit sink delay (--audit-sink-delay, ms)", input.auditSinkDelayMs, DEFAULT_AUDIT_SINK_DELAY_MS) } : {}),
  };
  if (config.intentGraceMs * 2 > config.flagPolicy.quietWindowSeconds * 1000) {
    throw new ConfigError(`kubetx: the quiet window (--quiet-window ${config.flagPolicy.quietWindowSeconds * 1000} ms) must be at least twice the intent grace (${config.intentGraceMs} ms), or a rejected last write could be missed`);
  }
  if (config.flagPolicy.lockTTLSeconds * 1000 < 3 * config.resolverPeriodMs) {
    throw new ConfigError(`kubetx: lock TTL (--lock-ttl ${config.flagPolicy.lockTTLSeconds} s) must be at least three resolver periods (--resolver-period ${config.resolverPeriodMs} ms)`);
  }
  return deepFreeze(config);
}

/** The default grace, or half the quiet window where that is shorter (a short window for tests must not need a flag of its own). */
function intentGrace(input: ConfigInput): number {
  if (input.intentGraceMs !== undefined && input.intentGraceMs !== "") return positive("intent grace (ms)", input.intentGraceMs, DEFAULT_INTENT_GRACE_MS);
  const quietMs = positive("quiet window (--quiet-window, ms)", input.quietWindowMs, POLICY_DEFAULTS.quietWindowSeconds * 1000);
  return Math.min(DEFAULT_INTENT_GRACE_MS, quietMs / 2);
}

/**
 * The policies in force for `config` when they come from flags (one, named
 * `flags`); undefined when they come from the cluster. Whoever registers
 * the webhook configurations for such a kubetx can write them as its sync
 * would (webhooks/configurations.ts), so no coverage change follows.
 */
export function flagPolicies(config: EngineConfig): readonly NamedPolicy[] | undefined {
  return config.policySource === "flags" ? [{ name: "flags", spec: config.flagPolicy }] : undefined;
}

function flagPolicy(input: ConfigInput): PolicySpec {
  const spec = {
    ...POLICY_DEFAULTS,
    lockTTLSeconds: positive("lock TTL (--lock-ttl, seconds)", input.lockTtlSeconds, POLICY_DEFAULTS.lockTTLSeconds),
    maxOpenSeconds: positive("maximum open time (--max-open, seconds)", input.maxOpenSeconds, POLICY_DEFAULTS.maxOpenSeconds),
    quietWindowSeconds: positive("quiet window (--quiet-window, ms)", input.quietWindowMs, POLICY_DEFAULTS.quietWindowSeconds * 1000) / 1000,
    // Added to the control plane's own identities, never instead of them.
    exemptUsers: [...POLICY_DEFAULTS.exemptUsers, ...(input.exemptUsers ?? [])],
  };
  const check = validatePolicySpec(spec);
  if (!check.ok) throw new ConfigError(`kubetx: the policy from flags is invalid: ${check.problems.join("; ")}`);
  return check.spec;
}

function positive(name: string, value: string | number | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`kubetx: ${name} must be a positive number, got '${String(value)}'`);
  return n;
}
