/**
 * Child processes that must never outlive kubetx: each is started under
 * `setpriv --pdeathsig KILL` (util-linux, always on Debian), so the kernel
 * kills it when the process that started it dies, even by SIGKILL. Their
 * pids are also written to a file, so a start after a crash can stop
 * anything a previous run left behind.
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

/** How long a process gets to exit on SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 10_000;
/** Poll period while waiting for a stale process to go away. */
const REAP_POLL_MS = 100;

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<string>;
  /** SIGTERM, then SIGKILL after a grace period; resolves when it is gone. */
  stop(): Promise<void>;
}

export interface StartProcessOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly cwd?: string;
}

export function startProcess(options: StartProcessOptions): ManagedProcess {
  const log = createWriteStream(options.logFile, { flags: "a" });
  const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", options.command, ...options.args], {
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    // A process group of its own: a Ctrl-C at the terminal reaches kubetx dev
    // alone, which stops kubetx first and the control plane after it, in
    // order, instead of etcd dying under an apiserver that is still serving.
    // --pdeathsig still takes it down if kubetx dev dies.
    detached: true,
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  const exited = new Promise<string>((resolve) => {
    child.on("error", (error) => resolve(`spawn failed: ${error.message}`));
    child.on("exit", (code, signal) => resolve(signal ?? String(code)));
  });
  void exited.then(() => log.end());
  if (child.pid === undefined) throw new Error(`kubetx: could not start ${options.command}`);
  return { name: options.name, pid: child.pid, logFile: options.logFile, exited, stop: () => stopChild(child, exited) };
}

async function stopChild(child: ChildProcess, exited: Promise<string>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/** Records which pids belong to a run, with the marker that identifies them. */
export async function writePidFile(file: string, pids: readonly number[]): Promise<void> {
  await writeFile(file, `${pids.join("\n")}\n`);
}

/**
 * Kills the processes a previous run recorded in `file`, if they are still
 * alive and their command line still mentions `marker` (so a recycled pid
 * of an unrelated process is left alone).
 */
export async function reapStaleProcesses(file: string, marker: string): Promise<number[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return [];
  }
  const pids = text.split("\n").map(Number).filter((pid) => Number.isInteger(pid) && pid > 0);
  const reaped: number[] = [];
  for (const pid of pids) {
    if (!(await commandLineMentions(pid, marker))) continue;
    if (!kill(pid)) continue;
    reaped.push(pid);
  }
  for (const pid of reaped) await waitGone(pid);
  return reaped;
}

/** SIGKILL; false when the process has already gone. */
function kill(pid: number): boolean {
  try {
    process.kill(pid, "SIGKILL");
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

async function commandLineMentions(pid: number, marker: string): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
    return cmdline.includes(marker);
  } catch {
    return false;
  }
}

async function waitGone(pid: number): Promise<void> {
  while (await running(pid)) await sleep(REAP_POLL_MS);
}

/**
 * False once the process has exited, including as a zombie: a leftover's
 * parent died, so only pid 1 can reap it, and in a container pid 1 may
 * reap late or never. A zombie holds no port, file or memory.
 */
async function running(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}
