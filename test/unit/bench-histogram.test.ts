/** The bench's reading of the apiserver's webhook histogram: parsing, differences of scrapes, quantiles from buckets. */
import { describe, expect, it } from "vitest";
import type { Histogram, LabelledHistogram } from "../../bench/support/histogram.ts";
import { addHistograms, histogramDelta, histogramQuantile, histogramsOf, mergeBy, parsePrometheusText } from "../../bench/support/histogram.ts";
import { WEBHOOK_HISTOGRAM, describeWebhooks } from "../../bench/support/metrics.ts";

/** The apiserver's bounds for this histogram, in seconds. */
const BOUNDS = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 25];

/** One series as the apiserver exposes it: per-bucket (not cumulative) counts, one per bound and the last for +Inf. */
function exposition(labels: Record<string, string>, perBucket: readonly number[], sum: number): string {
  const text = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(",");
  let cumulative = 0;
  const lines = [...BOUNDS, "+Inf"].map((le, i) => {
    cumulative += perBucket[i] ?? 0;
    return `${WEBHOOK_HISTOGRAM}_bucket{${text},le="${le}"} ${cumulative}`;
  });
  return [...lines, `${WEBHOOK_HISTOGRAM}_sum{${text}} ${sum}`, `${WEBHOOK_HISTOGRAM}_count{${text}} ${cumulative}`].join("\n");
}

const VALIDATE_CREATE = { name: "validate.kubetx.io", operation: "CREATE", rejected: "false", type: "validating" };
const VALIDATE_REJECTED = { ...VALIDATE_CREATE, rejected: "true" };
const OBSERVE_CREATE = { name: "observe.kubetx.io", operation: "CREATE", rejected: "false", type: "admit" };

function scrape(...series: string[]): LabelledHistogram[] {
  const header = `# HELP ${WEBHOOK_HISTOGRAM} [STABLE] Admission webhook latency histogram in seconds\n# TYPE ${WEBHOOK_HISTOGRAM} histogram`;
  return histogramsOf(parsePrometheusText([header, ...series, "apiserver_request_total{code=\"200\"} 7"].join("\n")), WEBHOOK_HISTOGRAM);
}

/** A histogram over BOUNDS from per-bucket counts. */
function histogram(perBucket: readonly number[], sum = 0): Histogram {
  let cumulative = 0;
  const buckets = [...BOUNDS, Infinity].map((le, i) => ({ le, count: (cumulative += perBucket[i] ?? 0) }));
  return { buckets, sum, count: cumulative };
}

describe("parsing the Prometheus text format", () => {
  it("reads names, labels and values, and skips comments and blank lines", () => {
    const samples = parsePrometheusText('# HELP x help\n# TYPE x counter\n\nx{a="1",b="two"} 3\ny 4.5e-3\n');
    expect(samples).toEqual([{ name: "x", labels: { a: "1", b: "two" }, value: 3 }, { name: "y", labels: {}, value: 0.0045 }]);
  });

  it("unescapes quotes, backslashes and newlines in label values, and reads +Inf and a trailing timestamp", () => {
    const [sample] = parsePrometheusText('x{path="a \\"b\\" \\\\ c\\nd",le="+Inf"} +Inf 1700000000000');
    expect(sample).toEqual({ name: "x", labels: { path: 'a "b" \\ c\nd', le: "+Inf" }, value: Infinity });
  });

  it("groups a histogram's buckets, sum and count into one series per label set, without le, buckets in order", () => {
    const [series, ...rest] = scrape(exposition(VALIDATE_CREATE, [3, 1, 0, 0, 0, 0, 0, 0, 1], 12.5));
    expect(rest).toEqual([]);
    expect(series?.labels).toEqual(VALIDATE_CREATE);
    expect(series?.buckets.map((b) => b.le)).toEqual([...BOUNDS, Infinity]);
    expect(series?.buckets.map((b) => b.count)).toEqual([3, 4, 4, 4, 4, 4, 4, 4, 5]);
    expect(series?.sum).toBe(12.5);
    expect(series?.count).toBe(5);
  });
});

describe("the difference of two scrapes", () => {
  it("subtracts bucket by bucket, and leaves out series nothing was observed in", () => {
    const before = scrape(exposition(VALIDATE_CREATE, [10, 2], 0.1), exposition(OBSERVE_CREATE, [5], 0.01));
    const after = scrape(exposition(VALIDATE_CREATE, [13, 3], 0.2), exposition(OBSERVE_CREATE, [5], 0.01));
    const delta = histogramDelta(before, after);
    expect(delta).toHaveLength(1);
    expect(delta[0]?.labels).toEqual(VALIDATE_CREATE);
    expect(delta[0]?.buckets.slice(0, 3).map((b) => b.count)).toEqual([3, 4, 4]);
    expect(delta[0]?.count).toBe(4);
    expect(delta[0]?.sum).toBeCloseTo(0.1);
  });

  it("counts a series that first appears after the first scrape from zero", () => {
    const delta = histogramDelta(scrape(), scrape(exposition(VALIDATE_REJECTED, [0, 2], 0.03)));
    expect(delta).toEqual(scrape(exposition(VALIDATE_REJECTED, [0, 2], 0.03)));
  });

  it("counts from zero when the count went down, as after an apiserver restart", () => {
    const delta = histogramDelta(scrape(exposition(VALIDATE_CREATE, [50], 0.1)), scrape(exposition(VALIDATE_CREATE, [4], 0.01)));
    expect(delta[0]?.count).toBe(4);
  });

  it("adds windows series by series", () => {
    const one = scrape(exposition(VALIDATE_CREATE, [1, 1], 0.02));
    const two = scrape(exposition(VALIDATE_CREATE, [2], 0.004), exposition(OBSERVE_CREATE, [1], 0.001));
    const total = addHistograms(one, two);
    expect(total.map((h) => [h.labels.name, h.count])).toEqual([["validate.kubetx.io", 4], ["observe.kubetx.io", 1]]);
    expect(total[0]?.buckets[0]?.count).toBe(3);
  });

  it("merges series by a label, keeping only those asked for", () => {
    const series = scrape(exposition(VALIDATE_CREATE, [1], 0.001), exposition(VALIDATE_REJECTED, [0, 1], 0.01), exposition(OBSERVE_CREATE, [2], 0.002));
    const all = mergeBy(series, "name");
    expect(all.get("validate.kubetx.io")?.count).toBe(2);
    expect(all.get("observe.kubetx.io")?.count).toBe(2);
    const admitted = mergeBy(series, "name", (labels) => labels.rejected === "false");
    expect(admitted.get("validate.kubetx.io")?.count).toBe(1);
  });

  it("refuses to add histograms whose buckets differ", () => {
    const other: LabelledHistogram = { labels: VALIDATE_CREATE, buckets: [{ le: 1, count: 1 }, { le: Infinity, count: 1 }], sum: 0.5, count: 1 };
    expect(() => addHistograms(scrape(exposition(VALIDATE_CREATE, [1], 0.001)), [other])).toThrow(/buckets differ/);
  });
});

describe("a quantile from the buckets", () => {
  it("interpolates linearly inside the bucket that holds it, the first bucket starting at 0", () => {
    // 10 calls under 5 ms, 10 between 5 and 25 ms.
    const h = histogram([10, 10]);
    expect(histogramQuantile(0.5, h)).toBeCloseTo(0.005);
    expect(histogramQuantile(0.25, h)).toBeCloseTo(0.0025);
    expect(histogramQuantile(0.75, h)).toBeCloseTo(0.015);
    expect(histogramQuantile(1, h)).toBeCloseTo(0.025);
  });

  it("skips empty buckets to the one the rank falls in", () => {
    // 1 call under 5 ms, 99 between 100 and 500 ms: p99 is near the top of that bucket.
    const h = histogram([1, 0, 0, 99]);
    expect(histogramQuantile(0.99, h)).toBeCloseTo(0.1 + 0.4 * (98 / 99));
  });

  it("gives the highest finite bound when the quantile lies in the +Inf bucket", () => {
    expect(histogramQuantile(0.99, histogram([1, 0, 0, 0, 0, 0, 0, 0, 99]))).toBe(25);
  });

  it("is NaN for an empty histogram and refuses a quantile outside 0..1", () => {
    expect(histogramQuantile(0.5, histogram([]))).toBeNaN();
    expect(() => histogramQuantile(1.5, histogram([1]))).toThrow(/within 0 and 1, got 1.5/);
  });
});

describe("the per-webhook view", () => {
  it("merges a webhook's operations and rejections, counts each, and estimates p50 and p99 in milliseconds", () => {
    const update = { ...VALIDATE_CREATE, operation: "UPDATE" };
    const series = scrape(exposition(VALIDATE_CREATE, [6, 2], 0.05), exposition(update, [2], 0.004), exposition(VALIDATE_REJECTED, [0, 0, 1], 0.03), exposition(OBSERVE_CREATE, [4], 0.004));
    const view = describeWebhooks(series);
    expect(Object.keys(view)).toEqual(["observe.kubetx.io", "validate.kubetx.io"]);
    const validate = view["validate.kubetx.io"];
    expect(validate).toMatchObject({ calls: 11, rejected: 1, byOperation: { CREATE: 9, UPDATE: 2 }, meanMs: 7.64, shareUnder5ms: 0.727 });
    // rank 5.5 of 8 under 5 ms; rank 10.89 of the one call between 25 and 100 ms.
    expect(validate?.p50Ms).toBeCloseTo(3.44, 2);
    expect(validate?.p99Ms).toBeCloseTo(25 + 75 * 0.89, 1);
    expect(validate?.buckets).toEqual([["0.005", 8], ["0.025", 10], ["0.1", 11], ["0.5", 11], ["1", 11], ["2.5", 11], ["10", 11], ["25", 11], ["+Inf", 11]]);
  });

  it("keeps only the series asked for", () => {
    const view = describeWebhooks(scrape(exposition(VALIDATE_CREATE, [2], 0.004), exposition(VALIDATE_REJECTED, [1], 0.001)), (labels) => labels.rejected === "false");
    expect(view["validate.kubetx.io"]).toMatchObject({ calls: 2, rejected: 0 });
  });
});
