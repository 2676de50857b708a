/**
 * Manifests as kubectl reads them, and the annotated copy kubectl tx
 * applies. Pure: text in, objects out.
 */
import type { DocumentOptions, ParseOptions, SchemaOptions, Tags } from "yaml";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "../../kube/types.ts";
import { ANNOTATION_TRANSACTION } from "../../transactions/model.ts";
import { TxError } from "./errors.ts";
import { looksLikeJson, splitJsonStream } from "./json-stream.ts";

export interface ManifestSource {
  /** A path, or `stdin`: how messages name where a document came from. */
  readonly name: string;
  readonly text: string;
}

const TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp";

/**
 * kubectl reads YAML with go-yaml v2 (YAML 1.1: `yes`/`on` are booleans,
 * `0755` is octal, `<<` merges), but keeps timestamp-like and sexagesimal
 * scalars (`2024-01-01`, `1:30`) as strings. Same here, so the copy kubectl
 * tx applies means what the user's file means to plain kubectl.
 */
const YAML_OPTIONS: ParseOptions & DocumentOptions & SchemaOptions = {
  version: "1.1",
  customTags: (tags: Tags): Tags =>
    tags.filter((tag) => typeof tag === "string" || !(tag.tag === TIMESTAMP_TAG || ("format" in tag && tag.format === "TIME"))),
};

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function problem(where: string, what: string): TxError {
  return new TxError(`kubectl tx: ${where}: ${what}; fix the manifest and run again`);
}

/** Every object in one file or stream, Lists expanded, in document order. */
export function parseManifests(source: ManifestSource): KubeObject[] {
  const documents = looksLikeJson(source.text) ? jsonDocuments(source) : yamlDocuments(source);
  return documents.flatMap((value, index) => {
    if (value === null || value === undefined) return [];
    return expand(value, `${source.name} (document ${index + 1})`);
  });
}

function firstLine(error: unknown): string {
  return (error as Error).message.split("\n")[0] ?? "";
}

function jsonDocuments(source: ManifestSource): unknown[] {
  let texts: string[];
  try {
    texts = splitJsonStream(source.text);
  } catch (error) {
    throw problem(source.name, `not valid JSON: ${firstLine(error)}`);
  }
  return texts.map((text, index) => {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw problem(`${source.name} (document ${index + 1})`, `not valid JSON: ${firstLine(error)}`);
    }
  });
}

function yamlDocuments(source: ManifestSource): unknown[] {
  return parseAllDocuments(source.text, YAML_OPTIONS).map((doc, index) => {
    const where = `${source.name} (document ${index + 1})`;
    const error = doc.errors[0];
    if (error) throw problem(where, `not valid YAML: ${firstLine(error)}`);
    try {
      return doc.toJS() as unknown;
    } catch (error) {
      // An alias to an anchor of another document, a bad merge: found only here.
      throw problem(where, `not valid YAML: ${firstLine(error)}`);
    }
  });
}

/** kubectl applies the items of a List (or a `...List` with items) one by one. */
function expand(value: unknown, where: string): KubeObject[] {
  if (!isObject(value)) throw problem(where, "a manifest must be an object with apiVersion, kind and metadata");
  const kind = value.kind;
  if (typeof kind === "string" && kind.endsWith("List") && Array.isArray(value.items)) {
    return value.items.flatMap((item: unknown, i) => expand(item, `${where} item ${i + 1}`));
  }
  checkObject(value, where);
  return [value];
}

function checkObject(value: Record<string, unknown>, where: string): void {
  for (const field of ["apiVersion", "kind"] as const) {
    if (typeof value[field] !== "string" || value[field] === "") throw problem(where, `${field} is missing`);
  }
  const metadata = value.metadata;
  const name = isObject(metadata) ? metadata.name : undefined;
  if (typeof name !== "string" || name === "") {
    throw problem(where, `${String(value.kind)} has no metadata.name (kubectl apply cannot use generateName)`);
  }
}

/** `ConfigMap shop/settings`: how messages name a manifest object. */
export function describeObject(object: KubeObject): string {
  const namespace = object.metadata?.namespace;
  return `${object.kind ?? "object"} ${namespace ? `${namespace}/` : ""}${object.metadata?.name ?? ""}`;
}

export interface Annotated {
  readonly objects: KubeObject[];
  /** One line per object whose own transaction annotation was replaced. */
  readonly warnings: string[];
}

/** Copies of `objects`, each joining transaction `id`; the inputs are not touched. */
export function annotate(objects: readonly KubeObject[], id: string): Annotated {
  const warnings: string[] = [];
  const annotated = objects.map((object) => {
    const copy = structuredClone(object);
    const metadata = (copy.metadata ??= {});
    const annotations = (metadata.annotations ??= {});
    const previous = annotations[ANNOTATION_TRANSACTION];
    if (previous !== undefined && previous !== id) {
      warnings.push(`kubectl tx: warning: ${describeObject(object)} named transaction '${previous}' in ${ANNOTATION_TRANSACTION}; it joins ${id} instead`);
    }
    annotations[ANNOTATION_TRANSACTION] = id;
    return copy;
  });
  return { objects: annotated, warnings };
}

/**
 * The file kubectl applies: one JSON object per line, which kubectl reads as
 * a JSON stream, in order. JSON, not YAML, so nothing is re-interpreted on
 * the way.
 */
export function renderManifest(objects: readonly KubeObject[]): string {
  return objects.map((object) => JSON.stringify(object)).join("\n") + "\n";
}
