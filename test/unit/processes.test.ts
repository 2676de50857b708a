import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { reapStaleProcesses } from "../../src/devcluster/processes.ts";

const NODE = path.resolve(import.meta.dirname, "../../node_modules/.bin/node");
/** Far longer than any test: the leftover must be ended by the code under test or by cleanup. */
const IDLE_FOREVER = "setInterval(() => {}, 1e6)";

/** The state letter of /proc/PID/stat (R, S, Z, ...), or undefined once the pid is gone. */
async function stateOf(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.charAt(stat.lastIndexOf(")") + 2);
  } catch {
    return undefined;
  }
}

describe("stopping what a previous run left behind", () => {
  let dir: string;
  let pidFile: string;
  const parents: ChildProcess[] = [];
  const leftovers: number[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-reap-"));
    pidFile = path.join(dir, "controlplane.pids");
  });
  afterEach(async () => {
    for (const pid of leftovers.splice(0)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already killed by the test.
      }
    }
    for (const parent of parents.splice(0)) {
      if (parent.exitCode === null && parent.signalCode === null) {
        parent.kill("SIGKILL");
        await once(parent, "exit");
      }
    }
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Starts a long-lived node process whose command line holds `marker`,
   * under a parent that never reaps its children (the shell execs `sleep`),
   * as a leftover orphaned to a lazy pid 1 would be. Returns its pid.
   */
  async function leftover(marker: string): Promise<number> {
    const parent = spawn("sh", ["-c", `"$0" -e "${IDLE_FOREVER}" "$1" & echo $!; exec sleep 60`, NODE, marker], { stdio: ["ignore", "pipe", "ignore"] });
    parents.push(parent);
    const [chunk] = (await once(parent.stdout, "data")) as [Buffer];
    const pid = Number(chunk.toString().trim());
    leftovers.push(pid);
    // `$!` comes as soon as the shell forked: wait until the child is node, so no test reads its command line mid-exec.
    for (let attempt = 0; attempt < 200 && !(await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).includes(IDLE_FOREVER); attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return pid;
  }

  it("kills a recorded process whose command line mentions the directory, without waiting for it to be reaped", async () => {
    const pid = await leftover(dir);
    await writeFile(pidFile, `${pid}\n`);
    expect(await reapStaleProcesses(pidFile, dir)).toEqual([pid]);
    expect(await stateOf(pid)).toBe("Z");
  });

  it("leaves alone a recorded pid whose command line does not mention the directory", async () => {
    const pid = await leftover(path.join(tmpdir(), "some-other-dir"));
    await writeFile(pidFile, `${pid}\n`);
    expect(await reapStaleProcesses(pidFile, dir)).toEqual([]);
    expect(await stateOf(pid)).toMatch(/^[RS]$/);
  });

  it("does nothing when there is no pid file, or its pids are gone", async () => {
    expect(await reapStaleProcesses(pidFile, dir)).toEqual([]);
    await writeFile(pidFile, "999999999\nnot-a-pid\n");
    expect(await reapStaleProcesses(pidFile, dir)).toEqual([]);
  });
});
