/**
 * The failover bench's load: `clientsPerNode` clients per document on every node,
 * each appending its own numbered token (`c<client>-<n>;`) to its run of the
 * document's Y.Text `rate` times a second on average (default 2), jittered. The
 * fleet remembers when every token was typed, and scans the bytes of every update
 * a client receives for tokens (clients apply nothing: see client.ts). That is all
 * the bench measures: first deliveries after a fault, whether edits flow between
 * every pair of clients, and, once typing stops, whether every client received
 * every token (convergence) and storage holds them (lost edits).
 */
import type { Histogram } from "../support/histogram.js";
import { TokenSet } from "./token-set.js";
import { FailoverClient, type CloseEvent, type Dialect, type Placement } from "./client.js";
import type { Round } from "./round.js";

/** A client's typing period is uniform in [0.5, 1.5) × 1/rate: at 2/s, 250–750 ms. */
const JITTER = { min: 0.5, max: 1.5 } as const;
/** A client whose typing timeline is further behind than this (a stalled event loop) skips the backlog. */
const MAX_BEHIND_MS = 1000;
const TOKEN = /c(\d+)-(\d+);/g;
/**
 * During a round, the measured document's clients on surviving nodes also type one
 * token each this often in turn, until the round's first delivery: the figure then
 * measures how soon the server delivers again, not how long the next keystroke of
 * a 2-per-second typist takes to come (up to ~340 ms at p99 with 4 typists).
 */
const PROBE_MS = 10;
/** The probe stops by then at the latest (the round's own limit is shorter). */
const PROBE_LIMIT_MS = 120_000;
const POLL_MS = 50;
/** How often clients read the clocks of what they received (see FailoverClient.fold). */
const FOLD_MS = 1000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Where a fleet's clients may connect, as a load balancer sees the nodes. */
export interface Nodes {
  readonly count: number;
  /** The `ws://host:port` base of `node` now. */
  baseUrl(node: number): string;
  /** Whether a load balancer would send clients to `node` (false while it is killed or draining). */
  isUp(node: number): boolean;
}

/** Socket closes counted outside rounds, by kind. */
export interface CloseCounts {
  /** Dropped sockets (they had opened), by close code. */
  dropped: Record<string, number>;
  /** Connection attempts that never opened (refused, or answered with an HTTP error). */
  refused: number;
}

/** What a convergence check found. */
export interface Convergence {
  readonly converged: boolean;
  readonly ms: number;
  /** Documents whose clients were not all synced with equal content at the limit. */
  readonly notConverged: readonly string[];
}

/** A document's tokens that some replica lacks. */
export interface Missing {
  readonly docId: string;
  /** Tokens typed by the document's clients but absent from at least one client's text. */
  readonly fromClients: readonly string[];
  /** Tokens typed but absent from the stored document (when a store was read). */
  readonly fromStore: readonly string[];
}

export class Fleet implements Placement {
  readonly clients: FailoverClient[] = [];
  readonly byDoc = new Map<string, FailoverClient[]>();
  readonly clientsPerDoc: number;
  /** Outside rounds: closes that no round accounts for. */
  readonly outside: CloseCounts = { dropped: {}, refused: 0 };
  /** `typedAt[client][n]`: when token n of that client was typed (performance.now()). */
  private readonly typedAt: number[][] = [];
  /** `seen[client][j]`: the typing time of the newest token of the doc's j-th client this client has. */
  private readonly seen: Float64Array[] = [];
  /** `have[client][j]`: the numbers of the doc's j-th client's tokens this client received. */
  private readonly have: TokenSet[][] = [];
  private readonly timers = new Map<number, NodeJS.Timeout>();
  private round: Round | undefined;
  private probe: NodeJS.Timeout | undefined;
  private typing = false;
  private folding: NodeJS.Timeout | undefined;
  /** While set, every token a client receives from another client records typing → receipt (ms). */
  latency: Histogram | undefined;

  constructor(
    private readonly nodes: Nodes,
    readonly dialect: Dialect,
    readonly docIds: readonly string[],
    clientsPerNode: number,
    /** Tokens each client types per second, on average. */
    private readonly rate: number,
  ) {
    this.clientsPerDoc = clientsPerNode * nodes.count;
    for (const docId of docIds) {
      const members: FailoverClient[] = [];
      for (let j = 0; j < this.clientsPerDoc; j++) {
        const client = new FailoverClient(this.clients.length, docId, j % nodes.count, dialect, this);
        this.typedAt.push([]);
        this.seen.push(new Float64Array(this.clientsPerDoc).fill(-Infinity));
        this.have.push(Array.from({ length: this.clientsPerDoc }, () => new TokenSet()));
        this.clients.push(client);
        members.push(client);
      }
      this.byDoc.set(docId, members);
    }
  }

  /**
   * Connects every client to its home node, waiting up to `limitMs` for them to
   * sync. First the client on node `d % count` of the d-th document, alone: a
   * document is owned where its first client arrives, so owners start out spread.
   */
  async open(limitMs: number): Promise<void> {
    const first = this.docIds.map((docId, d) => {
      const members = this.byDoc.get(docId)!;
      return members.find((client) => client.home === d % this.nodes.count) ?? members[0]!;
    });
    for (const client of first) client.connect(client.home);
    await this.synced(first, limitMs, "first clients");
    const rest = this.clients.filter((client) => !first.includes(client));
    for (const client of rest) client.connect(client.home);
    await this.synced(rest, limitMs, "clients");
  }

  private async synced(clients: readonly FailoverClient[], limitMs: number, what: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const waiting = clients.filter((client) => !client.synced).length;
        reject(new Error(`${waiting} of ${clients.length} ${what} did not sync within ${limitMs} ms`));
      }, limitMs);
    });
    try {
      await Promise.race([Promise.all(clients.map((client) => client.whenSynced())), limit]);
    } finally {
      clearTimeout(timer);
    }
  }

  startTyping(): void {
    this.typing = true;
    for (const client of this.clients) this.schedule(client);
    this.folding ??= setInterval(() => this.clients.forEach((client) => client.fold()), FOLD_MS);
  }

  stopTyping(): void {
    this.typing = false;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** Tokens typed so far. */
  get typed(): number {
    return this.typedAt.reduce((sum, times) => sum + times.length, 0);
  }

  /**
   * Types the client's next token at `due` plus its next period. Periods follow a
   * timeline rather than the previous timer, so a late event loop does not lower
   * the rate asked for; a client more than {@link MAX_BEHIND_MS} behind drops the
   * backlog instead of typing it in a burst.
   */
  private schedule(client: FailoverClient, due = performance.now()): void {
    const period = ((JITTER.min + Math.random() * (JITTER.max - JITTER.min)) * 1000) / this.rate;
    const now = performance.now();
    const at = Math.max(due, now - MAX_BEHIND_MS) + period;
    this.timers.set(
      client.id,
      setTimeout(
        () => {
          if (!this.typing) return;
          this.typeToken(client);
          this.schedule(client, at);
        },
        Math.max(0, at - now),
      ),
    );
  }

  /**
   * Reads the tokens in bytes a client received: a byte search (tokens are ASCII,
   * and Yjs writes a string's characters as they are). Only tokens new to the
   * receiver count, since a SyncStep2 after a reconnect repeats the whole document.
   */
  received(receiver: FailoverClient, bytes: Uint8Array, at: number): void {
    const base = this.baseIndex(receiver);
    const seen = this.seen[receiver.id]!;
    const have = this.have[receiver.id]!;
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
    for (const match of text.matchAll(TOKEN)) {
      const senderId = Number(match[1]);
      const n = Number(match[2]);
      const sender = this.clients[senderId];
      const typedAt = this.typedAt[senderId]?.[n];
      if (!sender || typedAt === undefined || sender.docId !== receiver.docId || sender === receiver)
        continue;
      const j = sender.id - base;
      if (!have[j]!.add(n)) continue;
      if (typedAt > seen[j]!) seen[j] = typedAt;
      this.latency?.record(at - typedAt);
      this.round?.delivered(sender, receiver, typedAt, at);
    }
  }

  /** The id of the first client of `client`'s document (clients of a document have consecutive ids). */
  private baseIndex(client: FailoverClient): number {
    return this.byDoc.get(client.docId)![0]!.id;
  }

  /** Starts accounting deliveries and closes to `round` (until {@link endRound}). */
  beginRound(round: Round): void {
    this.round = round;
    const typists = this.byDoc.get(round.docId)!.filter((client) => client.home !== round.victim);
    let next = 0;
    this.probe = setInterval(() => {
      if (!this.typing || typists.length === 0) return;
      this.typeToken(typists[next++ % typists.length]!);
    }, PROBE_MS);
    void round.whenDelivered(round.docId, PROBE_LIMIT_MS).then(() => this.stopProbe());
  }

  endRound(): void {
    this.round = undefined;
    this.stopProbe();
  }

  private stopProbe(): void {
    clearInterval(this.probe);
    this.probe = undefined;
  }

  /** Types the client's next numbered token now. Typed whether or not a socket is open: a user offline keeps typing too. */
  private typeToken(client: FailoverClient): void {
    const times = this.typedAt[client.id]!;
    times.push(performance.now());
    client.type(`c${client.id}-${times.length - 1};`);
  }

  // -------------------------------------------------------------------------
  // Placement: what a load balancer does with the clients

  baseUrl(node: number): string {
    return this.nodes.baseUrl(node);
  }

  /** The node it was on while that is up, else its home, else a live node picked by its id. */
  reconnectTarget(client: FailoverClient): number {
    if (this.nodes.isUp(client.node)) return client.node;
    if (this.nodes.isUp(client.home)) return client.home;
    const live = Array.from({ length: this.nodes.count }, (_, node) => node).filter((node) =>
      this.nodes.isUp(node),
    );
    return live[client.id % live.length] ?? client.home;
  }

  onClose(event: CloseEvent): void {
    if (event.intentional) return;
    if (this.round) return this.round.closed(event);
    if (!event.opened) this.outside.refused++;
    else this.outside.dropped[event.code] = (this.outside.dropped[event.code] ?? 0) + 1;
  }

  /** Sends every client not on its home node back there (the node is up again). */
  rebalance(): number {
    let moved = 0;
    for (const client of this.clients) {
      if (client.node !== client.home && this.nodes.isUp(client.home)) {
        client.connect(client.home);
        moved++;
      }
    }
    return moved;
  }

  // -------------------------------------------------------------------------
  // Conditions

  /**
   * Whether the load is back to normal: every client is synced on its home node,
   * and every client has a token typed after `since` from every other client of its
   * document (every node relays, and through the owner, every pair's edits flow).
   */
  settledSince(since: number): boolean {
    for (const members of this.byDoc.values()) {
      for (const client of members) {
        if (!client.synced || client.node !== client.home) return false;
        const seen = this.seen[client.id]!;
        for (let j = 0; j < members.length; j++) {
          if (members[j] !== client && seen[j]! <= since) return false;
        }
      }
    }
    return true;
  }

  /** Waits up to `limitMs` for {@link settledSince}; resolves with the wait, or null at the limit. */
  async settle(since: number, limitMs: number): Promise<number | null> {
    const startedAt = performance.now();
    while (!this.settledSince(since)) {
      if (performance.now() - startedAt > limitMs) return null;
      await sleep(POLL_MS);
    }
    return performance.now() - startedAt;
  }

  /**
   * With typing stopped: waits up to `limitMs` until every document's clients are
   * synced and each has received every token the others typed.
   */
  async converge(limitMs: number): Promise<Convergence> {
    const startedAt = performance.now();
    const unconverged = (): string[] =>
      [...this.byDoc]
        .filter(([, members]) => members.some((client) => !client.synced || this.lacking(client).length > 0))
        .map(([docId]) => docId);
    let notConverged = unconverged();
    while (notConverged.length > 0 && performance.now() - startedAt < limitMs) {
      await sleep(POLL_MS);
      notConverged = unconverged();
    }
    return { converged: notConverged.length === 0, ms: performance.now() - startedAt, notConverged };
  }

  /** The tokens typed by the other clients of `client`'s document that it has not received. */
  private lacking(client: FailoverClient): string[] {
    const members = this.byDoc.get(client.docId)!;
    const base = this.baseIndex(client);
    const have = this.have[client.id]!;
    const result: string[] = [];
    for (const sender of members) {
      if (sender === client) continue;
      const got = have[sender.id - base]!;
      const typed = this.typedAt[sender.id]!.length;
      if (got.size === typed) continue;
      for (let n = 0; n < typed; n++) if (!got.has(n)) result.push(`c${sender.id}-${n};`);
    }
    return result;
  }

  /**
   * Every token typed so far that some client did not receive, or the stored text
   * lacks when `stored` is given (docId → text).
   */
  missing(stored?: ReadonlyMap<string, string>): Missing[] {
    const result: Missing[] = [];
    for (const [docId, members] of this.byDoc) {
      const lacking = new Set(members.flatMap((client) => this.lacking(client)));
      const inStore = stored && tokensOf(stored.get(docId) ?? "");
      const fromStore = !inStore
        ? []
        : members
            .flatMap((client) => this.typedAt[client.id]!.map((_, n) => `c${client.id}-${n};`))
            .filter((token) => !inStore.has(token));
      if (lacking.size > 0 || fromStore.length > 0)
        result.push({ docId, fromClients: [...lacking], fromStore });
    }
    return result;
  }

  close(): void {
    this.stopTyping();
    clearInterval(this.folding);
    for (const client of this.clients) client.close();
  }

  /** Reconnects and socket errors over all clients. */
  sockets(): { reconnects: number; errors: number } {
    return {
      reconnects: this.clients.reduce((sum, client) => sum + client.reconnects, 0),
      errors: this.clients.reduce((sum, client) => sum + client.errors, 0),
    };
  }
}

function tokensOf(text: string): Set<string> {
  return new Set(Array.from(text.matchAll(TOKEN), (match) => match[0]));
}
