/** Runs the real kubectl: the arguments it gets (pure), where it is, and the run itself. */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access } from "node:fs/promises";
import { constants as osConstants } from "node:os";
import path from "node:path";
import type { ApplyOptions } from "./args.ts";
import { TxError } from "./errors.ts";

/** The Transaction CRD's limit on spec.clientMessage. */
export const CLIENT_MESSAGE_MAX_CHARS = 4096;

export type KubectlFlags = Pick<ApplyOptions, "namespace" | "kubeconfig" | "context" | "dryRun" | "prune" | "selector" | "pruneAllowlist" | "serverSide" | "forceConflicts" | "fieldManager">;

/** The flags kubectl tx passes through, as kubectl spells them. */
export function passThroughFlags(flags: KubectlFlags): string[] {
  return [
    ...(flags.namespace !== undefined ? ["--namespace", flags.namespace] : []),
    ...(flags.kubeconfig !== undefined ? ["--kubeconfig", flags.kubeconfig] : []),
    ...(flags.context !== undefined ? ["--context", flags.context] : []),
    ...(flags.dryRun !== "none" ? [`--dry-run=${flags.dryRun}`] : []),
    ...(flags.prune ? ["--prune"] : []),
    ...(flags.selector !== undefined ? ["--selector", flags.selector] : []),
    ...(flags.pruneAllowlist ?? []).flatMap((entry) => ["--prune-allowlist", entry]),
    ...(flags.serverSide ? ["--server-side"] : []),
    ...(flags.forceConflicts ? ["--force-conflicts"] : []),
    ...(flags.fieldManager !== undefined ? ["--field-manager", flags.fieldManager] : []),
  ];
}

/** `kubectl apply` of the annotated copy, which kubectl reads from its stdin (runKubectl's `input`). */
export function applyCopyArgs(flags: KubectlFlags): string[] {
  return ["apply", "--filename", "-", ...passThroughFlags(flags)];
}

/** `kubectl apply` of the user's own -f (or -k) arguments (for --dry-run=client). */
export function applyOriginalArgs(options: ApplyOptions): string[] {
  const sources = options.kustomize !== undefined ? ["--kustomize", options.kustomize] : options.files.flatMap((f) => ["--filename", f]);
  return ["apply", ...sources, ...(options.recursive ? ["--recursive"] : []), ...passThroughFlags(options)];
}

/**
 * The objects of a kustomization, as `kubectl kustomize DIR` renders them
 * (the same kustomize `kubectl apply -k` runs), or a TxError with what
 * kustomize said.
 */
export function renderKustomization(command: string, dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, ["kustomize", dir], { stdio: ["ignore", "pipe", "pipe"] });
    let [out, err] = ["", ""];
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    child.on("error", (error) => reject(new TxError(`kubectl tx: kubectl could not run: ${error.message}`, undefined, { cause: error })));
    child.on("close", (code) => {
      if (code === 0) return resolve(out);
      const said = err.trim().replace(/^error: /, "");
      reject(new TxError(`kubectl tx: kubectl kustomize ${dir} failed: ${said || `exit code ${code ?? "?"}`}; fix the kustomization and apply again`));
    });
  });
}

/** `Warning: ...` (apiserver and webhook warnings) and klog's `W1124 14:12:30.182893  26298 prune.go:71] ...` and `I...` lines. */
const WARNING_LINE = /^(?:Warning: |[IW]\d{4} \d{2}:\d{2}:\d{2}\.\d+\s+\d+ \S+:\d+\] )/;

/**
 * kubectl's stderr without its warnings (kubetx's own "joined transaction"
 * notes among them): what is left says why kubectl failed. Pure.
 */
export function withoutWarnings(stderr: string): string {
  return stderr.split("\n").filter((line) => !WARNING_LINE.test(line)).join("\n");
}

/**
 * The end of kubectl's stderr for spec.clientMessage: whole last lines while
 * they fit in `max` characters, or the end of the last line if it alone is
 * longer. Pure.
 */
export function stderrTail(stderr: string, max: number = CLIENT_MESSAGE_MAX_CHARS): string {
  const lines = stderr.trimEnd().split("\n");
  const kept: string[] = [];
  let size = 0;
  for (let i = lines.length - 1; i >= 0; i -= 1) {
    const line = lines[i] ?? "";
    const added = line.length + (kept.length > 0 ? 1 : 0);
    if (size + added > max) break;
    kept.unshift(line);
    size += added;
  }
  if (kept.length === 0) return (lines.at(-1) ?? "").slice(-max);
  return kept.join("\n");
}

async function isExecutable(file: string): Promise<boolean> {
  return access(file, fsConstants.X_OK).then(() => true, () => false);
}

/** `$KUBECTL` if set, else the first executable `kubectl` on `$PATH`. */
export async function findKubectl(env: { readonly KUBECTL?: string; readonly PATH?: string }): Promise<string> {
  if (env.KUBECTL) {
    if (await isExecutable(env.KUBECTL)) return env.KUBECTL;
    throw new TxError(`kubectl tx: KUBECTL=${env.KUBECTL} is not an executable file; point it at kubectl or unset it`);
  }
  for (const dir of (env.PATH ?? "").split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, "kubectl");
    if (await isExecutable(candidate)) return candidate;
  }
  throw new TxError("kubectl tx: kubectl is not on PATH; install it, or set KUBECTL to its path");
}

/** How kubectl runs: `input`, its stdin once resolved (runKubectl); `argv0`, the name it runs under. */
export interface KubectlRun {
  readonly input?: Promise<string | undefined>;
  readonly argv0?: string;
}

export interface KubectlResult {
  /** kubectl's exit code; 128 + the signal number when a signal ended it. */
  readonly code: number;
  /** The end of its stderr (the last STDERR_KEEP_CHARS characters), for the Transaction record. */
  readonly stderr: string;
  /** Set when kubectl could not run, or a signal ended it: what to tell kubetx. */
  readonly failure?: string;
}

/** Keeps this many characters of stderr while kubectl runs: room for a clientMessage after warnings are dropped. */
export const STDERR_KEEP_CHARS = 4 * CLIENT_MESSAGE_MAX_CHARS;
const FORWARDED_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * Runs kubectl with its stdout and stderr shown to the user as they come.
 * While it runs, SIGINT/SIGTERM/SIGHUP go to kubectl instead of ending
 * kubectl tx, which must still tell kubetx how kubectl ended.
 *
 * With `input`, kubectl's stdin is that text once it resolves: kubectl
 * starts at once and waits for it (`--filename -`), so its start overlaps
 * whatever the text waits for. Resolved undefined, kubectl is killed
 * before it has read anything, so it has written nothing. Without
 * `input`, kubectl has the user's stdin. `argv0`, when given, is the name
 * kubectl runs under (its User-Agent's program name).
 */
export function runKubectl(command: string, args: readonly string[], stderr: NodeJS.WritableStream, how: KubectlRun = {}): Promise<KubectlResult> {
  const { input, argv0 } = how;
  return new Promise((resolve) => {
    const named = argv0 === undefined ? {} : { argv0 };
    const child = input ? spawn(command, args, { stdio: ["pipe", "inherit", "pipe"], ...named }) : spawn(command, args, { stdio: ["inherit", "inherit", "pipe"], ...named });
    if (input) feed(child, input);
    let kept = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr.write(chunk);
      kept = (kept + chunk).slice(-STDERR_KEEP_CHARS);
    });
    const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    const done = (result: KubectlResult): void => {
      for (const signal of FORWARDED_SIGNALS) process.off(signal, forward);
      resolve(result);
    };
    child.on("error", (error) => done({ code: 127, stderr: `${kept}\n${error.message}`, failure: `kubectl could not run: ${error.message}` }));
    child.on("close", (code, signal) => done(closed(code, signal, kept)));
  });
}

/** Writes `input` to kubectl's stdin when it comes; a kubectl that ended first says why by its exit code, not by a broken pipe here. */
function feed(child: ChildProcess, input: Promise<string | undefined>): void {
  const stdin = child.stdin;
  if (!stdin) return;
  stdin.on("error", () => undefined);
  const stop = (): void => void child.kill("SIGKILL");
  void input.then((text) => (text === undefined ? stop() : stdin.end(text)), stop);
}

function closed(code: number | null, signal: NodeJS.Signals | null, stderr: string): KubectlResult {
  if (signal === null) return { code: code ?? 1, stderr };
  const failure = `kubectl was stopped by ${signal}`;
  return { code: 128 + (osConstants.signals[signal] ?? 0), stderr: `${stderr}\n${failure}`, failure };
}
