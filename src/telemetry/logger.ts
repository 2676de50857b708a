import type { DestinationStream, Logger } from "pino";
import { pino } from "pino";

export type { Logger } from "pino";

export interface LoggerOptions {
  readonly level?: string;
  /** Where JSON lines go; stderr by default so stdout stays for command output. */
  readonly destination?: DestinationStream;
  readonly name?: string;
}

/**
 * Paths pino blanks in every line. AdmissionReview objects and journal
 * entries can hold Secret data; kubetx never logs them whole, and this is
 * the second guard should someone try.
 */
const REDACTED_PATHS = [
  "object.data",
  "object.stringData",
  "oldObject.data",
  "oldObject.stringData",
  "*.object.data",
  "*.oldObject.data",
  "preImage",
  "*.preImage",
  "token",
  "*.token",
];

/** Builds a logger; there is no module-level logger to import. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? "kubetx",
      level: options.level ?? "info",
      redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
      base: { pid: process.pid },
    },
    options.destination ?? pino.destination(2),
  );
}

/** A logger that drops everything: for tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
