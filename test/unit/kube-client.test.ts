/** The REST client against a small local HTTPS server: typed errors, and answers that are not JSON. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureCertificateAuthority, ensureServingCertificate } from "../../src/devcluster/certs.ts";
import { renderKubeconfig } from "../../src/devcluster/identities.ts";
import type { KubeClient } from "../../src/kube/index.ts";
import { AlreadyExists, Conflict, NotFound, createKubeClient } from "../../src/kube/index.ts";

describe("the kube client", () => {
  let dir: string;
  let server: https.Server;
  let client: KubeClient;
  let flaky = 0;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "kubetx-client-"));
    const ca = await ensureCertificateAuthority(dir, "client-test-ca");
    const cert = await ensureServingCertificate({ ca, outDir: dir, name: "server", commonName: "localhost", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
    server = https.createServer({ cert: await readFile(cert.certFile), key: await readFile(cert.keyFile) }, (req, res) => {
      const status: Record<string, [number, string]> = {
        "/text": [200, "ok"],
        "/missing": [404, JSON.stringify({ kind: "Status", reason: "NotFound", message: "configmaps \"x\" not found", code: 404 })],
        "/exists": [409, JSON.stringify({ kind: "Status", reason: "AlreadyExists", message: "already exists", code: 409 })],
        "/stale": [409, JSON.stringify({ kind: "Status", reason: "Conflict", message: "the object has been modified", code: 409 })],
        "/watch-garbled?watch=1&allowWatchBookmarks=true": [200, `${JSON.stringify({ type: "ADDED", object: { metadata: { name: "a" } } })}\n{not json\n`],
      };
      if (req.url === "/flaky" && (flaky += 1) === 1) return req.socket.destroy();
      if (req.url?.startsWith("/watch-cut") || req.url?.startsWith("/watch-ended")) {
        // A watch stream: one event, then the server process dies (the connection closes mid-stream) or ends it as a timeout does.
        res.writeHead(200, { "content-type": "application/json" });
        res.write(`${JSON.stringify({ type: "ADDED", object: { metadata: { name: "a" } } })}\n`);
        setTimeout(() => (req.url?.startsWith("/watch-cut") ? req.socket.destroy() : res.end()), 20);
        return;
      }
      const [code, body] = status[req.url ?? ""] ?? [200, JSON.stringify({ auth: req.headers.authorization })];
      res.writeHead(code, { "content-type": "application/json" }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const kubeconfig = path.join(dir, "kubeconfig");
    const caData = (await readFile(ca.certFile)).toString("base64");
    await writeFile(kubeconfig, renderKubeconfig({ server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, caData, user: "tester", token: "s3cret" }));
    client = await createKubeClient(kubeconfig);
  });
  afterAll(async () => {
    client?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it("sends the kubeconfig's bearer token", async () => {
    expect(await client.get("/echo")).toEqual({ auth: "Bearer s3cret" });
  });

  it("maps the apiserver's Status answers to typed errors", async () => {
    await expect(client.get("/missing")).rejects.toBeInstanceOf(NotFound);
    await expect(client.create("/exists", {})).rejects.toBeInstanceOf(AlreadyExists);
    await expect(client.replace("/stale", {})).rejects.toBeInstanceOf(Conflict);
  });

  it("rejects an answer that is not JSON instead of crashing the process", async () => {
    await expect(client.get("/text")).rejects.toThrow(/GET \/text: the answer is not JSON/);
  });

  it("ends a watch whose stream carries a line that is not an event with an error, after the events before it, and never throws", async () => {
    const seen: string[] = [];
    const watching = client.watch("/watch-garbled", {}, (event) => seen.push(event.object.metadata?.name ?? ""), new AbortController().signal);
    await expect(watching).rejects.toThrow(/watch/);
    expect(seen).toEqual(["a"]);
  });

  it("ends a watch with an error when the connection closes mid-stream (a killed apiserver), and without one when the server ends it", async () => {
    // The caches count the first as a connection gap (ConnectionGaps); the second is a watch timeout, resumed at once.
    const seen: string[] = [];
    await expect(client.watch("/watch-cut", {}, (event) => seen.push(event.object.metadata?.name ?? ""), new AbortController().signal)).rejects.toThrow();
    await expect(client.watch("/watch-ended", {}, (event) => seen.push(event.object.metadata?.name ?? ""), new AbortController().signal)).resolves.toBeUndefined();
    expect(seen).toEqual(["a", "a"]);
  });

  it("sends a request again once when the apiserver dropped the connection under it", async () => {
    expect(await client.get("/flaky")).toEqual({ auth: "Bearer s3cret" });
    expect(flaky).toBe(2);
  });
});
