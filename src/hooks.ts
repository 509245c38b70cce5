/**
 * Lifecycle hooks (`builder.on(event, handler)`): typed events a node tells the
 * application about — connections, loads and unloads, durable changes,
 * awareness, listen and destroy. docs/hooks.md says where and when each fires.
 *
 * Hooks observe; they never steer. A handler is called where its event happens,
 * never awaited, and whatever it throws or rejects with is logged and counted
 * (`opstream_hook_errors_total{event}`): the session, the socket and the order
 * of everything else carry on as if no hook were registered.
 */
import type { Server } from "node:http";
import type { DisconnectReason } from "./engine/peer.js";
import { ErrorCodes, OpStreamError } from "./errors.js";
import type { Logger } from "./logging/logger.js";
import type { OpStreamMetrics } from "./metrics.js";

/** A client's connection to one document, on the node it is connected to. */
export interface ConnectEvent {
  /** The document's id (`<tenant>/<name>` with a tenant resolver), as `loaded` and `change` name it. */
  readonly docId: string;
  /** The node the client is connected to (the node that runs the hook): an owner or a relay. */
  readonly nodeId: string;
  /**
   * The connection's id on that node: one per y-websocket socket, one per document
   * of a Hocuspocus socket. A `change` made through it has this `origin.peerId`.
   */
  readonly peerId: string;
  /** The client family: the stock `y-websocket` provider or `@hocuspocus/provider`. */
  readonly dialect: "y-websocket" | "hocuspocus";
  /** What the authorizer granted for this document. */
  readonly access: "read-write" | "readonly";
}

/** A client's connection let go of one document; always after that connection's `connect`. */
export interface DisconnectEvent extends ConnectEvent {
  /**
   * `"closed"`: the connection left — its socket closed (either side, for any
   * close code) or a Hocuspocus client closed the document or lost its access.
   * Otherwise the server let go of it: its session or relay closed
   * (`"shutdown"`, `"step-down"`, `"storage-failure"`), or the document was `"deleted"`.
   */
  readonly reason: "closed" | DisconnectReason;
}

/** An owner loaded a document: its session is open and takes updates. */
export interface LoadedEvent {
  readonly docId: string;
  /** The owner (the node that runs the hook). */
  readonly nodeId: string;
  /** The ownership epoch this owner claimed in storage; every write of the session is fenced by it. */
  readonly epoch: number;
  /** The seq of the last op loaded (0 for a new document); a seeder's content is part of the load. */
  readonly seq: number;
}

/**
 * Why an owner unloaded a document: `"idle"` (no client for
 * `sessions.idleTimeoutMs`, or evicted as idle to make room under
 * `sessions.maxDocuments`), `"shutdown"` (the node is stopping), `"step-down"`
 * (the lease was lost: another node owns it now), `"storage-failure"` (the store
 * failed: the in-memory state was dropped, clients keep their edits) or
 * `"deleted"`. (`"invalid-update"` and `"rejected"` close single connections,
 * never a session.)
 */
export type UnloadReason = "idle" | DisconnectReason;

/** An owner unloaded a document: its session is closed, its final snapshot written (idle, shutdown) and its lease released. */
export interface UnloadedEvent {
  readonly docId: string;
  /** The owner that unloaded it (the node that runs the hook). */
  readonly nodeId: string;
  /** The epoch of the session that closed. */
  readonly epoch: number;
  readonly reason: UnloadReason;
}

/** Who made a change. */
export interface ChangeOrigin {
  /** `"client"`: a WebSocket client's edit; `"server"`: a server-side document's (`documents.open()`, `transact`). */
  readonly kind: "client" | "server";
  /** The connection (its `connect` event's `peerId`) or the server document (`ServerDocument.id`). */
  readonly peerId: string;
  /** The node that connection or server document is on (its `connect` event's `nodeId`). */
  readonly nodeId: string;
}

/** A change is durable: stored (fenced by the epoch), numbered and fanned out. */
export interface ChangeEvent {
  readonly docId: string;
  /** The owner (the node that runs the hook). */
  readonly nodeId: string;
  /**
   * The seq of the op that holds the change. Updates that queued up together are
   * stored as one op, so several changes (one per update, each with its own
   * origin) may share a seq.
   */
  readonly seq: number;
  /** The Yjs update: exactly what this change added to the document. Do not modify it. */
  readonly update: Uint8Array;
  readonly origin: ChangeOrigin;
}

/** The document's awareness (presence, cursors) changed, as its owner fans it out. */
export interface AwarenessEvent {
  readonly docId: string;
  /** The owner (the node that runs the hook). */
  readonly nodeId: string;
  /**
   * The entries that changed, as one y-protocols awareness update (the bytes
   * clients receive): `[clientId, clock, state JSON]` each, `null` for a removal.
   */
  readonly update: Uint8Array;
  /** Client ids whose state appeared. */
  readonly added: readonly number[];
  /** Client ids whose state changed, or was renewed (renewals pass at most once per `awareness.coalesceWindowMs`). */
  readonly updated: readonly number[];
  /** Client ids whose state went: removed by the client, its connection closed, or expired. */
  readonly removed: readonly number[];
}

/** The node serves WebSocket upgrades on a listening server. */
export interface ListenEvent {
  readonly nodeId: string;
  /** The http server: the one `listen()` made, or one given to `attach()`. */
  readonly server: Server;
  /** Its TCP port; undefined when it listens on a pipe. */
  readonly port: number | undefined;
}

/** The node stopped: `shutdown()` drained, closed its connections, its backplane and its store. */
export interface DestroyEvent {
  readonly nodeId: string;
}

/** Every hook event by name, with its payload: what `builder.on(name, handler)` hands the handler. */
export interface HookEvents {
  connect: ConnectEvent;
  disconnect: DisconnectEvent;
  loaded: LoadedEvent;
  unloaded: UnloadedEvent;
  change: ChangeEvent;
  awareness: AwarenessEvent;
  listen: ListenEvent;
  destroy: DestroyEvent;
}

/** The name of a hook event. */
export type HookName = keyof HookEvents;

/**
 * Handles one hook event. Never awaited: a returned promise only has its
 * rejection logged and counted. Its synchronous part runs where the event
 * happens (for `change`, between the durable append and the acknowledgements),
 * so hand slow work off rather than doing it inline.
 */
export type HookHandler<E extends HookName> = (event: HookEvents[E]) => void | Promise<void>;

/** @internal One `builder.on()` call: a handler with the event it was registered for. */
export type HookRegistration = {
  [E in HookName]: { readonly event: E; readonly handler: HookHandler<E> };
}[HookName];

/** Every hook event name, each once (checked against {@link HookEvents} by the compiler). */
export const HOOK_EVENTS: readonly HookName[] = Object.freeze(
  Object.keys({
    listen: true,
    loaded: true,
    connect: true,
    change: true,
    awareness: true,
    disconnect: true,
    unloaded: true,
    destroy: true,
  } satisfies Record<HookName, true>) as HookName[],
);

/**
 * A failing hook is logged at most once per this long per event (with how many
 * failures were not logged since): a hook that throws on every change must not
 * flood the log. Every failure is counted.
 */
export const HOOK_ERROR_LOG_INTERVAL_MS = 10_000;

/** @internal Checks one `builder.on()` call; throws INVALID_OPTION for an unknown event or a handler that is not a function. */
export function hookRegistration<E extends HookName>(event: E, handler: HookHandler<E>): HookRegistration {
  if (!HOOK_EVENTS.includes(event)) {
    throw new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      `on("${String(event)}"): no such hook event; use one of ${HOOK_EVENTS.join(", ")}.`,
      { option: "event", value: event },
    );
  }
  if (typeof handler !== "function") {
    throw new OpStreamError(ErrorCodes.INVALID_OPTION, `on("${event}"): the handler must be a function.`, {
      option: "handler",
    });
  }
  // The union member of this event: `E` is exactly one name when called from `on<E>()`.
  return { event, handler } as HookRegistration;
}

/** A handler of some event: what the lists hold (every `HookHandler<E>` is one). */
type SomeHandler = (event: never) => void | Promise<void>;

/**
 * @internal Calls a node's hook handlers. `emit` is a no-op (no payload built)
 * for an event without handlers; callers that must compute a payload check
 * {@link has} first.
 */
export class HookEmitter {
  private readonly handlers = new Map<HookName, SomeHandler[]>();
  private readonly failures = new Map<HookName, { loggedAt: number; suppressed: number }>();
  private readonly servers = new WeakSet<Server>();

  constructor(
    registrations: readonly HookRegistration[],
    /** Every payload's `nodeId`. */
    readonly nodeId: string,
    private readonly logger: Logger,
    private readonly metrics: Pick<OpStreamMetrics, "hookErrors">,
  ) {
    for (const { event, handler } of registrations) {
      const handlers = this.handlers.get(event) ?? [];
      handlers.push(handler);
      this.handlers.set(event, handlers);
    }
  }

  /** Whether any handler listens to `event`. */
  has(event: HookName): boolean {
    return this.handlers.has(event);
  }

  /** Calls `event`'s handlers in registration order with `payload` and this node's id. */
  emit<E extends HookName>(event: E, payload: Omit<HookEvents[E], "nodeId">): void {
    // Each list holds the handlers registered for its own event (hookRegistration).
    const handlers = this.handlers.get(event) as HookHandler<E>[] | undefined;
    if (!handlers) return;
    // Every event has a nodeId: the payload plus this node's id is the whole event.
    // Frozen, so a handler cannot change what the next one sees.
    const full = Object.freeze({ ...payload, nodeId: this.nodeId }) as HookEvents[E];
    for (const handler of handlers) this.call(event, handler, full);
  }

  /** Emits `listen` once `server` listens (at once if it does), once per server. */
  serving(server: Server): void {
    if (!this.has("listen") || this.servers.has(server)) return;
    this.servers.add(server);
    const listening = (): void => {
      const address = server.address();
      this.emit("listen", { server, port: typeof address === "object" ? address?.port : undefined });
    };
    if (server.listening) listening();
    else server.once("listening", listening);
  }

  private call<E extends HookName>(event: E, handler: HookHandler<E>, payload: HookEvents[E]): void {
    try {
      const result: unknown = handler(payload);
      if (isThenable(result)) {
        void Promise.resolve(result).catch((error: unknown) => this.failed(event, payload, error));
      }
    } catch (error) {
      this.failed(event, payload, error);
    }
  }

  private failed(event: HookName, payload: HookEvents[HookName], error: unknown): void {
    this.metrics.hookErrors.inc({ event });
    const now = performance.now();
    const failures = this.failures.get(event);
    if (failures && now - failures.loggedAt < HOOK_ERROR_LOG_INTERVAL_MS) {
      failures.suppressed += 1;
      return;
    }
    const suppressed = failures?.suppressed ?? 0;
    this.failures.set(event, { loggedAt: now, suppressed: 0 });
    this.logger.warn(
      { err: error, event, docId: "docId" in payload ? payload.docId : undefined, suppressed },
      `a "${event}" hook failed; opstream carries on (failures are counted in opstream_hook_errors_total)`,
    );
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function"
  );
}
