import { createRequire } from "node:module";
import { pino, type Logger, type LoggerOptions } from "pino";
import { ErrorCodes, OpStreamError } from "../errors.js";

export type { Logger };

/** The levels a logger may be set to, most to least severe (`silent` logs nothing). */
export const LOG_LEVELS = Object.freeze([
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
] as const);

/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The default logger's level when neither the `logLevel` option nor `OPSTREAM_LOG_LEVEL` sets one. */
export const DEFAULT_LOG_LEVEL: LogLevel = "info";

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

/**
 * The default logger's level: `level` if given, else `OPSTREAM_LOG_LEVEL`, else
 * {@link DEFAULT_LOG_LEVEL}. Throws INVALID_OPTION naming where a bad one came from.
 */
export function resolveLogLevel(level: string | undefined, env: NodeJS.ProcessEnv = process.env): LogLevel {
  const [value, source] =
    level !== undefined ? [level, "logLevel"] : [env.OPSTREAM_LOG_LEVEL, "OPSTREAM_LOG_LEVEL"];
  if (value === undefined || value === "") return DEFAULT_LOG_LEVEL;
  if (!isLogLevel(value)) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      `${source} must be one of ${LOG_LEVELS.join(", ")}; got ${JSON.stringify(value)}.`,
      { option: source, value },
    );
  }
  return value;
}

/** Whether `value` is one of {@link LOG_LEVELS}. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * The default logger: pino to stdout, secrets redacted, at `level` (see
 * {@link resolveLogLevel}). One JSON object per line, for log collectors; on a
 * terminal (stdout is a TTY) pino-pretty's coloured lines instead.
 */
export function createDefaultLogger(options: { level?: string } = {}): Logger {
  const settings: LoggerOptions = { name: "opstream", level: resolveLogLevel(options.level), redact: REDACT };
  return process.stdout.isTTY ? pino(settings, prettyStream()) : pino(settings);
}

/**
 * pino-pretty, loaded only here (a terminal): JSON output, and start-up, never pay
 * for it. Synchronous writes, so a line logged just before `process.exit` (the
 * CLI's "opstream stopped") is on the screen before the process ends.
 */
function prettyStream(): NodeJS.WritableStream {
  const { build } = createRequire(import.meta.url)("pino-pretty") as typeof import("pino-pretty");
  return build({
    colorize: true,
    sync: true,
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname,name",
  });
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
