import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Fields that may carry secrets, in every log line opstream writes: tokens (from
 * the query string, the subprotocol or an Auth message), authorization headers,
 * cookies, passwords, connection strings' credentials and webhook secrets.
 */
export const REDACTED_PATHS: readonly string[] = [
  "token",
  "*.token",
  "secret",
  "*.secret",
  "password",
  "*.password",
  "authorization",
  "headers.authorization",
  "headers.cookie",
  "*.headers.authorization",
  "*.headers.cookie",
  'headers["sec-websocket-protocol"]',
  '*.headers["sec-websocket-protocol"]',
  "connectionString",
  "*.connectionString",
];

const REDACT = Object.freeze({ paths: [...REDACTED_PATHS], censor: "[redacted]" });

/** The default logger: pino to stdout, level from `OPSTREAM_LOG_LEVEL` (default `info`), secrets redacted. */
export function createDefaultLogger(): Logger {
  return pino({ name: "opstream", level: process.env.OPSTREAM_LOG_LEVEL ?? "info", redact: REDACT });
}

/** `logger` with opstream's redaction added (for loggers given to `useLogger()`). */
export function withRedaction(logger: Logger): Logger {
  return logger.child({}, { redact: REDACT });
}

/**
 * A URL safe to log: the query string (where y-websocket clients put tokens) is
 * reduced to its parameter names.
 */
export function redactUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const at = url.indexOf("?");
  if (at < 0) return url;
  const names = new URLSearchParams(url.slice(at + 1));
  return `${url.slice(0, at)}?${[...names.keys()].map((name) => `${name}=[redacted]`).join("&")}`;
}
