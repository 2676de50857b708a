/**
 * Merging the entries the policies call for into a live webhook
 * configuration: kubetx rewrites name, namespaceSelector, rules and
 * matchConditions of its object entries and keeps everything else as the
 * installer left it.
 */
import { describe, expect, it } from "vitest";
import type { WebhookMatch } from "../../src/webhooks/coverage.ts";
import type { WebhookEntry } from "../../src/webhooks/reconcile.ts";
import { isObjectEntry, reconcileWebhooks } from "../../src/webhooks/reconcile.ts";

const BASE = "validate.kubetx.io";
const INSTALLED_CLIENT = { service: { name: "kubetx", namespace: "kubetx-system", path: "/validate", port: 443 }, caBundle: "Q0E=" };

function installed(name: string, extra: object = {}): WebhookEntry {
  return {
    name, clientConfig: INSTALLED_CLIENT, failurePolicy: "Ignore", sideEffects: "NoneOnDryRun", timeoutSeconds: 5,
    namespaceSelector: {}, rules: [], matchConditions: [], ...extra,
  };
}

const RECORDS: WebhookEntry = { name: "records.kubetx.io", clientConfig: INSTALLED_CLIENT, rules: [{ resources: ["transactions"] }] };

function match(name: string, team: string): WebhookMatch {
  return { name, namespaceSelector: { matchLabels: { team } }, rules: [], matchConditions: [{ name: "c", expression: "true" }] };
}

describe("isObjectEntry", () => {
  it("counts the base name and names under it as object entries, and nothing else", () => {
    expect(isObjectEntry(BASE, BASE)).toBe(true);
    expect(isObjectEntry(`shop.${BASE}`, BASE)).toBe(true);
    expect(isObjectEntry("records.kubetx.io", BASE)).toBe(false);
    expect(isObjectEntry(`x${BASE}`, BASE)).toBe(false);
  });
});

describe("reconcileWebhooks", () => {
  it("rewrites the managed fields of an entry and keeps the installer's client config and failure policy", () => {
    const { webhooks } = reconcileWebhooks([installed(BASE), RECORDS], [match(BASE, "shop")], BASE);
    expect(webhooks[0]).toEqual({ ...installed(BASE), ...match(BASE, "shop") });
  });

  it("copies the installer's settings from the base entry into an entry it adds", () => {
    const { webhooks } = reconcileWebhooks([installed(BASE)], [match(BASE, "a"), match(`b.${BASE}`, "b")], BASE);
    expect(webhooks[1]).toMatchObject({ name: `b.${BASE}`, clientConfig: INSTALLED_CLIENT, failurePolicy: "Ignore", timeoutSeconds: 5 });
  });

  it("keeps an existing entry's own settings rather than the base entry's", () => {
    const own = installed(`b.${BASE}`, { clientConfig: { ...INSTALLED_CLIENT, caBundle: "TkVX" } });
    const { webhooks } = reconcileWebhooks([installed(BASE), own], [match(BASE, "a"), match(`b.${BASE}`, "b")], BASE);
    expect((webhooks[1]?.clientConfig as { caBundle: string }).caBundle).toBe("TkVX");
  });

  it("renames the only entry when the policy it stands for changes, keeping its settings", () => {
    const { webhooks, changes } = reconcileWebhooks([installed(`old.${BASE}`)], [match(BASE, "a")], BASE);
    expect(webhooks).toEqual([{ ...installed(`old.${BASE}`), ...match(BASE, "a") }]);
    expect(changes).toEqual([`added ${BASE}`, `removed old.${BASE}`]);
  });

  it("removes object entries no policy calls for", () => {
    const { webhooks, changes } = reconcileWebhooks([installed(BASE), installed(`gone.${BASE}`)], [match(BASE, "a")], BASE);
    expect(webhooks.map((w) => w.name)).toEqual([BASE]);
    expect(changes).toContain(`removed gone.${BASE}`);
  });

  it("leaves records.kubetx.io and other webhooks untouched, after the object entries", () => {
    const other = { name: "audit.example.com", clientConfig: { url: "https://x" } };
    const { webhooks } = reconcileWebhooks([RECORDS, installed(BASE), other], [match(BASE, "a")], BASE);
    expect(webhooks.slice(1)).toEqual([RECORDS, other]);
  });

  it("names the fields that changed", () => {
    const live = installed(BASE, match(BASE, "a"));
    expect(reconcileWebhooks([live], [{ ...match(BASE, "b"), matchConditions: [] }], BASE).changes).toEqual([`${BASE}: namespaceSelector, matchConditions`]);
  });

  it("reports no change when the entries already match, in whatever order they are stored", () => {
    const live = [installed(`b.${BASE}`, match(`b.${BASE}`, "b")), RECORDS, installed(BASE, match(BASE, "a"))];
    expect(reconcileWebhooks(live, [match(BASE, "a"), match(`b.${BASE}`, "b")], BASE).changes).toEqual([]);
  });

  it("changes nothing and says why when no object entry is left to copy the client config from", () => {
    const result = reconcileWebhooks([RECORDS], [match(BASE, "a")], BASE);
    expect(result.webhooks).toEqual([RECORDS]);
    expect(result.changes).toEqual([]);
    expect(result.problem).toContain(`no ${BASE} entry`);
  });
});
