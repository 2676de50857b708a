import { readFile } from "node:fs/promises";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { RequestListener } from "node:http";

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface RunningServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `app` over HTTPS on host:port; TLS 1.2 is the oldest version offered. */
export async function listenHttps(app: RequestListener, tls: TlsFiles, host: string, port: number): Promise<RunningServer> {
  const [cert, key] = await Promise.all([readFile(tls.certFile), readFile(tls.keyFile)]);
  const server = https.createServer({ cert, key, minVersion: "TLSv1.2" }, app);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
