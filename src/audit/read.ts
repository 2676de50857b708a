/**
 * Streams apiserver audit logs (JSON lines; rotated files; gzip), one line
 * at a time: memory stays flat however large the files are.
 */
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import type { AuditEntry } from "./events.ts";
import { entryOf } from "./events.ts";

/** What a read went through, for the summary line and the benchmark. */
export interface ReadStats {
  files: number;
  /** Non-empty lines. */
  lines: number;
  /** Lines that were ResponseComplete events with a time. */
  events: number;
  /** Lines that are not JSON objects (a line the apiserver was still writing, a foreign file). */
  malformed: number;
}

export class AuditReadError extends Error {
  override readonly name = "AuditReadError";
  readonly file: string;

  constructor(file: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : (cause as Error).message;
    super(`${file}: ${why}`, { cause });
    this.file = file;
  }
}

const GZIP_MAGIC = [0x1f, 0x8b] as const;

/** By content, not by name: a rotated file may be compressed whatever it is called. */
export async function isGzip(file: string): Promise<boolean> {
  const handle = await open(file, "r");
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await handle.read(head, 0, 2, 0);
    return bytesRead === 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
  } finally {
    await handle.close();
  }
}

/** The file's bytes, decompressed when gzipped; an error of either stream ends the other. */
function openStream(file: string, gzip: boolean): Readable {
  const raw = createReadStream(file);
  if (!gzip) return raw;
  const gunzip = createGunzip();
  raw.on("error", (error) => gunzip.destroy(error));
  return raw.pipe(gunzip);
}

type Parsed = AuditEntry | "skipped" | "malformed";

/** One line: its entry, `skipped` (another stage), or `malformed`. */
export function parseLine(line: string): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return "malformed";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "malformed";
  return entryOf(value) ?? "skipped";
}

function count(stats: ReadStats, parsed: Parsed): void {
  stats.lines += 1;
  if (parsed === "malformed") stats.malformed += 1;
  else if (parsed !== "skipped") stats.events += 1;
}

async function readOne(file: string, onEntry: (entry: AuditEntry) => void, stats: ReadStats): Promise<void> {
  const input = openStream(file, await isGzip(file));
  // readline ends the iteration with the input's error (a missing file, a corrupt gzip).
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (line.trim() === "") continue;
      const parsed = parseLine(line);
      count(stats, parsed);
      if (typeof parsed === "object") onEntry(parsed);
    }
  } finally {
    input.destroy();
  }
}

/** Reads every file in turn, handing each complete request to `onEntry`. */
export async function readAuditLogs(files: readonly string[], onEntry: (entry: AuditEntry) => void): Promise<ReadStats> {
  const stats: ReadStats = { files: 0, lines: 0, events: 0, malformed: 0 };
  for (const file of files) {
    try {
      await readOne(file, onEntry, stats);
    } catch (error) {
      throw new AuditReadError(file, error);
    }
    stats.files += 1;
  }
  return stats;
}
