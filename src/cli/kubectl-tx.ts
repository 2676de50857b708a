#!/usr/bin/env node
/**
 * `kubectl tx`: the kubectl plugin (kubectl runs `kubectl-tx` from PATH).
 * The composition root of the plugin: the one place that reads the
 * environment and the process's streams; everything else is in ./tx/.
 */
import { tmpdir } from "node:os";
import { text } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import { createKubeClient } from "../kube/client.ts";
import { parseCommand } from "./tx/args.ts";
import type { ApplyDeps } from "./tx/apply.ts";
import { newTransactionId, runApply } from "./tx/apply.ts";
import { reportTxFailure } from "./tx/errors.ts";
import { findKubectl, runKubectl } from "./tx/kubectl.ts";

type Say = (line: string) => void;

function applyDeps(say: Say, warn: Say): ApplyDeps {
  return {
    connect: (kubeconfig, context) => createKubeClient(kubeconfig, context === undefined ? {} : { context }),
    findKubectl: () => findKubectl({ KUBECTL: process.env.KUBECTL, PATH: process.env.PATH }),
    runKubectl: (command, args) => runKubectl(command, args, process.stderr),
    readStdin: () => text(process.stdin),
    newId: () => newTransactionId(),
    clock: { now: () => Date.now(), sleep: (ms) => sleep(ms) },
    tempDir: tmpdir(),
    say,
    warn,
  };
}

async function main(argv: readonly string[], say: Say, warn: Say): Promise<number> {
  const command = parseCommand(argv);
  if (command.kind === "help") {
    (command.exitCode === 0 ? say : warn)(command.text);
    return command.exitCode;
  }
  return runApply(command.options, applyDeps(say, warn));
}

const say: Say = (line) => process.stdout.write(`${line}\n`);
const warn: Say = (line) => process.stderr.write(`${line}\n`);
main(process.argv.slice(2), say, warn).then(
  (code) => process.exit(code),
  (error: unknown) => process.exit(reportTxFailure(error, warn)),
);
