import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ensureCertificateAuthority, ensureServingCertificate } from "../../src/devcluster/certs.ts";
import type { RunningServer } from "../../src/server/https.ts";
import { listenHttps } from "../../src/server/https.ts";

const REPO = path.resolve(import.meta.dirname, "../..");
const SCRIPT = path.join(REPO, "webhook-certs/make-certs.sh");
const SERVICE_NAMES = ["kubetx", "kubetx.kubetx-system", "kubetx.kubetx-system.svc", "kubetx.kubetx-system.svc.cluster.local"];
const FILES = ["ca.crt", "ca.key", "tls.crt", "tls.key"] as const;

interface ScriptRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function makeCerts(out: string): Promise<ScriptRun> {
  return new Promise((resolve) => {
    execFile(SCRIPT, [out], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function readAll(dir: string): Promise<Record<string, string>> {
  const entries = await Promise.all(FILES.map(async (file) => [file, await readFile(path.join(dir, file), "utf8")] as const));
  return Object.fromEntries(entries);
}

function get(url: string, ca?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    https.get(url, ca ? { ca } : {}, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

/** Opens a TLS connection to 127.0.0.1 as a client that asks for `servername`; resolves with whether it was trusted. */
function connectAs(port: number, servername: string, ca: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, ca }, () => {
      resolve(socket.authorized);
      socket.end();
    });
    socket.on("error", () => resolve(false));
  });
}

describe("webhook-certs/make-certs.sh", () => {
  let dir: string;
  let out: string;
  let first: ScriptRun;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-certs-"));
    out = path.join(dir, "out");
    first = await makeCerts(out);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("prints only the caBundle (the CA as base64 PEM) on stdout, and where the files are (the control plane's too) on stderr", async () => {
    expect(first.code).toBe(0);
    expect(first.stdout.trim()).toBe((await readFile(path.join(out, "ca.crt"))).toString("base64"));
    expect(first.stderr).toBe(
      `kubetx certs: CA ${out}/ca.crt, serving certificate ${out}/tls.crt, key ${out}/tls.key\n` +
      `kubetx certs: the apiserver's client CA ${out}/apiserver-client-ca/ca.crt; for each control-plane node's /etc/kubernetes/kubetx: ` +
      `${out}/control-plane/ (webhook-clients.kubeconfig, admission-control.yaml, apiserver-client.crt, apiserver-client.key, kubetx-ca.crt)\n`,
    );
  });

  it("writes the private keys readable by their owner only", async () => {
    for (const key of ["ca.key", "tls.key"]) expect((await stat(path.join(out, key))).mode & 0o777, key).toBe(0o600);
  });

  it("makes a serving certificate for IP 127.0.0.1 and every DNS name of the kubetx Service", async () => {
    const serving = new X509Certificate(await readFile(path.join(out, "tls.crt")));
    const sans = serving.subjectAltName?.split(", ") ?? [];
    expect(sans.sort()).toEqual([...SERVICE_NAMES.map((name) => `DNS:${name}`), "IP Address:127.0.0.1"].sort());
    expect(serving.ca).toBe(false);
  });

  it("signs the serving certificate with the CA it prints", async () => {
    const serving = new X509Certificate(await readFile(path.join(out, "tls.crt")));
    const ca = new X509Certificate(Buffer.from(first.stdout.trim(), "base64"));
    expect(ca.ca).toBe(true);
    expect(serving.checkIssued(ca)).toBe(true);
    expect(serving.verify(ca.publicKey)).toBe(true);
  });

  describe("served by the kubetx HTTPS server", () => {
    let server: RunningServer;
    let ca: Buffer;

    beforeAll(async () => {
      ca = await readFile(path.join(out, "ca.crt"));
      server = await listenHttps((_req, res) => res.end("ok"), { certFile: path.join(out, "tls.crt"), keyFile: path.join(out, "tls.key") }, { host: "127.0.0.1", port: 0 });
    });
    afterAll(() => server.close());

    it("is trusted at 127.0.0.1 by a client that pins only the CA", async () => {
      await expect(get(`https://127.0.0.1:${server.port}/`, ca)).resolves.toBe("ok");
    });

    it("is refused by a client that does not pin the CA", async () => {
      await expect(get(`https://127.0.0.1:${server.port}/`)).rejects.toThrow(/certificate/);
    });

    it("is trusted under each Service DNS name, as the apiserver calls a service webhook", async () => {
      for (const name of SERVICE_NAMES) expect(await connectAs(server.port, name, ca), name).toBe(true);
      expect(await connectAs(server.port, "other.kubetx-system.svc", ca)).toBe(false);
    });
  });

  it("reuses the existing files on a second run, so the registered caBundle stays valid", async () => {
    const before = await readAll(out);
    const second = await makeCerts(out);
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    expect(await readAll(out)).toEqual(before);
  });
});

describe("reusing a serving certificate", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-certs-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const request = (names: string[]): Parameters<typeof ensureServingCertificate>[0] => ({
    ca: { certFile: path.join(dir, "ca.crt"), keyFile: path.join(dir, "ca.key") },
    outDir: dir, name: "tls", commonName: "kubetx.kubetx-system.svc", dnsNames: names, ipAddresses: ["127.0.0.1"],
  });

  it("makes a new serving certificate when the CA was made again", async () => {
    await ensureCertificateAuthority(dir, "first-ca");
    const old = await readFile((await ensureServingCertificate(request(SERVICE_NAMES))).certFile, "utf8");
    await rm(path.join(dir, "ca.key"));
    await ensureCertificateAuthority(dir, "second-ca");
    const renewed = new X509Certificate(await readFile((await ensureServingCertificate(request(SERVICE_NAMES))).certFile));
    expect(renewed.toString()).not.toBe(old);
    expect(renewed.checkIssued(new X509Certificate(await readFile(path.join(dir, "ca.crt"))))).toBe(true);
  });

  it("makes a new serving certificate when asked for names the old one lacks", async () => {
    await ensureCertificateAuthority(dir, "ca");
    await ensureServingCertificate(request(SERVICE_NAMES));
    const renamed = await ensureServingCertificate(request(["other", "other.kubetx-system.svc"]));
    const cert = new X509Certificate(await readFile(renamed.certFile));
    expect(cert.checkHost("other.kubetx-system.svc", { subject: "never" })).toBe("other.kubetx-system.svc");
  });
});
