/**
 * Only the apiserver may call the admission paths: a review from anyone
 * else (curl to a pod's port, another pod in the cluster) is refused before
 * its body is read, and its handler never runs.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { once } from "node:events";
import https from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import type { Request } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdmissionHandler } from "../../src/admission/handler.ts";
import { allowed } from "../../src/admission/response.ts";
import type { AdmissionRequest } from "../../src/admission/review.ts";
import { ensureCertificateAuthority, ensureClientCertificate, ensureServingCertificate } from "../../src/devcluster/certs.ts";
import { createApp } from "../../src/server/app.ts";
import { clientCertificateCheck } from "../../src/server/callers.ts";
import type { RunningServer } from "../../src/server/https.ts";
import { listenHttps } from "../../src/server/https.ts";
import { silentLogger } from "../../src/telemetry/logger.ts";

/** The forged review: alice "updating" a ConfigMap with an invented oldObject. */
const FORGED = JSON.stringify({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  request: {
    uid: "forged-1", operation: "UPDATE", kind: { group: "", version: "v1", kind: "ConfigMap" },
    resource: { group: "", version: "v1", resource: "configmaps" }, namespace: "shop", name: "settings",
    userInfo: { username: "alice" },
    object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "shop" }, data: { v: "live" } },
    oldObject: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings", namespace: "shop" }, data: { v: "invented" } },
  },
});

describe("the admission paths", () => {
  let dir: string;
  let server: RunningServer;
  let caPem: Buffer;
  const seen: AdmissionRequest[] = [];
  const identities: Record<string, { cert: Buffer; key: Buffer }> = {};
  const recording: AdmissionHandler = { handle: (request) => (seen.push(request), Promise.resolve(allowed(request))) };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-callers-"));
    const serverCa = await ensureCertificateAuthority(path.join(dir, "server-ca"), "serving-ca");
    const clientCa = await ensureCertificateAuthority(path.join(dir, "client-ca"), "apiserver-client-ca");
    const otherCa = await ensureCertificateAuthority(path.join(dir, "other-ca"), "cluster-ca");
    caPem = await readFile(serverCa.certFile);
    const serving = await ensureServingCertificate({ ca: serverCa, outDir: dir, name: "serving", commonName: "kubetx", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
    for (const [id, authority, cn] of [["apiserver", clientCa, "kube-apiserver"], ["alice", clientCa, "alice"], ["csr", otherCa, "kube-apiserver"]] as const) {
      const pair = await ensureClientCertificate({ ca: authority, outDir: dir, name: id, commonName: cn });
      identities[id] = { cert: await readFile(pair.certFile), key: await readFile(pair.keyFile) };
    }
    const apiserver = clientCertificateCheck(["kube-apiserver"]);
    const app = createApp({ logger: silentLogger(), handlers: { "/validate": recording, "/observe": recording }, callers: { admission: apiserver, audit: apiserver } });
    server = await listenHttps(app, serving, { host: "127.0.0.1", port: 0, clientCaFile: clientCa.certFile });
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function post(to: string, as?: string, agent?: https.Agent): Promise<{ status: number; json: Record<string, unknown> }> {
    const identity = as ? identities[as] : undefined;
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: "127.0.0.1", port: server.port, path: to, method: "POST", ca: caPem, servername: "localhost",
        headers: { "content-type": "application/json" }, ...(identity ?? {}), ...(agent ? { agent } : {}),
      }, (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
      });
      req.on("error", reject);
      req.end(FORGED);
    });
  }

  it.each([
    ["/validate", "no client certificate (curl to the pod)", undefined, 401, /client certificate is required/],
    ["/observe", "no client certificate", undefined, 401, /client certificate is required/],
    ["/validate", "the apiserver's name from another CA (an approved CSR)", "csr", 401, /not signed by the configured client CA/],
    ["/validate", "a certificate of another name from the right CA", "alice", 403, /client 'alice' may not call this path/],
  ])("%s refuses a caller with %s, and the handler never sees the review", async (to, _name, as, code, reason) => {
    const before = seen.length;
    const { status, json } = await post(to, as);
    expect(status).toBe(code);
    expect(json.error).toMatch(reason);
    expect(json.error).toMatch(/^kubetx: /);
    expect(seen.length).toBe(before);
  });

  it("answers the apiserver's client certificate", async () => {
    const { status, json } = await post("/validate", "apiserver");
    expect(status).toBe(200);
    expect(json.response).toEqual({ uid: "forged-1", allowed: true });
    expect(seen.at(-1)?.uid).toBe("forged-1");
  });

  it("judges each caller once per kept-alive connection, and every request on it alike", async () => {
    for (const [as, code] of [["apiserver", 200], ["alice", 403]] as const) {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      const sockets = new Set<unknown>();
      agent.on("free", (socket) => sockets.add(socket));
      try {
        const statuses = [];
        for (let i = 0; i < 3; i += 1) statuses.push((await post("/validate", as, agent)).status);
        expect(statuses).toEqual([code, code, code]);
        expect(sockets.size).toBe(1);
      } finally {
        agent.destroy();
      }
    }
  });

  it("refuses to renegotiate TLS 1.2, so a connection cannot change its certificate after it was judged", { timeout: 10_000 }, async () => {
    const socket = tls.connect({ host: "127.0.0.1", port: server.port, ca: caPem, servername: "localhost", maxVersion: "TLSv1.2", ...identities.apiserver });
    try {
      await once(socket, "secureConnect");
      const outcome = await new Promise<string>((resolve) => {
        socket.once("close", () => resolve("closed"));
        socket.once("error", () => resolve("closed"));
        const started = socket.renegotiate({ rejectUnauthorized: true }, (error) => resolve(error ? "closed" : "renegotiated"));
        if (!started) resolve("closed");
        // The server reads the renegotiation with the next bytes on the connection.
        socket.write("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
      });
      expect(outcome).toBe("closed");
    } finally {
      socket.destroy();
    }
  });

  it("leaves the health probes open to the kubelet, which has no certificate", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      https.get({ host: "127.0.0.1", port: server.port, path: "/healthz", ca: caPem, servername: "localhost" }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on("error", reject);
    });
    expect(status).toBe(200);
  });
});

describe("the caller check's cost", () => {
  /** A connection as the check sees it, counting how often its certificate is built. */
  function connection(cn: string): { socket: { authorized: boolean; getPeerCertificate: () => { subject: { CN: string } } }; built: () => number } {
    let built = 0;
    return { socket: { authorized: true, getPeerCertificate: () => ((built += 1), { subject: { CN: cn } }) }, built: () => built };
  }

  it("builds a connection's certificate once, however many reviews come on it", () => {
    const check = clientCertificateCheck(["kube-apiserver"]);
    const [apiserver, alice] = [connection("kube-apiserver"), connection("alice")];
    const request = (c: ReturnType<typeof connection>): Request => ({ socket: c.socket }) as unknown as Request;
    for (let i = 0; i < 5; i += 1) {
      expect(check(request(apiserver))).toEqual({ ok: true });
      expect(check(request(alice))).toMatchObject({ ok: false, status: 403 });
    }
    expect([apiserver.built(), alice.built()]).toEqual([1, 1]);
  });
});
