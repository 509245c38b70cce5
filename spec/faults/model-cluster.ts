import type { Socket } from "node:net";
import WebSocket from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { ChannelMessageType, HybridSnapshotPolicy, type ChannelMessage } from "../../src/index.js";
import { LocalBackplane } from "../../src/backplane/local/local-backplane.js";
import { LocalBus, type Delivery } from "../../src/backplane/local/local-bus.js";
import { startServer, type TestServer } from "../support/server.js";

/** The node id of the observer: a backplane that records what owners broadcast, never faulted. */
const OBSERVER = "observer";
/** A port nothing listens on: where a client is sent while no node is up (it is refused and retries). */
const NOWHERE = "ws://127.0.0.1:1";

/** Which channel messages an armed fault applies to. */
export type FaultFilter = "any" | "update" | "heartbeat" | "closed";
/** A fault armed for the next delivery its filter matches. */
export interface Fault {
  readonly action: Exclude<Delivery, "deliver">;
  readonly filter: FaultFilter;
}

/** An update an owner broadcast on the document's channel (see `acked`). */
export interface AckedUpdate {
  readonly epoch: number;
  readonly seq: number;
  readonly update: Uint8Array;
}

interface Node {
  readonly id: string;
  readonly server: TestServer;
  /** Every TCP connection the node accepted, so a kill can cut them without a close frame. */
  readonly sockets: Set<Socket>;
}

const FILTERS: Readonly<Record<FaultFilter, (message: ChannelMessage) => boolean>> = {
  any: () => true,
  update: (m) => m.type === ChannelMessageType.Update,
  heartbeat: (m) => m.type === ChannelMessageType.Heartbeat,
  closed: (m) => m.type === ChannelMessageType.Closed,
};

/**
 * 2–3 opstream nodes in this process, built with the public builder: one LocalBus
 * (its delivery interceptor is the fault seam), one SQLite file, each node with its
 * own store handle on it as separate processes would have. Clients reach the nodes
 * through {@link ModelCluster.route}, a stand-in for a load balancer.
 */
export class ModelCluster {
  readonly bus: LocalBus;
  /**
   * Acknowledged updates, in broadcast order. An update is acknowledged when its
   * owner has appended it to storage under its epoch and broadcast it as
   * `Update(epoch, seq, update)` on the document's channel: the session publishes
   * only after the append committed, so this is exactly what any client or relay
   * can ever have been sent. The observer subscribes to the channel like a node,
   * but no fault and no kill touches its deliveries, so it sees every broadcast
   * once. (y-websocket has no ack frame: a broadcast is the server's promise.)
   */
  readonly acked: AckedUpdate[] = [];
  readonly counts = { kills: 0, restarts: 0, dropped: 0, duplicated: 0 };
  private readonly slots: (Node | undefined)[];
  private readonly dead = new Set<string>();
  private faults: Fault[] = [];
  private generation = 0;
  /** On the bus like a node (it speaks the backplane protocol), but it never serves anything. */
  private readonly observer: LocalBackplane;

  private constructor(
    private readonly path: string,
    /** The one document the run edits. */
    readonly docId: string,
    nodeCount: number,
  ) {
    this.bus = new LocalBus({ intercept: (message, _docId, to) => this.deliver(message, to) });
    this.slots = Array.from({ length: nodeCount }, () => undefined);
    this.observer = new LocalBackplane({ bus: this.bus, nodeId: OBSERVER });
  }

  /** Starts `nodeCount` nodes on the SQLite file at `path`, for document `docId`. */
  static async start(path: string, docId: string, nodeCount: number): Promise<ModelCluster> {
    const cluster = new ModelCluster(path, docId, nodeCount);
    await cluster.observer.subscribe(docId, (message) => {
      if (message.type === ChannelMessageType.Update) {
        cluster.acked.push({ epoch: message.epoch, seq: message.seq, update: message.payload });
      }
    });
    await Promise.all(cluster.slots.map((_, slot) => cluster.startSlot(slot)));
    return cluster;
  }

  get nodeCount(): number {
    return this.slots.length;
  }

  get aliveCount(): number {
    return this.slots.filter((node) => node !== undefined).length;
  }

  /** The slot of the node that owns the document now, if any. */
  ownerSlot(): number | undefined {
    const owner = this.bus.owners.get(this.docId);
    const slot = this.slots.findIndex((node) => node?.id === owner);
    return slot < 0 ? undefined : slot;
  }

  /** The base URL a client preferring `slot` is sent to: that node, else the next one up. */
  route(slot: number): string {
    for (let i = 0; i < this.slots.length; i++) {
      const node = this.slots[(slot + i) % this.slots.length];
      if (node) return node.server.url;
    }
    return NOWHERE;
  }

  /** Arms `fault` for the next delivery to a node that its filter matches. */
  arm(fault: Fault): void {
    this.faults.push(fault);
  }

  /** Disarms every fault not yet spent. */
  heal(): void {
    this.faults = [];
  }

  /** Graceful restart of `slot` (drain, final snapshot, leases released), or a start if it is down. */
  async restart(slot: number): Promise<void> {
    const node = this.slots[slot];
    if (node) {
      this.slots[slot] = undefined; // its clients reconnect to the others meanwhile
      await node.server.stop();
      this.counts.restarts += 1;
    }
    await this.startSlot(slot);
  }

  /** Starts every slot that is down. */
  async startAll(): Promise<void> {
    for (let slot = 0; slot < this.slots.length; slot++) if (!this.slots[slot]) await this.startSlot(slot);
  }

  /**
   * Kills the node in `slot` as `kill -9` would, and leaves the slot down. In one
   * process that takes four steps, all before anything else runs:
   * - its channel messages stop, both ways (the interceptor drops them, except
   *   towards the observer: a broadcast whose append committed was acknowledged);
   * - its request handlers and leases vanish from the bus, so peers calling it
   *   get NO_HANDLER and the document can be acquired at once. LocalOwnership
   *   leases never expire, so this stands for the lease TTL having run out;
   * - its store handle closes, so nothing it still runs can write: its in-memory
   *   state is lost without a final snapshot;
   * - its TCP connections are destroyed, with no WebSocket close frame.
   * Then the remains are shut down, which can now neither write nor reach anyone.
   */
  async kill(slot: number): Promise<void> {
    const node = this.slots[slot];
    if (!node) return;
    this.slots[slot] = undefined;
    this.dead.add(node.id);
    this.bus.removeNode(node.id);
    const closed = node.server.host.store.close();
    for (const socket of node.sockets) socket.destroy();
    node.server.server.close();
    this.counts.kills += 1;
    await closed;
    await node.server.stop();
  }

  /** Stops every node and the observer. */
  async stop(): Promise<void> {
    await this.observer.close();
    await Promise.all(
      this.slots.map(async (node, slot) => {
        this.slots[slot] = undefined;
        await node?.server.stop();
      }),
    );
  }

  private async startSlot(slot: number): Promise<void> {
    this.generation += 1;
    const id = `n${slot}.${this.generation}`;
    const server = await startServer(
      (b) =>
        b
          .useLocalBackplane({ bus: this.bus })
          // `normal`: commits survive the crash of the process (what a kill does) without an fsync each.
          // Inline writer: a writer thread per node start costs ~0.4 s under tsx, five times a
          // run's work; the thread is covered by the store contract and the process-level specs.
          .useSqliteStorage({ path: this.path, synchronous: "normal", writerThread: false })
          // Snapshots (and trimming) every few ops, so loads mix snapshot and log.
          .useSnapshotPolicy(new HybridSnapshotPolicy({ maxOps: 4 })),
      // A distinct id per incarnation: the remains of a killed node can never act for its successor.
      { nodeId: id, sessions: { heartbeatIntervalMs: 20 } },
    );
    const sockets = new Set<Socket>();
    server.server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    });
    this.slots[slot] = { id, server, sockets };
  }

  private deliver(message: ChannelMessage, to: string): Delivery {
    if (to === OBSERVER) return "deliver";
    if (this.dead.has(message.origin) || this.dead.has(to)) return "drop";
    const index = this.faults.findIndex((fault) => FILTERS[fault.filter](message));
    if (index < 0) return "deliver";
    const [fault] = this.faults.splice(index, 1);
    if (fault!.action === "drop") this.counts.dropped += 1;
    else this.counts.duplicated += 1;
    return fault!.action;
  }
}

/** A stock y-websocket client whose every (re)connection goes where `route()` says. */
export class ModelClient {
  readonly doc = new Y.Doc();
  readonly provider: WebsocketProvider;
  /** Whether the model wants it connected (`disconnect` / `reconnect` commands). */
  online = true;

  constructor(docId: string, route: () => string) {
    // A load balancer in front of the nodes: each new socket goes to a node that is up.
    class RoutedWebSocket extends WebSocket {
      constructor(address: string | URL, protocols?: string | string[]) {
        const url = new URL(String(address));
        super(`${route()}${url.pathname}${url.search}`, protocols);
      }
    }
    this.provider = new WebsocketProvider("ws://balancer", docId, this.doc, {
      WebSocketPolyfill: RoutedWebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
      maxBackoffTime: 10,
    });
  }

  get text(): Y.Text {
    return this.doc.getText("text");
  }

  get map(): Y.Map<string> {
    return this.doc.getMap<string>("map");
  }

  disconnect(): void {
    this.online = false;
    this.provider.disconnect();
  }

  connect(): void {
    this.online = true;
    this.provider.connect();
  }

  destroy(): void {
    this.provider.destroy();
    this.doc.destroy();
  }
}
