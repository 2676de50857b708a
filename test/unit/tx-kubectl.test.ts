import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findKubectl, runKubectl } from "../../src/cli/tx/kubectl.ts";

class Collect extends Writable {
  text = "";
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describe("running kubectl", () => {
  it("shows kubectl's stderr as it comes and keeps it with the exit code", async () => {
    const shown = new Collect();
    const result = await runKubectl("/bin/sh", ["-c", "echo 'error: one' >&2; echo 'error: two' >&2; exit 3"], shown);
    expect(result).toEqual({ code: 3, stderr: "error: one\nerror: two\n" });
    expect(shown.text).toBe("error: one\nerror: two\n");
  });

  it("reports a kubectl that a signal stopped as a failure with 128 + the signal number", async () => {
    const result = await runKubectl("/bin/sh", ["-c", "kill -TERM $$"], new Collect());
    expect(result.code).toBe(143);
    expect(result.failure).toBe("kubectl was stopped by SIGTERM");
    expect(result.stderr).toContain("kubectl was stopped by SIGTERM");
  });

  it("reports a kubectl that could not start, rather than throwing", async () => {
    const result = await runKubectl("/nonexistent/kubectl", ["apply"], new Collect());
    expect(result.code).toBe(127);
    expect(result.failure).toMatch(/^kubectl could not run: spawn \/nonexistent\/kubectl ENOENT/);
  });

  it("runs kubectl under the name it is given (its argv[0], which kubectl puts in its User-Agent)", async () => {
    const shown = new Collect();
    const result = await runKubectl(process.execPath, ["-e", "console.error(process.argv0)"], shown, { argv0: "kubectl@t-0a1b2c3d" });
    expect(result).toEqual({ code: 0, stderr: "kubectl@t-0a1b2c3d\n" });
  });

  it("with input, starts kubectl at once and gives it the text on stdin only when the input resolves", async () => {
    const shown = new Collect();
    let give: (text: string) => void = () => undefined;
    const input = new Promise<string | undefined>((resolve) => (give = resolve));
    const running = runKubectl("/bin/sh", ["-c", "echo started >&2; cat >&2"], shown, { input });
    while (!shown.text.includes("started")) await sleep(10);
    await sleep(50);
    expect(shown.text).toBe("started\n");
    give("kind: ConfigMap\n");
    expect(await running).toEqual({ code: 0, stderr: "started\nkind: ConfigMap\n" });
  });

  it("kills kubectl before it has read anything when the input resolves to nothing", async () => {
    const shown = new Collect();
    let give: (text: string | undefined) => void = () => undefined;
    const input = new Promise<string | undefined>((resolve) => (give = resolve));
    const running = runKubectl("/bin/sh", ["-c", "echo started >&2; cat >&2; echo read-to-the-end >&2"], shown, { input });
    while (!shown.text.includes("started")) await sleep(10);
    give(undefined);
    const result = await running;
    expect(result.failure).toBe("kubectl was stopped by SIGKILL");
    expect(result.code).toBe(137);
    expect(shown.text).toBe("started\n");
  });

  it("reports a kubectl that ended before it read its input by its own exit code, not a broken pipe", async () => {
    let give: (text: string) => void = () => undefined;
    const input = new Promise<string | undefined>((resolve) => (give = resolve));
    const running = runKubectl("/bin/sh", ["-c", "echo 'error: no context' >&2; exit 1"], new Collect(), { input });
    await sleep(100);
    give("x".repeat(1 << 20));
    expect(await running).toEqual({ code: 1, stderr: "error: no context\n" });
  });

  it("passes Ctrl-C on to kubectl instead of ending kubectl tx, so it can still report to kubetx", async () => {
    const before = process.listenerCount("SIGINT");
    const shown = new Collect();
    const script = "process.on('SIGINT', () => { console.error('interrupted'); process.exit(130); }); console.error('ready'); setInterval(() => {}, 1000);";
    const running = runKubectl(process.execPath, ["-e", script], shown);
    while (!shown.text.includes("ready")) await sleep(20);
    expect(process.listenerCount("SIGINT")).toBe(before + 1);
    process.emit("SIGINT", "SIGINT");
    const result = await running;
    expect(result.code).toBe(130);
    expect(result.stderr).toBe("ready\ninterrupted\n");
    expect(process.listenerCount("SIGINT")).toBe(before);
  });
});

describe("finding kubectl", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tx-kubectl-"));
    await mkdir(path.join(dir, "empty"));
    await writeFile(path.join(dir, "kubectl"), "#!/bin/sh\n");
    await chmod(path.join(dir, "kubectl"), 0o755);
    await writeFile(path.join(dir, "not-executable"), "");
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("takes the first executable kubectl on PATH", async () => {
    expect(await findKubectl({ PATH: [path.join(dir, "empty"), dir].join(path.delimiter) })).toBe(path.join(dir, "kubectl"));
  });

  it("prefers $KUBECTL", async () => {
    expect(await findKubectl({ KUBECTL: path.join(dir, "kubectl"), PATH: "" })).toBe(path.join(dir, "kubectl"));
  });

  it("says what to do when there is no kubectl", async () => {
    await expect(findKubectl({ PATH: path.join(dir, "empty") })).rejects.toThrow("kubectl tx: kubectl is not on PATH; install it, or set KUBECTL to its path");
    await expect(findKubectl({ KUBECTL: path.join(dir, "not-executable") })).rejects.toThrow(`kubectl tx: KUBECTL=${path.join(dir, "not-executable")} is not an executable file; point it at kubectl or unset it`);
  });
});
