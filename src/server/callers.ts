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
  // Judged once per connection, not per request: the apiserver keeps its connections open, a connection's
  // certificate is fixed once its handshake is done (https.ts refuses renegotiation), and getPeerCertificate
  // builds the whole certificate as an object, which cost about a sixth of a pass-through review's CPU.
  const verdicts = new WeakMap<TLSSocket, CallerVerdict>();
  return (req: Request) => {
    const socket = req.socket as TLSSocket;
    if (typeof socket.getPeerCertificate !== "function") return { ok: false, status: 401, reason: "a client certificate is required" };
    const known = verdicts.get(socket);
    if (known) return known;
    const verdict = judge(socket, allowed);
    verdicts.set(socket, verdict);
    return verdict;
  };
}

type CallerVerdict = ReturnType<CallerCheck>;

function judge(socket: TLSSocket, allowed: ReadonlySet<string>): CallerVerdict {
  const peer = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return { ok: false, status: 401, reason: "a client certificate is required: only the apiserver may call this path" };
  if (!socket.authorized) return { ok: false, status: 401, reason: `the client certificate is not signed by the configured client CA (${String(socket.authorizationError)})` };
  const cn = peer.subject?.CN ?? "";
  const name = Array.isArray(cn) ? cn.join(",") : cn;
  if (!allowed.has(name)) return { ok: false, status: 403, reason: `client '${name}' may not call this path; allowed: ${[...allowed].join(", ")}` };
  return { ok: true };
}
