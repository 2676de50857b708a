/**
 * The apiserver's own view of the webhook: its admission-webhook duration
 * histogram, read from /metrics before and after each measured window and
 * summed over the windows of one path. The buckets are coarse (5 ms, 25 ms,
 * 100 ms, 500 ms, ...), so the quantiles are estimates inside a bucket, a
 * cross-check on the client-side numbers rather than a replacement.
 */
import https from "node:https";
import { readFile } from "node:fs/promises";
import type { ControlPlane } from "../../src/devcluster/controlplane.ts";
import type { LabelledHistogram } from "./histogram.ts";
import { addHistograms, histogramDelta, histogramQuantile, histogramsOf, mergeBy, parsePrometheusText } from "./histogram.ts";
import { round } from "./stats.ts";

/** Labels: name (the webhook's), type (validating, admit), operation, rejected. */
export const WEBHOOK_HISTOGRAM = "apiserver_admission_webhook_admission_duration_seconds";
/** The apiserver's first bucket bound: the share of calls under it says how many were fast. */
const FAST_BOUND_SECONDS = 0.005;

/** What the apiserver measured of one webhook over a path's windows. */
export interface WebhookView {
  readonly calls: number;
  readonly rejected: number;
  readonly byOperation: Record<string, number>;
  readonly meanMs: number;
  /** Estimated from the buckets (linear inside the bucket, as histogram_quantile). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly shareUnder5ms: number;
  /** `[le, calls at or under it]` in bound order, `le` in seconds as the apiserver labels it (a list: as object keys "1" and "10" would sort before "0.005"). */
  readonly buckets: readonly (readonly [string, number])[];
}

export type Labels = Readonly<Record<string, string>>;

/** The webhook histogram's series, summed over measured windows. */
export class WebhookWindows {
  private readonly controlPlane: ControlPlane;
  private total: LabelledHistogram[] = [];

  constructor(controlPlane: ControlPlane) {
    this.controlPlane = controlPlane;
  }

  /** Runs `work` between two scrapes and adds what the apiserver measured in between. */
  async around<T>(work: () => Promise<T>): Promise<T> {
    const before = await scrapeWebhookHistogram(this.controlPlane);
    const result = await work();
    const after = await scrapeWebhookHistogram(this.controlPlane);
    this.total = addHistograms(this.total, histogramDelta(before, after));
    return result;
  }

  view(keep?: (labels: Labels) => boolean): Record<string, WebhookView> {
    return describeWebhooks(this.total, keep);
  }
}

export async function scrapeWebhookHistogram(controlPlane: ControlPlane): Promise<LabelledHistogram[]> {
  const text = await get(`${controlPlane.server}/metrics`, await readFile(controlPlane.ca.certFile), controlPlane.tokens.admin);
  return histogramsOf(parsePrometheusText(text), WEBHOOK_HISTOGRAM);
}

/** Per webhook name, the series that pass `keep` merged (operations, rejected or not). */
export function describeWebhooks(series: readonly LabelledHistogram[], keep?: (labels: Labels) => boolean): Record<string, WebhookView> {
  const out: Record<string, WebhookView> = {};
  for (const [name, h] of [...mergeBy(series, "name", keep)].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (h.count <= 0) continue;
    const mine = series.filter((s) => s.labels.name === name && (keep?.(s.labels) ?? true));
    const byOperation: Record<string, number> = {};
    for (const s of mine) byOperation[s.labels.operation ?? "?"] = (byOperation[s.labels.operation ?? "?"] ?? 0) + s.count;
    out[name] = {
      calls: h.count,
      rejected: mine.filter((s) => s.labels.rejected === "true").reduce((n, s) => n + s.count, 0),
      byOperation,
      meanMs: round((h.sum / h.count) * 1000),
      p50Ms: round(histogramQuantile(0.5, h) * 1000),
      p99Ms: round(histogramQuantile(0.99, h) * 1000),
      shareUnder5ms: round((h.buckets.find((b) => b.le === FAST_BOUND_SECONDS)?.count ?? 0) / h.count, 3),
      buckets: h.buckets.map((b) => [b.le === Infinity ? "+Inf" : String(b.le), b.count] as const),
    };
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
