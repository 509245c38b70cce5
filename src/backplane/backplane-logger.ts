/**
 * The logging a backplane needs: a pino-compatible subset (a pino `Logger` fits),
 * so a backplane never depends on a logging library.
 */
export interface BackplaneLogger {
  debug(context: object, message: string): void;
  info(context: object, message: string): void;
  warn(context: object, message: string): void;
  error(context: object, message: string): void;
}
