// Prints "N passed, N failed" from vitest's JSON report. A failure before
// any test ran (install, lint, type check, build) counts as one failure, so
// the line never claims success for a run that failed.
import { readFileSync } from "node:fs";

const [reportFile, statusArg] = process.argv.slice(2);
const status = Number(statusArg ?? "1");
let passed = 0;
let failed = 0;
try {
  const report = JSON.parse(readFileSync(reportFile, "utf8"));
  passed = report.numPassedTests ?? 0;
  failed = (report.numFailedTests ?? 0) + (report.numRuntimeErrorTestSuites ?? 0);
  if (report.numTotalTests === 0 && status === 0) failed += 1;
} catch {
  // no report: nothing ran
}
if (status !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
