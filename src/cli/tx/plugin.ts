/**
 * `kubectl tx`: the kubectl plugin, started by ../kubectl-tx.ts. The
 * composition root of the plugin: the one place that reads the environment
 * and the process's streams; everything else is in this folder.
 */
import { text } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import { createKubeClient } from "../../kube/client.ts";
import { parseCommand } from "./args.ts";
import type { ApplyDeps } from "./apply.ts";
import { newTransactionId, runApply } from "./apply.ts";
import { reportTxFailure } from "./errors.ts";
import { findKubectl, renderKustomization, runKubectl } from "./kubectl.ts";
import type { ReviewDeps } from "./cluster-read.ts";
import { runReview } from "./review.ts";
import { parseReviewCommand } from "./review-args.ts";
import { parseUndo, runUndo } from "./undo.ts";
import { parseVersion, runVersion } from "./version.ts";
import packageJson from "../../../package.json" with { type: "json" };

type Say = (line: string) => void;

function applyDeps(say: Say, warn: Say): ApplyDeps {
  return {
    connect: (kubeconfig, context) => createKubeClient(kubeconfig, context === undefined ? {} : { context }),
    findKubectl: () => findKubectl({ KUBECTL: process.env.KUBECTL, PATH: process.env.PATH }),
    runKubectl: (command, args, how) => runKubectl(command, args, process.stderr, how),
    renderKustomization,
    readStdin: () => text(process.stdin),
    newId: () => newTransactionId(),
    clock: { now: () => Date.now(), sleep: (ms) => sleep(ms) },
    say,
    warn,
  };
}

function reviewDeps(say: Say, warn: Say): ReviewDeps {
  return {
    connect: (kubeconfig, context) => createKubeClient(kubeconfig, context === undefined ? {} : { context }),
    now: () => Date.now(),
    say,
    warn,
  };
}

async function undo(args: readonly string[], say: Say, warn: Say): Promise<number> {
  const command = parseUndo(args);
  if (command.kind === "help") {
    say(command.text);
    return 0;
  }
  const { kubeconfig, context } = command.options;
  const client = await createKubeClient(kubeconfig, context === undefined ? {} : { context });
  try {
    const clock = { now: () => Date.now(), sleep: (ms: number) => sleep(ms) };
    return await runUndo(command.options, { client, newId: () => newTransactionId(), clock, say, warn });
  } finally {
    client.close();
  }
}

async function main(argv: readonly string[], say: Say, warn: Say): Promise<number> {
  if (argv[0] === "undo") return undo(argv.slice(1), say, warn);
  if (argv[0] === "help" && argv[1] === "undo") return undo(["--help"], say, warn);
  if (argv[0] === "version") return runVersion(parseVersion(argv.slice(1)), { ...reviewDeps(say, warn), pluginVersion: packageJson.version });
  if (argv[0] === "help" && argv[1] === "version") return runVersion(parseVersion(["--help"]), { ...reviewDeps(say, warn), pluginVersion: packageJson.version });
  // list, describe, locks, audit and the top-level help; apply (and its help) below.
  const review = parseReviewCommand(argv);
  if (review) return runReview(review, reviewDeps(say, warn));
  const command = parseCommand(argv);
  if (command.kind === "help") {
    (command.exitCode === 0 ? say : warn)(command.text);
    return command.exitCode;
  }
  return runApply(command.options, applyDeps(say, warn));
}

const say: Say = (line) => process.stdout.write(`${line}\n`);
const warn: Say = (line) => process.stderr.write(`${line}\n`);
/** Exits once stdout and stderr have flushed: where pipes are asynchronous, a large `-o json` must not be cut short. */
const exit = (code: number): void => void process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
main(process.argv.slice(2), say, warn).then(
  (code) => exit(code),
  (error: unknown) => exit(reportTxFailure(error, warn)),
);
