/**
 * `kubectl explain transaction.spec` and `kubectl explain
 * transactionpolicy.spec` are how a user learns the fields without the
 * README. This runs the real kubectl explain against the CRDs the global
 * setup installed from manifests/crds/ and checks that every field of spec
 * and status, at every depth, is listed with a description.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readManifests } from "../../src/devcluster/install.ts";
import type { KubeObject } from "../../src/kube/index.ts";
import { kubectl } from "../support/cluster.ts";

const CRDS = path.resolve(import.meta.dirname, "../../manifests/crds");
/** Nothing, or what kubectl explain prints in place of a missing description ("<no description>", "<empty>"). */
const NO_DESCRIPTION = /^(<[^>]*>)?$/;

interface Schema {
  type?: string;
  description?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
}
type Crd = KubeObject & { spec: { names: { singular: string }; versions: { schema: { openAPIV3Schema: Schema } }[] } };

/** Every path below `root` whose schema lists fields (objects, and objects in arrays), with those fields. */
function objectPaths(schema: Schema, at: string): { path: string; fields: string[] }[] {
  const inner = schema.items ?? schema;
  if (!inner.properties) return [];
  const here = { path: at, fields: Object.keys(inner.properties).sort() };
  return [here, ...Object.entries(inner.properties).flatMap(([name, field]) => objectPaths(field, `${at}.${name}`))];
}

/** kubectl explain's FIELDS section: each field's name and the description under it. */
function explainedFields(output: string): Map<string, string> {
  const section = output.split(/^FIELDS:\s*$/m)[1] ?? "";
  const fields = new Map<string, string>();
  let current: string | undefined;
  for (const line of section.split("\n")) {
    const field = /^ {2}(\S+)\t?\s*<[^>]*>/.exec(line);
    if (field?.[1]) {
      current = field[1];
      fields.set(current, "");
    } else if (current && /^ {4}\S/.test(line)) {
      fields.set(current, `${fields.get(current) ?? ""} ${line.trim()}`.trim());
    }
  }
  return fields;
}

/** kubectl explain's DESCRIPTION section for the path itself. */
function ownDescription(output: string): string {
  const after = output.split(/^DESCRIPTION:\s*$/m)[1] ?? "";
  return (after.split(/^\S.*$/m)[0] ?? "").trim();
}

describe.each(["transactions.kubetx.io", "transactionpolicies.kubetx.io"])("kubectl explain for %s", (crdName) => {
  let crd: Crd;
  // kubectl keeps discovery (and with it which OpenAPI document is current)
  // for minutes per server address: a fresh cache, so it reads these CRDs.
  let cacheDir: string;

  beforeAll(async () => {
    cacheDir = await mkdtemp(path.join(tmpdir(), "kubetx-explain-cache-"));
    const found = (await readManifests(CRDS)).find((o) => o.metadata?.name === crdName);
    if (!found) throw new Error(`manifests/crds has no ${crdName}`);
    crd = found as Crd;
  });
  afterAll(() => rm(cacheDir, { recursive: true, force: true }));

  function paths(): { path: string; fields: string[] }[] {
    const schema = crd.spec.versions[0]?.schema.openAPIV3Schema ?? {};
    return ["spec", "status"].flatMap((part) => (schema.properties?.[part] ? objectPaths(schema.properties[part], `${crd.spec.names.singular}.${part}`) : []));
  }

  it("lists every field of spec and status, at every depth, each with a description", async () => {
    const checked: string[] = [];
    for (const { path: at, fields } of paths()) {
      const explained = await kubectl(["explain", at, "--cache-dir", cacheDir]);
      expect(explained.code, `kubectl explain ${at}: ${explained.stderr}`).toBe(0);
      expect(ownDescription(explained.stdout), `kubectl explain ${at} has no description`).not.toMatch(NO_DESCRIPTION);
      const listed = explainedFields(explained.stdout);
      expect([...listed.keys()].sort(), `the fields kubectl explain ${at} lists`).toEqual(fields);
      for (const [field, description] of listed) {
        expect(description, `kubectl explain ${at}: ${field} has no description`).not.toMatch(NO_DESCRIPTION);
        checked.push(`${at}.${field}`);
      }
    }
    expect(checked.length).toBeGreaterThan(0);
    expect(checked).toContain(`${crd.spec.names.singular}.spec.mode`);
  });
});
