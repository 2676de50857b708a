/**
 * The users of a trial: each client runs its ops one after another with
 * the real kubectl (transparent and explicit mode) or kubectl tx apply
 * (plugin mode), as its own user, and records exactly what it saw.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ClientPlan, CommandRecord, ObjectPlan, OpOutcome, OpPlan, TrialPlan, User } from "./history.ts";
import { applyManifests, deletesByNamespace, renderYaml } from "./manifests.ts";

/** kubectl gives up on one request after this (a paused webhook answers within its 5 s timeout). */
const KUBECTL_REQUEST_TIMEOUT = "20s";
/** kubectl tx apply waits this long for kubetx's verdict (the campaign's max open time is 10 s). */
const PLUGIN_TIMEOUT = "40s";
/** A client command still running after this is killed: a hung client would stall the campaign. */
const COMMAND_TIMEOUT_MS = 75_000;
/** Output kept per command: kubectl's messages are short; a runaway loop is not. */
const MAX_OUTPUT_CHARS = 64 * 1024;

export interface ClientEnv {
  readonly kubectl: string;
  /** The Node that runs kubectl-tx (this process's). */
  readonly node: string;
  readonly pluginEntry: string;
  readonly kubeconfigs: Readonly<Record<User, string>>;
  readonly workDir: string;
}

/** Runs every client of the plan at once; resolves when the last op has ended. */
export async function runClients(plan: TrialPlan, env: ClientEnv): Promise<OpOutcome[]> {
  const objects = new Map(plan.objects.map((o) => [o.key, o]));
  const dir = await mkdtemp(path.join(env.workDir, `trial-${plan.trial}-`));
  try {
    const perClient = await Promise.all(plan.clients.map((client) => runClient(client, { env, objects, dir })));
    return perClient.flat();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface RunContext {
  readonly env: ClientEnv;
  readonly objects: ReadonlyMap<string, ObjectPlan>;
  readonly dir: string;
}

async function runClient(client: ClientPlan, ctx: RunContext): Promise<OpOutcome[]> {
  const outcomes: OpOutcome[] = [];
  for (const op of client.ops) {
    await sleep(op.pauseBeforeMs);
    outcomes.push(await runOp(op, ctx));
  }
  return outcomes;
}

async function runOp(op: OpPlan, ctx: RunContext): Promise<OpOutcome> {
  const startedAt = Date.now();
  const file = path.join(ctx.dir, `${op.id}.yaml`);
  await writeFile(file, renderYaml(applyManifests(op, ctx.objects)));
  const kubeconfig = ctx.env.kubeconfigs[op.user];
  const commands: CommandRecord[] = [];
  if (op.mode === "plugin") {
    commands.push(await run(ctx.env.node, [ctx.env.pluginEntry, "apply", "-f", file, "--kubeconfig", kubeconfig, "--timeout", PLUGIN_TIMEOUT], { KUBECTL: ctx.env.kubectl }));
  } else {
    commands.push(await run(ctx.env.kubectl, ["--kubeconfig", kubeconfig, "--request-timeout", KUBECTL_REQUEST_TIMEOUT, "apply", "-f", file, ...(op.fieldManager ? ["--field-manager", op.fieldManager] : [])]));
  }
  for (const [namespace, names] of deletesByNamespace(op, ctx.objects)) {
    commands.push(await run(ctx.env.kubectl, ["--kubeconfig", kubeconfig, "--request-timeout", KUBECTL_REQUEST_TIMEOUT, "delete", "configmap", "-n", namespace, ...names, "--ignore-not-found", "--wait=false"]));
  }
  return { op: op.id, startedAt, endedAt: Date.now(), commands };
}

/** One command under `setpriv --pdeathsig KILL`, so it dies with the campaign; killed after COMMAND_TIMEOUT_MS. */
export function run(command: string, args: readonly string[], env: Record<string, string> = {}): Promise<CommandRecord> {
  const startedAt = Date.now();
  return new Promise((resolve) => {
    const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", command, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout = (stdout + chunk.toString()).slice(-MAX_OUTPUT_CHARS)));
    child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-MAX_OUTPUT_CHARS)));
    const timer = setTimeout(() => child.kill("SIGKILL"), COMMAND_TIMEOUT_MS);
    const done = (exitCode: number): void => {
      clearTimeout(timer);
      resolve({ argv: [path.basename(command), ...args], startedAt, endedAt: Date.now(), exitCode, stdout, stderr });
    };
    child.on("error", (error) => {
      stderr += `\nchaos: could not run ${command}: ${error.message}`;
      done(-1);
    });
    child.on("close", (code) => done(code ?? -1));
  });
}
