/** Configuration: defaults, overrides from flag strings, and fast failure naming the bad value. */
import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_INTENT_GRACE_MS, DEFAULT_PERSIST_GRACE_MS, DEFAULT_RESOLVER_PERIOD_MS, loadConfig } from "../../src/config/config.ts";
import { POLICY_DEFAULTS } from "../../src/policy/policy.ts";
import type { ResolverTiming } from "../../src/resolver/resolver.ts";
import { renewEveryMs, validateTiming } from "../../src/resolver/resolver.ts";

describe("loadConfig", () => {
  it("uses the documented defaults when nothing is given", () => {
    const config = loadConfig({});
    expect(config.namespace).toBe("kubetx-system");
    expect(config.identity).toMatch(new RegExp(`-${process.pid}$`));
    expect(config.resolverPeriodMs).toBe(DEFAULT_RESOLVER_PERIOD_MS);
    expect(config.persistGraceMs).toBe(DEFAULT_PERSIST_GRACE_MS);
    expect(config.intentGraceMs).toBe(DEFAULT_INTENT_GRACE_MS);
    expect(config.policySource).toBe("cluster");
    expect(config.flagPolicy).toEqual(POLICY_DEFAULTS);
  });

  it("takes overrides given as flag strings and turns them into numbers", () => {
    const config = loadConfig({
      namespace: "tx", identity: "replica-2", resolverPeriodMs: "100", persistGraceMs: "500", policySource: "flags",
      intentGraceMs: "600", lockTtlSeconds: "3", maxOpenSeconds: "8", quietWindowMs: "1200",
    });
    expect(config).toMatchObject({ namespace: "tx", identity: "replica-2", resolverPeriodMs: 100, persistGraceMs: 500, intentGraceMs: 600, policySource: "flags" });
    expect(config.flagPolicy).toMatchObject({ lockTTLSeconds: 3, maxOpenSeconds: 8, quietWindowSeconds: 1.2 });
    expect(config.flagPolicy.namespaceSelector).toEqual(POLICY_DEFAULTS.namespaceSelector);
  });

  it("treats an empty flag value as not given", () => {
    expect(loadConfig({ lockTtlSeconds: "" }).flagPolicy.lockTTLSeconds).toBe(POLICY_DEFAULTS.lockTTLSeconds);
  });

  it.each([
    ["a negative lock TTL", { lockTtlSeconds: "-5" }, /lock TTL.*'-5'/],
    ["a zero resolver period", { resolverPeriodMs: 0 }, /resolver period.*'0'/],
    ["a non-numeric maximum open time", { maxOpenSeconds: "soon" }, /maximum open time.*'soon'/],
    ["a non-numeric quiet window", { quietWindowMs: "2s" }, /quiet window.*'2s'/],
    ["an infinite persist grace", { persistGraceMs: "Infinity" }, /persist grace.*'Infinity'/],
    ["an unknown policy source", { policySource: "file" }, /--policy-source must be cluster or flags, got 'file'/],
  ])("rejects %s with a ConfigError naming the value", (_name, input, message) => {
    expect(() => loadConfig(input)).toThrow(ConfigError);
    expect(() => loadConfig(input)).toThrow(message);
  });

  it("rejects a lock TTL shorter than three resolver periods", () => {
    expect(() => loadConfig({ lockTtlSeconds: 1, resolverPeriodMs: 400 })).toThrow(ConfigError);
    expect(() => loadConfig({ lockTtlSeconds: 1, resolverPeriodMs: 400 })).toThrow(/--lock-ttl 1 s.*--resolver-period 400 ms/);
  });

  it("rejects a quiet window shorter than twice the intent grace", () => {
    expect(() => loadConfig({ quietWindowMs: 1900, intentGraceMs: 1000 })).toThrow(ConfigError);
    expect(() => loadConfig({ quietWindowMs: 1900, intentGraceMs: 1000 })).toThrow(/1900 ms.*1000 ms/);
  });

  it("accepts a lock TTL of exactly three resolver periods", () => {
    expect(loadConfig({ lockTtlSeconds: 3, resolverPeriodMs: 1000 }).flagPolicy.lockTTLSeconds).toBe(3);
  });

  it("freezes the configuration all the way down", () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.flagPolicy.namespaceSelector.matchLabels)).toBe(true);
    expect(Object.isFrozen(config.flagPolicy.exemptUsers)).toBe(true);
    expect(() => {
      (config as { resolverPeriodMs: number }).resolverPeriodMs = 1;
    }).toThrow(TypeError);
  });

  it("rejects a maximum open time no longer than the quiet window, naming both fields", () => {
    expect(() => loadConfig({ maxOpenSeconds: 1, quietWindowMs: 5000 })).toThrow(ConfigError);
    expect(() => loadConfig({ maxOpenSeconds: 1, quietWindowMs: 5000 })).toThrow(/spec.maxOpenSeconds: must be longer than spec.quietWindowSeconds \(5\)/);
  });
});

describe("resolver timing", () => {
  const good: ResolverTiming = { periodMs: 250, persistGraceMs: 2_000, lateWriteMs: 10_000 };

  it("accepts the production timings", () => {
    expect(() => validateTiming(good)).not.toThrow();
  });

  it.each([
    ["a zero resolver period", { periodMs: 0 }, /resolver period must be positive/],
    ["a period that is not a number", { periodMs: Number.NaN }, /resolver period must be positive/],
    ["a zero persist grace", { persistGraceMs: 0 }, /persist grace must be positive/],
    ["a negative late-write window", { lateWriteMs: -1 }, /late-write window must not be negative/],
  ])("rejects %s", (_name, change, message) => {
    expect(() => validateTiming({ ...good, ...change })).toThrow(message);
  });

  it("renews a heartbeat three times per lock TTL, but never more often than the resolver runs", () => {
    expect(renewEveryMs(15_000, 250)).toBe(5_000);
    expect(renewEveryMs(600, 250)).toBe(250);
  });
});
