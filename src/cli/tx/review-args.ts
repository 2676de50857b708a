/**
 * Command-line parsing for `kubectl tx list`, `describe`, `locks`, `audit`
 * and the top-level help: pure, so every rule is unit-tested.
 */
import type { ParseArgsOptionsConfig } from "node:util";
import { parseArgs } from "node:util";
import type { Phase } from "../../transactions/model.ts";
import { transactionIdProblem } from "../../transactions/model.ts";
import { durationSeconds } from "./duration.ts";
import { usageError } from "./errors.ts";
import { AUDIT_HELP, DESCRIBE_HELP, LIST_HELP, LOCKS_HELP, TOP_HELP } from "./review-help.ts";

export type Output = "table" | "json";

/** Which kubeconfig and context, as kubectl picks them when absent. */
export interface ClusterFlags {
  readonly kubeconfig?: string;
  readonly context?: string;
}

export interface ListOptions extends ClusterFlags {
  /** Everyone's transactions (needs list on transactions.kubetx.io: kubetx:viewer); without it and `user`, your own. */
  readonly all?: boolean;
  readonly user?: string;
  readonly namespace?: string;
  readonly phase?: Phase;
  readonly sinceSeconds?: number;
  readonly output: Output;
}

export interface DescribeOptions extends ClusterFlags {
  readonly id: string;
  readonly output: Output;
}

export interface LocksOptions extends ClusterFlags {
  readonly output: Output;
}

export interface AuditOptions {
  readonly logs: readonly string[];
  readonly transaction?: string;
  readonly user?: string;
  readonly output: Output;
}

export type ReviewCommand =
  | { readonly kind: "help"; readonly text: string; readonly exitCode: number }
  | { readonly kind: "list"; readonly options: ListOptions }
  | { readonly kind: "describe"; readonly options: DescribeOptions }
  | { readonly kind: "locks"; readonly options: LocksOptions }
  | { readonly kind: "audit"; readonly options: AuditOptions };

export const PHASES: readonly Phase[] = ["Open", "Verifying", "Committed", "RollingBack", "RolledBack", "Failed"];

const OUTPUT = { output: { type: "string", short: "o" } } as const;
const CLUSTER = { kubeconfig: { type: "string" }, context: { type: "string" } } as const;
const HELP_FLAG = { help: { type: "boolean", short: "h" } } as const;

const LIST_FLAGS = {
  all: { type: "boolean" }, user: { type: "string" }, namespace: { type: "string", short: "n" }, "all-namespaces": { type: "boolean", short: "A" },
  phase: { type: "string" }, since: { type: "string" },
  ...OUTPUT, ...CLUSTER, ...HELP_FLAG,
} as const;
const DESCRIBE_FLAGS = { ...OUTPUT, ...CLUSTER, ...HELP_FLAG } as const;
const LOCKS_FLAGS = { ...OUTPUT, ...CLUSTER, ...HELP_FLAG } as const;
const AUDIT_FLAGS = { log: { type: "string", multiple: true }, transaction: { type: "string" }, user: { type: "string" }, ...OUTPUT, ...HELP_FLAG } as const;

const HELPS: Readonly<Record<string, string>> = { list: LIST_HELP, describe: DESCRIBE_HELP, locks: LOCKS_HELP, audit: AUDIT_HELP };
const HELP_WORDS: ReadonlySet<string | undefined> = new Set([undefined, "help", "--help", "-h"]);

/**
 * The review command in `argv`, the top-level help, or undefined when
 * `argv` is for the apply parser (`apply`, `help apply`, an unknown command).
 */
export function parseReviewCommand(argv: readonly string[]): ReviewCommand | undefined {
  const [command, ...rest] = argv;
  if (HELP_WORDS.has(command)) {
    if (rest[0] === "apply") return undefined;
    const text = rest[0] !== undefined ? HELPS[rest[0]] : undefined;
    return { kind: "help", text: text ?? TOP_HELP, exitCode: command === undefined ? 2 : 0 };
  }
  switch (command) {
    case "list":
      return parseList(rest);
    case "describe":
      return parseDescribe(rest);
    case "locks":
      return parseLocks(rest);
    case "audit":
      return parseAudit(rest);
    default:
      return undefined;
  }
}

interface Parsed<T extends ParseArgsOptionsConfig> {
  readonly values: ReturnType<typeof parseArgs<{ options: T; allowPositionals: true }>>["values"];
  readonly positionals: string[];
}

function parseFlags<T extends ParseArgsOptionsConfig>(command: string, args: readonly string[], options: T): Parsed<T> {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    // node's messages go on to explain `--`; the first sentence is the problem.
    const first = (error as Error).message.split(". ")[0]?.replace(/\.$/, "") ?? "bad arguments";
    throw usageError(first.charAt(0).toLowerCase() + first.slice(1), helpCommand(command));
  }
}

function helpCommand(command: string): string {
  return `kubectl tx ${command} --help`;
}

function help(command: string): ReviewCommand {
  return { kind: "help", text: HELPS[command] ?? TOP_HELP, exitCode: 0 };
}

function noPositionals(command: string, positionals: readonly string[]): void {
  if (positionals.length > 0) throw usageError(`${command} takes no arguments, got '${positionals.join(" ")}'`, helpCommand(command));
}

function checkOutput(command: string, value: string | undefined): Output {
  if (value === undefined || value === "table" || value === "json") return value ?? "table";
  throw usageError(`-o must be table or json, got '${value}'`, helpCommand(command));
}

/** `--flag ''` is a mistake, not a filter that matches nothing. */
function nonEmpty(command: string, flag: string, value: string | undefined): string | undefined {
  if (value === "") throw usageError(`--${flag} needs a value`, helpCommand(command));
  return value;
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

function cluster(values: { kubeconfig?: string | undefined; context?: string | undefined }): ClusterFlags {
  return { ...optional("kubeconfig", values.kubeconfig), ...optional("context", values.context) };
}

function checkPhase(value: string | undefined): Phase | undefined {
  if (value === undefined) return undefined;
  const phase = PHASES.find((p) => p.toLowerCase() === value.toLowerCase());
  if (!phase) throw usageError(`--phase '${value}' is not a phase; use one of ${PHASES.join(", ")}`, helpCommand("list"));
  return phase;
}

function checkSince(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = durationSeconds(value.trim());
  if (seconds === undefined || seconds === 0) {
    throw usageError(`--since '${value}' is not a duration; use whole seconds or units, e.g. 90, 30s, 15m, 2h, 1h30m`, helpCommand("list"));
  }
  return seconds;
}

function parseList(args: readonly string[]): ReviewCommand {
  const { values, positionals } = parseFlags("list", args, LIST_FLAGS);
  if (values.help) return help("list");
  noPositionals("list", positionals);
  return {
    kind: "list",
    options: {
      output: checkOutput("list", values.output),
      ...(values.all ? { all: true } : {}),
      ...optional("user", nonEmpty("list", "user", values.user)),
      // -A lists across namespaces, the default; as in kubectl, it overrides -n.
      ...optional("namespace", values["all-namespaces"] ? undefined : nonEmpty("list", "namespace", values.namespace)),
      ...optional("phase", checkPhase(values.phase)),
      ...optional("sinceSeconds", checkSince(values.since)),
      ...cluster(values),
    },
  };
}

function checkId(command: string, id: string | undefined): string | undefined {
  if (id === undefined) return undefined;
  const problem = transactionIdProblem(id);
  if (problem) throw usageError(problem, helpCommand(command));
  return id;
}

function parseDescribe(args: readonly string[]): ReviewCommand {
  const { values, positionals } = parseFlags("describe", args, DESCRIBE_FLAGS);
  if (values.help) return help("describe");
  if (positionals.length !== 1) {
    throw usageError(`describe takes one transaction id, got ${positionals.length === 0 ? "none" : `'${positionals.join(" ")}'`}; find ids with 'kubectl tx list'`, helpCommand("describe"));
  }
  return { kind: "describe", options: { id: checkId("describe", positionals[0]) ?? "", output: checkOutput("describe", values.output), ...cluster(values) } };
}

function parseLocks(args: readonly string[]): ReviewCommand {
  const { values, positionals } = parseFlags("locks", args, LOCKS_FLAGS);
  if (values.help) return help("locks");
  noPositionals("locks", positionals);
  return { kind: "locks", options: { output: checkOutput("locks", values.output), ...cluster(values) } };
}

function parseAudit(args: readonly string[]): ReviewCommand {
  const { values, positionals } = parseFlags("audit", args, AUDIT_FLAGS);
  if (values.help) return help("audit");
  if (positionals.length > 0) throw usageError(`audit reads only files named with --log, got '${positionals.join(" ")}'; write --log before each file`, helpCommand("audit"));
  const logs = values.log ?? [];
  if (logs.length === 0) throw usageError("audit needs at least one --log FILE (the apiserver's --audit-log-path)", helpCommand("audit"));
  if (logs.includes("")) throw usageError("--log needs a file name", helpCommand("audit"));
  return {
    kind: "audit",
    options: {
      logs,
      output: checkOutput("audit", values.output),
      ...optional("transaction", checkId("audit", values.transaction)),
      ...optional("user", nonEmpty("audit", "user", values.user)),
    },
  };
}
