/** Command-line parsing for `kubectl tx`: pure, so every rule is unit-tested. */
import { parseArgs } from "node:util";
import { parseTimeout } from "./duration.ts";
import { usageError } from "./errors.ts";
import { APPLY_HELP } from "./help.ts";
import { TOP_HELP } from "./review-help.ts";

export type DryRun = "none" | "server" | "client";

export interface ApplyOptions {
  /** Files, directories or `-` (stdin), in the order given; none with `kustomize`. */
  readonly files: readonly string[];
  /** -k: a kustomization directory, rendered by `kubectl kustomize` (instead of files). */
  readonly kustomize?: string;
  readonly recursive: boolean;
  readonly namespace?: string;
  /** --timeout: the longest the transaction may stay open; without it, as long as kubectl runs (an hour at most). */
  readonly timeoutSeconds?: number;
  readonly dryRun: DryRun;
  readonly prune: boolean;
  readonly selector?: string;
  /** `group/version/Kind` entries kubectl may prune (kubectl's --prune-allowlist). */
  readonly pruneAllowlist?: readonly string[];
  readonly kubeconfig?: string;
  readonly context?: string;
  /** kubectl's server-side apply (--server-side), with --force-conflicts and --field-manager. */
  readonly serverSide?: boolean;
  readonly forceConflicts?: boolean;
  readonly fieldManager?: string;
  /** --no-prepare: false; kubetx then locks each write as it arrives instead of before kubectl runs. */
  readonly prepare?: boolean;
}

export type Command =
  | { readonly kind: "help"; readonly text: string; readonly exitCode: number }
  | { readonly kind: "apply"; readonly options: ApplyOptions };

const APPLY_FLAGS = {
  filename: { type: "string", short: "f", multiple: true },
  kustomize: { type: "string", short: "k" },
  recursive: { type: "boolean", short: "R" },
  namespace: { type: "string", short: "n" },
  timeout: { type: "string" },
  "dry-run": { type: "string" },
  prune: { type: "boolean" },
  selector: { type: "string", short: "l" },
  "prune-allowlist": { type: "string", multiple: true },
  kubeconfig: { type: "string" },
  context: { type: "string" },
  "server-side": { type: "boolean" },
  "force-conflicts": { type: "boolean" },
  "field-manager": { type: "string" },
  "no-prepare": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const DRY_RUN_MODES: readonly string[] = ["none", "server", "client"];
const APPLY_HELP_COMMAND = "kubectl tx apply --help";

export function parseCommand(argv: readonly string[]): Command {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      return { kind: "help", text: TOP_HELP, exitCode: 2 };
    case "help":
    case "--help":
    case "-h":
      return rest[0] === "apply" ? { kind: "help", text: APPLY_HELP, exitCode: 0 } : { kind: "help", text: TOP_HELP, exitCode: 0 };
    case "apply":
      return parseApply(rest);
    default:
      throw usageError(`unknown command '${command}'`);
  }
}

type ApplyValues = ReturnType<typeof parseArgs<{ options: typeof APPLY_FLAGS; allowPositionals: true }>>;

function parseApplyValues(args: readonly string[]): ApplyValues {
  try {
    return parseArgs({ args: [...args], options: APPLY_FLAGS, allowPositionals: true, strict: true });
  } catch (error) {
    // node's messages go on to explain `--`; the first sentence is the problem.
    const first = (error as Error).message.split(". ")[0]?.replace(/\.$/, "") ?? "bad arguments";
    throw usageError(first.charAt(0).toLowerCase() + first.slice(1), APPLY_HELP_COMMAND);
  }
}

function parseApply(args: readonly string[]): Command {
  const { values, positionals } = parseApplyValues(args);
  if (values.help) return { kind: "help", text: APPLY_HELP, exitCode: 0 };
  if (positionals.length > 0) throw usageError(`apply takes no arguments, got '${positionals.join(" ")}'; name manifests with -f`, APPLY_HELP_COMMAND);
  const files = checkSources(values.filename ?? [], values.kustomize, values.recursive ?? false);
  const dryRun = checkDryRun(values["dry-run"]);
  const prune = values.prune ?? false;
  if (prune && !values.selector) throw usageError("--prune needs -l SELECTOR (kubectl tx does not support --prune --all)", APPLY_HELP_COMMAND);
  return {
    kind: "apply",
    options: {
      files,
      ...optional("kustomize", values.kustomize),
      recursive: values.recursive ?? false,
      ...optionalNumber("timeoutSeconds", parseTimeout(values.timeout)),
      dryRun,
      prune,
      ...optional("namespace", values.namespace),
      ...optional("selector", values.selector),
      ...(values["prune-allowlist"]?.length ? { pruneAllowlist: values["prune-allowlist"] } : {}),
      ...optional("kubeconfig", values.kubeconfig),
      ...optional("context", values.context),
      ...serverSideOptions(values),
      ...(values["no-prepare"] ? { prepare: false } : {}),
    },
  };
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

function optionalNumber<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

/** kubectl's server-side apply flags, checked as kubectl checks them. */
function serverSideOptions(values: ApplyValues["values"]): Pick<ApplyOptions, "serverSide" | "forceConflicts" | "fieldManager"> {
  if (values["force-conflicts"] && !values["server-side"]) throw usageError("--force-conflicts only works with --server-side", APPLY_HELP_COMMAND);
  if (values["field-manager"] === "") throw usageError("--field-manager needs a name", APPLY_HELP_COMMAND);
  return {
    ...(values["server-side"] ? { serverSide: true } : {}),
    ...(values["force-conflicts"] ? { forceConflicts: true } : {}),
    ...optional("fieldManager", values["field-manager"]),
  };
}

/** -f's files, or none with -k: kubectl takes one or the other. */
function checkSources(files: readonly string[], kustomize: string | undefined, recursive: boolean): readonly string[] {
  if (kustomize === undefined) return checkFiles(files);
  if (files.length > 0) throw usageError("-f and -k cannot be used together; name the manifests with one of them", APPLY_HELP_COMMAND);
  if (kustomize === "") throw usageError("-k needs a directory that holds a kustomization", APPLY_HELP_COMMAND);
  if (recursive) throw usageError("-R reads directories named with -f; -k reads one kustomization (its resources name the rest)", APPLY_HELP_COMMAND);
  return files;
}

function checkFiles(files: readonly string[]): readonly string[] {
  if (files.length === 0) throw usageError("apply needs at least one -f FILE or DIR, or -k DIR", APPLY_HELP_COMMAND);
  if (files.some((f) => f === "")) throw usageError("-f needs a file name", APPLY_HELP_COMMAND);
  const url = files.find((f) => /^https?:\/\//.test(f));
  if (url) throw usageError(`-f takes files and directories, not URLs ('${url}'); download it first`, APPLY_HELP_COMMAND);
  if (files.filter((f) => f === "-").length > 1) throw usageError("-f - (stdin) may be given only once", APPLY_HELP_COMMAND);
  return files;
}

function checkDryRun(value: string | undefined): DryRun {
  if (value === undefined) return "none";
  if (!DRY_RUN_MODES.includes(value)) throw usageError(`--dry-run must be none, server or client, got '${value}'`, APPLY_HELP_COMMAND);
  return value as DryRun;
}
