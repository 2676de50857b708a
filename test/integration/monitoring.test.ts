/**
 * The alert rules and the dashboard name apiserver metrics too: the
 * admission webhook latency histogram and the rejection counter. Their
 * names and labels are checked here against a real apiserver's /metrics,
 * read as admin after it has called kubetx (the families appear once a
 * webhook has been called and has denied something).
 */
import { describe, expect, it } from "vitest";
import { kubectl, uniqueName } from "../support/cluster.ts";
import { useEngine } from "../support/engine.ts";
import { exposedMetrics, expressions, metricUses, problems } from "../support/monitoring.ts";
import { configMap, inTransaction, waitResolved, yamlOf } from "../support/objects.ts";

describe("the apiserver metrics the alert rules and the dashboard name", () => {
  const ns = uniqueName("monitoring");
  const { admin } = useEngine(ns);

  it("are served by the apiserver with the labels they match on, once kubetx has admitted and denied", async () => {
    // Registering kubetx already had it deny an invalid policy (see useEngine); now one admitted write.
    const id = "t-monitor01";
    const applied = await kubectl(["apply", "-f", "-"], { user: "alice", input: yamlOf([inTransaction(configMap(ns, "watched", { v: "1" }), id, 1)]) });
    expect(applied.code).toBe(0);
    expect((await waitResolved(admin(), id)).status?.phase).toBe("Committed");

    const scraped = await kubectl(["get", "--raw", "/metrics"]);
    expect(scraped.code).toBe(0);
    const uses = (await expressions()).flatMap(({ where, expr }) => metricUses(expr).map((use) => ({ where, use }))).filter((u) => u.use.metric.startsWith("apiserver_"));
    expect(uses.length).toBeGreaterThan(0);
    expect(problems(uses, exposedMetrics(scraped.stdout))).toEqual([]);
  });
});
