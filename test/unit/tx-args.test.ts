import { describe, expect, it } from "vitest";
import type { ApplyOptions, Command } from "../../src/cli/tx/args.ts";
import { parseCommand } from "../../src/cli/tx/args.ts";
import { durationSeconds, parseTimeout } from "../../src/cli/tx/duration.ts";
import { EXIT, TxError } from "../../src/cli/tx/errors.ts";

function apply(...argv: string[]): ApplyOptions {
  const command: Command = parseCommand(["apply", ...argv]);
  if (command.kind !== "apply") throw new Error(`expected apply, got ${command.kind}`);
  return command.options;
}

function usageMessage(argv: string[]): string {
  try {
    parseCommand(argv);
  } catch (error) {
    expect(error).toBeInstanceOf(TxError);
    expect((error as TxError).exitCode).toBe(EXIT.usage);
    return (error as TxError).message;
  }
  throw new Error(`expected a usage error for ${argv.join(" ")}`);
}

describe("kubectl tx arguments", () => {
  it("prints the overview with exit code 2 when no command is given", () => {
    const command = parseCommand([]);
    expect(command).toMatchObject({ kind: "help", exitCode: 2 });
  });

  it("prints the overview with exit code 0 for --help, -h and help", () => {
    for (const argv of [["--help"], ["-h"], ["help"]]) {
      const command = parseCommand(argv);
      expect(command).toMatchObject({ kind: "help", exitCode: 0 });
      if (command.kind === "help") expect(command.text).toContain("kubectl tx apply -f FILE|DIR");
    }
  });

  it("prints the apply help for apply --help, even with other flags", () => {
    for (const argv of [["apply", "--help"], ["apply", "-f", "x.yaml", "-h"], ["help", "apply"]]) {
      const command = parseCommand(argv);
      expect(command).toMatchObject({ kind: "help", exitCode: 0 });
      if (command.kind === "help") expect(command.text).toContain("--dry-run");
    }
  });

  it("reads every flag of apply, short and long", () => {
    expect(apply("-f", "a.yaml", "--filename", "dir", "-R", "-n", "shop", "--timeout", "2m", "--dry-run=server", "--prune", "-l", "app=web",
      "--kubeconfig", "/k", "--context", "prod")).toEqual({
      files: ["a.yaml", "dir"], recursive: true, namespace: "shop", timeoutSeconds: 120, dryRun: "server", prune: true, selector: "app=web",
      kubeconfig: "/k", context: "prod",
    });
  });

  it("defaults to no timeout (the transaction lives as long as kubectl runs), no dry run, no prune, and leaves the rest to kubectl", () => {
    expect(apply("-f", "a.yaml")).toEqual({ files: ["a.yaml"], recursive: false, dryRun: "none", prune: false });
  });

  it("accepts --dry-run with a separate value", () => {
    expect(apply("-f", "a.yaml", "--dry-run", "client").dryRun).toBe("client");
  });

  it("rejects an unknown command, pointing at the help", () => {
    expect(usageMessage(["list"])).toBe("kubectl tx: unknown command 'list'; run 'kubectl tx --help'");
  });

  it("rejects apply without -f or -k", () => {
    expect(usageMessage(["apply"])).toContain("apply needs at least one -f FILE or DIR, or -k DIR");
  });

  it("takes -k DIR (a kustomization) instead of -f, as kubectl does", () => {
    expect(apply("-k", "overlays/prod", "-n", "shop")).toEqual({ files: [], kustomize: "overlays/prod", namespace: "shop", recursive: false, dryRun: "none", prune: false });
    expect(apply("--kustomize=base").kustomize).toBe("base");
    expect(usageMessage(["apply", "-k", "base", "-f", "a.yaml"])).toContain("-f and -k cannot be used together");
    expect(usageMessage(["apply", "-k", ""])).toContain("-k needs a directory");
    expect(usageMessage(["apply", "-k", "base", "-R"])).toContain("-R reads directories named with -f");
  });

  it("rejects an unknown flag in one line", () => {
    expect(usageMessage(["apply", "-f", "a", "--force"])).toBe("kubectl tx: unknown option '--force'; run 'kubectl tx apply --help'");
  });

  it("rejects positional arguments", () => {
    expect(usageMessage(["apply", "a.yaml"])).toContain("apply takes no arguments");
  });

  it("rejects a bad --dry-run mode", () => {
    expect(usageMessage(["apply", "-f", "a", "--dry-run=all"])).toContain("--dry-run must be none, server or client, got 'all'");
  });

  it("prepares unless --no-prepare says not to", () => {
    expect(apply("-f", "a.yaml")).not.toHaveProperty("prepare");
    expect(apply("-f", "a.yaml", "--no-prepare")).toMatchObject({ prepare: false });
  });

  it("takes server-side apply's flags, --force-conflicts only with --server-side", () => {
    expect(apply("-f", "a.yaml", "--server-side", "--force-conflicts", "--field-manager", "ci")).toMatchObject({ serverSide: true, forceConflicts: true, fieldManager: "ci" });
    expect(apply("-f", "a.yaml")).not.toHaveProperty("serverSide");
    expect(usageMessage(["apply", "-f", "a", "--force-conflicts"])).toContain("--force-conflicts only works with --server-side");
    expect(usageMessage(["apply", "-f", "a", "--field-manager="])).toContain("--field-manager needs a name");
  });

  it("rejects --prune without a selector", () => {
    expect(usageMessage(["apply", "-f", "a", "--prune"])).toContain("--prune needs -l SELECTOR");
  });

  it("rejects URLs and a second stdin", () => {
    expect(usageMessage(["apply", "-f", "https://example.com/x.yaml"])).toContain("not URLs");
    expect(usageMessage(["apply", "-f", "-", "-f", "-"])).toContain("only once");
  });
});

describe("--timeout durations", () => {
  it("reads plain seconds and Go-style units", () => {
    expect(durationSeconds("45")).toBe(45);
    expect(durationSeconds("30s")).toBe(30);
    expect(durationSeconds("2m")).toBe(120);
    expect(durationSeconds("1m30s")).toBe(90);
    expect(durationSeconds("1h")).toBe(3600);
  });

  it("refuses anything else", () => {
    for (const text of ["", "1.5s", "s", "2d", "-5", "30 s", "m1"]) expect(durationSeconds(text)).toBeUndefined();
  });

  it("keeps within the Transaction CRD's bounds of 1 s to 1 h", () => {
    expect(parseTimeout("3600")).toBe(3600);
    expect(() => parseTimeout("0s")).toThrow("must be from 1s to 1h");
    expect(() => parseTimeout("61m")).toThrow("must be from 1s to 1h");
  });

  it("names the bad value and shows good ones", () => {
    expect(() => parseTimeout("soon")).toThrow("kubectl tx: --timeout 'soon' is not a duration; use whole seconds or units, e.g. 90, 30s, 2m, 1m30s");
  });
});
