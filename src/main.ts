/**
 * The composition root: the one place that reads configuration, builds the
 * logger and clients, and wires them into the admission server.
 */
import { allowAllHandler } from "./admission/allow-all.ts";
import type { AdmissionRequest, AdmissionResponse } from "./admission/review.ts";
import { createKubeClient } from "./kube/index.ts";
import type { KubeClient } from "./kube/index.ts";
import { createApp } from "./server/app.ts";
import type { RunningServer, TlsFiles } from "./server/https.ts";
import { listenHttps } from "./server/https.ts";
import type { Logger } from "./telemetry/logger.ts";

export interface WebhookServerOptions {
  /** Kubeconfig of kubetx's own identity. */
  readonly kubeconfig: string;
  readonly tls: TlsFiles;
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  readonly onReview?: (path: string, request: AdmissionRequest, response: AdmissionResponse) => void;
}

export interface WebhookServer extends RunningServer {
  readonly client: KubeClient;
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  const client = await createKubeClient(options.kubeconfig);
  const app = createApp({
    logger: options.logger,
    handlers: { "/validate": allowAllHandler(options.logger) },
    ...(options.onReview ? { onReview: options.onReview } : {}),
  });
  const server = await listenHttps(app, options.tls, options.host, options.port);
  options.logger.info({ port: server.port }, "admission server listening");
  return {
    port: server.port,
    client,
    close: async () => {
      await server.close();
      client.close();
    },
  };
}
