import { ErrorCodes, OpStreamError, type ErrorCode } from "../errors.js";
import type { OpStreamMetrics } from "../metrics.js";
import type { RpcResponse } from "./envelope.js";

interface PendingRequest {
  readonly nodeId: string;
  /** `performance.now()` when it was opened. */
  readonly openedAt: number;
  readonly type: string;
  readonly resolve: (payload: Uint8Array) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCodes));

/**
 * The requests a node has sent and still waits for: ids, correlation with their
 * responses, and timeouts. Every request settles exactly once — answered, timed
 * out, failed to send, or rejected on close — so none can hang.
 */
export class PendingRequests {
  private readonly pending = new Map<number, PendingRequest>();
  private nextId = 0;

  constructor(private readonly metrics: Pick<OpStreamMetrics, "rpcTimeouts"> | undefined) {}

  /**
   * Registers a request to `nodeId` and returns its id and the promise of its
   * answer, which rejects with REQUEST_TIMEOUT (counted) after `timeoutMs`.
   */
  open(nodeId: string, type: string, timeoutMs: number): { id: number; answer: Promise<Uint8Array> } {
    const id = ++this.nextId;
    const answer = new Promise<Uint8Array>((resolve, reject) => {
      // Not unref'd: the timer is what guarantees the caller an answer.
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.metrics?.rpcTimeouts.inc();
        reject(
          new OpStreamError(
            ErrorCodes.REQUEST_TIMEOUT,
            `Request "${type}" to node "${nodeId}" got no answer within ${timeoutMs} ms; the node may be gone or overloaded.`,
            { nodeId, type, timeoutMs },
          ),
        );
      }, timeoutMs);
      this.pending.set(id, { nodeId, openedAt: performance.now(), type, resolve, reject, timer });
    });
    return { id, answer };
  }

  /** Rejects request `id` with `error` (it could not be sent); no-op once it has settled. */
  fail(id: number, error: Error): void {
    this.take(id)?.reject(error);
  }

  /**
   * Settles the request `response` answers; a late or unknown response is dropped.
   * A failure becomes an OpStreamError with the remote code and message; a code this
   * node does not know (a newer node's) becomes NO_HANDLER.
   */
  settle(response: RpcResponse): void {
    const entry = this.take(response.id);
    if (!entry) return;
    if (response.ok) {
      entry.resolve(response.payload);
      return;
    }
    const known = KNOWN_CODES.has(response.code);
    entry.reject(
      new OpStreamError(
        known ? (response.code as ErrorCode) : ErrorCodes.NO_HANDLER,
        known
          ? response.message
          : `remote handler failed with unknown code ${response.code}: ${response.message}`,
        { nodeId: entry.nodeId, type: entry.type, remote: true },
      ),
    );
  }

  /** How many requests wait for an answer. */
  get size(): number {
    return this.pending.size;
  }

  /** The nodes that requests opened more than `ageMs` ago still wait for. */
  waitedOnLongerThan(ageMs: number): Set<string> {
    const before = performance.now() - ageMs;
    const nodes = new Set<string>();
    for (const entry of this.pending.values()) if (entry.openedAt <= before) nodes.add(entry.nodeId);
    return nodes;
  }

  /** Rejects every request waiting for `nodeId` with the error `errorFor` makes for it. */
  failNode(nodeId: string, errorFor: (type: string) => Error): void {
    for (const [id, entry] of [...this.pending]) {
      if (entry.nodeId === nodeId) this.take(id)?.reject(errorFor(entry.type));
    }
  }

  /** Rejects every pending request with the error `errorFor` makes for it. */
  rejectAll(errorFor: (nodeId: string, type: string) => Error): void {
    for (const id of [...this.pending.keys()]) {
      const entry = this.take(id);
      entry?.reject(errorFor(entry.nodeId, entry.type));
    }
  }

  private take(id: number): PendingRequest | undefined {
    const entry = this.pending.get(id);
    if (!entry) return undefined;
    this.pending.delete(id);
    clearTimeout(entry.timer);
    return entry;
  }
}
