/** Errors whose message is already the one line a user should read. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

const PLAIN_ERRORS = new Set([
  "UsageError", "DevError", "ToolchainError", "ControlPlaneError", "CertificateError", "ConfigError",
  // The apiserver's own answers (src/kube/errors.ts): their message says what was refused and why.
  "KubeError", "NotFound", "AlreadyExists", "Conflict", "Expired", "Forbidden", "Invalid",
]);

/** Prints one clear line for an expected failure, the stack for a bug; returns the exit code. */
export function reportFailure(error: unknown, write: (line: string) => void): number {
  if (error instanceof Error && PLAIN_ERRORS.has(error.name)) {
    write(error.message.startsWith("kubetx") ? error.message : `kubetx: ${error.message}`);
    return error.name === "UsageError" ? 2 : 1;
  }
  write(`kubetx: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return 1;
}
