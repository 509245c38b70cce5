import type { NextFunction, Request, Response } from "express";
import { ErrorCodes, OpStreamError, isOpStreamError, type ErrorCode } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { OpStreamMetrics } from "../metrics.js";

/** Where HTTP errors are logged and counted. */
export interface HttpErrorSink {
  readonly logger: Logger;
  readonly metrics: OpStreamMetrics;
}

/** The JSON error answer: `{ "error": { code, message } }` with its status. */
export interface HttpErrorAnswer {
  readonly status: number;
  readonly code: ErrorCode;
  readonly message: string;
}

/** HTTP status of each error code an HTTP route answers with; any other error is a 500. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.BAD_REQUEST]: 400,
  [ErrorCodes.INVALID_DOCUMENT_NAME]: 400,
  [ErrorCodes.FORBIDDEN]: 403,
  [ErrorCodes.DOCUMENT_NOT_FOUND]: 404,
  [ErrorCodes.VERSION_NOT_FOUND]: 404,
  [ErrorCodes.HISTORY_DISABLED]: 404,
  [ErrorCodes.UPDATE_REJECTED]: 422,
  [ErrorCodes.ROUTE_NOT_FOUND]: 404,
  [ErrorCodes.NOT_OWNER]: 503,
  [ErrorCodes.REQUEST_TIMEOUT]: 503,
  [ErrorCodes.SHUTTING_DOWN]: 503,
  [ErrorCodes.STORAGE_UNAVAILABLE]: 503,
  [ErrorCodes.SESSION_CLOSED]: 503,
};

/**
 * What body-parser's client errors (http-errors with a `type`) say. Their own
 * messages quote the request (a bad token, a charset name), so they are not sent.
 */
const CLIENT_ERROR_MESSAGES: Readonly<Record<string, string>> = {
  "entity.too.large": "The request body is too large.",
  "entity.parse.failed": "The request body could not be parsed.",
  "entity.verify.failed": "The request body failed verification.",
  "encoding.unsupported": "The request body's content encoding is not supported.",
  "charset.unsupported": "The request body's charset is not supported.",
  "parameters.too.many": "The request body has too many parameters.",
  "request.aborted": "The request was aborted.",
  "request.size.invalid": "The request body's length does not match its Content-Length.",
};

/**
 * The answer to `error`, without internals: a 4xx coded error keeps its message
 * (written for the caller); a 5xx keeps its code with a fixed message (the log
 * has the cause); an express or body-parser client error (a 4xx `status`, like a
 * URIError from decoding a path parameter) is BAD_REQUEST with that status;
 * anything else is INTERNAL.
 */
export function httpErrorAnswer(error: unknown): HttpErrorAnswer {
  if (isOpStreamError(error)) {
    const status = STATUS[error.code] ?? 500;
    if (status < 500) return { status, code: error.code, message: error.message };
    const code = STATUS[error.code] === undefined ? ErrorCodes.INTERNAL : error.code;
    return { status, code, message: status === 503 ? "Temporarily unavailable; retry." : "Internal error." };
  }
  const status = clientErrorStatus(error);
  if (status === undefined) return { status: 500, code: ErrorCodes.INTERNAL, message: "Internal error." };
  const type = typeof error === "object" && error !== null && "type" in error ? String(error.type) : "";
  const message =
    error instanceof URIError
      ? "The request URL has a malformed percent-escape."
      : (CLIENT_ERROR_MESSAGES[type] ?? "The request could not be read.");
  return { status, code: ErrorCodes.BAD_REQUEST, message };
}

/** The 4xx `status` (or `statusCode`) express and body-parser put on client errors. */
function clientErrorStatus(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const status = "status" in error ? error.status : "statusCode" in error ? error.statusCode : undefined;
  return typeof status === "number" && Number.isInteger(status) && status >= 400 && status < 500
    ? status
    : undefined;
}

/**
 * Answers `error` as JSON, logs it once (5xx as errors or warnings with the
 * cause; 4xx at debug, since anyone can cause them and the counter shows them)
 * and counts it in `opstream_http_errors_total`.
 */
export function sendHttpError(sink: HttpErrorSink, req: Request, res: Response, error: unknown): void {
  const answer = httpErrorAnswer(error);
  sink.metrics.httpErrors.inc({ status: String(answer.status), code: answer.code });
  const fields = { err: error, method: req.method, path: req.path, status: answer.status, code: answer.code };
  if (answer.code === ErrorCodes.INTERNAL) sink.logger.error(fields, "http request failed");
  else if (answer.status >= 500) sink.logger.warn(fields, "http request failed");
  else sink.logger.debug(fields, "http request refused");
  res.status(answer.status).json({ error: { code: answer.code, message: answer.message } });
}

/**
 * The last error handler of an express app or router: every error becomes a JSON
 * answer, whatever NODE_ENV says (express's own handler sends an HTML page with
 * the stack outside production).
 */
export function httpErrorHandler(sink: HttpErrorSink) {
  return (error: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      // Too late for an answer: express's final handler cuts the connection.
      sink.metrics.httpErrors.inc({ status: String(res.statusCode), code: ErrorCodes.INTERNAL });
      sink.logger.error({ err: error, method: req.method, path: req.path }, "http response failed midway");
      next(error);
      return;
    }
    sendHttpError(sink, req, res, error);
  };
}

/** A JSON 404 for whatever reaches it (mounted after every route of a path). */
export function routeNotFound(sink: HttpErrorSink) {
  return (req: Request, res: Response): void => {
    sendHttpError(sink, req, res, new OpStreamError(ErrorCodes.ROUTE_NOT_FOUND, "No such route."));
  };
}
