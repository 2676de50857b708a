/** Runs a review command: list, describe, locks, audit, or prints help. */
import type { AuditDeps } from "./audit.ts";
import { runAudit } from "./audit.ts";
import type { ReviewDeps } from "./cluster-read.ts";
import { runDescribe } from "./describe.ts";
import { runList } from "./list.ts";
import { runLocks } from "./locks.ts";
import type { ReviewCommand } from "./review-args.ts";

export function runReview(command: ReviewCommand, deps: ReviewDeps & AuditDeps): Promise<number> {
  switch (command.kind) {
    case "help":
      (command.exitCode === 0 ? deps.say : deps.warn)(command.text);
      return Promise.resolve(command.exitCode);
    case "list":
      return runList(command.options, deps);
    case "describe":
      return runDescribe(command.options, deps);
    case "locks":
      return runLocks(command.options, deps);
    case "audit":
      return runAudit(command.options, deps);
  }
}
