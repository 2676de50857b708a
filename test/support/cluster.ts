/** What the global setup hands every integration test: one running control plane. */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { editorsBound } from "../../src/devcluster/bootstrap.ts";
import { createKubeClient } from "../../src/kube/index.ts";
import type { KubeClient } from "../../src/kube/index.ts";

export interface ClusterInfo {
  readonly dir: string;
  readonly server: string;
  readonly caData: string;
  readonly caFile: string;
  readonly caKeyFile: string;
  readonly kubeconfigs: Readonly<Record<"admin" | "alice" | "bob" | "kubetx", string>>;
  readonly auditLog: string;
  readonly kubectl: string;
  readonly binariesDir: string;
  /** The port the apiserver's audit webhook backend sends to: an engine listening there receives the audit events. */
  readonly auditSinkPort: number;
  /** The CA and name of the client certificate the apiserver presents to kubetx (webhooks and audit sink). */
  readonly apiserverClient: { readonly caFile: string; readonly names: readonly string[] };
  /** That certificate and its key: what a test presents to speak to kubetx as the apiserver. */
  readonly apiserverClientCertificate: { readonly certFile: string; readonly keyFile: string };
}

declare module "vitest" {
  export interface ProvidedContext {
    cluster: ClusterInfo;
  }
}

export function cluster(): ClusterInfo {
  return inject("cluster");
}

export type User = "admin" | "alice" | "bob" | "kubetx";

export function client(user: User = "admin"): Promise<KubeClient> {
  return createKubeClient(cluster().kubeconfigs[user]);
}

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real kubectl built from the pinned Kubernetes version. */
export function kubectl(args: readonly string[], options: { user?: User; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
  const info = cluster();
  return run(info.kubectl, ["--kubeconfig", info.kubeconfigs[options.user ?? "admin"], ...args], options);
}

export function run(command: string, args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** A fresh namespace name, so tests never see each other's objects. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString("hex")}`;
}

/** Creates a namespace and waits until alice and bob may edit in it. */
export async function createNamespace(name: string, labels: Record<string, string> = {}): Promise<void> {
  const admin = await client("admin");
  try {
    await admin.create("/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } });
    if (!(await editorsBound(admin, name))) throw new Error(`editors were never bound in namespace ${name}`);
  } finally {
    admin.close();
  }
}
