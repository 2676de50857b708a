/** The admission server picks up a rotated certificate without a restart, and keeps its old one when the files go bad. */
import { X509Certificate } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureCertificateAuthority, ensureServingCertificate } from "../../src/devcluster/certs.ts";
import type { RunningServer } from "../../src/server/https.ts";
import { listenHttps } from "../../src/server/https.ts";
import { createLogger } from "../../src/telemetry/logger.ts";

describe("certificate rotation", () => {
  let dir: string;
  let server: RunningServer;
  let logs = "";
  let caPem: Buffer;
  const live = { certFile: "", keyFile: "" };
  const serials: Record<string, string> = {};

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-reload-"));
    const ca = await ensureCertificateAuthority(path.join(dir, "ca"), "reload-test-ca");
    caPem = await readFile(ca.certFile);
    for (const name of ["first", "second"]) {
      const cert = await ensureServingCertificate({ ca, outDir: dir, name, commonName: name, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
      serials[name] = new X509Certificate(await readFile(cert.certFile)).serialNumber;
    }
    live.certFile = path.join(dir, "tls.crt");
    live.keyFile = path.join(dir, "tls.key");
    await copyFile(path.join(dir, "first.crt"), live.certFile);
    await copyFile(path.join(dir, "first.key"), live.keyFile);
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => ((logs += chunk.toString()), done()) });
    server = await listenHttps((_req, res) => res.end("ok"), live, { host: "127.0.0.1", port: 0, logger: createLogger({ destination: sink }), reloadIntervalMs: 50 });
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function servedSerial(): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: "127.0.0.1", port: server.port, ca: caPem }, () => {
        resolve(socket.getPeerX509Certificate()?.serialNumber ?? "");
        socket.end();
      });
      socket.on("error", reject);
    });
  }

  async function servedSerialBecomes(serial: string): Promise<boolean> {
    for (let i = 0; i < 40; i += 1) {
      if ((await servedSerial()) === serial) return true;
      await sleep(50);
    }
    return false;
  }

  it("serves the new certificate once the files are replaced", async () => {
    expect(await servedSerial()).toBe(serials.first);
    await copyFile(path.join(dir, "second.key"), live.keyFile);
    await copyFile(path.join(dir, "second.crt"), live.certFile);
    expect(await servedSerialBecomes(serials.second ?? "")).toBe(true);
    expect(logs).toContain("serving certificate reloaded");
  });

  it("keeps the certificate it has when the files disappear, and says why", async () => {
    await rm(live.certFile);
    await sleep(300);
    expect(await servedSerial()).toBe(serials.second);
    expect(logs).toContain("keeping the current serving certificate");
    expect(logs).toContain("ENOENT");
  });
});
