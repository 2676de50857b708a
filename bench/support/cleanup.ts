/** A stack of undo steps, run last-in first-out exactly once, each one even when an earlier one fails. */
export class Cleanup {
  private readonly steps: { name: string; run: () => Promise<void> | void }[] = [];
  private done: Promise<string[]> | undefined;

  push(name: string, run: () => Promise<void> | void): void {
    this.steps.push({ name, run });
  }

  /** Runs every step; returns the failures as "name: message" lines. */
  run(): Promise<string[]> {
    this.done ??= this.runAll();
    return this.done;
  }

  private async runAll(): Promise<string[]> {
    const failures: string[] = [];
    for (const step of this.steps.reverse()) {
      try {
        await step.run();
      } catch (error) {
        failures.push(`${step.name}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return failures;
  }
}
