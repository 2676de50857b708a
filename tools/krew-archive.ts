/**
 * The archive krew installs `kubectl tx` from, and its address and digest
 * in plugins/krew/tx.yaml. `npm run krew:archive` writes
 * .kubetx/krew/kubectl-tx-vVERSION.tar.gz (or into `--out DIR`) and puts
 * its sha256 and release URL into the manifest; a release uploads that
 * file to that URL. test/unit/krew.test.ts builds it again and fails when
 * the manifest names another digest (run the script after changing what
 * the plugin runs).
 *
 * At the archive's root:
 * - `kubectl-tx`, the launcher (the manifest's `bin`, which krew links onto
 *   PATH): a Node script that imports src/cli/kubectl-tx.ts;
 * - `package.json`: the plugin's name and version (`kubectl tx version`
 *   prints it) and `"type": "module"`;
 * - the files of src/ that src/cli/kubectl-tx.ts imports, followed import
 *   by import: Node 24 runs them as they are (it strips the types);
 * - `node_modules/`: the packages those files import and everything they
 *   depend on, resolved as package-lock.json says and copied from
 *   node_modules/ (so `npm ci` first), without the files Node never loads
 *   (type declarations, source maps).
 * The same tree gives the same bytes: entries sorted, times, owners and
 * modes fixed, gzip with no name or time.
 */
import { createHash } from "node:crypto";
import { lstat, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { isBuiltin } from "node:module";
import path from "node:path";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import ts from "typescript";

export const REPO = path.resolve(import.meta.dirname, "..");
export const MANIFEST = path.join(REPO, "plugins", "krew", "tx.yaml");
const ENTRY = "src/cli/kubectl-tx.ts";
const DEFAULT_OUT = path.join(REPO, ".kubetx", "krew");
/** Where releases are published; the manifest's uri is this, the version, and the archive's name. */
const RELEASES = "https://kubetx.io/releases";
/** The launcher krew links onto PATH. Node resolves the link, so the import is relative to the archive. */
export const LAUNCHER = `#!/usr/bin/env node
// kubectl tx, as krew installs it: kubectl runs this file, and Node 24 or
// later runs the TypeScript sources beside it (plugins/krew/README.md).
import "./${ENTRY}";
`;
/** Every entry's time: 1980-01-01, a fixed date that no archiver reads as "unset", so equal trees make equal archives. */
const ENTRY_MTIME = 315_532_800;
const FILE_MODE = 0o644;
const EXECUTABLE_MODE = 0o755;
/** Package files Node never loads when it runs the plugin: type declarations and source maps (half of node_modules' bytes). */
const NOT_RUN = /\.(d\.[cm]?ts|map)$/;
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

interface LockPackage {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  dev?: boolean;
}
type Lock = { packages: Record<string, LockPackage> };

/** The package a bare import names: `yaml` for `yaml/util`, `@scope/name` for `@scope/name/x`. */
export function packageName(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier);
}

/**
 * The repository files an entry point imports, itself included, and the
 * packages they import, following relative imports (static, dynamic and
 * type-only: Node never loads the last, but they are small).
 */
export async function importClosure(repo: string, entry: string): Promise<{ files: string[]; packages: string[] }> {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [path.join(repo, entry)];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (files.has(file)) continue;
    files.add(file);
    if (!/\.[cm]?[jt]s$/.test(file)) continue;
    for (const { fileName: specifier } of ts.preProcessFile(await readFile(file, "utf8"), true, true).importedFiles) {
      if (specifier.startsWith(".")) pending.push(path.resolve(path.dirname(file), specifier));
      else if (!isBuiltin(specifier)) packages.add(packageName(specifier));
    }
  }
  return { files: [...files].map((f) => path.relative(repo, f)).sort(), packages: [...packages].sort() };
}

/** Where Node finds `name` from the package installed at `from` (a package-lock.json key): the nearest node_modules up the tree. */
function resolveInLock(lock: Lock, from: string, name: string): string | undefined {
  for (let at = from; ; at = at.slice(0, Math.max(0, at.lastIndexOf("/node_modules/")))) {
    const candidate = at ? `${at}/node_modules/${name}` : `node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (!at) return undefined;
  }
}

/** The package-lock.json keys (node_modules/...) of the given packages and everything they need at run time. */
export function packageClosure(lock: Lock, roots: readonly string[]): string[] {
  const found = new Set<string>();
  const pending = roots.map((name) => ({ from: "", name, optional: false }));
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const key = resolveInLock(lock, next.from, next.name);
    if (key === undefined) {
      if (next.optional) continue;
      throw new Error(`package-lock.json has no ${next.name} (needed from ${next.from || "the plugin"}); run npm install`);
    }
    if (found.has(key)) continue;
    found.add(key);
    const entry = lock.packages[key] ?? {};
    for (const name of Object.keys(entry.dependencies ?? {})) pending.push({ from: key, name, optional: false });
    for (const name of Object.keys({ ...entry.optionalDependencies, ...entry.peerDependencies })) pending.push({ from: key, name, optional: true });
  }
  return [...found].sort();
}

/** Every file under a package's directory but its own node_modules/ (nested packages are entries of the lock of their own). */
async function packageFiles(repo: string, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(repo, dir), { withFileTypes: true })) {
    const at = `${dir}/${entry.name}`;
    if (entry.isDirectory() && entry.name !== "node_modules") out.push(...(await packageFiles(repo, at)));
    else if (entry.isFile()) {
      if (!NOT_RUN.test(entry.name)) out.push(at);
    }
    else if (!entry.isDirectory()) throw new Error(`${at}: neither a file nor a directory; the archive holds only those`);
  }
  return out;
}

/** The plugin's package.json: what it reads at run time (its version) and what makes Node read its sources as modules. */
function pluginPackageJson(repoPackage: { name: string; version: string; description?: string; license?: string }): Buffer {
  const { name, version, description, license } = repoPackage;
  return Buffer.from(`${JSON.stringify({ name, version, description, license, private: true, type: "module" }, null, 2)}\n`);
}

/** Everything the archive holds, sorted by path. */
export async function archiveEntries(repo: string = REPO): Promise<ArchiveEntry[]> {
  const repoPackage = JSON.parse(await readFile(path.join(repo, "package.json"), "utf8")) as { name: string; version: string };
  const lock = JSON.parse(await readFile(path.join(repo, "package-lock.json"), "utf8")) as Lock;
  const { files, packages } = await importClosure(repo, ENTRY);
  const installed: string[] = [];
  for (const key of packageClosure(lock, packages)) {
    if (!(await lstat(path.join(repo, key)).catch(() => undefined))) throw new Error(`${key} is not installed; run npm ci`);
    installed.push(...(await packageFiles(repo, key)));
  }
  const entries: ArchiveEntry[] = [
    { path: "kubectl-tx", mode: EXECUTABLE_MODE, content: Buffer.from(LAUNCHER) },
    { path: "package.json", mode: FILE_MODE, content: pluginPackageJson(repoPackage) },
  ];
  for (const file of [...files.filter((f) => f !== "package.json"), ...installed]) {
    entries.push({ path: file, mode: FILE_MODE, content: await readFile(path.join(repo, file)) });
  }
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
