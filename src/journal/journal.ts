/**
 * The write-ahead journal: for each member, the object as it was before the
 * transaction (`pre`, from the first admitted write) and as the
 * transaction's last admitted write leaves it (`post`), stored before that
 * write is allowed. Rollback undoes the difference between the two and
 * nothing else, so changes others made meanwhile survive.
 *
 * Secrets, because a pre-image can hold Secret data. Entries are
 * gzip-compressed and split over several Secrets when they do not fit in
 * one: any object the apiserver accepts can be journalled.
 *
 * Layout: `jr-<tx>-<digest>` holds the first write's entry (create-only, so
 * a retried or duplicated webhook call never replaces the pre-image);
 * `jp-<tx>-<digest>-<seq>` holds the post-image of one later write of the
 * same object in the same transaction, one Secret per write, in the order
 * of `<seq>` (one that started over after a storage conflict also carries
 * the pre-image it started from, which replaces the first: recordPost);
 * `jc-…` are the extra chunks of an entry too large for one Secret, listed
 * by its first. Every admitted post-image is kept, not only
 * the last: a later write that another webhook refused after kubetx
 * admitted it leaves the object as the write before it left it, and the
 * rollback must still recognise that write as the transaction's (chaos
 * F17). Entries kubetx wrote before this kept one `jp-<tx>-<digest>`,
 * replaced by each later write; it is read as one more post-image.
 */
import { createHash, randomBytes } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import type { KubeClient, KubeObject, ObjectList, ObjectRef } from "../kube/index.ts";
import { AlreadyExists, METADATA_LIST, NotFound } from "../kube/index.ts";
import { LABEL_ROLE, LABEL_TRANSACTION } from "../kube/vocabulary.ts";
import { listNotOlderThan } from "../kube/lists.ts";

export const JOURNAL_ROLE = "journal";
/** Written by kubetx before this change: a bare pre-image, uncompressed. */
const LEGACY_PRE_IMAGE_KEY = "pre-image.json";
const ENTRY_KEY = "entry.json.gz";
const ANNOTATION_CHUNKS = "kubetx.io/chunks";
/**
 * A Secret holds at most 1 MiB of data, and base64 grows it by a third:
 * 700 KiB of compressed bytes per Secret stays under the limit with room
 * for metadata.
 */
const CHUNK_BYTES = 700 * 1024;

/**
 * One member's journal. `pre: null`: the object did not exist before the
 * transaction. `post: null`: the transaction's last write deleted it.
 */
export interface JournalEntry {
  readonly pre: KubeObject | null;
  readonly post: KubeObject | null;
}

/**
 * What `read` returns: `post` (the last admitted write's image) is absent
 * only for entries written before post-images were journalled; `posts`
 * holds every admitted write's image, oldest first, when there was more
 * than one.
 */
export interface StoredEntry {
  readonly pre: KubeObject | null;
  readonly post?: KubeObject | null;
  readonly posts?: readonly (KubeObject | null)[];
}

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

const DIGEST_LENGTH = 16;

function refDigest(ref: ObjectRef): string {
  const key = [ref.group, ref.resource, ref.namespace ?? "", ref.name].join("/");
  return createHash("sha256").update(key).digest("hex").slice(0, DIGEST_LENGTH);
}

export function journalName(transaction: string, ref: ObjectRef): string {
  return `jr-${transaction}-${refDigest(ref)}`;
}

/**
 * A later write's post-image, under a name of its own: ordered by the
 * writer's clock (base 36, fixed width), then a random tail so two writes
 * in one millisecond both stay.
 */
function postName(transaction: string, ref: ObjectRef, at: number): string {
  return `jp-${transaction}-${refDigest(ref)}-${at.toString(36).padStart(9, "0")}${randomBytes(2).toString("hex")}`;
}

/** The extra chunks a first Secret lists. */
function chunkNames(first: SecretObject | undefined): string[] {
  return (first?.metadata?.annotations?.[ANNOTATION_CHUNKS] ?? "").split(",").filter(Boolean);
}

/** Splits a value into compressed chunks, each small enough for one Secret. Pure. */
export function encodeChunks(value: unknown): Buffer[] {
  const packed = gzipSync(Buffer.from(JSON.stringify(value)));
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < packed.length || chunks.length === 0; offset += CHUNK_BYTES) chunks.push(packed.subarray(offset, offset + CHUNK_BYTES));
  return chunks;
}

export function decodeChunks<T>(chunks: readonly Buffer[]): T {
  return JSON.parse(gunzipSync(Buffer.concat(chunks)).toString("utf8")) as T;
}

export class Journal {
  private readonly client: KubeClient;
  private readonly secrets: string;
  private lastStamp = 0;

  constructor(client: KubeClient, namespace: string) {
    this.client = client;
    this.secrets = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  }

  /**
   * Journals a member's first write. An existing entry (the apiserver
   * retried the call, or a second webhook entry sent it again) is kept:
   * its pre-image is the true one.
   */
  async record(transaction: string, ref: ObjectRef, entry: JournalEntry): Promise<void> {
    await this.writeChunks(journalName(transaction, ref), transaction, encodeChunks(entry));
  }

  /**
   * Journals a later write of the same member: its post-image is kept beside
   * the earlier ones. `startedOver` is the object this write started from
   * when no earlier write of the member reached storage (the apiserver ran
   * admission again after a storage conflict, with the newer object): it
   * replaces the pre-image, and the earlier post-images, which never
   * landed, no longer count (chaos F21).
   */
  async recordPost(transaction: string, ref: ObjectRef, post: KubeObject | null, startedOver?: KubeObject | null): Promise<void> {
    const entry = startedOver === undefined ? { post } : { post, pre: startedOver };
    await this.writeChunks(postName(transaction, ref, this.stamp()), transaction, encodeChunks(entry));
  }

  /** Milliseconds, strictly increasing in this process: two writes in one millisecond keep their order. */
  private stamp(): number {
    this.lastStamp = Math.max(Date.now(), this.lastStamp + 1);
    return this.lastStamp;
  }

  /** The member's entry, with the latest post-image; undefined when nothing was journalled. */
  async read(transaction: string, ref: ObjectRef): Promise<StoredEntry | undefined> {
    return (await this.readAll(transaction)).get(journalName(transaction, ref));
  }

  /**
   * Every entry of a transaction, by journalName(), in one list request (the
   * resolver reads them all to verify or roll back): consistent, or at
   * least as new as `notOlderThan` (kube/lists.ts).
   */
  async readAll(transaction: string, options: { notOlderThan?: string } = {}): Promise<Map<string, StoredEntry>> {
    const labelSelector = `${LABEL_ROLE}=${JOURNAL_ROLE},${LABEL_TRANSACTION}=${transaction}`;
    const list = await listNotOlderThan((query) => this.client.get<ObjectList<SecretObject>>(this.secrets, { query: { labelSelector, ...query } }), options.notOlderThan);
    const byName = new Map(list.items.map((secret) => [secret.metadata?.name ?? "", secret]));
    // Later post-images by their member's first entry: every name here is of this transaction, so `jp-<tx>-<digest>` has a fixed length.
    const memberKey = `jp-${transaction}-`.length + DIGEST_LENGTH;
    const laterOf = new Map<string, string[]>();
    for (const name of byName.keys()) {
      if (!name.startsWith("jp-")) continue;
      const first = `jr-${name.slice("jp-".length, memberKey)}`;
      laterOf.set(first, [...(laterOf.get(first) ?? []), name]);
    }
    const entries = new Map<string, StoredEntry>();
    for (const [name, secret] of byName) {
      if (!name.startsWith("jr-")) continue;
      const later = (laterOf.get(name) ?? []).sort();
      const entry = decodeFirst(name, secret, byName);
      if (later.length === 0) {
        entries.set(name, entry);
        continue;
      }
      entries.set(name, withLaterWrites(entry, later.map((n) => decodeEntry<LaterWrite>(byName.get(n) as SecretObject, byName))));
    }
    return entries;
  }

  /** Every journal Secret: name and transaction, never the contents. */
  /**
   * Every journal Secret's name and transaction, for the garbage collector:
   * metadata only (a committed transaction's journal stays for undo, so
   * there may be thousands, each with its images).
   */
  async entries(): Promise<{ name: string; transaction: string }[]> {
    const list = await this.client.get<ObjectList<SecretObject>>(this.secrets, { query: { labelSelector: `${LABEL_ROLE}=${JOURNAL_ROLE}` }, accept: METADATA_LIST });
    // An empty metadata list comes with `items: null`.
    return (list.items ?? []).map((s) => ({ name: s.metadata?.name ?? "", transaction: s.metadata?.labels?.[LABEL_TRANSACTION] ?? "" }));
  }

  async remove(name: string): Promise<void> {
    try {
      await this.client.delete(`${this.secrets}/${encodeURIComponent(name)}`);
    } catch (error) {
      if (!(error instanceof NotFound)) throw error;
    }
  }

  /** Deletes every Secret of a transaction's journal. */
  async discard(transaction: string): Promise<void> {
    const list = await this.client.get<ObjectList<SecretObject>>(this.secrets, {
      query: { labelSelector: `${LABEL_ROLE}=${JOURNAL_ROLE},${LABEL_TRANSACTION}=${transaction}` },
    });
    await Promise.all(list.items.map((secret) => this.remove(secret.metadata?.name ?? "")));
  }

  /**
   * Writes the extra chunks (under names of their own, fresh for each
   * attempt), then the first Secret, which lists them: a reader that finds
   * the first finds them all. Create-only: an entry that exists (a retried
   * or duplicated call wrote it) is kept, and the losing attempt's chunks
   * are removed.
   */
  private async writeChunks(base: string, transaction: string, chunks: readonly Buffer[]): Promise<void> {
    const attempt = randomBytes(3).toString("hex");
    const extra = chunks.slice(1).map((chunk, i) => ({ name: `jc-${attempt}-${i + 1}-${base}`, chunk }));
    await Promise.all(extra.map(({ name, chunk }) => this.client.create(this.secrets, this.secret(name, transaction, chunk))));
    try {
      await this.client.create(this.secrets, this.secret(base, transaction, chunks[0] as Buffer, extra.map((e) => e.name)));
    } catch (error) {
      if (!(error instanceof AlreadyExists)) throw error;
      await this.removeAll(extra.map((e) => e.name));
    }
  }

  private secret(name: string, transaction: string, chunk: Buffer, more: readonly string[] = []): SecretObject {
    return {
      apiVersion: "v1",
      kind: "Secret",
      type: "kubetx.io/journal",
      metadata: {
        name,
        labels: { [LABEL_ROLE]: JOURNAL_ROLE, [LABEL_TRANSACTION]: transaction },
        ...(more.length > 0 ? { annotations: { [ANNOTATION_CHUNKS]: more.join(",") } } : {}),
      },
      data: { [ENTRY_KEY]: chunk.toString("base64") },
    };
  }

  private async removeAll(names: readonly string[]): Promise<void> {
    await Promise.all(names.map((name) => this.remove(name)));
  }
}

/** A later write's Secret: its post-image, and the pre-image it started over from, if it did. */
interface LaterWrite {
  readonly post: KubeObject | null;
  readonly pre?: KubeObject | null;
}

/**
 * Pure: a member's entry with its later writes, oldest first. The last
 * write that started over (see recordPost) gives the pre-image, and only
 * the post-images from it on count.
 */
export function withLaterWrites(first: StoredEntry, later: readonly LaterWrite[]): StoredEntry {
  const restart = later.findLastIndex((write) => write.pre !== undefined);
  const start = later[restart];
  const pre = start ? (start.pre ?? null) : first.pre;
  const posts = start ? later.slice(restart).map((w) => w.post) : [...("post" in first ? [first.post ?? null] : []), ...later.map((w) => w.post)];
  return { pre, post: posts.at(-1) ?? null, posts };
}

/** A first-write entry, also in the format kubetx wrote before post-images were kept. */
function decodeFirst(name: string, secret: SecretObject, byName: ReadonlyMap<string, SecretObject>): StoredEntry {
  const legacy = secret.data?.[LEGACY_PRE_IMAGE_KEY];
  if (legacy !== undefined) return { pre: JSON.parse(Buffer.from(legacy, "base64").toString("utf8")) as KubeObject };
  if (!secret.data?.[ENTRY_KEY]) throw new Error(`journal ${name}: no entry`);
  return decodeEntry<StoredEntry>(secret, byName);
}

function decodeEntry<T>(first: SecretObject, byName: ReadonlyMap<string, SecretObject>): T {
  const chunks = [first, ...chunkNames(first).map((name) => byName.get(name))].map((secret) => {
    const data = secret?.data?.[ENTRY_KEY];
    if (!data) throw new Error(`journal ${first.metadata?.name ?? "?"}: a chunk is missing or empty`);
    return Buffer.from(data, "base64");
  });
  return decodeChunks<T>(chunks);
}
