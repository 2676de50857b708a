import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ApplyOptions } from "../../src/cli/tx/args.ts";
import type { ApplyDeps } from "../../src/cli/tx/apply.ts";
import { newTransactionId, runApply } from "../../src/cli/tx/apply.ts";
import { TxError } from "../../src/cli/tx/errors.ts";
import type { KubectlResult } from "../../src/cli/tx/kubectl.ts";
import type { KubeClient, RequestOptions } from "../../src/kube/client.ts";
import { AlreadyExists, Forbidden, KubeError, NotFound } from "../../src/kube/errors.ts";
import { FORBIDDEN_GRACE_MS, pollDelayMs } from "../../src/cli/tx/wait.ts";
import type { Transaction, TransactionStatus } from "../../src/transactions/model.ts";
import { isValidTransactionId } from "../../src/transactions/model.ts";

const ID = "t-0123abcd";
const TX_PATH = `/apis/kubetx.io/v1alpha1/transactions/${ID}`;
const TX_COLLECTION = "/apis/kubetx.io/v1alpha1/transactions";

interface Call {
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
}

/** An apiserver with kubetx in it, as far as kubectl tx sees one: scripted, in memory. */
class FakeApiserver implements KubeClient {
  readonly server = "https://fake.example";
  /** The kubeconfig context's namespace, as KubeClient.namespace gives it. */
  contextNamespace: string | undefined;
  get namespace(): string | undefined {
    return this.contextNamespace;
  }
  /** The groups the SelfSubjectReview names. */
  whoAmIGroups: string[] = [];
  /** Stores a new record without spec.prepare, as a CRD that predates it prunes it. */
  dropPrepare = false;
  readonly calls: Call[] = [];
  closed = false;
  record: Transaction | undefined;
  createError: KubeError | undefined;
  /** Failures to answer the next GETs with, one each. */
  getErrors: Error[] = [];
  /** Failures to answer the next heartbeat PATCHes with, one each. */
  heartbeatErrors: Error[] = [];
  /** Failures to answer the next SelfSubjectReviews, record creates and clientState reports with, one each. */
  whoAmIErrors: Error[] = [];
  createErrors: Error[] = [];
  reportErrors: Error[] = [];
  /** A create that stores the record but whose answer is lost on the way back. */
  loseCreateAnswer = false;
  /** What kubetx makes of a record that asks to be prepared, before kubectl runs; undefined leaves it unprepared. */
  prepared: (record: Transaction) => TransactionStatus | undefined = (record) => ({ phase: "Open", prepared: "2026-12-02T00:00:00Z", preparedMembers: record.spec.prepare?.members.length ?? 0 });
  /** What kubetx makes of the record once kubectl tx has reported; undefined leaves it open. */
  verdict: (record: Transaction) => TransactionStatus | undefined = () => undefined;

  get<T>(p: string): Promise<T> {
    this.calls.push({ method: "GET", path: p });
    const error = this.getErrors.shift();
    if (error) return Promise.reject(error);
    if (!this.record || p !== TX_PATH) return Promise.reject(notFound("GET", p));
    // kubetx resolves a transaction once kubectl tx reported, or on its own once it failed (a refused prepare).
    if (this.record.spec.clientState !== "Applying" || this.record.status?.failure) this.record = { ...this.record, status: this.verdict(this.record) };
    else if (this.record.spec.prepare && !this.record.status) this.record = { ...this.record, status: this.prepared(this.record) };
    return Promise.resolve(structuredClone(this.record) as T);
  }

  create<T>(p: string, body: unknown): Promise<T> {
    this.calls.push({ method: "POST", path: p, body });
    if (p === "/apis/authentication.k8s.io/v1/selfsubjectreviews") {
      const error = this.whoAmIErrors.shift();
      return error ? Promise.reject(error) : Promise.resolve({ status: { userInfo: { username: "alice", groups: this.whoAmIGroups } } } as T);
    }
    const error = this.createError ?? this.createErrors.shift();
    if (error) return Promise.reject(error);
    if (this.record) return Promise.reject(new AlreadyExists({ status: 409, reason: "AlreadyExists", message: `transactions.kubetx.io "${ID}" already exists`, method: "POST", path: p }));
    this.record = structuredClone(body) as Transaction;
    if (this.dropPrepare) delete this.record.spec.prepare;
    if (this.loseCreateAnswer) {
      this.loseCreateAnswer = false;
      return Promise.reject(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }));
    }
    return Promise.resolve(body as T);
  }

  mergePatch<T>(p: string, patch: unknown): Promise<T> {
    this.calls.push({ method: "PATCH", path: p, body: patch });
    if (!this.record) return Promise.reject(notFound("PATCH", p));
    const failure = (patch as Transaction).spec.clientHeartbeat !== undefined ? this.heartbeatErrors.shift() : this.reportErrors.shift();
    if (failure) return Promise.reject(failure);
    this.record = { ...this.record, spec: { ...this.record.spec, ...(patch as Transaction).spec } };
    return Promise.resolve(this.record as T);
  }

  replace<T>(): Promise<T> { return Promise.reject(new Error("not used")); }
  jsonPatch<T>(): Promise<T> { return Promise.reject(new Error("not used")); }
  delete<T>(p: string): Promise<T> {
    this.calls.push({ method: "DELETE", path: p });
    this.record = undefined;
    return Promise.resolve({} as T);
  }
  watch(): Promise<void> { return Promise.reject(new Error("not used")); }
  request<T>(_method: string, _path: string, _options?: RequestOptions): Promise<T> { return Promise.reject(new Error("not used")); }
  close(): void { this.closed = true; }
}

/** How many reads waitForOutcome makes in its first `ms`. */
function pollsWithin(ms: number): number {
  let polls = 0;
  for (let at = 0; at < ms; at += pollDelayMs(at)) polls += 1;
  return polls;
}

function notFound(method: string, p: string): NotFound {
  return new NotFound({ status: 404, reason: "NotFound", message: "the server could not find the requested resource", method, path: p });
}

interface KubectlRun {
  readonly command: string;
  readonly args: readonly string[];
  /** What kubectl read on its stdin. */
  readonly manifest?: string;
  /** kubectl was started to read its stdin, and killed before it read anything. */
  readonly stopped?: true;
  /** How many apiserver calls kubectl tx had made when kubectl got its stdin. */
  readonly callsBeforeRead?: number;
  /** The name kubectl ran under (its argv[0]). */
  readonly argv0?: string;
}

/** kubectl as kubectl tx starts it, killed before it was given anything to read. */
const STOPPED: KubectlRun = { command: "/usr/bin/kubectl", args: ["apply", "--filename", "-"], stopped: true, argv0: `kubectl@${ID}` };

const MANIFEST = `apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: shop}
data: {k: v}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b}
`;

describe("kubectl tx apply, against a scripted apiserver and kubectl", () => {
  let work: string;
  let file: string;
  let api: FakeApiserver;
  let runs: KubectlRun[];
  let kubectlResult: KubectlResult;
  let out: string[];
  let err: string[];
  let now: number;
  let connected: { kubeconfig: string | undefined; context: string | undefined }[];
  let kustomized: { command: string; dir: string }[];

  function deps(): ApplyDeps {
    return {
      connect: (kubeconfig, context) => {
        connected.push({ kubeconfig, context });
        return Promise.resolve(api);
      },
      findKubectl: () => Promise.resolve("/usr/bin/kubectl"),
      runKubectl: async (command, args, how = {}) => {
        const { input, argv0 } = how;
        const manifest = input ? await input : undefined;
        const named = argv0 === undefined ? {} : { argv0 };
        if (!input) runs.push({ command, args, ...named });
        else if (manifest === undefined) runs.push({ command, args, stopped: true, ...named });
        else runs.push({ command, args, manifest, callsBeforeRead: api.calls.length, ...named });
        return kubectlResult;
      },
      readStdin: () => Promise.reject(new Error("no stdin")),
      renderKustomization: (command, dir) => {
        kustomized.push({ command, dir });
        return Promise.resolve(MANIFEST);
      },
      newId: () => ID,
      clock: { now: () => now, sleep: (ms) => { now += ms; return Promise.resolve(); } },
      say: (line) => out.push(line),
      warn: (line) => err.push(line),
      settling: { attempts: 4, deadlineMs: 1_000, initialDelayMs: 1, maxDelayMs: 2 },
    };
  }

  /** Unprepared unless a test says otherwise: the prepare has its own tests below, and the rest count calls without it. */
  function options(extra: Partial<ApplyOptions> = {}): ApplyOptions {
    return { files: [file], recursive: false, timeoutSeconds: 60, dryRun: "none", prune: false, prepare: false, ...extra };
  }

  beforeEach(async () => {
    work = await mkdtemp(path.join(tmpdir(), "tx-apply-"));
    file = path.join(work, "app.yaml");
    await writeFile(file, MANIFEST);
    api = new FakeApiserver();
    runs = [];
    kubectlResult = { code: 0, stderr: "" };
    out = [];
    err = [];
    now = 1_000_000;
    connected = [];
    kustomized = [];
  });
  afterEach(() => rm(work, { recursive: true, force: true }));

  it("with -k, applies the objects kubectl kustomize renders, annotated, as one transaction", async () => {
    api.verdict = () => ({ phase: "Committed", memberCount: 2 });
    const code = await runApply({ files: [], kustomize: "overlays/prod", recursive: false, dryRun: "none", prune: false }, deps());

    expect(code).toBe(0);
    expect(kustomized).toEqual([{ command: "/usr/bin/kubectl", dir: "overlays/prod" }]);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.args.slice(0, 2)).toEqual(["apply", "--filename"]);
    // Its requests' User-Agent names the transaction, for the audit sink.
    expect(runs[0]?.argv0).toBe(`kubectl@${ID}`);
    expect(runs[0]?.manifest?.trimEnd().split("\n").map((line) => (JSON.parse(line) as { metadata: { name: string; annotations: Record<string, string> } }).metadata))
      .toEqual([{ name: "a", namespace: "shop", annotations: { "kubetx.io/transaction": ID } }, { name: "b", annotations: { "kubetx.io/transaction": ID } }]);
    expect(err).toEqual([`kubectl tx: applying 2 objects as transaction ${ID}`]);
  });

  it("with -k and --dry-run=client, runs plain kubectl apply -k and opens nothing", async () => {
    const code = await runApply({ files: [], kustomize: "base", recursive: false, dryRun: "client", prune: false }, deps());
    expect(code).toBe(0);
    expect(runs.map((r) => r.args)).toEqual([["apply", "--kustomize", "base", "--dry-run=client"]]);
    expect(kustomized).toEqual([]);
    expect(api.calls).toEqual([]);
  });

  it("makes transaction ids that kubetx accepts", () => {
    for (let i = 0; i < 20; i += 1) expect(newTransactionId()).toMatch(/^t-[0-9a-f]{8}$/);
    expect(isValidTransactionId(newTransactionId())).toBe(true);
  });

  it("opens a plugin transaction as the user, applies the annotated copy, reports Applied and prints the commit", async () => {
    api.verdict = () => ({ phase: "Committed", memberCount: 2, members: [
      { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "a", operation: "CREATE", outcome: "Committed" },
      { group: "", version: "v1", resource: "configmaps", namespace: "default", name: "b", operation: "CREATE", outcome: "Committed" },
    ] });
    const code = await runApply(options({ namespace: "shop", kubeconfig: "/home/alice/.kube/config", context: "dev" }), deps());

    expect(code).toBe(0);
    expect(connected).toEqual([{ kubeconfig: "/home/alice/.kube/config", context: "dev" }]);
    expect(api.calls.slice(0, 2)).toEqual([
      { method: "POST", path: "/apis/authentication.k8s.io/v1/selfsubjectreviews", body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" } },
      { method: "POST", path: "/apis/kubetx.io/v1alpha1/transactions", body: {
        apiVersion: "kubetx.io/v1alpha1", kind: "Transaction", metadata: { name: ID },
        spec: { user: "alice", mode: "plugin", clientState: "Applying", clientHeartbeat: 0, timeoutSeconds: 60 },
      } },
    ]);
    expect(runs).toHaveLength(1);
    const run = runs[0] as KubectlRun;
    expect(run.command).toBe("/usr/bin/kubectl");
    expect(run.args).toEqual(["apply", "--filename", "-",
      "--namespace", "shop", "--kubeconfig", "/home/alice/.kube/config", "--context", "dev"]);
    expect(run.manifest?.trimEnd().split("\n").map((line) => JSON.parse(line) as unknown)).toEqual([
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", namespace: "shop", annotations: { "kubetx.io/transaction": ID } }, data: { k: "v" } },
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "b", annotations: { "kubetx.io/transaction": ID } } },
    ]);
    expect(api.calls[2]).toEqual({ method: "PATCH", path: TX_PATH, body: { spec: { clientState: "Applied", clientSettled: true } } });
    expect(out).toEqual(["transaction t-0123abcd committed: 2 members", "  CREATE configmaps shop/a: Committed", "  CREATE configmaps default/b: Committed"]);
    expect(err).toEqual([`kubectl tx: applying 2 objects as transaction ${ID}`]);
    expect(api.closed).toBe(true);
  });

  it("never changes the user's file, and writes no copy of it: kubectl reads the annotated copy on its stdin", async () => {
    api.verdict = () => ({ phase: "Committed", memberCount: 2 });
    await runApply(options(), deps());
    expect(await readFile(file, "utf8")).toBe(MANIFEST);
    expect(await readdir(work)).toEqual(["app.yaml"]);
    expect(runs[0]?.args.slice(0, 3)).toEqual(["apply", "--filename", "-"]);
    expect(runs[0]?.manifest).toContain(`"kubetx.io/transaction":"${ID}"`);
  });

  it("reports Failed with the end of kubectl's stderr, and exits 1 on the rollback", async () => {
    kubectlResult = { code: 1, stderr: 'The ConfigMap "c" is invalid: data[bad key]: Invalid value' };
    api.verdict = (record) => ({ phase: "RolledBack", reason: "ClientFailed", message: record.spec.clientMessage ?? "", members: [
      { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "a", operation: "CREATE", outcome: "Restored" },
    ] });
    const code = await runApply(options(), deps());
    expect(code).toBe(1);
    expect(api.calls[2]).toEqual({ method: "PATCH", path: TX_PATH, body: { spec: { clientState: "Failed", clientMessage: 'The ConfigMap "c" is invalid: data[bad key]: Invalid value', clientSettled: true } } });
    expect(out).toEqual([
      'transaction t-0123abcd rolled back: ClientFailed: The ConfigMap "c" is invalid: data[bad key]: Invalid value',
      "  CREATE configmaps shop/a: Restored",
    ]);
  });

  it("says when kubectl was stopped by a signal, and asks kubetx to roll back", async () => {
    kubectlResult = { code: 130, stderr: "kubectl was stopped by SIGINT", failure: "kubectl was stopped by SIGINT" };
    api.verdict = () => ({ phase: "RolledBack", reason: "ClientFailed" });
    expect(await runApply(options(), deps())).toBe(1);
    expect(err).toContain(`kubectl tx: kubectl was stopped by SIGINT; asking kubetx to roll back ${ID}`);
    expect(api.calls[2]?.body).toEqual({ spec: { clientState: "Failed", clientMessage: "kubectl was stopped by SIGINT" } });
  });

  it("says kubetx is not installed when the cluster has no Transaction resource, and kubectl reads nothing", async () => {
    api.createError = notFound("POST", "/apis/kubetx.io/v1alpha1/transactions");
    const error = await runApply(options(), deps()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TxError);
    expect((error as TxError).message).toBe(
      "kubectl tx: kubetx is not installed in this cluster (it has no transactions.kubetx.io resource); ask a cluster admin to install kubetx, or use plain kubectl apply",
    );
    expect(runs).toEqual([STOPPED]);
    expect(api.closed).toBe(true);
  });

  it("says the user may not create transactions when RBAC refuses, in one line", async () => {
    api.createError = new Forbidden({
      status: 403, reason: "Forbidden", method: "POST", path: "/apis/kubetx.io/v1alpha1/transactions",
      message: 'transactions.kubetx.io is forbidden: User "alice" cannot create resource "transactions" in API group "kubetx.io" at the cluster scope',
    });
    await expect(runApply(options(), deps())).rejects.toThrow(
      'kubectl tx: alice may not create transactions.kubetx.io (403 Forbidden: transactions.kubetx.io is forbidden: User "alice" cannot create resource "transactions" in API group "kubetx.io" at the cluster scope); ask a cluster admin to allow it, or use plain kubectl apply',
    );
    expect(runs).toEqual([STOPPED]);
  });

  describe("a control plane in motion", () => {
    const forbidden = (p: string): Forbidden => new Forbidden({ status: 403, reason: "Forbidden", method: "POST", path: p, message: "RBAC: not yet" });
    const unavailable = (p: string): KubeError => new KubeError({ status: 503, reason: "ServiceUnavailable", method: "POST", path: p, message: "the server is currently unable to handle the request" });
    const webhookDown = (): KubeError => new KubeError({
      status: 500, reason: "InternalError", method: "PATCH", path: TX_PATH, message: 'Internal error occurred: failed calling webhook "records.kubetx.io": connect: connection refused',
    });

    it("asks again who the user is while a restarted apiserver still answers 403, then applies", async () => {
      api.whoAmIErrors = [forbidden("/apis/authentication.k8s.io/v1/selfsubjectreviews"), unavailable("/apis/authentication.k8s.io/v1/selfsubjectreviews")];
      api.verdict = () => ({ phase: "Committed", members: [] });
      expect(await runApply(options(), deps())).toBe(0);
      expect(api.calls.filter((c) => c.path.endsWith("selfsubjectreviews"))).toHaveLength(3);
      expect(runs).toHaveLength(1);
    });

    it("creates the record again after a 503, and takes the record a lost answer created as its own", async () => {
      api.createErrors = [unavailable("/apis/kubetx.io/v1alpha1/transactions")];
      api.loseCreateAnswer = true;
      api.verdict = () => ({ phase: "Committed", members: [] });
      expect(await runApply(options(), deps())).toBe(0);
      expect(api.calls.filter((c) => c.method === "POST" && c.path === "/apis/kubetx.io/v1alpha1/transactions")).toHaveLength(3);
      expect(runs).toHaveLength(1);
    });

    it("reports kubectl's end again when the kubetx replica the apiserver called had just died, or RBAC was not read yet", async () => {
      api.reportErrors = [webhookDown(), forbidden(TX_PATH)];
      const reported: (string | undefined)[] = [];
      api.verdict = (record) => {
        reported.push(record.spec.clientState);
        return { phase: "Committed", members: [] };
      };
      expect(await runApply(options(), deps())).toBe(0);
      expect(reported[0]).toBe("Applied");
      expect(api.calls.filter((c) => c.method === "PATCH" && (c.body as Transaction).spec.clientState === "Applied")).toHaveLength(3);
    });

    it("still says what a lasting refusal is once asking again has run out, and kubectl reads nothing", async () => {
      api.whoAmIErrors = Array.from({ length: 10 }, () => forbidden("/apis/authentication.k8s.io/v1/selfsubjectreviews"));
      await expect(runApply(options(), deps())).rejects.toThrow("kubectl tx: the apiserver would not say who you are (403 Forbidden: RBAC: not yet); check your kubeconfig and context");
      expect(api.calls.filter((c) => c.path.endsWith("selfsubjectreviews"))).toHaveLength(4);
      expect(runs).toEqual([STOPPED]);
    });

    it("does not ask again after a refusal that will not pass: a 404 or a 422", async () => {
      api.createErrors = [new KubeError({ status: 422, reason: "Invalid", method: "POST", path: "/apis/kubetx.io/v1alpha1/transactions", message: "spec.user: Required value" })];
      await expect(runApply(options(), deps())).rejects.toThrow("kubectl tx: could not create the transaction record (422 Invalid: spec.user: Required value)");
      expect(api.calls.filter((c) => c.method === "POST" && c.path === "/apis/kubetx.io/v1alpha1/transactions")).toHaveLength(1);
    });
  });

  it("with --dry-run=server, applies the annotated copy with kubectl's dry run, creates no record and returns kubectl's code", async () => {
    kubectlResult = { code: 1, stderr: "locked" };
    const code = await runApply(options({ dryRun: "server" }), deps());
    expect(code).toBe(1);
    expect(connected).toEqual([]);
    expect(api.calls).toEqual([]);
    expect(runs[0]?.args).toContain("--dry-run=server");
    expect(runs[0]?.manifest).toContain(`"kubetx.io/transaction":"${ID}"`);
    expect(runs[0]?.args).toEqual(["apply", "--filename", "-", "--dry-run=server"]);
    expect(out).toEqual([]);
  });

  it("with --dry-run=client, runs plain kubectl on the user's own files", async () => {
    const code = await runApply(options({ dryRun: "client", recursive: true }), deps());
    expect(code).toBe(0);
    expect(runs).toEqual([{ command: "/usr/bin/kubectl", args: ["apply", "--filename", file, "--recursive", "--dry-run=client"] }]);
    expect(api.calls).toEqual([]);
  });

  it("refuses a broken manifest before it opens a transaction", async () => {
    await writeFile(file, "apiVersion: v1\nkind: ConfigMap\n");
    await expect(runApply(options(), deps())).rejects.toThrow("ConfigMap has no metadata.name");
    expect(connected).toEqual([]);
    expect(runs).toEqual([STOPPED]);
  });

  it("refuses files with no objects at all", async () => {
    await writeFile(file, "# nothing yet\n");
    await expect(runApply(options(), deps())).rejects.toThrow(`kubectl tx: no objects in ${file}; nothing to apply`);
  });

  it("keeps polling through a passing apiserver error", async () => {
    api.verdict = () => ({ phase: "Committed", memberCount: 2 });
    api.getErrors = [new KubeError({ status: 503, reason: "ServiceUnavailable", message: "etcd leader changed", method: "GET", path: TX_PATH })];
    expect(await runApply(options(), deps())).toBe(0);
    expect(api.calls.filter((c) => c.method === "GET")).toHaveLength(2);
  });

  it("rides out reads of its record refused while kubetx's authorization webhook is down, and names the refusal once it lasts", async () => {
    const refused = (): Forbidden => new Forbidden({ status: 403, reason: "Forbidden", method: "GET", path: TX_PATH, message: "transactions.kubetx.io is forbidden" });
    api.verdict = () => ({ phase: "Committed", memberCount: 2 });
    api.getErrors = [refused(), refused(), refused()];
    expect(await runApply(options(), deps())).toBe(0);
    // A refusal that lasts the grace (15 s of polls) is the user's rights, not an outage.
    api.record = undefined;
    api.getErrors = Array.from({ length: pollsWithin(FORBIDDEN_GRACE_MS) + 5 }, refused);
    await expect(runApply(options(), deps())).rejects.toThrow(`kubectl tx: you may not read transaction ${ID} (refused for 15 s)`);
  });

  it("prints progress about every 5 s and gives up with exit code 3 after the timeout plus 30 s", async () => {
    api.verdict = () => ({ phase: "Verifying", memberCount: 2 });
    const started = now;
    const error = await runApply(options({ timeoutSeconds: 10 }), deps()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TxError);
    expect((error as TxError).exitCode).toBe(3);
    expect((error as TxError).message).toBe(`kubectl tx: transaction ${ID} is still Verifying 40 s after kubectl ended; is kubetx running? Check: kubectl get transaction ${ID} -o yaml`);
    expect(now - started).toBe(40_000);
    const progress = err.filter((line) => line.startsWith("kubectl tx: waiting"));
    expect(progress).toHaveLength(7);
    expect(progress[0]).toBe(`kubectl tx: waiting for transaction ${ID} (Verifying, 2 members, 5 s)`);
  });

  it("without --timeout, asks kubetx for no time limit and waits 60 s plus 30 s after kubectl ends", async () => {
    api.verdict = () => ({ phase: "Verifying", memberCount: 2 });
    const started = now;
    const { timeoutSeconds: _none, ...noTimeout } = options();
    const error = await runApply(noTimeout, deps()).catch((e: unknown) => e);
    expect((error as TxError).exitCode).toBe(3);
    expect(now - started).toBe(90_000);
    expect(api.calls[1]?.body).toMatchObject({ spec: { user: "alice", mode: "plugin", clientState: "Applying", clientHeartbeat: 0 } });
    expect((api.calls[1]?.body as Transaction).spec).not.toHaveProperty("timeoutSeconds");
  });

  describe("the heartbeat", () => {
    /** kubectl that takes `ms` of real time, while the heartbeat runs every few ms. */
    function slowKubectl(ms: number): ApplyDeps {
      return { ...deps(), heartbeatPeriodMs: 10, runKubectl: async () => { await sleep(ms); return kubectlResult; } };
    }
    const beats = (): unknown[] => api.calls.filter((c) => c.method === "PATCH" && (c.body as Transaction).spec.clientHeartbeat !== undefined).map((c) => c.body);

    it("renews the transaction with a new counter value every period while kubectl runs, and stops before it reports how kubectl ended", async () => {
      api.verdict = () => ({ phase: "Committed", memberCount: 2 });
      expect(await runApply(options(), slowKubectl(100))).toBe(0);
      const renewals = beats();
      expect(renewals.length).toBeGreaterThanOrEqual(3);
      expect(renewals.slice(0, 3)).toEqual([1, 2, 3].map((n) => ({ spec: { clientHeartbeat: n } })));
      const report = api.calls.findIndex((c) => c.method === "PATCH" && (c.body as Transaction).spec.clientState === "Applied");
      const calls = api.calls.length;
      await sleep(50);
      expect(api.calls.length).toBe(calls);
      expect(api.calls.slice(report).filter((c) => (c.body as Transaction | undefined)?.spec?.clientHeartbeat !== undefined)).toEqual([]);
    });

    it("keeps applying through renewals the apiserver refuses, says so once, and says when one gets through again", async () => {
      api.verdict = () => ({ phase: "Committed", memberCount: 2 });
      const hiccup = (): KubeError => new KubeError({ status: 503, reason: "ServiceUnavailable", message: "etcd leader changed", method: "PATCH", path: TX_PATH });
      api.heartbeatErrors = [hiccup(), hiccup()];
      expect(await runApply(options(), slowKubectl(100))).toBe(0);
      expect(err.filter((line) => line.startsWith("kubectl tx: could not renew"))).toEqual([
        `kubectl tx: could not renew transaction ${ID} (503 ServiceUnavailable: etcd leader changed); trying again every 0.01 s. kubetx rolls it back if no renewal gets through for 15 s`,
      ]);
      expect(err).toContain(`kubectl tx: renewed transaction ${ID} again`);
      expect(out[0]).toBe("transaction t-0123abcd committed: 2 members");
    });
  });

  it("when kubetx took part in no write, says that no policy covers the namespace, deletes the empty record and exits 0", async () => {
    api.verdict = () => ({ phase: "Committed", reason: "ApplyFinished", memberCount: 0 });
    expect(await runApply(options({ namespace: "shop" }), deps())).toBe(0);
    expect(api.calls.at(-1)).toEqual({ method: "DELETE", path: TX_PATH });
    expect(out).toEqual([
      "no transaction: no TransactionPolicy covers namespace shop (or it exempts you or these kinds), so kubetx took part in none of these writes: " +
        "kubectl applied them as plain kubectl apply does, not all-or-nothing, and kubectl tx kept no Transaction record",
      "  to make applies there all-or-nothing, a cluster admin opts the namespace in (default policy): kubectl label namespace shop kubetx.io/enabled=true --overwrite",
    ]);
  });

  it("warns that the objects in a namespace no member came from were not part of the transaction, and how to opt it in", async () => {
    await writeFile(file, `${MANIFEST}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: web}\n`);
    api.verdict = () => ({
      phase: "Committed", reason: "ApplyFinished", memberCount: 2, members: [
        { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "a", operation: "CREATE", outcome: "Committed" },
        { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "b", operation: "CREATE", outcome: "Committed" },
      ],
    });
    expect(await runApply(options({ namespace: "shop" }), deps())).toBe(0);
    expect(out[0]).toBe("transaction t-0123abcd committed: 2 members");
    expect(err.slice(-2)).toEqual([
      "kubectl tx: the objects in namespace web were not part of transaction t-0123abcd: no TransactionPolicy covers namespace web (or it exempts you or these kinds), " +
        "or kubectl wrote none of them (unchanged, or it stopped first); whatever kubectl wrote there it applied as plain kubectl apply does, and they are not all-or-nothing with the rest",
      "  to make applies there all-or-nothing, a cluster admin opts the namespace in (default policy): kubectl label namespace web kubetx.io/enabled=true --overwrite",
    ]);
    expect(api.calls.some((c) => c.method === "DELETE")).toBe(false);
  });

  it("warns of nothing when every namespace of the apply has a member", async () => {
    api.verdict = () => ({
      phase: "Committed", memberCount: 2, members: [
        { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "a", operation: "CREATE", outcome: "Committed" },
        { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "b", operation: "CREATE", outcome: "Committed" },
      ],
    });
    expect(await runApply(options({ namespace: "shop" }), deps())).toBe(0);
    expect(err.filter((line) => line.includes("not part of"))).toEqual([]);
  });

  it("names the kubeconfig context's namespace when objects name none and -n is not given", async () => {
    api.verdict = () => ({ phase: "Committed", memberCount: 0 });
    expect(await runApply(options(), deps())).toBe(0);
    expect(out[0]).toContain("no TransactionPolicy covers namespace shop and your kubeconfig context's namespace");
    expect(out[1]).toContain("kubectl label namespace NAMESPACE kubetx.io/enabled=true --overwrite");
  });

  it("reports a rollback with no member as a rollback: kubectl may have failed before its first write", async () => {
    kubectlResult = { code: 1, stderr: "error: unable to recognize" };
    api.verdict = (record) => ({ phase: "RolledBack", reason: "ApplyFailed", message: record.spec.clientMessage ?? "", memberCount: 0 });
    expect(await runApply(options(), deps())).toBe(1);
    expect(out).toEqual(["transaction t-0123abcd rolled back: ApplyFailed: error: unable to recognize"]);
    expect(api.calls.some((c) => c.method === "DELETE")).toBe(false);
  });

  it("stops waiting when the record is deleted under it", async () => {
    api.verdict = () => undefined;
    api.getErrors = [notFound("GET", TX_PATH)];
    await expect(runApply(options(), deps())).rejects.toThrow(`kubectl tx: transaction ${ID} was deleted while kubectl tx waited for it`);
  });
  describe("the prepare", () => {
    it("names every object, in the namespace kubectl writes it to, with the user's groups, and runs kubectl once kubetx prepared it", async () => {
      api.whoAmIGroups = ["devs", "system:authenticated"];
      api.verdict = () => ({ phase: "Committed", memberCount: 2 });
      const code = await runApply(options({ prepare: true }), deps());
      expect(code).toBe(0);
      expect((api.calls[1]?.body as Transaction).spec.prepare).toEqual({
        groups: ["devs", "system:authenticated"],
        members: [
          { apiVersion: "v1", kind: "ConfigMap", namespace: "shop", name: "a" },
          { apiVersion: "v1", kind: "ConfigMap", namespace: "default", name: "b" },
        ],
      });
      // The record was read and found prepared; only then did kubectl (started before) get its objects, and its end was reported.
      expect(api.calls[2]).toEqual({ method: "GET", path: TX_PATH });
      expect(runs).toHaveLength(1);
      expect(runs[0]?.callsBeforeRead).toBe(3);
      expect(api.calls[3]).toEqual({ method: "PATCH", path: TX_PATH, body: { spec: { clientState: "Applied", clientSettled: true } } });
      expect(err).toEqual([`kubectl tx: applying 2 objects as transaction ${ID}`]);
    });

    it("puts objects that name no namespace in -n's namespace, else the kubeconfig context's", async () => {
      api.verdict = () => ({ phase: "Committed", memberCount: 2 });
      await runApply(options({ prepare: true, namespace: "web" }), deps());
      expect((api.calls[1]?.body as Transaction).spec.prepare?.members.map((m) => m.namespace)).toEqual(["shop", "web"]);
      api = new FakeApiserver();
      api.contextNamespace = "team-a";
      api.verdict = () => ({ phase: "Committed", memberCount: 2 });
      await runApply(options({ prepare: true }), deps());
      expect((api.calls[1]?.body as Transaction).spec.prepare?.members.map((m) => m.namespace)).toEqual(["shop", "team-a"]);
    });

    it("asks for no prepare with -l: kubectl applies only what the selector matches", async () => {
      api.verdict = () => ({ phase: "Committed", memberCount: 1 });
      await runApply(options({ prepare: true, selector: "app=web" }), deps());
      expect((api.calls[1]?.body as Transaction).spec.prepare).toBeUndefined();
      expect(runs).toHaveLength(1);
    });

    it("stops kubectl before it reads anything when kubetx refuses the prepare, says why, and reports the rollback", async () => {
      api.prepared = () => ({ phase: "Open", failure: "it could not be prepared: configmaps shop/a is locked by transaction t-99999999 (bob) since 10:00:00 UTC; retry in a minute. Nothing was written" });
      api.verdict = () => ({ phase: "RolledBack", reason: "MemberFailed", message: "nothing was written" });
      const code = await runApply(options({ prepare: true }), deps());
      expect(code).toBe(1);
      expect(runs).toEqual([STOPPED]);
      expect(err).toContain(`kubectl tx: kubetx could not prepare ${ID}: it could not be prepared: configmaps shop/a is locked by transaction t-99999999 (bob) since 10:00:00 UTC; retry in a minute. Nothing was written; kubectl was stopped before it read the objects`);
      expect(api.calls.some((c) => c.method === "PATCH" && (c.body as Transaction).spec.clientState !== undefined)).toBe(false);
    });

    it("runs kubectl unprepared, and says so, when kubetx has not prepared it within 10 s", async () => {
      api.prepared = () => undefined;
      api.verdict = () => ({ phase: "Committed", memberCount: 2 });
      const started = now;
      const code = await runApply(options({ prepare: true }), deps());
      expect(code).toBe(0);
      expect(runs).toHaveLength(1);
      expect(err).toContain("kubectl tx: running kubectl unprepared (kubetx did not prepare it within 10 s); each write locks as it arrives");
      expect(now - started).toBeGreaterThanOrEqual(10_000);
    });

    it("reports a kubectl that ended before it was fed (Ctrl-C during the prepare) at once, without waiting for the prepare", async () => {
      api.prepared = () => undefined;
      api.verdict = (record) => ({ phase: "RolledBack", reason: "ClientFailed", message: record.spec.clientMessage ?? "" });
      // Interrupted as the record is created: a kubectl that ended before that is another test's.
      let interrupt: () => void = () => undefined;
      const interrupted = new Promise<void>((resolve) => (interrupt = resolve));
      const create = api.create.bind(api);
      api.create = <T,>(p: string, body: unknown): Promise<T> => {
        if (p === TX_COLLECTION) interrupt();
        return create<T>(p, body);
      };
      const interruptedDeps: ApplyDeps = { ...deps(), runKubectl: async () => {
        await interrupted;
        return { code: 130, stderr: "kubectl was stopped by SIGINT", failure: "kubectl was stopped by SIGINT" };
      } };
      const code = await runApply(options({ prepare: true }), interruptedDeps);
      expect(code).toBe(1);
      expect(err).toContain(`kubectl tx: kubectl was stopped by SIGINT; asking kubetx to roll back ${ID}`);
      expect(err.some((line) => line.includes("running kubectl unprepared"))).toBe(false);
      const report = api.calls.findIndex((c) => c.method === "PATCH" && (c.body as Transaction).spec.clientState === "Failed");
      // Reported after the record was created and read once, not after ten seconds of reads.
      expect(report).toBeGreaterThan(0);
      expect(api.calls.slice(0, report).filter((c) => c.method === "GET").length).toBeLessThan(5);
    });

    it("opens no transaction when kubectl ended before it (Ctrl-C while the files are read), and exits with kubectl's code", async () => {
      const interrupted: ApplyDeps = { ...deps(), runKubectl: () => Promise.resolve({ code: 130, stderr: "kubectl was stopped by SIGINT", failure: "kubectl was stopped by SIGINT" }) };
      const code = await runApply(options({ prepare: true }), interrupted);
      expect(code).toBe(130);
      expect(err).toEqual(["kubectl tx: kubectl was stopped by SIGINT before it was given the objects; nothing was applied and no transaction was opened"]);
      expect(api.calls.filter((c) => c.method !== "GET" && !c.path.endsWith("selfsubjectreviews"))).toEqual([]);
      expect(out).toEqual([]);
    });

    it("runs kubectl at once when the cluster's Transaction resource dropped spec.prepare (a kubetx older than the plugin)", async () => {
      api.dropPrepare = true;
      api.verdict = () => ({ phase: "Committed", memberCount: 2 });
      const started = now;
      await runApply(options({ prepare: true }), deps());
      expect(runs).toHaveLength(1);
      expect(now - started).toBeLessThan(1_000);
      expect(err.some((line) => line.includes("kubetx is older than this kubectl tx"))).toBe(true);
    });
  });
});
