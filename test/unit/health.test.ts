import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureCertificateAuthority, ensureServingCertificate } from "../../src/devcluster/certs.ts";
import { waitHealthy } from "../../src/devcluster/health.ts";
import type { ManagedProcess } from "../../src/devcluster/processes.ts";
import type { RunningServer } from "../../src/server/https.ts";
import { listenHttps } from "../../src/server/https.ts";

/** Far longer than any of these tests takes when the code under test is right. */
const TIMEOUT_MS = 10_000;
/** For the waits that must time out: a few polls. */
const SHORT_TIMEOUT_MS = 300;

/** A process that has not exited, or one that exits when `exit` is called. */
function fakeProcess(name: string, logFile: string): ManagedProcess & { exit(): void } {
  let exit = (): void => undefined;
  const exited = new Promise<string>((resolve) => (exit = () => resolve("1")));
  return { name, pid: 1, logFile, exited, stop: () => Promise.resolve(), exit: () => exit() };
}

describe("waiting for the control plane's processes to be healthy", () => {
  let dir: string;
  let ca: Buffer;
  let server: RunningServer;
  const answers = new Map<string, number>();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-health-"));
    const authority = await ensureCertificateAuthority(dir, "test-ca");
    const serving = await ensureServingCertificate({ ca: authority, outDir: dir, name: "serving", commonName: "serving", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
    ca = await readFile(authority.certFile);
    server = await listenHttps((req, res) => {
      res.statusCode = answers.get(req.url ?? "") ?? 404;
      res.end();
    }, serving, { host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("resolves once every server answers 200", async () => {
    answers.set("/a", 200);
    answers.set("/b", 503);
    const log = path.join(dir, "b.log");
    const waiting = waitHealthy({
      checks: [{ name: "a", url: `https://127.0.0.1:${server.port}/a`, logFile: log }, { name: "b", url: `https://127.0.0.1:${server.port}/b`, logFile: log }],
      ca, watched: [], timeoutMs: TIMEOUT_MS,
    });
    answers.set("/b", 200);
    await expect(waiting).resolves.toBeUndefined();
  });

  it("fails at once, quoting its log, when a process dies before it is healthy", async () => {
    const logFile = path.join(dir, "kube-controller-manager.log");
    await writeFile(logFile, "starting\nE1130 something went wrong: bad flag\n");
    const dying = fakeProcess("kube-controller-manager", logFile);
    const waiting = waitHealthy({ checks: [{ name: dying.name, url: `https://127.0.0.1:${server.port}/never`, logFile }], ca, watched: [dying], timeoutMs: TIMEOUT_MS });
    dying.exit();
    await expect(waiting).rejects.toThrow(/kube-controller-manager exited during start; its log ends:\nstarting\nE1130 something went wrong: bad flag$/);
  });

  it("names what is not healthy, and its log, when time runs out", async () => {
    const logFile = path.join(dir, "kube-scheduler.log");
    const waiting = waitHealthy({ checks: [{ name: "kube-scheduler", url: `https://127.0.0.1:${server.port}/never`, logFile }], ca, watched: [], timeoutMs: SHORT_TIMEOUT_MS });
    await expect(waiting).rejects.toThrow(`not healthy within ${SHORT_TIMEOUT_MS / 1000} s: kube-scheduler (see ${logFile})`);
  });

  it("does not count a server whose certificate the dev CA did not sign", async () => {
    answers.set("/ok", 200);
    const other = await readFile((await ensureCertificateAuthority(path.join(dir, "other"), "other-ca")).certFile);
    const waiting = waitHealthy({ checks: [{ name: "impostor", url: `https://127.0.0.1:${server.port}/ok`, logFile: "x.log" }], ca: other, watched: [], timeoutMs: SHORT_TIMEOUT_MS });
    await expect(waiting).rejects.toThrow(/not healthy within/);
  });
});
