/**
 * Waits until the control plane's processes serve: HTTPS probes that verify
 * each server's certificate against the dev CA, failing fast with the log
 * tail of any process that dies first.
 */
import https from "node:https";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import type { ManagedProcess } from "./processes.ts";

const POLL_MS = 250;
/** One probe; a healthy loopback server answers in milliseconds. */
const PROBE_TIMEOUT_MS = 2_000;
/** Lines of a process log quoted when it dies during start. */
const LOG_TAIL_LINES = 20;

export interface HealthCheck {
  /** The process, as its log and messages name it. */
  readonly name: string;
  /** e.g. https://127.0.0.1:PORT/readyz; healthy when it answers 200. */
  readonly url: string;
  /** A bearer token, for endpoints that are not open to anonymous requests. */
  readonly token?: string;
  readonly logFile: string;
}

export interface WaitOptions {
  readonly checks: readonly HealthCheck[];
  /** The CA that signed every server's certificate (PEM). */
  readonly ca: Buffer;
  /** Processes whose death fails the wait (the checked ones and what they depend on). */
  readonly watched: readonly ManagedProcess[];
  readonly timeoutMs: number;
}

export class ControlPlaneError extends Error {
  override readonly name = "ControlPlaneError";
}

/** Resolves once every check answers 200; rejects when a watched process exits or time runs out. */
export async function waitHealthy(options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let died: ManagedProcess | undefined;
  for (const p of options.watched) void p.exited.then(() => (died ??= p));
  let pending = [...options.checks];
  while (Date.now() < deadline) {
    if (died) throw new ControlPlaneError(`kubetx: ${died.name} exited during start; its log ends:\n${await logTail(died.logFile)}`);
    const healthy = await Promise.all(pending.map(async (check) => (await probe(check, options.ca)) === 200));
    pending = pending.filter((_, i) => !healthy[i]);
    if (pending.length === 0) return;
    await sleep(POLL_MS);
  }
  const late = pending.map((c) => `${c.name} (see ${c.logFile})`).join(", ");
  throw new ControlPlaneError(`kubetx: not healthy within ${options.timeoutMs / 1000} s: ${late}`);
}

/** The HTTP status of one GET, or 0 when there was no answer. */
function probe(check: HealthCheck, ca: Buffer): Promise<number> {
  const headers = check.token ? { Authorization: `Bearer ${check.token}` } : {};
  return new Promise((resolve) => {
    const req = https.get(check.url, { ca, headers, timeout: PROBE_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

export async function logTail(file: string): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trimEnd().split("\n").slice(-LOG_TAIL_LINES).join("\n");
  } catch {
    return "(no log)";
  }
}
