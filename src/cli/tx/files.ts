/** Reads `-f` arguments the way kubectl does: files, `-` (stdin), directories. */
import type { Dirent } from "node:fs";
import { readFile, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { TxError } from "./errors.ts";
import type { ManifestSource } from "./manifests.ts";

/** What kubectl reads from a directory; a file named with -f may have any name. */
export const MANIFEST_EXTENSIONS: readonly string[] = [".yaml", ".yml", ".json"];

export function isManifestFile(name: string): boolean {
  return MANIFEST_EXTENSIONS.includes(path.extname(name));
}

/**
 * The manifest files under `dir`, in the order kubectl walks them: entries
 * by name, descending into subdirectories in place when `recursive`.
 */
export async function manifestFilesIn(dir: string, recursive: boolean): Promise<string[]> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const files: string[] = [];
  for (const entry of entries) files.push(...(await filesOfEntry(dir, entry, recursive)));
  return files;
}

async function filesOfEntry(dir: string, entry: Dirent, recursive: boolean): Promise<string[]> {
  const full = path.join(dir, entry.name);
  if (entry.isDirectory()) return recursive ? manifestFilesIn(full, recursive) : [];
  return isManifestFile(entry.name) ? [full] : [];
}

async function readSource(file: string): Promise<ManifestSource> {
  try {
    return { name: file, text: await readFile(file, "utf8") };
  } catch (error) {
    throw new TxError(`kubectl tx: cannot read ${file}: ${(error as Error).message}`, undefined, { cause: error });
  }
}

async function sourcesOf(arg: string, recursive: boolean, readStdin: () => Promise<string>): Promise<ManifestSource[]> {
  if (arg === "-") return [{ name: "stdin", text: await readStdin() }];
  const info = await stat(arg).catch((error: unknown) => {
    throw new TxError(`kubectl tx: -f ${arg}: no such file or directory; check the path`, undefined, { cause: error });
  });
  if (!info.isDirectory()) return [await readSource(arg)];
  const files = await manifestFilesIn(arg, recursive);
  return Promise.all(files.map(readSource));
}

/** Every `-f` argument's text, in the order given. */
export async function readSources(args: readonly string[], recursive: boolean, readStdin: () => Promise<string>): Promise<ManifestSource[]> {
  const sources: ManifestSource[] = [];
  for (const arg of args) sources.push(...(await sourcesOf(arg, recursive, readStdin)));
  return sources;
}
