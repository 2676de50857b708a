/**
 * The apiserver's own view of the webhook: its admission-webhook duration
 * histogram, read from /metrics before and after a block of requests. The
 * buckets are coarse (5 ms, 25 ms, 100 ms, ...), so this gives a mean per
 * call and the share under 5 ms, a cross-check on the client-side numbers.
 */
import https from "node:https";
import { readFile } from "node:fs/promises";
import type { ControlPlane } from "../../src/devcluster/controlplane.ts";
import { round } from "./stats.ts";

const HISTOGRAM = "apiserver_admission_webhook_admission_duration_seconds";

/** Per webhook name: sum of seconds, count, and count of calls at or under 5 ms. */
export type WebhookTotals = Map<string, { sum: number; count: number; under5ms: number }>;

export async function scrapeWebhookTotals(controlPlane: ControlPlane): Promise<WebhookTotals> {
  const text = await get(`${controlPlane.server}/metrics`, await readFile(controlPlane.ca.certFile), controlPlane.tokens.admin);
  const totals: WebhookTotals = new Map();
  for (const line of text.split("\n")) {
    if (!line.startsWith(HISTOGRAM)) continue;
    const match = /^(\w+)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!match) continue;
    const [, metric, rawLabels, value] = match as unknown as [string, string, string, string];
    const labels: Record<string, string> = Object.fromEntries([...rawLabels.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? "", m[2] ?? ""]));
    if (labels.operation !== "CREATE" || labels.rejected !== "false" || !labels.name) continue;
    const entry = totals.get(labels.name) ?? { sum: 0, count: 0, under5ms: 0 };
    if (metric.endsWith("_sum")) entry.sum += Number(value);
    else if (metric.endsWith("_count")) entry.count += Number(value);
    else if (metric.endsWith("_bucket") && labels.le === "0.005") entry.under5ms += Number(value);
    totals.set(labels.name, entry);
  }
  return totals;
}

/** `after - before`, added into `into`. */
export function addDelta(into: WebhookTotals, before: WebhookTotals, after: WebhookTotals): void {
  for (const [name, a] of after) {
    const b = before.get(name) ?? { sum: 0, count: 0, under5ms: 0 };
    const acc = into.get(name) ?? { sum: 0, count: 0, under5ms: 0 };
    into.set(name, { sum: acc.sum + a.sum - b.sum, count: acc.count + a.count - b.count, under5ms: acc.under5ms + a.under5ms - b.under5ms });
  }
}

export function describeTotals(totals: WebhookTotals): Record<string, { calls: number; meanMs: number; shareUnder5ms: number }> {
  const out: Record<string, { calls: number; meanMs: number; shareUnder5ms: number }> = {};
  for (const [name, t] of totals) {
    if (t.count > 0) out[name] = { calls: t.count, meanMs: round((t.sum / t.count) * 1000), shareUnder5ms: round(t.under5ms / t.count, 3) };
  }
  return out;
}

function get(url: string, ca: Buffer, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, headers: { Authorization: `Bearer ${token}` }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => ((res.statusCode ?? 0) === 200 ? resolve(Buffer.concat(chunks).toString("utf8")) : reject(new Error(`GET ${url}: ${res.statusCode ?? 0}`))));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on("error", reject);
  });
}
