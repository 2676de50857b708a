/**
 * `kubectl tx undo ID`: asks kubetx to revert a committed transaction. The
 * user opens an undo transaction (their own record, mode undo); kubetx
 * checks that nothing changed since the commit and that the user may make
 * every write, reverts from the kept journal, and reports like an apply.
 */
import type { KubeClient } from "../../kube/client.ts";
import { newTransaction, transactionIdProblem, transactionPath } from "../../transactions/model.ts";
import { EXIT, TxError } from "./errors.ts";
import { formatOutcome } from "./outcome.ts";
import { whoAmI } from "./record.ts";
import type { Clock } from "./wait.ts";
import { waitForOutcome } from "./wait.ts";

export interface UndoOptions {
  readonly target: string;
  readonly timeoutSeconds: number;
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
