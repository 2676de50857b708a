/**
 * Merges the entries the policies call for (coverage.ts) into a live webhook
 * configuration (pure). kubetx owns four fields of its object entries:
 * `name`, `namespaceSelector`, `rules` and `matchConditions`. Everything else
 * is the installer's and is kept: the client config (`url` or `service`, and
 * the caBundle that webhook-certs/install.sh patches in), `failurePolicy`
 * (the admin's opt-out), timeouts, side effects. An entry kubetx adds for a
 * new policy copies those from the entry named after the base name (the one
 * manifests/ installs), or from any object entry. Entries that are not
 * object entries (`records.kubetx.io`, or anyone else's) are left alone.
 */
import { isDeepStrictEqual } from "node:util";
import type { WebhookMatch } from "./coverage.ts";

/** One entry of a live webhook configuration, as the apiserver returns it. */
export type WebhookEntry = { readonly name: string } & Readonly<Record<string, unknown>>;

export interface Reconciled {
  /** The configuration's webhooks as the policies want them. */
  readonly webhooks: readonly WebhookEntry[];
  /** What differs from the live configuration, for the log; empty: nothing to write. */
  readonly changes: readonly string[];
  /** Why nothing can be done, when the configuration has no object entry to copy the installer's settings from. */
  readonly problem?: string;
}

const MANAGED_FIELDS = ["namespaceSelector", "rules", "matchConditions"] as const;

/** Whether an entry is one of kubetx's object entries for `baseName` (`validate.kubetx.io`, `<policy>.validate.kubetx.io`). */
export function isObjectEntry(name: string, baseName: string): boolean {
  return name === baseName || name.endsWith(`.${baseName}`);
}

export function reconcileWebhooks(live: readonly WebhookEntry[], desired: readonly WebhookMatch[], baseName: string): Reconciled {
  const owned = live.filter((e) => isObjectEntry(e.name, baseName));
  const template = owned.find((e) => e.name === baseName) ?? owned[0];
  if (!template) {
    return { webhooks: live, changes: [], problem: `it has no ${baseName} entry to take the client config from; apply manifests/webhooks.yaml again` };
  }
  const byName = new Map(owned.map((e) => [e.name, e]));
  const next = desired.map((match): WebhookEntry => ({ ...(byName.get(match.name) ?? template), ...match }));
  const others = live.filter((e) => !isObjectEntry(e.name, baseName));
  return { webhooks: [...next, ...others], changes: changesBetween(owned, next) };
}

/** `added x`, `removed y`, `x: namespaceSelector, rules`; the order of entries does not count. */
function changesBetween(before: readonly WebhookEntry[], after: readonly WebhookEntry[]): string[] {
  const old = new Map(before.map((e) => [e.name, e]));
  const changes: string[] = [];
  for (const entry of after) {
    const previous = old.get(entry.name);
    if (!previous) {
      changes.push(`added ${entry.name}`);
      continue;
    }
    const fields = MANAGED_FIELDS.filter((f) => !isDeepStrictEqual(previous[f], entry[f]));
    if (fields.length > 0) changes.push(`${entry.name}: ${fields.join(", ")}`);
  }
  const kept = new Set(after.map((e) => e.name));
  for (const entry of before) if (!kept.has(entry.name)) changes.push(`removed ${entry.name}`);
  return changes;
}

/**
 * Added to an `/observe` entry while the coverage it stands for changes:
 * the apiserver skips the entry. See settlingObserveEntries.
 */
export const SETTLING_CONDITION = { name: "kubetx-settling", expression: "false" } as const;

/** An entry's matchConditions as the apiserver returns them (none when it has none). */
function conditionsOf(entry: WebhookEntry): readonly { readonly name?: unknown; readonly expression?: unknown }[] {
  return Array.isArray(entry.matchConditions) ? (entry.matchConditions as readonly { name?: unknown; expression?: unknown }[]) : [];
}

/** Whether an `/observe` entry is paused while coverage changes (as settlingObserveEntries pauses it). */
export function isSettling(entry: WebhookEntry): boolean {
  return conditionsOf(entry).some((c) => c.name === SETTLING_CONDITION.name);
}

/** The policy part of an object entry's name: "" for the base name, `shop` for `shop.<baseName>`. */
function policyKey(name: string, baseName: string): string {
  return name === baseName ? "" : name.slice(0, -(baseName.length + 1));
}

/** What an `/observe` entry and a `/validate` entry of one policy look like, keyed by policyKey. */
export interface CoveragePair {
  readonly baseName: string;
  readonly live: readonly WebhookEntry[];
  readonly desired: readonly WebhookMatch[];
}

/**
 * The `/observe` configuration for the first step of a coverage change:
 * every object entry whose coverage is about to change, in `/observe` or in
 * `/validate`, is paused (SETTLING_CONDITION); entries already as the
 * policies want them in both stay.
 *
 * Why: a write `/observe` sees and `/validate` never does counts as a
 * write the apiserver rejected (transactions/intents.ts), which fails the
 * requester's transaction. So `/observe` must never cover more than
 * `/validate`, in the apiserver's view, even for the moment between the
 * two configurations' updates (the apiserver reads each through its own
 * watch, in no order). sync.ts changes coverage in three steps, each given
 * time to reach the apiserver: pause the `/observe` entries that change,
 * rewrite `/validate`, then write `/observe` as the policies want it.
 */
export function settlingObserveEntries(observe: CoveragePair, validate: CoveragePair): Reconciled {
  const matches = (entry: WebhookEntry | undefined, match: WebhookMatch | undefined): boolean =>
    entry !== undefined && match !== undefined && MANAGED_FIELDS.every((f) => isDeepStrictEqual(entry[f], match[f]));
  const keyed = <T extends { name: string }>(items: readonly T[], baseName: string): Map<string, T> =>
    new Map(items.filter((e) => isObjectEntry(e.name, baseName)).map((e) => [policyKey(e.name, baseName), e]));
  const liveValidate = keyed(validate.live, validate.baseName);
  const wantValidate = keyed(validate.desired, validate.baseName);
  const wantObserve = keyed(observe.desired, observe.baseName);
  const webhooks = observe.live.map((entry): WebhookEntry => {
    if (!isObjectEntry(entry.name, observe.baseName)) return entry;
    const key = policyKey(entry.name, observe.baseName);
    if (matches(entry, wantObserve.get(key)) && matches(liveValidate.get(key), wantValidate.get(key))) return entry;
    const conditions = conditionsOf(entry);
    // Paused already, or calling nothing (coverage.ts NO_POLICY_CONDITION).
    if (conditions.some((c) => c.expression === SETTLING_CONDITION.expression)) return entry;
    return { ...entry, matchConditions: [...conditions, SETTLING_CONDITION] };
  });
  const changes = webhooks.filter((e, i) => e !== observe.live[i]).map((e) => `${e.name}: paused while coverage changes`);
  return { webhooks, changes };
}
