import { describe, expect, it } from "vitest";
import { ReadOnlyClient } from "../support/read-only-client.ts";
import type { ReviewDeps } from "../../src/cli/tx/cluster-read.ts";
import { LIST_PAGE_SIZE } from "../../src/cli/tx/cluster-read.ts";
import { TxError } from "../../src/cli/tx/errors.ts";
import { listTable, runList, selectTransactions, transactionRow } from "../../src/cli/tx/list.ts";
import type { ListOptions } from "../../src/cli/tx/review-args.ts";
import { humanAge, renderTable } from "../../src/cli/tx/table.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { Forbidden, KubeError, NotFound } from "../../src/kube/errors.ts";
import type { MemberSummary, Transaction, TransactionStatus } from "../../src/transactions/model.ts";

const NOW = Date.parse("2026-11-24T15:00:00Z");
const TRANSACTIONS = "/apis/kubetx.io/v1alpha1/transactions";

function member(namespace: string, name: string, outcome: MemberSummary["outcome"] = "Committed"): MemberSummary {
  return { group: "", version: "v1", resource: "configmaps", namespace, name, operation: "CREATE", outcome };
}

function tx(id: string, minutesAgo: number, spec: Partial<Transaction["spec"]> = {}, status?: TransactionStatus): Transaction {
  return {
    apiVersion: "kubetx.io/v1alpha1", kind: "Transaction",
    metadata: { name: id, creationTimestamp: new Date(NOW - minutesAgo * 60_000).toISOString() },
    spec: { user: "alice", mode: "explicit", ...spec },
    ...(status ? { status } : {}),
  };
}

const committed = tx("t-commit01", 5, {}, { phase: "Committed", reason: "AllMembersPersisted", memberCount: 2, members: [member("shop", "a"), member("shop", "b")] });
const rolledBack = tx("t-rolled01", 1, { mode: "transparent" }, { phase: "RolledBack", reason: "MemberRejected", members: [member("web", "c", "Restored")] });
const bobs = tx("t-bobs0001", 120, { user: "bob", mode: "plugin" }, { phase: "Committed", memberCount: 1, members: [member("shop", "z")] });
const fresh = tx("t-fresh001", 0.1, { mode: "plugin" });
const ALL = [committed, bobs, fresh, rolledBack];

const ids = (list: readonly Transaction[]): string[] => list.map((t) => t.metadata?.name ?? "");
const table: ListOptions = { output: "table" };


function deps(client: KubeClient): ReviewDeps & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { connect: () => Promise.resolve(client), now: () => NOW, say: (l) => out.push(l), warn: (l) => err.push(l), out, err };
}

describe("choosing transactions to list", () => {
  it("lists every transaction newest first", () => {
    expect(ids(selectTransactions(ALL, table, NOW))).toEqual(["t-fresh001", "t-rolled01", "t-commit01", "t-bobs0001"]);
  });

  it("keeps those of --user, with a member in --namespace, in --phase, created within --since", () => {
    expect(ids(selectTransactions(ALL, { ...table, user: "bob" }, NOW))).toEqual(["t-bobs0001"]);
    expect(ids(selectTransactions(ALL, { ...table, namespace: "shop" }, NOW))).toEqual(["t-commit01", "t-bobs0001"]);
    expect(ids(selectTransactions(ALL, { ...table, phase: "Committed" }, NOW))).toEqual(["t-commit01", "t-bobs0001"]);
    expect(ids(selectTransactions(ALL, { ...table, sinceSeconds: 600 }, NOW))).toEqual(["t-fresh001", "t-rolled01", "t-commit01"]);
    expect(ids(selectTransactions(ALL, { ...table, user: "alice", phase: "Committed", namespace: "shop", sinceSeconds: 3600 }, NOW))).toEqual(["t-commit01"]);
  });

  it("counts a record kubetx has not picked up yet (no phase) as Open", () => {
    const open = tx("t-open0001", 0.5, { mode: "plugin" }, { phase: "Open", memberCount: 1 });
    expect(ids(selectTransactions([...ALL, open], { ...table, phase: "Open" }, NOW))).toEqual(["t-fresh001", "t-open0001"]);
    expect(ids(selectTransactions([...ALL, open], { ...table, phase: "Committed" }, NOW))).not.toContain("t-fresh001");
  });

  it("finds an open transaction in --namespace by the namespaces kubetx notes before it lists the members", () => {
    const open = tx("t-open0001", 0.5, { mode: "plugin" }, { phase: "Open", memberCount: 3, namespaces: ["shop", "web"] });
    expect(ids(selectTransactions([...ALL, open], { ...table, namespace: "web" }, NOW))).toEqual(["t-open0001", "t-rolled01"]);
    expect(ids(selectTransactions([...ALL, open], { ...table, namespace: "cart" }, NOW))).toEqual([]);
  });
});

describe("a listed transaction", () => {
  it("shows id, user, mode, phase, members, creation time and reason; null before kubetx has set them", () => {
    expect(transactionRow(committed)).toEqual({
      id: "t-commit01", user: "alice", mode: "explicit", phase: "Committed", members: 2, created: "2026-11-24T14:55:00.000Z", reason: "AllMembersPersisted",
    });
    expect(transactionRow(rolledBack).members).toBe(1);
    expect(transactionRow(fresh)).toMatchObject({ phase: null, members: 0, reason: null });
  });

  it("is a table row with kubectl's AGE and - for a phase not yet set", () => {
    expect(listTable([committed, fresh].map(transactionRow), NOW)).toEqual([
      "ID           USER    MODE       PHASE       MEMBERS   AGE   REASON",
      "t-commit01   alice   explicit   Committed   2         5m    AllMembersPersisted",
      "t-fresh001   alice   plugin     -           0         6s",
    ]);
  });
});

describe("kubectl's ages and tables", () => {
  it("grow coarser as they grow, like kubectl's AGE column", () => {
    const s = 1000, m = 60 * s, h = 60 * m, d = 24 * h;
    expect([0, 59 * s, 119 * s, 2 * m, 3 * m + 12 * s, 25 * m, 4 * h + 10 * m, 5 * h, 30 * h, 3 * d + 4 * h, 3 * d, 12 * d, -5 * s].map(humanAge))
      .toEqual(["0s", "59s", "119s", "2m", "3m12s", "25m", "4h10m", "5h", "30h", "3d4h", "3d", "12d", "0s"]);
  });

  it("pad each column to its widest cell and leave no trailing spaces", () => {
    expect(renderTable(["A", "LONG"], [["wide cell", ""], ["x", "y"]])).toEqual(["A           LONG", "wide cell", "x           y"]);
  });
});

describe("kubectl tx list", () => {
  it("reads every page and prints the table on stdout", async () => {
    const client = new ReadOnlyClient((_path, query) =>
      query.continue === undefined ? { items: [committed, bobs], metadata: { continue: "page-2" } } : { items: [rolledBack], metadata: {} });
    const d = deps(client);
    expect(await runList({ output: "table", user: "alice" }, d)).toBe(0);
    expect(client.calls).toEqual([
      { path: TRANSACTIONS, query: { fieldSelector: "spec.user=alice", limit: String(LIST_PAGE_SIZE), continue: undefined } },
      { path: TRANSACTIONS, query: { fieldSelector: "spec.user=alice", limit: String(LIST_PAGE_SIZE), continue: "page-2" } },
    ]);
    expect(d.out.map((l) => l.split(/\s+/)[0])).toEqual(["ID", "t-rolled01", "t-commit01"]);
    expect(client.closed).toBe(true);
  });

  it("prints JSON rows, [] when none match", async () => {
    const d = deps(new ReadOnlyClient(() => ({ items: ALL })));
    await runList({ output: "json", phase: "RolledBack", all: true }, d);
    expect(JSON.parse(d.out.join("\n"))).toEqual([transactionRow(rolledBack)]);
    const none = deps(new ReadOnlyClient(() => ({ items: ALL })));
    await runList({ output: "json", user: "carol" }, none);
    expect(JSON.parse(none.out.join("\n"))).toEqual([]);
  });

  it("says on stderr that nothing matched, and how many there are", async () => {
    const d = deps(new ReadOnlyClient(() => ({ items: ALL })));
    expect(await runList({ output: "table", user: "carol" }, d)).toBe(0);
    expect(d.out).toEqual([]);
    expect(d.err).toEqual(["No transactions match (4 in the cluster)."]);
  });

  it("says whose transactions it looked for when there are none", async () => {
    const own = deps(new WhoAmIClient("admin", () => ({ items: [] })));
    expect(await runList({ output: "table" }, own)).toBe(0);
    expect(own.err).toEqual(["No transactions of yours (admin) found; --all lists everyone's (needs the kubetx:viewer role)."]);
    const named = deps(new ReadOnlyClient(() => ({ items: [] })));
    await runList({ output: "table", user: "carol" }, named);
    expect(named.err).toEqual(["No transactions of carol found."]);
    const everyone = deps(new ReadOnlyClient(() => ({ items: [] })));
    await runList({ output: "table", all: true }, everyone);
    expect(everyone.err).toEqual(["No transactions found."]);
  });

  it("lists your own by default: asks the apiserver who you are, then for spec.user=<you>", async () => {
    const client = new WhoAmIClient("alice", () => ({ items: [committed, rolledBack] }));
    const d = deps(client);
    expect(await runList({ output: "json" }, d)).toBe(0);
    expect(client.calls).toEqual([{ path: TRANSACTIONS, query: { fieldSelector: "spec.user=alice", limit: String(LIST_PAGE_SIZE), continue: undefined } }]);
    expect((JSON.parse(d.out.join("\n")) as { id: string }[]).map((r) => r.id)).toEqual(["t-rolled01", "t-commit01"]);
  });

  it("asks for everyone's with --all, with no selector", async () => {
    const client = new ReadOnlyClient(() => ({ items: ALL }));
    await runList({ output: "json", all: true }, deps(client));
    expect(client.calls[0]?.query).toEqual({ limit: String(LIST_PAGE_SIZE), continue: undefined });
  });

  it("says what to do when kubetx is not installed, listing is forbidden, or the apiserver cannot be reached", async () => {
    const everyone: ListOptions = { output: "table", all: true };
    const fail = (error: Error, options = everyone): Promise<number> => runList(options, deps(new WhoAmIClient("carol", () => error)));
    const init = { method: "GET", path: TRANSACTIONS };
    await expect(fail(new NotFound({ ...init, status: 404, reason: "NotFound", message: "the server could not find the requested resource" })))
      .rejects.toThrow("kubectl tx: kubetx is not installed in this cluster (it has no transactions.kubetx.io resource); ask a cluster admin to install kubetx");
    const forbidden = new Forbidden({ ...init, status: 403, reason: "Forbidden", message: 'transactions.kubetx.io is forbidden: User "carol" cannot list' });
    await expect(fail(forbidden))
      .rejects.toThrow(/^kubectl tx: you may not list everyone's transactions \(403 Forbidden: .*carol.*\); you may list only your own .*kubetx:viewer role/);
    await expect(fail(forbidden, table))
      .rejects.toThrow(/^kubectl tx: you may not list the transactions of carol \(403 Forbidden: .*\); you may list only your own .* where the cluster calls kubetx's authorization webhook/);
    await expect(fail(new KubeError({ ...init, status: 500, reason: "InternalError", message: "etcd is down" })))
      .rejects.toThrow("kubectl tx: could not list everyone's transactions (500 InternalError: etcd is down); try again, or check the apiserver");
    await expect(fail(new Error("connect ECONNREFUSED 127.0.0.1:6443")))
      .rejects.toThrow("kubectl tx: cannot reach the apiserver to list everyone's transactions (connect ECONNREFUSED 127.0.0.1:6443); check your kubeconfig and context");
  });

  it("names the kubeconfig problem when it cannot connect", async () => {
    const d = { ...deps(new ReadOnlyClient(() => ({ items: [] }))), connect: () => Promise.reject(new Error("kubetx: kubeconfig /k has no context 'prod'")) };
    const run = runList(table, d);
    await expect(run).rejects.toBeInstanceOf(TxError);
    await expect(run).rejects.toThrow("kubectl tx: cannot use the kubeconfig: kubeconfig /k has no context 'prod'");
  });
});

/** Answers GETs from a script and the SelfSubjectReview that says who the caller is. */
class WhoAmIClient extends ReadOnlyClient {
  private readonly username: string;

  constructor(username: string, answer: (path: string, query: Record<string, string | undefined>) => unknown) {
    super(answer);
    this.username = username;
  }

  override create<T>(path: string): Promise<T> {
    if (path !== "/apis/authentication.k8s.io/v1/selfsubjectreviews") return super.create(path, {});
    return Promise.resolve({ status: { userInfo: { username: this.username } } } as T);
  }
}
