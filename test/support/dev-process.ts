/**
 * Runs `kubetx dev` as a real child process, as a user would, and makes sure
 * nothing it started outlives the test that started it.
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const REPO = path.resolve(import.meta.dirname, "../..");
/** The repository's Node 24, which runs the .ts sources directly. */
export const NODE = path.join(REPO, "node_modules/.bin/node");
const KUBETX = path.join(REPO, "src/cli/kubetx.ts");
/** A warm start takes a few seconds; a loaded 2-core machine several times that. */
export const READY_TIMEOUT_MS = 60_000;
/** How long the kernel gets to deliver a parent-death signal and the process to die. */
export const DEATH_TIMEOUT_MS = 5_000;
const POLL_MS = 100;

export interface DevOptions {
  readonly dir: string;
  readonly port: number;
  readonly webhookPort: number;
  /** Where dev serves /metrics; the default (9090) when absent, which another dev may hold. */
  readonly metricsPort?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** More `kubetx dev` flags, e.g. --no-audit-sink. */
  readonly args?: readonly string[];
  /** Starts it in a process group of its own, so that `signalGroup` can act as a terminal's Ctrl-C. */
  readonly ownGroup?: boolean;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface DevProcess {
  readonly pid: number;
  readonly dir: string;
  readonly exited: Promise<Exit>;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout has a line matching `pattern`; rejects if the process exits or time runs out first. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<void>;
  signal(name: NodeJS.Signals): void;
  /** Sends `name` to its whole process group, as a terminal's Ctrl-C does (only when started with `ownGroup`). */
  signalGroup(name: NodeJS.Signals): void;
}

/**
 * Starts `kubetx dev` under `setpriv --pdeathsig KILL`, so it dies with the
 * test worker even if the worker is killed, and its control plane with it.
 */
export function spawnDev(options: DevOptions): DevProcess {
  const args = [
    KUBETX, "dev", "--dir", options.dir, "--port", String(options.port), "--webhook-port", String(options.webhookPort),
    ...(options.metricsPort ? ["--metrics-port", String(options.metricsPort)] : []),
    ...(options.args ?? []),
  ];
  const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", NODE, ...args], {
    cwd: REPO,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.ownGroup === true,
  });
  if (child.pid === undefined) throw new Error("could not start kubetx dev");
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
  const exited = exitOf(child);
  let done = false;
  void exited.then(() => (done = true));
  const pid = child.pid;
  return {
    pid,
    dir: options.dir,
    exited,
    stdout: () => out,
    stderr: () => err,
    signal: (name) => {
      if (done) return;
      try {
        process.kill(pid, name);
      } catch {
        // Exited a moment ago; `exited` is about to resolve.
      }
    },
    signalGroup: (name) => {
      if (done || options.ownGroup !== true) return;
      try {
        process.kill(-pid, name);
      } catch {
        // Exited a moment ago; `exited` is about to resolve.
      }
    },
    waitForLine: async (pattern, timeoutMs = READY_TIMEOUT_MS) => {
      const deadline = Date.now() + timeoutMs;
      while (!out.split("\n").some((line) => pattern.test(line))) {
        if (done) throw new Error(`kubetx dev exited before printing ${pattern}:\n${out}\n${err.slice(-4_000)}`);
        if (Date.now() > deadline) throw new Error(`kubetx dev did not print ${pattern} within ${timeoutMs / 1000} s:\n${out}\n${err.slice(-4_000)}`);
        await sleep(POLL_MS);
      }
    },
  };
}

function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    child.on("error", () => resolve({ code: null, signal: null }));
    child.on("close", (code, signal) => resolve({ code, signal }));
  });
}

/** The pids `kubetx dev` recorded for its control plane in DIR/controlplane.pids; none when the file is absent. */
export async function controlPlanePids(dir: string): Promise<number[]> {
  try {
    const text = await readFile(path.join(dir, "controlplane.pids"), "utf8");
    return text.split("\n").map(Number).filter((pid) => Number.isInteger(pid) && pid > 0);
  } catch {
    return [];
  }
}

/**
 * True while `pid` runs and its command line mentions `marker` (the dev
 * directory), so a pid the kernel has since given to an unrelated process
 * does not count. A zombie (exited, not yet reaped) has stopped running.
 */
export async function runningWith(pid: number, marker: string): Promise<boolean> {
  try {
    const [stat, cmdline] = await Promise.all([readFile(`/proc/${pid}/stat`, "utf8"), readFile(`/proc/${pid}/cmdline`, "utf8")]);
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && cmdline.includes(marker);
  } catch {
    return false;
  }
}

/** The recorded control-plane pids of `dir` that still run after waiting up to `timeoutMs` for them to die. */
export async function survivors(dir: string, timeoutMs = 0): Promise<number[]> {
  const pids = await controlPlanePids(dir);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive: number[] = [];
    for (const pid of pids) if (await runningWith(pid, dir)) alive.push(pid);
    if (alive.length === 0 || Date.now() >= deadline) return alive;
    await sleep(POLL_MS);
  }
}

/**
 * Test cleanup: kills `kubetx dev` if it still runs, then any control-plane
 * process of its directory that is left (these were started by the test,
 * through kubetx dev, so they are the test's to stop).
 */
export async function killDev(dev: DevProcess): Promise<void> {
  dev.signal("SIGKILL");
  await dev.exited;
  for (const pid of await survivors(dev.dir, DEATH_TIMEOUT_MS)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone between the check and the kill.
    }
  }
}
