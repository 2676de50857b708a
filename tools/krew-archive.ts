/**
 * The archive krew installs `kubectl tx` from, and its address and digest
 * in plugins/krew/tx.yaml. `npm run krew:archive` writes
 * .kubetx/krew/kubectl-tx-vVERSION.tar.gz (or into `--out DIR`) and puts
 * its sha256 and release URL into the manifest; a release uploads that
 * file to that URL. test/unit/krew.test.ts builds it again and checks what
 * krew would install from it.
 *
 * At the archive's root:
 * - `kubectl-tx`, the launcher (the manifest's `bin`, which krew links onto
 *   PATH): a Node script that imports the bundle beside it;
 * - `kubectl-tx.mjs`: the plugin and the packages it uses in one file,
 *   as src/devcluster/plugin-bundle.ts builds it (Node starts it in a
 *   fraction of the time it takes to load the sources and node_modules);
 * - `package.json`: the plugin's name and version and `"type": "module"`.
 * The same bundle gives the same bytes: entries sorted, times, owners and
 * modes fixed, gzip with no name or time.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { buildPluginBundle } from "../src/devcluster/plugin-bundle.ts";

export const REPO = path.resolve(import.meta.dirname, "..");
export const MANIFEST = path.join(REPO, "plugins", "krew", "tx.yaml");
const BUNDLE = "kubectl-tx.mjs";
const DEFAULT_OUT = path.join(REPO, ".kubetx", "krew");
/** Where releases are published; the manifest's uri is this, the version, and the archive's name. */
const RELEASES = "https://kubetx.io/releases";
/**
 * The launcher krew links onto PATH. Node resolves the link, so the import
 * is relative to the archive. The bundle is imported after the compile
 * cache is on (a static import would be loaded before it), as the wrapper
 * of plugin-bundle.ts does.
 */
export const LAUNCHER = `#!/usr/bin/env node
// kubectl tx, as krew installs it: kubectl runs this file, and Node 24 or
// later runs the bundle beside it (plugins/krew/README.md), its compiled
// code cached in the temp dir (NODE_DISABLE_COMPILE_CACHE=1 turns that off).
import { enableCompileCache } from "node:module";
enableCompileCache();
await import("./${BUNDLE}");
`;
/** Every entry's time: 1980-01-01, a fixed date that no archiver reads as "unset", so equal trees make equal archives. */
const ENTRY_MTIME = 315_532_800;
const FILE_MODE = 0o644;
const EXECUTABLE_MODE = 0o755;
/** tar's unit: headers and data are padded to 512-byte blocks. */
const BLOCK = 512;
/** gzip header byte 9, the OS that wrote it: 3 (Unix) on every machine, so it does not change the digest. */
const GZIP_OS_BYTE = 9;
const GZIP_OS_UNIX = 3;

export interface ArchiveEntry {
  readonly path: string;
  readonly mode: number;
  readonly content: Buffer;
}

export interface Archive {
  readonly fileName: string;
  readonly version: string;
  readonly uri: string;
  readonly bytes: Buffer;
  readonly sha256: string;
}

/** The plugin's package.json: its name and version, and what makes Node read the launcher as a module. */
function pluginPackageJson(repoPackage: { name: string; version: string; description?: string; license?: string }): Buffer {
  const { name, version, description, license } = repoPackage;
  return Buffer.from(`${JSON.stringify({ name, version, description, license, private: true, type: "module" }, null, 2)}\n`);
}

/** Everything the archive holds, sorted by path. */
export async function archiveEntries(repo: string = REPO): Promise<ArchiveEntry[]> {
  const repoPackage = JSON.parse(await readFile(path.join(repo, "package.json"), "utf8")) as { name: string; version: string };
  const entries: ArchiveEntry[] = [
    { path: "kubectl-tx", mode: EXECUTABLE_MODE, content: Buffer.from(LAUNCHER) },
    { path: BUNDLE, mode: FILE_MODE, content: await readFile(await buildPluginBundle(repo)) },
    { path: "package.json", mode: FILE_MODE, content: pluginPackageJson(repoPackage) },
  ];
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** ustar keeps a path in two fields: a prefix of up to 155 bytes, "/", and a name of up to 100. */
function splitPath(name: string): { prefix: string; name: string } {
  if (Buffer.byteLength(name) <= 100) return { prefix: "", name };
  for (let at = name.indexOf("/"); at > 0; at = name.indexOf("/", at + 1)) {
    const prefix = name.slice(0, at);
    const rest = name.slice(at + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100) return { prefix, name: rest };
  }
  throw new Error(`${name}: too long for a ustar header`);
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

/** One ustar header: a regular file ("0") or a directory ("5"), owned by root, at ENTRY_MTIME. */
function tarHeader(entryPath: string, mode: number, size: number, type: "0" | "5"): Buffer {
  const header = Buffer.alloc(BLOCK);
  const { prefix, name } = splitPath(entryPath);
  const fields: [number, string][] = [
    [0, name], [100, octal(mode, 8)], [108, octal(0, 8)], [116, octal(0, 8)], [124, octal(size, 12)], [136, octal(ENTRY_MTIME, 12)],
    [156, type], [257, "ustar\u000000"], [265, "root"], [297, "root"], [345, prefix],
  ];
  for (const [offset, text] of fields) header.write(text, offset, "utf8");
  header.write("        ", 148, "latin1");
  const sum = header.reduce((total, byte) => total + byte, 0);
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return header;
}

/** The directories above the entries, each once, so every extractor makes them with the same mode. */
function directoriesOf(entries: readonly ArchiveEntry[]): string[] {
  const dirs = new Set<string>();
  for (const entry of entries) {
    for (let dir = path.posix.dirname(entry.path); dir !== "."; dir = path.posix.dirname(dir)) dirs.add(`${dir}/`);
  }
  return [...dirs];
}

/** A gzipped ustar archive of the entries, directories first in path order: the same entries give the same bytes. */
export function tarGz(entries: readonly ArchiveEntry[]): Buffer {
  const parts: Buffer[] = directoriesOf(entries).sort().map((dir) => tarHeader(dir, EXECUTABLE_MODE, 0, "5"));
  for (const entry of [...entries].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    parts.push(tarHeader(entry.path, entry.mode, entry.content.length, "0"), entry.content, Buffer.alloc((BLOCK - (entry.content.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  const gzipped = gzipSync(Buffer.concat(parts), { level: 9 });
  gzipped[GZIP_OS_BYTE] = GZIP_OS_UNIX;
  return gzipped;
}

/** The archive of this tree, named and addressed by the plugin's version. */
export async function buildArchive(repo: string = REPO): Promise<Archive> {
  const { version } = JSON.parse(await readFile(path.join(repo, "package.json"), "utf8")) as { version: string };
  const fileName = `kubectl-tx-v${version}.tar.gz`;
  const bytes = tarGz(await archiveEntries(repo));
  return { fileName, version, uri: `${RELEASES}/v${version}/${fileName}`, bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
}

/** The manifest with every platform's `uri` and `sha256` set to the archive's, and nothing else changed. */
export function manifestWithArchive(manifest: string, archive: Pick<Archive, "uri" | "sha256">): string {
  const uris = /^([ \t]+(?:- )?)uri: .*$/gm;
  const digests = /^([ \t]+(?:- )?)sha256: .*$/gm;
  const count = (pattern: RegExp): number => manifest.match(pattern)?.length ?? 0;
  if (count(uris) === 0 || count(uris) !== count(digests)) throw new Error("plugins/krew/tx.yaml: expected a 'uri:' and a 'sha256:' line in each platform");
  return manifest.replace(uris, `$1uri: ${archive.uri}`).replace(digests, `$1sha256: "${archive.sha256}"`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: "string", default: DEFAULT_OUT } } });
  const out = path.resolve(values.out);
  const archive = await buildArchive();
  await mkdir(out, { recursive: true });
  const file = path.join(out, archive.fileName);
  await writeFile(file, archive.bytes);
  await writeFile(MANIFEST, manifestWithArchive(await readFile(MANIFEST, "utf8"), archive));
  process.stderr.write(`wrote ${path.relative(process.cwd(), file)} (${archive.bytes.length} bytes, sha256 ${archive.sha256})\n`);
  process.stderr.write(`wrote ${path.relative(process.cwd(), MANIFEST)}: uri ${archive.uri}\n`);
}

if (import.meta.main) await main();
