/**
 * Prometheus histograms from the text exposition format, with no I/O:
 * parse the samples, take the difference of two scrapes, add windows up,
 * merge series by a label, and estimate a quantile from the buckets the way
 * Prometheus's histogram_quantile does.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Bucket {
  /** Upper bound (`le`), in the metric's unit; Infinity for `+Inf`. */
  readonly le: number;
  /** Observations at or below `le` (cumulative, as exposed). */
  readonly count: number;
}

export interface Histogram {
  /** Sorted by `le`, the last one `+Inf`. */
  readonly buckets: readonly Bucket[];
  readonly sum: number;
  readonly count: number;
}

/** One series of a histogram metric: its labels (without `le`) and its buckets. */
export interface LabelledHistogram extends Histogram {
  readonly labels: Readonly<Record<string, string>>;
}

/** `name{labels} value [timestamp]`; label values may hold escaped quotes. */
const SAMPLE_LINE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/;
const LABEL = /([a-zA-Z_]\w*)\s*=\s*"((?:[^"\\]|\\.)*)"/g;

/** Every sample of a scrape; comments, blank lines and lines that are not samples are skipped. */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const match = SAMPLE_LINE.exec(line);
    if (!match) continue;
    const [, name = "", rawLabels = "", value = ""] = match;
    samples.push({ name, labels: parseLabels(rawLabels), value: parseValue(value) });
  }
  return samples;
}

function parseLabels(raw: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [, key = "", value = ""] of raw.matchAll(LABEL)) labels[key] = unescape(value);
  return labels;
}

function unescape(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
}

function parseValue(value: string): number {
  if (value === "+Inf") return Infinity;
  if (value === "-Inf") return -Infinity;
  return Number(value);
}

/** A series' identity: its labels other than `le`, in key order. */
export function seriesKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.entries(labels).filter(([k]) => k !== "le").sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The series of histogram `metric` (its `_bucket`, `_sum` and `_count` samples). */
export function histogramsOf(samples: readonly Sample[], metric: string): LabelledHistogram[] {
  const series = new Map<string, { labels: Record<string, string>; buckets: Bucket[]; sum: number; count: number }>();
  for (const s of samples) {
    const part = s.name === `${metric}_bucket` ? "bucket" : s.name === `${metric}_sum` ? "sum" : s.name === `${metric}_count` ? "count" : undefined;
    if (!part) continue;
    const key = seriesKey(s.labels);
    const { le: _le, ...labels } = s.labels;
    const entry = series.get(key) ?? { labels, buckets: [], sum: 0, count: 0 };
    if (part === "bucket") entry.buckets.push({ le: parseValue(s.labels.le ?? "+Inf"), count: s.value });
    else entry[part] = s.value;
    series.set(key, entry);
  }
  return [...series.values()].map((h) => ({ ...h, buckets: h.buckets.sort((a, b) => a.le - b.le) }));
}

/**
 * `after - before`, series by series; a series absent before counts from
 * zero, and one whose count went down (the apiserver restarted between the
 * scrapes) counts from zero too, as Prometheus treats a counter reset.
 * Series with no observation in between are left out.
 */
export function histogramDelta(before: readonly LabelledHistogram[], after: readonly LabelledHistogram[]): LabelledHistogram[] {
  const earlier = new Map(before.map((h) => [seriesKey(h.labels), h]));
  const out: LabelledHistogram[] = [];
  for (const a of after) {
    const b = earlier.get(seriesKey(a.labels));
    const delta = b && b.count <= a.count ? subtract(a, b) : a;
    if (delta.count > 0) out.push({ ...delta, labels: a.labels });
  }
  return out;
}

/** Histograms added series by series (windows of one measurement). */
export function addHistograms(a: readonly LabelledHistogram[], b: readonly LabelledHistogram[]): LabelledHistogram[] {
  const sums = new Map(a.map((h) => [seriesKey(h.labels), h]));
  for (const h of b) {
    const key = seriesKey(h.labels);
    const prior = sums.get(key);
    sums.set(key, prior ? { ...add(prior, h), labels: h.labels } : h);
  }
  return [...sums.values()];
}

/** The series that pass `keep`, merged into one histogram per value of `label`. */
export function mergeBy(series: readonly LabelledHistogram[], label: string, keep: (labels: Readonly<Record<string, string>>) => boolean = () => true): Map<string, Histogram> {
  const merged = new Map<string, Histogram>();
  for (const h of series) {
    const value = h.labels[label];
    if (value === undefined || !keep(h.labels)) continue;
    const prior = merged.get(value);
    merged.set(value, prior ? add(prior, h) : { buckets: h.buckets, sum: h.sum, count: h.count });
  }
  return merged;
}

function subtract(a: Histogram, b: Histogram): Histogram {
  return combine(a, b, -1);
}

function add(a: Histogram, b: Histogram): Histogram {
  return combine(a, b, 1);
}

/** `a + sign * b`; both must have the same bucket bounds, as every series of one metric does. */
function combine(a: Histogram, b: Histogram, sign: 1 | -1): Histogram {
  const bounds = (h: Histogram): string => h.buckets.map((x) => x.le).join(",");
  if (bounds(a) !== bounds(b)) throw new Error(`histogram buckets differ: [${bounds(a)}] and [${bounds(b)}]`);
  return {
    buckets: a.buckets.map((x, i) => ({ le: x.le, count: x.count + sign * (b.buckets[i]?.count ?? 0) })),
    sum: a.sum + sign * b.sum,
    count: a.count + sign * b.count,
  };
}

/**
 * The q-quantile as Prometheus's histogram_quantile estimates it: find the
 * bucket that holds the q-th observation and interpolate linearly inside
 * it, the first bucket starting at 0. An estimate in the +Inf bucket is the
 * highest finite bound (all that is known is that it is above it). NaN for
 * an empty histogram.
 */
export function histogramQuantile(q: number, h: Histogram): number {
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile must be within 0 and 1, got ${q}`);
  const buckets = h.buckets;
  if (!hasObservations(buckets)) return Number.NaN;
  const rank = q * (buckets.at(-1) as Bucket).count;
  const i = buckets.findIndex((b) => b.count >= rank);
  const bucket = buckets[i] as Bucket;
  if (bucket.le === Infinity) return (buckets.at(-2) as Bucket).le;
  const lower = i === 0 ? Math.min(0, bucket.le) : (buckets[i - 1] as Bucket).le;
  const below = i === 0 ? 0 : (buckets[i - 1] as Bucket).count;
  const inBucket = bucket.count - below;
  if (inBucket === 0) return bucket.le;
  return lower + (bucket.le - lower) * ((rank - below) / inBucket);
}

/** At least one finite bucket, the +Inf one last, and something in it. */
function hasObservations(buckets: readonly Bucket[]): boolean {
  const last = buckets.at(-1);
  return buckets.length >= 2 && last?.le === Infinity && last.count > 0;
}
