import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSources } from "../../src/cli/tx/files.ts";
import { annotate, parseManifests, renderManifest } from "../../src/cli/tx/manifests.ts";

const noStdin = (): Promise<string> => Promise.reject(new Error("stdin not expected"));

function parse(text: string): unknown[] {
  return parseManifests({ name: "m.yaml", text });
}

describe("reading manifests", () => {
  it("reads every document of a multi-document file in order and skips empty ones", () => {
    const text = "---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n...\n";
    expect(parse(text)).toEqual([
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" } },
      { apiVersion: "v1", kind: "Secret", metadata: { name: "b" } },
    ]);
  });

  it("reads a JSON object", () => {
    expect(parse('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}')).toEqual([{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" } }]);
  });

  it("expands a List, and lists inside it, into their items", () => {
    const text = `apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
  - apiVersion: v1
    kind: ConfigMapList
    items:
      - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
`;
    expect(parse(text).map((o) => (o as { metadata: { name: string } }).metadata.name)).toEqual(["a", "b"]);
  });

  it("reads scalars as kubectl's YAML 1.1 does: yes is true, 0755 is octal, dates stay strings", () => {
    const [object] = parse("apiVersion: v1\nkind: X\nmetadata: {name: a}\nspec:\n  enabled: yes\n  mode: 0755\n  day: 2024-01-31\n  time: 1:30\n  port: 8080\n");
    expect(object).toMatchObject({ spec: { enabled: true, mode: 493, day: "2024-01-31", time: "1:30", port: 8080 } });
  });

  it("follows YAML anchors and merge keys", () => {
    const [object] = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: &l {x: '1'}}\ndata:\n  <<: *l\n  z: '2'\n");
    expect(object).toMatchObject({ data: { x: "1", z: "2" } });
  });

  it("names the document whose alias points into another document", () => {
    expect(() => parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: &d {x: '1'}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: *d\n"))
      .toThrow(/^kubectl tx: m\.yaml \(document 2\): not valid YAML: /);
  });

  it("reads a file that starts with { as a stream of JSON objects, as kubectl does", () => {
    const text = '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "}{\\""}}\n\n  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}';
    expect(parse(text)).toEqual([
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" }, data: { k: '}{"' } },
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "b" } },
    ]);
  });

  it("names broken JSON", () => {
    expect(() => parse('{"apiVersion": "v1"')).toThrow("kubectl tx: m.yaml: not valid JSON: the last JSON object is not closed");
    expect(() => parse('{"a": 1} x')).toThrow("kubectl tx: m.yaml: not valid JSON: unexpected 'x' between JSON objects at offset 9");
    expect(() => parse('{"a": 1,}')).toThrow(/^kubectl tx: m\.yaml \(document 1\): not valid JSON: /);
  });

  it("names the file and document of invalid YAML", () => {
    expect(() => parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: [\n")).toThrow(/^kubectl tx: m\.yaml \(document 2\): not valid YAML: /);
  });

  it("refuses a document that is not an object", () => {
    expect(() => parse("- a\n- b\n")).toThrow("kubectl tx: m.yaml (document 1): a manifest must be an object with apiVersion, kind and metadata; fix the manifest and run again");
  });

  it("refuses objects without kind, apiVersion or name before anything is applied", () => {
    expect(() => parse("apiVersion: v1\nmetadata: {name: a}\n")).toThrow("kind is missing");
    expect(() => parse("kind: ConfigMap\nmetadata: {name: a}\n")).toThrow("apiVersion is missing");
    expect(() => parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}\n")).toThrow("ConfigMap has no metadata.name (kubectl apply cannot use generateName)");
  });
});

describe("annotating the copy kubectl applies", () => {
  const objects = [
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", namespace: "shop" } },
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "b", annotations: { owner: "team" } } },
  ];

  it("adds the transaction annotation to a copy of every object and leaves the input alone", () => {
    const before = structuredClone(objects);
    const { objects: annotated, warnings } = annotate(objects, "t-0123abcd");
    expect(annotated.map((o) => o.metadata?.annotations)).toEqual([
      { "kubetx.io/transaction": "t-0123abcd" },
      { owner: "team", "kubetx.io/transaction": "t-0123abcd" },
    ]);
    expect(objects).toEqual(before);
    expect(warnings).toEqual([]);
  });

  it("leaves a missing namespace missing, for kubectl to fill in", () => {
    expect(annotate(objects, "t-0123abcd").objects[1]?.metadata?.namespace).toBeUndefined();
  });

  it("replaces another transaction id found in a manifest, and says so", () => {
    const { objects: annotated, warnings } = annotate([{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", annotations: { "kubetx.io/transaction": "t-old00000" } } }], "t-0123abcd");
    expect(annotated[0]?.metadata?.annotations?.["kubetx.io/transaction"]).toBe("t-0123abcd");
    expect(warnings).toEqual(["kubectl tx: warning: ConfigMap a named transaction 't-old00000' in kubetx.io/transaction; it joins t-0123abcd instead"]);
  });

  it("renders one JSON object per line, which reads back as the same objects", () => {
    const text = renderManifest(objects);
    expect(text.trimEnd().split("\n")).toHaveLength(2);
    expect(parseManifests({ name: "copy.json", text })).toEqual(objects);
  });

  it("keeps strings that YAML 1.1 would re-read as other types as strings", () => {
    const tricky = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a" }, data: { a: "yes", b: "0755", c: "null", d: "1:30" } };
    expect(parseManifests({ name: "copy.json", text: renderManifest([tricky]) })).toEqual([tricky]);
  });
});

describe("finding manifest files", () => {
  let dir: string;
  const doc = (name: string): string => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\n`;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tx-files-"));
    await mkdir(path.join(dir, "b-sub"));
    await writeFile(path.join(dir, "c.yml"), doc("c"));
    await writeFile(path.join(dir, "a.yaml"), doc("a"));
    await writeFile(path.join(dir, "b-sub", "inner.json"), JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "inner" } }));
    await writeFile(path.join(dir, "README.md"), "not a manifest");
    await writeFile(path.join(dir, "notes.txt"), doc("txt"));
    await symlink(path.join(dir, "a.yaml"), path.join(dir, "d-link.yaml"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("reads a directory's .yaml, .yml and .json files by name, not its subdirectories", async () => {
    const sources = await readSources([dir], false, noStdin);
    expect(sources.map((s) => path.relative(dir, s.name))).toEqual(["a.yaml", "c.yml", "d-link.yaml"]);
  });

  it("with -R, descends into subdirectories where they fall by name", async () => {
    const sources = await readSources([dir], true, noStdin);
    expect(sources.map((s) => path.relative(dir, s.name))).toEqual(["a.yaml", path.join("b-sub", "inner.json"), "c.yml", "d-link.yaml"]);
  });

  it("reads a file named with -f whatever its extension, and stdin for -", async () => {
    const sources = await readSources([path.join(dir, "notes.txt"), "-"], false, () => Promise.resolve(doc("piped")));
    expect(sources.map((s) => s.name)).toEqual([path.join(dir, "notes.txt"), "stdin"]);
    expect(sources[1]?.text).toContain("piped");
  });

  it("says which -f path does not exist", async () => {
    await expect(readSources([path.join(dir, "missing.yaml")], false, noStdin)).rejects.toThrow(`kubectl tx: -f ${path.join(dir, "missing.yaml")}: no such file or directory; check the path`);
  });
});
