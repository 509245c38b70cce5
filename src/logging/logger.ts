import { pino, type Logger } from "pino";

export type { Logger };

/** The default logger: pino to stdout, level from `OPSTREAM_LOG_LEVEL` (default `info`). */
export function createDefaultLogger(): Logger {
  return pino({ name: "opstream", level: process.env.OPSTREAM_LOG_LEVEL ?? "info" });
}
