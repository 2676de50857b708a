/**
 * The write-ahead journal: each member's pre-image, stored before its
 * write is allowed. Secrets, because a pre-image can hold Secret data.
 */
import { createHash } from "node:crypto";
import type { KubeClient, KubeObject, ObjectList, ObjectRef } from "../kube/index.ts";
import { AlreadyExists, NotFound } from "../kube/index.ts";
import { LABEL_ROLE, LABEL_TRANSACTION } from "../transactions/model.ts";

export const JOURNAL_ROLE = "journal";
const PRE_IMAGE_KEY = "pre-image.json";

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

export function journalName(transaction: string, ref: ObjectRef): string {
  const key = [ref.group, ref.resource, ref.namespace ?? "", ref.name].join("/");
  return `jr-${transaction}-${createHash("sha256").update(key).digest("hex").slice(0, 16)}`;
}

export class Journal {
  private readonly client: KubeClient;
  private readonly secrets: string;

  constructor(client: KubeClient, namespace: string) {
    this.client = client;
    this.secrets = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  }

  /** Writes the pre-image; an existing entry (the first write's) is kept, which makes this idempotent. */
  async record(transaction: string, ref: ObjectRef, preImage: KubeObject): Promise<void> {
    const body: SecretObject = {
      apiVersion: "v1",
      kind: "Secret",
      type: "kubetx.io/journal",
      metadata: { name: journalName(transaction, ref), labels: { [LABEL_ROLE]: JOURNAL_ROLE, [LABEL_TRANSACTION]: transaction } },
      data: { [PRE_IMAGE_KEY]: Buffer.from(JSON.stringify(preImage)).toString("base64") },
    };
    try {
      await this.client.create(this.secrets, body);
    } catch (error) {
      if (!(error instanceof AlreadyExists)) throw error;
    }
  }

  async read(transaction: string, ref: ObjectRef): Promise<KubeObject | undefined> {
    try {
      const secret = await this.client.get<SecretObject>(`${this.secrets}/${journalName(transaction, ref)}`);
      const encoded = secret.data?.[PRE_IMAGE_KEY];
      return encoded ? (JSON.parse(Buffer.from(encoded, "base64").toString("utf8")) as KubeObject) : undefined;
    } catch (error) {
      if (error instanceof NotFound) return undefined;
      throw error;
    }
  }

  /** Every journal entry: name and transaction, never the contents. */
  async entries(): Promise<{ name: string; transaction: string }[]> {
    const list = await this.client.get<ObjectList<SecretObject>>(this.secrets, { query: { labelSelector: `${LABEL_ROLE}=${JOURNAL_ROLE}` } });
    return list.items.map((s) => ({ name: s.metadata?.name ?? "", transaction: s.metadata?.labels?.[LABEL_TRANSACTION] ?? "" }));
  }

  async remove(name: string): Promise<void> {
    try {
      await this.client.delete(`${this.secrets}/${encodeURIComponent(name)}`);
    } catch (error) {
      if (!(error instanceof NotFound)) throw error;
    }
  }

  /** Deletes every entry of a transaction. */
  async discard(transaction: string): Promise<void> {
    const list = await this.client.get<ObjectList<SecretObject>>(this.secrets, {
      query: { labelSelector: `${LABEL_ROLE}=${JOURNAL_ROLE},${LABEL_TRANSACTION}=${transaction}` },
    });
    for (const secret of list.items) {
      try {
        await this.client.delete(`${this.secrets}/${secret.metadata?.name ?? ""}`);
      } catch (error) {
        if (!(error instanceof NotFound)) throw error;
      }
    }
  }
}
