/**
 * Who is calling: the apiserver authenticates to kubetx with a client
 * certificate (its audit webhook kubeconfig, or the WebhookAdmission
 * kubeConfigFile of --admission-control-config-file). The TLS layer asks
 * every client for a certificate and verifies it against the configured
 * client CA without refusing the handshake (so /healthz stays open); a
 * path that needs the apiserver checks the verified certificate's name.
 */
import type { Request } from "express";
import type { TLSSocket } from "node:tls";
import type { CallerCheck } from "./app.ts";

export function clientCertificateCheck(allowedNames: readonly string[]): CallerCheck {
  const allowed = new Set(allowedNames);
  return (req: Request) => {
    const socket = req.socket as TLSSocket;
    if (typeof socket.getPeerCertificate !== "function") return { ok: false, status: 401, reason: "a client certificate is required" };
    const peer = socket.getPeerCertificate();
    if (!peer || Object.keys(peer).length === 0) return { ok: false, status: 401, reason: "a client certificate is required: only the apiserver may call this path" };
    if (!socket.authorized) return { ok: false, status: 401, reason: `the client certificate is not signed by the configured client CA (${String(socket.authorizationError)})` };
    const cn = peer.subject?.CN ?? "";
    const name = Array.isArray(cn) ? cn.join(",") : cn;
    if (!allowed.has(name)) return { ok: false, status: 403, reason: `client '${name}' may not call this path; allowed: ${[...allowed].join(", ")}` };
    return { ok: true };
  };
}
