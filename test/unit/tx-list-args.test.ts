import { describe, expect, it } from "vitest";
import { TxError } from "../../src/cli/tx/errors.ts";
import { parseReviewCommand } from "../../src/cli/tx/review-args.ts";
import { AUDIT_HELP, DESCRIBE_HELP, LIST_HELP, LOCKS_HELP, TOP_HELP } from "../../src/cli/tx/review-help.ts";

function usage(argv: readonly string[]): string {
  try {
    parseReviewCommand(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(TxError);
    expect((error as TxError).exitCode).toBe(2);
    return (error as TxError).message;
  }
  throw new Error(`no usage error for ${argv.join(" ")}`);
}

describe("the review commands' command line", () => {
  it("leaves apply, its help and unknown commands to the apply parser", () => {
    expect(parseReviewCommand(["apply", "-f", "x"])).toBeUndefined();
    expect(parseReviewCommand(["help", "apply"])).toBeUndefined();
    expect(parseReviewCommand(["--help", "apply"])).toBeUndefined();
    expect(parseReviewCommand(["bogus"])).toBeUndefined();
  });

  it("prints the help that lists every command, exit code 2 when no command is given", () => {
    expect(parseReviewCommand([])).toEqual({ kind: "help", text: TOP_HELP, exitCode: 2 });
    expect(parseReviewCommand(["--help"])).toEqual({ kind: "help", text: TOP_HELP, exitCode: 0 });
    expect(parseReviewCommand(["-h"])).toEqual({ kind: "help", text: TOP_HELP, exitCode: 0 });
    for (const command of ["apply", "list", "describe", "locks", "audit"]) expect(TOP_HELP).toContain(`kubectl tx ${command} `);
    expect(TOP_HELP).toContain("kubetx must be installed in the cluster");
  });

  it("prints each command's help with --help, -h or `help COMMAND`", () => {
    const helps = { list: LIST_HELP, describe: DESCRIBE_HELP, locks: LOCKS_HELP, audit: AUDIT_HELP };
    for (const [command, text] of Object.entries(helps)) {
      expect(parseReviewCommand([command, "--help"])).toEqual({ kind: "help", text, exitCode: 0 });
      expect(parseReviewCommand([command, "-h"])).toEqual({ kind: "help", text, exitCode: 0 });
      expect(parseReviewCommand(["help", command])).toEqual({ kind: "help", text, exitCode: 0 });
      expect(text).toContain(`kubectl tx ${command}`);
    }
  });
});

describe("kubectl tx list's flags", () => {
  it("default to every transaction as a table", () => {
    expect(parseReviewCommand(["list"])).toEqual({ kind: "list", options: { output: "table" } });
  });

  it("take filters, a phase in any case, a duration, json, and a kubeconfig and context", () => {
    expect(parseReviewCommand(["list", "--user", "alice", "-n", "shop", "--phase", "rolledback", "--since", "1h30m", "-o", "json", "--kubeconfig", "/k", "--context", "c"]))
      .toEqual({ kind: "list", options: { user: "alice", namespace: "shop", phase: "RolledBack", sinceSeconds: 5400, output: "json", kubeconfig: "/k", context: "c" } });
    expect(parseReviewCommand(["list", "--namespace=shop", "--since=90", "--output=table"]))
      .toEqual({ kind: "list", options: { namespace: "shop", sinceSeconds: 90, output: "table" } });
  });

  it("refuse a bad phase, duration, output, empty filter, argument or unknown flag, naming the fix", () => {
    expect(usage(["list", "--phase", "Done"])).toBe("kubectl tx: --phase 'Done' is not a phase; use one of Open, Verifying, Committed, RollingBack, RolledBack, Failed; run 'kubectl tx list --help'");
    expect(usage(["list", "--since", "yesterday"])).toBe("kubectl tx: --since 'yesterday' is not a duration; use whole seconds or units, e.g. 90, 30s, 15m, 2h, 1h30m; run 'kubectl tx list --help'");
    expect(usage(["list", "--since", "0s"])).toMatch(/--since '0s' is not a duration/);
    expect(usage(["list", "-o", "yaml"])).toBe("kubectl tx: -o must be table or json, got 'yaml'; run 'kubectl tx list --help'");
    expect(usage(["list", "--user", ""])).toBe("kubectl tx: --user needs a value; run 'kubectl tx list --help'");
    expect(usage(["list", "t-0123abcd"])).toBe("kubectl tx: list takes no arguments, got 't-0123abcd'; run 'kubectl tx list --help'");
    expect(usage(["list", "--all-users"])).toMatch(/^kubectl tx: unknown option '--all-users'; run 'kubectl tx list --help'$/);
  });

  it("take -A and --all-namespaces as kubectl does: across namespaces, the default, overriding -n", () => {
    expect(parseReviewCommand(["list", "-A"])).toEqual({ kind: "list", options: { output: "table" } });
    expect(parseReviewCommand(["list", "--all-namespaces", "-o", "json"])).toEqual({ kind: "list", options: { output: "json" } });
    expect(parseReviewCommand(["list", "-n", "shop", "-A", "--all"])).toEqual({ kind: "list", options: { all: true, output: "table" } });
  });

  it("say in --help what -A does, and that everyone's transactions is --all", () => {
    expect(LIST_HELP).toMatch(/-A, --all-namespaces +transactions with members in any namespace/);
    expect(LIST_HELP).toContain("(everyone's\n                           transactions is --all)");
  });
});

describe("kubectl tx describe's arguments", () => {
  it("take one transaction id", () => {
    expect(parseReviewCommand(["describe", "t-0123abcd"])).toEqual({ kind: "describe", options: { id: "t-0123abcd", output: "table" } });
    expect(parseReviewCommand(["describe", "-o", "json", "t-0123abcd", "--kubeconfig", "/k"]))
      .toEqual({ kind: "describe", options: { id: "t-0123abcd", output: "json", kubeconfig: "/k" } });
  });

  it("refuse none, several, or one that is not a transaction id", () => {
    expect(usage(["describe"])).toBe("kubectl tx: describe takes one transaction id, got none; find ids with 'kubectl tx list'; run 'kubectl tx describe --help'");
    expect(usage(["describe", "t-0123abcd", "t-4567abcd"])).toMatch(/describe takes one transaction id, got 't-0123abcd t-4567abcd'/);
    expect(usage(["describe", "web"])).toMatch(/^kubectl tx: transaction id 'web' must look like t-4f2a9c1e/);
  });
});

describe("kubectl tx locks' flags", () => {
  it("take an output format and a kubeconfig, nothing else", () => {
    expect(parseReviewCommand(["locks", "-o", "json", "--kubeconfig", "/admin"])).toEqual({ kind: "locks", options: { output: "json", kubeconfig: "/admin" } });
    expect(usage(["locks", "shop"])).toBe("kubectl tx: locks takes no arguments, got 'shop'; run 'kubectl tx locks --help'");
  });
});

describe("kubectl tx audit's flags", () => {
  it("take log files in order, and filters", () => {
    expect(parseReviewCommand(["audit", "--log", "audit.log", "--log", "audit-1.log.gz", "--transaction", "t-0123abcd", "--user", "alice", "-o", "json"]))
      .toEqual({ kind: "audit", options: { logs: ["audit.log", "audit-1.log.gz"], transaction: "t-0123abcd", user: "alice", output: "json" } });
  });

  it("need a log, and say to repeat --log for each file of a shell glob", () => {
    expect(usage(["audit"])).toBe("kubectl tx: audit needs at least one --log FILE (the apiserver's --audit-log-path); run 'kubectl tx audit --help'");
    expect(usage(["audit", "--log", "a.log", "b.log"])).toBe("kubectl tx: audit reads only files named with --log, got 'b.log'; write --log before each file; run 'kubectl tx audit --help'");
    expect(usage(["audit", "--log", ""])).toBe("kubectl tx: --log needs a file name; run 'kubectl tx audit --help'");
    expect(usage(["audit", "--log", "a", "--transaction", "x"])).toMatch(/transaction id 'x' must look like/);
    expect(usage(["audit", "--log", "a", "--kubeconfig", "/k"])).toMatch(/unknown option '--kubeconfig'/);
  });
});
