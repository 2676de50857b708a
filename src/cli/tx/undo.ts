/**
 * `kubectl tx undo ID`: asks kubetx to revert a committed transaction. The
 * user opens an undo transaction (their own record, mode undo); kubetx
 * checks that nothing changed since the commit and that the user may make
 * every write, reverts from the kept journal, and reports like an apply.
 */
import { parseArgs } from "node:util";
import type { KubeClient } from "../../kube/client.ts";
import { newTransaction, transactionIdProblem, transactionPath } from "../../transactions/model.ts";
import { DEFAULT_TIMEOUT_SECONDS, parseTimeout } from "./duration.ts";
import { EXIT, TxError, usageError } from "./errors.ts";
import { formatOutcome } from "./outcome.ts";
import { whoAmI } from "./record.ts";
import type { Clock } from "./wait.ts";
import { waitForOutcome } from "./wait.ts";

export interface UndoOptions {
  readonly target: string;
  readonly timeoutSeconds: number;
  readonly kubeconfig?: string;
  readonly context?: string;
}

export const UNDO_HELP = `kubectl tx undo: revert a committed transaction

Usage:
  kubectl tx undo ID [--timeout DURATION] [--kubeconfig FILE] [--context NAME]

kubetx reverts every member of the committed transaction ID from the journal
it kept (the TransactionPolicy's journalRetentionSeconds, default an hour),
as a new transaction of your own: created objects are deleted, updated ones
get back what the transaction changed (what others changed elsewhere since,
a controller's status or a label, stays), deleted ones are re-created. It
refuses, and lists the objects, when someone changed a field the
transaction wrote, the spec of an object it created (its
metadata.generation moved; for kinds without one, such as ConfigMaps, any
change but the apiserver's own fields, so one a later apply wrote and
rolled back counts as unchanged), or re-created one it deleted; when its
journal is gone; or when you may not make one of those writes yourself
(RBAC); then nothing is written. You may undo only your own transactions,
and not an undo (to redo, apply your manifests again).

Flags:
      --timeout DURATION   how long kubetx may take (default 60s)
      --kubeconfig FILE    the kubeconfig to use (default: as kubectl picks it)
      --context NAME       the kubeconfig context to use

Exit codes: 0 undone, 1 refused or failed, 2 usage error, 3 no outcome in time.
`;

export type UndoCommand = { readonly kind: "help"; readonly text: string } | { readonly kind: "undo"; readonly options: UndoOptions };

export function parseUndo(args: readonly string[]): UndoCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args], allowPositionals: true, strict: true,
      options: { timeout: { type: "string" }, kubeconfig: { type: "string" }, context: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (error) {
    throw usageError((error as Error).message.split(". ")[0] ?? "bad arguments", "kubectl tx undo --help");
  }
  if (parsed.values.help) return { kind: "help", text: UNDO_HELP };
  const [target, ...extra] = parsed.positionals;
  if (!target || extra.length > 0) throw usageError("undo takes exactly one transaction id", "kubectl tx undo --help");
  const { kubeconfig, context } = parsed.values;
  return {
    kind: "undo",
    options: { target, timeoutSeconds: parseTimeout(parsed.values.timeout) ?? DEFAULT_TIMEOUT_SECONDS, ...(kubeconfig ? { kubeconfig } : {}), ...(context ? { context } : {}) },
  };
}

export interface UndoDeps {
  readonly client: KubeClient;
  readonly newId: () => string;
  readonly clock: Clock;
  readonly say: (line: string) => void;
  readonly warn: (line: string) => void;
}

export async function runUndo(options: UndoOptions, deps: UndoDeps): Promise<number> {
  const problem = transactionIdProblem(options.target);
  if (problem) throw new TxError(`kubectl tx: ${problem}`, EXIT.usage);
  const user = await whoAmI(deps.client);
  const id = deps.newId();
  await deps.client.create(transactionPath(), newTransaction(id, { user, mode: "undo", undoOf: options.target, timeoutSeconds: options.timeoutSeconds }));
  deps.warn(`kubectl tx: undoing ${options.target} as transaction ${id}`);
  const outcome = formatOutcome(await waitForOutcome(deps.client, { id, timeoutSeconds: options.timeoutSeconds, clock: deps.clock, warn: deps.warn }));
  outcome.lines.forEach((line) => deps.say(line));
  return outcome.exitCode;
}
