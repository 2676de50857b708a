import { describe, expect, it } from "vitest";
import type { ApplyOptions } from "../../src/cli/tx/args.ts";
import { STDERR_KEEP_CHARS, applyCopyArgs, applyOriginalArgs, stderrTail } from "../../src/cli/tx/kubectl.ts";
import { clientStatePatch, clusterScopedLines, formatOutcome, isUncovered, outsideLines, progressLine, settled, targetNamespaces, uncoveredLines } from "../../src/cli/tx/outcome.ts";
import type { Transaction } from "../../src/transactions/model.ts";

const base: ApplyOptions = { files: ["a.yaml"], recursive: false, timeoutSeconds: 60, dryRun: "none", prune: false };

describe("the kubectl command line", () => {
  it("applies the annotated copy from stdin with the pass-through flags only when given", () => {
    expect(applyCopyArgs(base)).toEqual(["apply", "--filename", "-"]);
    expect(applyCopyArgs({ ...base, namespace: "shop", kubeconfig: "/k", context: "prod", dryRun: "server", prune: true, selector: "app=web" }))
      .toEqual(["apply", "--filename", "-", "--namespace", "shop", "--kubeconfig", "/k", "--context", "prod", "--dry-run=server", "--prune", "--selector", "app=web"]);
  });

  it("passes server-side apply's flags through", () => {
    expect(applyCopyArgs({ ...base, serverSide: true, forceConflicts: true, fieldManager: "ci" }))
      .toEqual(["apply", "--filename", "-", "--server-side", "--force-conflicts", "--field-manager", "ci"]);
  });

  it("passes the user's own -f and -R through for --dry-run=client", () => {
    expect(applyOriginalArgs({ ...base, files: ["a.yaml", "dir"], recursive: true, dryRun: "client" }))
      .toEqual(["apply", "--filename", "a.yaml", "--filename", "dir", "--recursive", "--dry-run=client"]);
  });
});

describe("what kubectl tx tells kubetx", () => {
  it("says Applied when kubectl exited 0, whatever it printed", () => {
    expect(clientStatePatch({ code: 0, stderr: "Warning: something" })).toEqual({ spec: { clientState: "Applied", clientSettled: true } });
  });

  it("says Failed with the end of kubectl's errors otherwise", () => {
    expect(clientStatePatch({ code: 1, stderr: 'The ConfigMap "c" is invalid' })).toEqual({ spec: { clientState: "Failed", clientMessage: 'The ConfigMap "c" is invalid', clientSettled: true } });
  });

  it("leaves kubectl's warnings (kubetx's joined-transaction notes, klog W lines) out of the message", () => {
    const stderr = "Warning: kubetx: joined transaction t-0123abcd (1 member)\nThe ConfigMap \"c\" is invalid\nWarning: deprecated\n" +
      "W1124 14:12:30.182893   26298 prune.go:71] Deprecated: kubectl apply will no longer prune non-namespaced resources\n";
    expect(clientStatePatch({ code: 1, stderr })).toEqual({ spec: { clientState: "Failed", clientMessage: 'The ConfigMap "c" is invalid', clientSettled: true } });
  });

  it("says Failed with the exit code when kubectl printed nothing but warnings", () => {
    expect(clientStatePatch({ code: 1, stderr: "Warning: kubetx: joined transaction t-0123abcd (1 member)\n" }))
      .toEqual({ spec: { clientState: "Failed", clientMessage: "kubectl apply exited with code 1", clientSettled: true } });
  });

  it("says Failed with the exit code when kubectl printed nothing", () => {
    expect(clientStatePatch({ code: 137, stderr: "  " })).toEqual({ spec: { clientState: "Failed", clientMessage: "kubectl apply exited with code 137", clientSettled: true } });
  });

  it("says settled only when kubectl exited on its own: a signal may leave a request of it on its way", () => {
    expect(clientStatePatch({ code: 130, stderr: "kubectl was stopped by SIGINT", failure: "kubectl was stopped by SIGINT" }))
      .toEqual({ spec: { clientState: "Failed", clientMessage: "kubectl was stopped by SIGINT" } });
    expect(clientStatePatch({ code: 127, stderr: "spawn ENOENT", failure: "kubectl could not run: spawn ENOENT" }).spec.clientSettled).toBeUndefined();
  });

  it("says settled after errors the apiserver answered, not after a lost connection or a timeout, which may leave a request going on", () => {
    expect(settled({ code: 1, stderr: 'Error from server (Forbidden): error when creating "STDIN": admission webhook "validate.kubetx.io" denied the request: kubetx: locked' })).toBe(true);
    expect(settled({ code: 1, stderr: 'The ConfigMap "c" is invalid: data[bad key]: Invalid value: "bad key"' })).toBe(true);
    for (const error of [
      'error when creating "STDIN": Post "https://127.0.0.1:6443/api/v1/namespaces/shop/configmaps": unexpected EOF',
      'error when creating "STDIN": Post "https://127.0.0.1:6443/api/v1/namespaces/shop/configmaps": read tcp 127.0.0.1:40000->127.0.0.1:6443: read: connection reset by peer',
      "Error from server (Timeout): error when creating \"STDIN\": Timeout: request did not complete within requested timeout - context deadline exceeded",
      "Unable to connect to the server: net/http: TLS handshake timeout",
      "error: http2: client connection lost",
      'Error from server (InternalError): Internal error occurred: resource quota evaluation timed out',
      "Error from server (ServiceUnavailable): the server is currently unavailable",
    ]) expect(settled({ code: 1, stderr: error }), error).toBe(false);
    // Errors cut to the last STDERR_KEEP_CHARS characters may have lost one of those.
    expect(settled({ code: 1, stderr: "x".repeat(STDERR_KEEP_CHARS) })).toBe(false);
  });

  it("keeps whole last lines of stderr within the CRD's 4096 characters", () => {
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${"x".repeat(40)}`);
    const tail = stderrTail(`${lines.join("\n")}\n`);
    expect(tail.length).toBeLessThanOrEqual(4096);
    expect(tail.endsWith("line 199 " + "x".repeat(40))).toBe(true);
    expect(tail.split("\n")[0]).toMatch(/^line \d+ x+$/);
  });

  it("keeps the end of a single line longer than the limit", () => {
    expect(stderrTail(`start${"y".repeat(5000)}end`, 100)).toBe(`${"y".repeat(97)}end`);
  });
});

function tx(status: Transaction["status"]): Transaction {
  return { apiVersion: "kubetx.io/v1alpha1", kind: "Transaction", metadata: { name: "t-0123abcd" }, spec: { user: "alice", mode: "plugin" }, status };
}

describe("the outcome report", () => {
  it("reports a commit with one line per member and exit code 0", () => {
    const outcome = formatOutcome(tx({
      phase: "Committed", memberCount: 2, members: [
        { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "settings", operation: "CREATE", outcome: "Committed" },
        { group: "apps", version: "v1", resource: "deployments", namespace: "shop", name: "web", operation: "UPDATE", outcome: "Committed" },
      ],
    }));
    expect(outcome).toEqual({
      exitCode: 0,
      lines: ["transaction t-0123abcd committed: 2 members", "  CREATE configmaps shop/settings: Committed", "  UPDATE apps/deployments shop/web: Committed"],
    });
  });

  it("tells a commit that no write joined from one that has members, and a rollback with none from neither", () => {
    expect(isUncovered(tx({ phase: "Committed", memberCount: 0 }))).toBe(true);
    expect(isUncovered(tx({ phase: "Committed", memberCount: 1 }))).toBe(false);
    expect(isUncovered(tx({ phase: "RolledBack", memberCount: 0 }))).toBe(false);
  });

  it("names each namespace the objects go to once, and the context's for objects that name none", () => {
    const objects = [{ metadata: { name: "a", namespace: "shop" } }, { metadata: { name: "b" } }, { metadata: { name: "c", namespace: "shop" } }];
    expect(targetNamespaces(objects, undefined)).toEqual(["shop", undefined]);
    expect(targetNamespaces(objects, "web")).toEqual(["shop", "web"]);
    expect(uncoveredLines(["shop", "web"])[0]).toContain("no TransactionPolicy covers namespaces shop, web (or");
    expect(uncoveredLines(["shop", "web"])[1]).toContain("kubectl label namespace NAMESPACE kubetx.io/enabled=true --overwrite");
    expect(uncoveredLines([undefined])[0]).toContain("no TransactionPolicy covers your kubeconfig context's namespace (or");
  });

  it("leaves cluster-scoped objects out of the namespaces the objects go to", () => {
    const objects = [{ kind: "Namespace", metadata: { name: "shop" } }, { kind: "ClusterRole", metadata: { name: "reader" } }, { kind: "ConfigMap", metadata: { name: "a", namespace: "shop" } }];
    expect(targetNamespaces(objects, undefined)).toEqual(["shop"]);
    expect(targetNamespaces([...objects, { kind: "ConfigMap", metadata: { name: "b" } }], "web")).toEqual(["shop", "web"]);
  });

  it("opts a namespace in with --overwrite, which also turns kubetx.io/enabled=false around", () => {
    expect(uncoveredLines(["shop"])).toEqual([
      "no transaction: no TransactionPolicy covers namespace shop (or it exempts you or these kinds), so kubetx took part in none of these writes: " +
        "kubectl applied them as plain kubectl apply does, not all-or-nothing, and kubectl tx kept no Transaction record",
      "  to make applies there all-or-nothing, a cluster admin opts the namespace in (default policy): kubectl label namespace shop kubetx.io/enabled=true --overwrite",
    ]);
  });

  it("says kubetx never covers kube-system or its own namespace, and suggests no label there", () => {
    expect(uncoveredLines(["kube-system"])).toEqual([
      "no transaction: kubetx never covers namespace kube-system (the control plane's namespaces and kubetx's own, so that a kubetx outage cannot block them), " +
        "so kubetx took part in none of these writes: kubectl applied them as plain kubectl apply does, not all-or-nothing, and kubectl tx kept no Transaction record",
    ]);
    const mixed = uncoveredLines(["kubetx-system", "shop"]);
    expect(mixed[0]).toContain("no TransactionPolicy covers namespace shop (or it exempts you or these kinds), and kubetx never covers namespace kubetx-system (");
    expect(mixed[1]).toContain("kubectl label namespace shop kubetx.io/enabled=true --overwrite");
    expect(mixed.join("\n")).not.toContain("label namespace kubetx-system");
  });

  it("counts one member in the singular", () => {
    expect(formatOutcome(tx({ phase: "Committed", memberCount: 1, members: [] })).lines[0]).toBe("transaction t-0123abcd committed: 1 member");
  });

  it("reports a rollback with the reason, each member's outcome and message, and exit code 1", () => {
    const outcome = formatOutcome(tx({
      phase: "RolledBack", reason: "ClientFailed", message: "kubectl apply failed", members: [
        { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "a", operation: "CREATE", outcome: "Restored" },
        { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "c", operation: "CREATE", outcome: "NotPersisted", message: "rejected by the apiserver" },
      ],
    }));
    expect(outcome).toEqual({
      exitCode: 1,
      lines: [
        "transaction t-0123abcd rolled back: ClientFailed: kubectl apply failed",
        "  CREATE configmaps shop/a: Restored",
        "  CREATE configmaps shop/c: NotPersisted (rejected by the apiserver)",
      ],
    });
  });

  it("reports the member's failure, not the record's summary of it, as why a rollback happened", () => {
    const outcome = formatOutcome(tx({
      phase: "RolledBack", reason: "MemberFailed", message: "a member failed (see failure), so the transaction's 1 member rolls back",
      failure: "the apiserver refused the create of configmaps shop/c after kubetx admitted it", members: [],
    }));
    expect(outcome.lines).toEqual(["transaction t-0123abcd rolled back: MemberFailed: the apiserver refused the create of configmaps shop/c after kubetx admitted it"]);
  });

  it("reports a failed transaction with what to do next", () => {
    const outcome = formatOutcome(tx({ phase: "Failed", reason: "RestoreFailed", members: [
      { group: "", version: "v1", resource: "namespaces", name: "gone", operation: "DELETE", outcome: "Failed", message: "has finalizers" },
    ] }));
    expect(outcome.exitCode).toBe(1);
    expect(outcome.lines).toEqual([
      "transaction t-0123abcd failed: RestoreFailed",
      "  DELETE namespaces gone: Failed (has finalizers)",
      "kubetx keeps the locks of t-0123abcd until an admin resolves it; see kubectl get transaction t-0123abcd -o yaml",
    ]);
  });

  it("indents the further lines of a message of several lines", () => {
    expect(formatOutcome(tx({ phase: "RolledBack", reason: "ApplyFailed", message: "error one\nerror two\n", members: [
      { group: "", version: "v1", resource: "configmaps", namespace: "shop", name: "a", operation: "CREATE", outcome: "Restored" },
    ] })).lines).toEqual(["transaction t-0123abcd rolled back: ApplyFailed: error one\n    error two", "  CREATE configmaps shop/a: Restored"]);
  });

  it("says so when kubetx recorded no reason", () => {
    expect(formatOutcome(tx({ phase: "RolledBack" })).lines[0]).toBe("transaction t-0123abcd rolled back: kubetx recorded no reason");
  });

  it("shows the phase and member count while waiting", () => {
    expect(progressLine("t-0123abcd", tx({ phase: "Verifying", memberCount: 3 }), 5_100)).toBe("kubectl tx: waiting for transaction t-0123abcd (Verifying, 3 members, 5 s)");
    expect(progressLine("t-0123abcd", tx(undefined), 10_000)).toBe("kubectl tx: waiting for transaction t-0123abcd (not yet picked up by kubetx, 10 s)");
  });
});

describe("objects outside the transaction", () => {
  const committed = (namespaces: string[], phase: "Committed" | "RolledBack" = "Committed"): Transaction => tx({
    phase, memberCount: namespaces.length,
    members: namespaces.map((namespace) => ({ group: "", version: "v1", resource: "configmaps", namespace, name: "a", operation: "CREATE", outcome: phase === "Committed" ? "Committed" : "Restored" })),
  });

  it("names the cluster-scoped objects of the apply, and says a rollback left them", () => {
    const objects = [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "shop" } },
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "reader" } },
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "a", namespace: "shop" } },
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "b" } },
    ];
    expect(clusterScopedLines(objects, committed(["shop"], "RolledBack"))).toEqual([
      "kubectl tx: namespace/shop, clusterrole/reader are cluster-scoped, and kubetx takes part in no write of such an object: not part of transaction t-0123abcd, and they stay as kubectl left them",
    ]);
    expect(clusterScopedLines(objects.slice(0, 1), committed(["shop"]))).toEqual([
      "kubectl tx: namespace/shop is cluster-scoped, and kubetx takes part in no write of such an object: not part of transaction t-0123abcd",
    ]);
    expect(clusterScopedLines(objects.slice(2), committed(["shop"]))).toEqual([]);
  });

  it("warns nothing when a member came from every namespace the objects went to", () => {
    expect(outsideLines(committed(["shop", "web"]), ["shop", "web"])).toEqual([]);
  });

  it("warns nothing for a transaction no member joined: that is the uncovered report's to say", () => {
    expect(outsideLines(tx({ phase: "Committed", memberCount: 0 }), ["shop"])).toEqual([]);
  });

  it("names a namespace no member came from, says a rollback left its objects, and how to opt it in", () => {
    const lines = outsideLines(committed(["shop"], "RolledBack"), ["shop", "web"]);
    expect(lines[0]).toMatch(/^kubectl tx: the objects in namespace web were not part of transaction t-0123abcd: no TransactionPolicy covers namespace web /);
    expect(lines[0]).toMatch(/and they were not rolled back with it$/);
    expect(lines[1]).toBe("  to make applies there all-or-nothing, a cluster admin opts the namespace in (default policy): kubectl label namespace web kubetx.io/enabled=true --overwrite");
  });

  it("says kube-system is never covered, with no label to suggest", () => {
    const lines = outsideLines(committed(["shop"]), ["shop", "kube-system"]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("the objects in namespace kube-system were not part of transaction t-0123abcd: kubetx never covers namespace kube-system");
    expect(lines[0]).toMatch(/they are not all-or-nothing with the rest$/);
  });

  it("counts the context's namespace as joined when a member came from a namespace no object names", () => {
    expect(outsideLines(committed(["shop", "default"]), ["shop", undefined])).toEqual([]);
    expect(outsideLines(committed(["shop"]), ["shop", undefined])[0]).toContain("the objects in your kubeconfig context's namespace were not part of");
  });

  it("reads the namespaces an open record noted when it lists no members", () => {
    expect(outsideLines(tx({ phase: "Committed", memberCount: 1, namespaces: ["shop"] }), ["shop"])).toEqual([]);
  });
});
