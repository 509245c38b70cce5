// The clients' history endpoint of an opstream server, `/api/history/:name/…`, on
// the HTTP side of the server the page's provider connects to. It is authorized
// like the WebSocket: the page's token goes along as `Authorization: Bearer`.
// The answers' types are opstream's own (type-only: nothing of the server is bundled).
import type { RestoreResult, VersionComparison, VersionContent, VersionInfo } from "../../../src/index.js";

export type { RestoreResult, VersionComparison, VersionContent, VersionInfo };

/** A request the server refused (`{ error: { code, message } }`) or that never got an answer. */
export class HistoryError extends Error {
  constructor(
    /** The HTTP status; 0 when the server could not be reached. */
    readonly status: number,
    /** The server's error code (`OPS_ERR_…`), or "" without one. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "HistoryError";
  }

  /** The document has no stored state yet (nothing written), so no versions either. */
  get documentMissing(): boolean {
    return this.code === "OPS_ERR_DOCUMENT_NOT_FOUND";
  }

  /** The server keeps no history (`--no-history`), or is too old to have the endpoint. */
  get historyOff(): boolean {
    return this.code === "OPS_ERR_HISTORY_DISABLED" || this.code === "OPS_ERR_ROUTE_NOT_FOUND";
  }
}

/** The history of one document, as its editor sees it. */
export class HistoryClient {
  private readonly base: string;

  constructor(
    httpOrigin: string,
    docName: string,
    private readonly token: string | undefined,
  ) {
    this.base = `${httpOrigin}/api/history/${encodeURIComponent(docName)}/versions`;
  }

  /** Every retained version, newest first. */
  async list(): Promise<VersionInfo[]> {
    const { versions } = await this.request<{ versions: VersionInfo[] }>("GET", "");
    return [...versions].reverse();
  }

  /** Saves a named version of the document as the server holds it now. */
  save(name: string): Promise<VersionInfo> {
    return this.request("POST", "", { name });
  }

  /** A version's content: each root type as JSON (a text root is a string). */
  content(id: number): Promise<VersionContent> {
    return this.request("GET", `/${id}`);
  }

  /** What changed from version `id` to the document now. */
  diffToNow(id: number): Promise<VersionComparison> {
    return this.request("GET", `/${id}/diff/now`);
  }

  /** Restores version `id` (as new ops: every connected editor gets them live). */
  restore(id: number): Promise<RestoreResult> {
    return this.request("POST", `/${id}/restore`);
  }

  private async request<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers,
        cache: "no-store",
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch {
      throw new HistoryError(0, "", "The server cannot be reached.");
    }
    const answer: unknown = await response.json().catch(() => undefined);
    if (!response.ok) throw errorOf(response.status, answer);
    return answer as T;
  }
}

function errorOf(status: number, answer: unknown): HistoryError {
  const error = (answer as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof error?.code === "string" ? error.code : "";
  const message = typeof error?.message === "string" ? error.message : `The server answered ${status}.`;
  return new HistoryError(status, code, message);
}
