/**
 * Checks a TransactionPolicy spec as a user wrote it. Pure: returns every
 * problem with the field it concerns, or the spec with defaults filled in.
 */
import type { PolicySpec } from "./policy.ts";
import { POLICY_DEFAULTS } from "./policy.ts";

export type PolicyCheck = { readonly ok: true; readonly spec: PolicySpec } | { readonly ok: false; readonly problems: readonly string[] };

type Raw = Record<string, unknown>;

const KNOWN_FIELDS = new Set(Object.keys(POLICY_DEFAULTS));
const MODES = new Set(["off", "explicit", "transparent"]);
const OPERATORS = new Set(["In", "NotIn", "Exists", "DoesNotExist"]);
/** A label key: optional DNS-subdomain prefix and a name of at most 63 characters. */
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
const RESOURCE_PATTERN = /^(\*|[a-z0-9.-]+\/(\*|[a-z0-9.-]+)|[a-z0-9.-]+)$/;

function isRecord(value: unknown): value is Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function validatePolicySpec(spec: unknown): PolicyCheck {
  if (!isRecord(spec)) return { ok: false, problems: ["spec: must be an object"] };
  const problems = [
    ...Object.keys(spec).filter((k) => !KNOWN_FIELDS.has(k)).map((k) => `spec.${k}: unknown field (known: ${[...KNOWN_FIELDS].join(", ")})`),
    ...modeProblems(spec.mode),
    ...selectorProblems(spec.namespaceSelector, "spec.namespaceSelector"),
    ...resourceProblems(spec.resources),
    ...stringList(spec.exemptUsers, "spec.exemptUsers"),
    ...stringList(spec.exemptGroups, "spec.exemptGroups"),
    ...serviceAccountProblems(spec.exemptServiceAccounts),
    // At least a second: kubetx waits up to a second (its intent grace) for a write seen at /observe to reach /validate.
    ...numberProblems(spec, "quietWindowSeconds", { min: 1, max: 300, integer: false }),
    ...numberProblems(spec, "lockTTLSeconds", { min: 1, max: 3600, integer: true }),
    ...numberProblems(spec, "maxOpenSeconds", { min: 1, max: 86_400, integer: true }),
    ...numberProblems(spec, "maxMembers", { min: 1, max: 100_000, integer: true }),
    ...numberProblems(spec, "journalRetentionSeconds", { min: 0, max: 30 * 86_400, integer: true }),
    ...numberProblems(spec, "recordRetentionSeconds", { min: 60, max: 365 * 86_400, integer: true }),
    ...numberProblems(spec, "maxRecords", { min: 10, max: 1_000_000, integer: true }),
    ...numberProblems(spec, "maxOpenTransactionsPerUser", { min: 1, max: 10_000, integer: true }),
    ...numberProblems(spec, "maxLocksPerUser", { min: 1, max: 1_000_000, integer: true }),
    ...booleanProblems(spec.allowIrreversibleDeletes, "spec.allowIrreversibleDeletes"),
  ];
  const merged = withDefaults(spec);
  if (problems.length === 0 && merged.maxOpenSeconds <= merged.quietWindowSeconds) {
    problems.push(`spec.maxOpenSeconds: must be longer than spec.quietWindowSeconds (${merged.quietWindowSeconds})`);
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, spec: merged };
}

/** Defaults field by field, nested ones included: a policy that names only `exclude` still includes everything. */
function withDefaults(spec: Raw): PolicySpec {
  const resources = isRecord(spec.resources) ? spec.resources : {};
  return {
    ...POLICY_DEFAULTS,
    ...spec,
    namespaceSelector: (spec.namespaceSelector ?? POLICY_DEFAULTS.namespaceSelector),
    resources: {
      include: (resources.include ?? POLICY_DEFAULTS.resources.include) as string[],
      exclude: (resources.exclude ?? POLICY_DEFAULTS.resources.exclude) as string[],
    },
  };
}

function modeProblems(mode: unknown): string[] {
  return mode === undefined || (typeof mode === "string" && MODES.has(mode)) ? [] : [`spec.mode: must be one of off, explicit, transparent, got ${JSON.stringify(mode)}`];
}

export function selectorProblems(selector: unknown, field: string): string[] {
  if (selector === undefined) return [];
  if (!isRecord(selector)) return [`${field}: must be a label selector object`];
  const { matchLabels, matchExpressions, ...rest } = selector;
  const problems = Object.keys(rest).map((k) => `${field}.${k}: unknown field (known: matchLabels, matchExpressions)`);
  problems.push(...matchLabelProblems(matchLabels, `${field}.matchLabels`));
  if (matchExpressions === undefined) return problems;
  if (!Array.isArray(matchExpressions)) return [...problems, `${field}.matchExpressions: must be a list`];
  matchExpressions.forEach((r: unknown, i: number) => problems.push(...requirementProblems(r, `${field}.matchExpressions[${i}]`)));
  return problems;
}

function matchLabelProblems(matchLabels: unknown, field: string): string[] {
  if (matchLabels === undefined) return [];
  if (!isRecord(matchLabels)) return [`${field}: must map label keys to values`];
  return Object.entries(matchLabels).flatMap(([key, value]) => [
    ...(LABEL_KEY.test(key) ? [] : [`${field}: '${key}' is not a valid label key`]),
    ...(typeof value === "string" && LABEL_VALUE.test(value) ? [] : [`${field}.${key}: ${JSON.stringify(value)} is not a valid label value`]),
  ]);
}

function requirementProblems(r: unknown, field: string): string[] {
  if (!isRecord(r)) return [`${field}: must be an object with key, operator and values`];
  const problems: string[] = [];
  if (typeof r.key !== "string" || !LABEL_KEY.test(r.key)) problems.push(`${field}.key: ${JSON.stringify(r.key)} is not a valid label key`);
  if (typeof r.operator !== "string" || !OPERATORS.has(r.operator)) {
    problems.push(`${field}.operator: must be one of In, NotIn, Exists, DoesNotExist, got ${JSON.stringify(r.operator)}`);
    return problems;
  }
  return [...problems, ...valuesProblems(r.operator, r.values, `${field}.values`)];
}

function valuesProblems(operator: string, values: unknown, field: string): string[] {
  const count = Array.isArray(values) && values.every((v) => typeof v === "string") ? values.length : values === undefined ? 0 : -1;
  if (count < 0) return [`${field}: must be a list of strings`];
  const needsValues = operator === "In" || operator === "NotIn";
  if (needsValues && count === 0) return [`${field}: ${operator} needs at least one value`];
  if (!needsValues && count > 0) return [`${field}: ${operator} takes no values`];
  return [];
}

function resourceProblems(resources: unknown): string[] {
  if (resources === undefined) return [];
  if (!isRecord(resources)) return ["spec.resources: must be an object with include and exclude lists"];
  const problems = Object.keys(resources).filter((k) => k !== "include" && k !== "exclude").map((k) => `spec.resources.${k}: unknown field (known: include, exclude)`);
  for (const key of ["include", "exclude"] as const) {
    const list = resources[key];
    problems.push(...stringList(list, `spec.resources.${key}`));
    if (!Array.isArray(list)) continue;
    list.forEach((p: unknown, i: number) => {
      if (typeof p === "string" && !RESOURCE_PATTERN.test(p)) problems.push(`spec.resources.${key}[${i}]: '${p}' must be 'resource', 'group/resource', 'group/*' or '*'`);
    });
  }
  return problems;
}

function stringList(value: unknown, field: string): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) && value.every((v) => typeof v === "string" && v !== "") ? [] : [`${field}: must be a list of non-empty strings`];
}

function serviceAccountProblems(value: unknown): string[] {
  const problems = stringList(value, "spec.exemptServiceAccounts");
  if (problems.length > 0 || !Array.isArray(value)) return problems;
  return value.filter((v) => !/^[a-z0-9-]+\/[a-z0-9.-]+$/.test(String(v))).map((v) => `spec.exemptServiceAccounts: '${String(v)}' must be namespace/name`);
}

function numberProblems(spec: Raw, key: string, range: { min: number; max: number; integer: boolean }): string[] {
  const { min, max, integer } = range;
  const value = spec[key];
  if (value === undefined) return [];
  const ok = typeof value === "number" && Number.isFinite(value) && value >= min && value <= max && (!integer || Number.isInteger(value));
  return ok ? [] : [`spec.${key}: must be ${integer ? "a whole number" : "a number"} from ${min} to ${max}, got ${JSON.stringify(value)}`];
}

function booleanProblems(value: unknown, field: string): string[] {
  return value === undefined || typeof value === "boolean" ? [] : [`${field}: must be true or false`];
}
