/**
 * Which writes kubetx's object webhooks (`validate.kubetx.io`,
 * `observe.kubetx.io`) send to kubetx, derived from the TransactionPolicies
 * (pure). With `failurePolicy: Fail` this is the blast radius of an outage:
 * a write the webhooks send nowhere is never blocked by kubetx.
 *
 * One webhook entry per policy. Several policies with different selectors
 * cannot share one `namespaceSelector` (a label selector has no "or"), and
 * the other way out, one entry whose `matchConditions` test the namespace's
 * labels in CEL, does not work: the apiserver evaluates a webhook's
 * matchConditions without `namespaceObject` (it is null there, and reading
 * its labels is an error, which `failurePolicy: Fail` turns into a refused
 * write). So each policy that is not `off` gets its own entry: its
 * namespaceSelector (plus the namespaces kubetx never covers), rules for the
 * resources it includes, and matchConditions for what the selector and
 * rules cannot say (excluded resources, exempt users, groups and service
 * accounts). Policies with identical entries share one.
 *
 * Where policies overlap, the apiserver calls /validate once per matching
 * entry, concurrently, each call with its own request uid. kubetx's
 * admission is idempotent for that: both calls find the same transaction
 * (the session Lease is claimed with a compare-and-swap), the one that
 * loses the race to create the object's lock Lease finds it held by its
 * own transaction ("mine") and joins without journalling again, and the
 * member count is by lock name. /observe records the write once per call
 * and /validate crosses it off once per call, so the two stay paired.
 *
 * The entries are a superset of what kubetx takes part in, never a subset:
 * kubetx's handler still decides. Where a policy exempts a user or says
 * `off`, combine.ts lets the write through even if another policy selects
 * it; a webhook entry cannot see the other policies' selectors, so such
 * writes still reach kubetx (which passes them) instead of being skipped.
 */
import { createHash } from "node:crypto";
import { OPT_OUT } from "../admission/scope.ts";
import { KUBETX_NAMESPACE, KUBETX_USERNAME } from "../kube/names.ts";
import type { NamedPolicy } from "../policy/combine.ts";
import type { LabelSelector, LabelSelectorRequirement, PolicySpec } from "../policy/policy.ts";
import { serviceAccountUser } from "../policy/policy.ts";
import { ANNOTATION_TRANSACTION } from "../transactions/model.ts";

export interface MatchCondition {
  readonly name: string;
  readonly expression: string;
}

export interface WebhookRule {
  readonly operations: readonly string[];
  readonly apiGroups: readonly string[];
  readonly apiVersions: readonly string[];
  readonly resources: readonly string[];
  readonly scope: "Namespaced";
}

/** The fields of one webhook entry that kubetx keeps in step with the policies; the rest is the installer's. */
export interface WebhookMatch {
  readonly name: string;
  readonly namespaceSelector: LabelSelector;
  readonly rules: readonly WebhookRule[];
  readonly matchConditions: readonly MatchCondition[];
}

/**
 * Never the control plane's own namespaces: kube-node-lease carries every
 * node's heartbeat, and a kubetx outage must not be able to stall those.
 */
export const EXCLUDED_NAMESPACES: readonly string[] = ["kube-system", "kube-public", "kube-node-lease", KUBETX_NAMESPACE];

const NOT_EXCLUDED_NAMESPACE: LabelSelectorRequirement = { key: "kubernetes.io/metadata.name", operator: "NotIn", values: EXCLUDED_NAMESPACES };

/** CEL conditions that skip calls kubetx never needs: its own writes and Events. */
export const MATCH_CONDITIONS: readonly MatchCondition[] = [
  { name: "not-kubetx-itself", expression: `request.userInfo.username != '${KUBETX_USERNAME}'` },
  { name: "not-events", expression: "request.resource.resource != 'events'" },
];

/**
 * An object annotated `kubetx.io/transaction: none` is left alone by
 * admission (admission/scope.ts); skipping the call too lets the opt-out
 * work while kubetx is down. A delete carries it on the object it deletes.
 */
export const OPT_OUT_CONDITION: MatchCondition = {
  name: "not-opted-out",
  expression: `!(request.operation == "DELETE" ? ${optedOut("oldObject")} : ${optedOut("object")})`,
};

/**
 * The mutating `/observe` records transparent writes only
 * (admission/observe.ts). A create or update that names its transaction
 * (sets or changes `kubetx.io/transaction`, as admission/scope.ts
 * namedTransaction reads it) is never transparent, so the apiserver need
 * not call it: one webhook round trip less for every member of an
 * explicit transaction or of `kubectl tx apply`. A delete, an update that
 * keeps the annotation it had, and an empty value still call it.
 */
export const NAMES_TRANSACTION_CONDITION: MatchCondition = {
  name: "not-naming-a-transaction",
  expression: `!(${namesTransaction()})`,
};

/** With no policy the entry stays (it carries the installer's client config for later ones) but calls nothing. */
export const NO_POLICY_CONDITION: MatchCondition = { name: "no-transaction-policy", expression: "false" };

const OPERATIONS = ["CREATE", "UPDATE", "DELETE"];
/** The apiserver's limit for a webhook name: a DNS subdomain. */
const MAX_WEBHOOK_NAME_LENGTH = 253;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Hex digits of the policy name's SHA-256 in a webhook name that would be too long: 64 bits, no collision in practice. */
const NAME_HASH_DIGITS = 16;

/**
 * The object webhook entries for `policies`, named after `baseName`. The
 * first (by policy name) takes `baseName` itself, so with one policy the
 * configuration keeps the names manifests/ installs (and the audit
 * annotations `validate.kubetx.io/...`); the others are
 * `<policy>.<baseName>`.
 */
export function objectWebhooks(policies: readonly NamedPolicy[], baseName: string, extraConditions: readonly MatchCondition[] = []): WebhookMatch[] {
  const seen = new Set<string>();
  const matches: { policy: string; match: Omit<WebhookMatch, "name"> }[] = [];
  for (const policy of [...policies].sort((a, b) => byCodeUnit(a.name, b.name))) {
    const match = policy.spec.mode === "off" ? undefined : matchOf(policy.spec, extraConditions);
    if (!match) continue;
    const key = JSON.stringify(match);
    if (seen.has(key)) continue;
    seen.add(key);
    matches.push({ policy: policy.name, match });
  }
  if (matches.length === 0) return [noPolicyWebhook(baseName)];
  return matches.map(({ policy, match }, i) => ({ name: i === 0 ? baseName : entryName(policy, baseName), ...match }));
}

/** A locale-free order: every replica, whatever its locale, must build the same entries, or they would rewrite each other's. */
function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The entry that stands in when no policy covers anything. */
function noPolicyWebhook(baseName: string): WebhookMatch {
  return {
    name: baseName,
    namespaceSelector: { matchExpressions: [NOT_EXCLUDED_NAMESPACE] },
    rules: [rule("*", ["*"])],
    matchConditions: [...MATCH_CONDITIONS, NO_POLICY_CONDITION],
  };
}

function entryName(policy: string, baseName: string): string {
  const name = `${policy}.${baseName}`;
  if (name.length <= MAX_WEBHOOK_NAME_LENGTH && DNS_SUBDOMAIN.test(name)) return name;
  return `policy-${createHash("sha256").update(policy).digest("hex").slice(0, NAME_HASH_DIGITS)}.${baseName}`;
}

/** One policy's entry, or undefined when its resources exclude all they include. */
function matchOf(spec: PolicySpec, extraConditions: readonly MatchCondition[]): Omit<WebhookMatch, "name"> | undefined {
  const { rules, excluded } = resourceCoverage(spec.resources.include.map(parsePattern), spec.resources.exclude.map(parsePattern));
  if (rules.length === 0) return undefined;
  const conditions = [
    excluded.length > 0 ? { name: "not-excluded-resources", expression: `!(${excluded.map(patternCondition).join(" || ")})` } : undefined,
    exemptUsersCondition([...spec.exemptUsers, ...spec.exemptServiceAccounts.map(serviceAccountUser)]),
    exemptGroupsCondition(spec.exemptGroups),
  ];
  return {
    namespaceSelector: withExcludedNamespaces(spec.namespaceSelector),
    rules,
    matchConditions: [...MATCH_CONDITIONS, OPT_OUT_CONDITION, ...conditions.filter((c) => c !== undefined), ...extraConditions],
  };
}

/** The policy's selector, and never a namespace kubetx leaves alone. Empty parts are left out, as the apiserver stores them. */
function withExcludedNamespaces(selector: LabelSelector): LabelSelector {
  const labels = selector.matchLabels ?? {};
  const requirements = (selector.matchExpressions ?? []).map((r) => ({
    key: r.key,
    operator: r.operator,
    ...(r.values && r.values.length > 0 ? { values: [...r.values] } : {}),
  }));
  return {
    ...(Object.keys(labels).length > 0 ? { matchLabels: { ...labels } } : {}),
    matchExpressions: [...requirements, NOT_EXCLUDED_NAMESPACE],
  };
}

/** A resources pattern: `*`, `group/*`, `group/resource`, or `resource` in the core group (""). */
interface Pattern {
  readonly group: string;
  readonly resource: string;
}

const ANY = "*";

function parsePattern(pattern: string): Pattern {
  if (pattern === ANY) return { group: ANY, resource: ANY };
  const slash = pattern.indexOf("/");
  return slash < 0 ? { group: "", resource: pattern } : { group: pattern.slice(0, slash), resource: pattern.slice(slash + 1) };
}

/** Whether every group/resource `inner` selects, `outer` selects too (patterns nest: `*` > `g/*` > `g/r`). */
function contains(outer: Pattern, inner: Pattern): boolean {
  if (outer.group === ANY) return true;
  if (inner.group === ANY || outer.group !== inner.group) return false;
  return outer.resource === ANY || outer.resource === inner.resource;
}

/**
 * Rules for what the includes select minus the excludes that swallow an
 * include whole, and the excludes left over (those inside a remaining
 * include), which only a matchCondition can express.
 */
function resourceCoverage(include: readonly Pattern[], exclude: readonly Pattern[]): { rules: WebhookRule[]; excluded: Pattern[] } {
  const kept = include.filter((p) => !exclude.some((e) => contains(e, p)));
  const excluded = exclude.filter((e) => kept.some((p) => contains(p, e)));
  if (kept.some((p) => p.group === ANY)) return { rules: [rule(ANY, [ANY])], excluded };
  const byGroup = new Map<string, Set<string>>();
  for (const p of kept) byGroup.set(p.group, (byGroup.get(p.group) ?? new Set<string>()).add(p.resource));
  const rules = [...byGroup.entries()].sort(([a], [b]) => byCodeUnit(a, b)).map(([group, resources]) =>
    rule(group, resources.has(ANY) ? [ANY] : [...resources].sort()));
  return { rules, excluded };
}

function rule(group: string, resources: readonly string[]): WebhookRule {
  return { operations: OPERATIONS, apiGroups: [group], apiVersions: [ANY], resources, scope: "Namespaced" };
}

/**
 * A CEL string literal. JSON's escapes (`\"`, `\\`, `\n`, `\uXXXX`) are
 * all valid in CEL's double-quoted strings, so any name quotes safely.
 */
function celString(value: string): string {
  return JSON.stringify(value);
}

/** Whether the object in CEL variable `variable` carries the opt-out; false, never an error, when it has no such annotation. */
function optedOut(variable: "object" | "oldObject"): string {
  const annotations = `${variable}.metadata.annotations`;
  const key = celString(ANNOTATION_TRANSACTION);
  return `(${variable} != null && has(${annotations}) && ${key} in ${annotations} && ${annotations}[${key}] == ${celString(OPT_OUT)})`;
}

/** CEL for admission/scope.ts namedTransaction returning an id: a create, or an update that sets or changes the annotation, to a non-empty value. */
function namesTransaction(): string {
  const key = celString(ANNOTATION_TRANSACTION);
  const now = "object.metadata.annotations";
  const before = "oldObject.metadata.annotations";
  const unchanged = `(oldObject != null && has(${before}) && ${key} in ${before} && ${before}[${key}] == ${now}[${key}])`;
  return `(request.operation != "DELETE" && object != null && has(${now}) && ${key} in ${now} && ${now}[${key}] != "" && (request.operation == "CREATE" || !${unchanged}))`;
}

function celList(values: readonly string[]): string {
  return `[${values.map(celString).join(", ")}]`;
}

function patternCondition(p: Pattern): string {
  const group = `request.resource.group == ${celString(p.group)}`;
  return p.resource === ANY ? group : `(${group} && request.resource.resource == ${celString(p.resource)})`;
}

function exemptUsersCondition(users: readonly string[]): MatchCondition | undefined {
  if (users.length === 0) return undefined;
  return { name: "not-exempt-users", expression: `!(request.userInfo.username in ${celList(users)})` };
}

/** A request without groups has no `groups` key at all in CEL (reading it would be an error, and Fail would refuse the write). */
function exemptGroupsCondition(groups: readonly string[]): MatchCondition | undefined {
  if (groups.length === 0) return undefined;
  return { name: "not-exempt-groups", expression: `!(has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in ${celList(groups)}))` };
}
