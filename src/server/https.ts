/**
 * HTTPS for the admission server: TLS 1.2 or later only, and the serving
 * certificate reloaded when its files change (cert-manager and
 * webhook-certs/ rotate them in place), without a restart. A certificate
 * that cannot be read or does not match its key is not loaded: the server
 * keeps the one it has and logs why.
 */
import { createHash, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { RequestListener } from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import type { Logger } from "../telemetry/logger.ts";

/** How often the certificate files are checked for a rotation. */
export const CERT_RELOAD_INTERVAL_MS = 10_000;

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface RunningServer {
  readonly port: number;
  close(): Promise<void>;
}

export interface ListenOptions {
  readonly host: string;
  /** 0 for any free port. */
  readonly port: number;
  readonly logger?: Logger;
  readonly reloadIntervalMs?: number;
  /**
   * CA of the client certificates to verify (the apiserver's). Clients are
   * asked for a certificate but not refused in the handshake; paths check
   * the result (src/server/callers.ts).
   */
  readonly clientCaFile?: string;
}

interface Material {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly digest: string;
}

/** Reads and checks a certificate and key; throws with the reason when they cannot serve. */
async function readMaterial(files: TlsFiles): Promise<Material> {
  const [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
  const x509 = new X509Certificate(cert);
  tls.createSecureContext({ cert, key });
  if (Date.parse(x509.validTo) < Date.now()) throw new Error(`certificate ${files.certFile} expired on ${x509.validTo}`);
  return { cert, key, digest: createHash("sha256").update(cert).update(key).digest("hex") };
}

/** Serves `app` over HTTPS on host:port. */
/** Longer than any client keeps an idle connection (Go's http.Transport: 90 s). */
const KEEP_ALIVE_MS = 120_000;

export async function listenHttps(app: RequestListener, files: TlsFiles, options: ListenOptions): Promise<RunningServer> {
  const { host, port } = options;
  let current = await readMaterial(files);
  const clientCa = options.clientCaFile ? await readFile(options.clientCaFile) : undefined;
  const clients = clientCa ? { requestCert: true, rejectUnauthorized: false, ca: clientCa } : {};
  const server = https.createServer({ cert: current.cert, key: current.key, minVersion: "TLSv1.2", ...clients }, app);
  // The apiserver keeps idle connections to webhooks for 90 s and sends the next review on one: were Node to close
  // them first (its default is 5 s), a review sent as it closes one fails ("broken pipe") and, with failurePolicy
  // Fail, so does the user's write. The client must be the one to close.
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = KEEP_ALIVE_MS + 5_000;
  // A connection keeps the client certificate of its handshake: callers.ts judges it once per connection.
  // (TLS 1.3 has no renegotiation; this closes the door for 1.2.)
  server.on("secureConnection", (socket: tls.TLSSocket) => socket.disableRenegotiation());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  let lastProblem = "";
  const check = async (): Promise<void> => {
    try {
      const next = await readMaterial(files);
      lastProblem = "";
      if (next.digest === current.digest) return;
      server.setSecureContext({ cert: next.cert, key: next.key, minVersion: "TLSv1.2", ...(clientCa ? { ca: clientCa } : {}) });
      current = next;
      options.logger?.info({ certFile: files.certFile }, "serving certificate reloaded");
    } catch (error) {
      const problem = error instanceof Error ? error.message : String(error);
      if (problem !== lastProblem) options.logger?.warn({ certFile: files.certFile, reason: problem }, "keeping the current serving certificate: the files on disk cannot be used");
      lastProblem = problem;
    }
  };
  const timer = setInterval(() => void check(), options.reloadIntervalMs ?? CERT_RELOAD_INTERVAL_MS);
  timer.unref();
  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
