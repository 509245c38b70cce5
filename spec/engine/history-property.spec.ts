import { strict as assert } from "node:assert";
import { join } from "node:path";
import fc from "fast-check";
import * as Y from "yjs";
import {
  ErrorCodes,
  HybridSnapshotPolicy,
  MemoryDocumentStore,
  SqliteDocumentStore,
  isOpStreamError,
  type DocumentStore,
  type StoredOp,
  type VersionInfo,
} from "../../src/index.js";
import type { DocumentSession } from "../../src/engine/document-session.js";
import { resolveHistoryOptions } from "../../src/engine/history/history-options.js";
import type { RestoreResult } from "../../src/engine/history/session-history.js";
import { openSession } from "../support/engine.js";
import { eventually } from "../support/eventually.js";
import { tempDir } from "../support/temp.js";

/*
 * Document history as a property: whatever a document went through — edits of
 * several clients (some in flight while a version, a compaction or a restore
 * runs), compactions (by the policy and by the management action), graceful
 * closes, crashes and ex-owners left running, named and automatic versions
 * (with retention dropping some), restores of any retained version — every
 * retained version holds exactly the document a replay of the full op log gives
 * at that version's seq, and the live document is the replay of the whole log.
 *
 * Compaction trims the stored log, so the spec keeps its own copy: it reads every
 * op from the store before each snapshot is written (the store's saveSnapshot is
 * wrapped) and at each check. Ops are never rewritten, so that copy is the log.
 */

const RUNS = Number(process.env.OPSTREAM_HISTORY_RUNS ?? 25);
const DOC = "doc";
const CLIENTS = 3;
const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
const decode = <T>(bytes: Uint8Array): T => JSON.parse(new TextDecoder().decode(bytes)) as T;

type Command =
  /** `wait: false` leaves the edit in flight while the next commands run. */
  | { kind: "insert"; client: number; at: number; length: number; wait: boolean }
  | { kind: "delete"; client: number; at: number; count: number; wait: boolean }
  | { kind: "set"; client: number; key: number; wait: boolean }
  /** The client sends what the document lacks and takes what it lacks (a reconnect's sync). */
  | { kind: "sync"; client: number }
  | { kind: "named" }
  /** Waits for the automatic version of the edits this session appended (when one is due). */
  | { kind: "auto" }
  | { kind: "compact" }
  /** graceful: close(); crash: close without final writes; zombie: left open, its successor fences it. */
  | { kind: "restart"; how: "graceful" | "crash" | "zombie" }
  | { kind: "restore"; pick: number };

const client = fc.nat({ max: CLIENTS - 1 });
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("insert" as const),
      client,
      at: fc.nat(),
      length: fc.integer({ min: 1, max: 4 }),
      wait: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("delete" as const),
      client,
      at: fc.nat(),
      count: fc.integer({ min: 1, max: 3 }),
      wait: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("set" as const),
      client,
      key: fc.nat({ max: 2 }),
      wait: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("sync" as const), client }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("named" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("auto" as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("compact" as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("restart" as const),
      how: fc.constantFrom("graceful" as const, "crash" as const, "zombie" as const),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("restore" as const), pick: fc.nat() }) },
);

interface Scenario {
  /** Automatic versions after this quiet period (minIntervalMs 0). */
  quietMs: number;
  /** Retention that keeps every version, or one that thins automatic versions to the latest of each hour at once. */
  thinning: boolean;
  /** The snapshot policy's op threshold: compactions happen on their own too. */
  snapshotEvery: number;
  commands: Command[];
}

const scenario: fc.Arbitrary<Scenario> = fc.record({
  quietMs: fc.integer({ min: 2, max: 15 }),
  thinning: fc.boolean(),
  snapshotEvery: fc.integer({ min: 3, max: 40 }),
  commands: fc.array(command, { minLength: 5, maxLength: 30 }),
});

/** The content a check compares: the text and the map. */
function contentOf(doc: Y.Doc): { text: string; map: unknown } {
  return { text: doc.getText("text").toString(), map: doc.getMap("map").toJSON() };
}

function docOf(...updates: Uint8Array[]): Y.Doc {
  const doc = new Y.Doc();
  for (const update of updates) Y.applyUpdate(doc, update);
  return doc;
}

/** Same content, same state vector and delete set, nothing pending. */
function assertSameDoc(actual: Y.Doc, expected: Y.Doc, what: string): void {
  assert.equal(actual.store.pendingStructs, null, `${what} has pending structs`);
  assert.equal(actual.store.pendingDs, null, `${what} has pending deletions`);
  assert.deepEqual(contentOf(actual), contentOf(expected), `${what}: content`);
  assert.ok(
    Y.equalSnapshots(Y.snapshot(actual), Y.snapshot(expected)),
    `${what}: state vector and delete set`,
  );
}

/**
 * The full op log of DOC, read from the store before anything can trim it. Every
 * store of a run is wrapped so that its saveSnapshot (a compaction, a graceful
 * close, the snapshot policy) first reads the ops the snapshot will trim.
 */
class FullLog {
  readonly ops: StoredOp[] = [];

  get lastSeq(): number {
    return this.ops.at(-1)?.seq ?? 0;
  }

  async collect(store: DocumentStore): Promise<void> {
    for (const op of await store.readOps(DOC, this.lastSeq)) {
      assert.ok(op.seq > this.lastSeq, `op seqs strictly increase (${op.seq} after ${this.lastSeq})`);
      this.ops.push(op);
    }
  }

  /** `store` with its saveSnapshot reading the log first. */
  keep(store: DocumentStore): DocumentStore {
    return new Proxy(store, {
      get: (target, property, receiver) => {
        if (property === "saveSnapshot") {
          return async (...args: Parameters<DocumentStore["saveSnapshot"]>) => {
            await this.collect(target);
            return target.saveSnapshot(...args);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** The document a replay of every op up to `seq` gives. */
  replay(seq = Infinity): Y.Doc {
    return docOf(...this.ops.filter((op) => op.seq <= seq).map((op) => op.update));
  }
}

/** How a run gets its store: the same storage every time (a restart reopens it). */
interface Storage {
  readonly name: string;
  open(): DocumentStore;
  /** Closes every store it opened (at the end of a run). */
  closeAll(): Promise<void>;
}

function memoryStorage(): Storage {
  const store = new MemoryDocumentStore();
  return { name: "memory", open: () => store, closeAll: () => store.close() };
}

/**
 * A SQLite file, written on the event loop: under tsx each writer thread takes
 * about a second to start (it registers the loader), which a reopen per restart
 * cannot afford here. OPSTREAM_HISTORY_SQLITE_THREAD=1 runs the writer thread.
 */
function sqliteStorage(): Storage {
  const path = join(tempDir("opstream-history-"), "history.sqlite");
  const writerThread = process.env.OPSTREAM_HISTORY_SQLITE_THREAD === "1";
  const opened: SqliteDocumentStore[] = [];
  return {
    name: "sqlite",
    open: () => {
      const store = new SqliteDocumentStore({ path, synchronous: "normal", writerThread });
      opened.push(store);
      return store;
    },
    closeAll: async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    },
  };
}

/** Counts over all runs, printed at the end. */
interface Totals {
  runs: number;
  commands: number;
  restores: number;
  versionsChecked: number;
  restarts: number;
}

class Run {
  readonly log = new FullLog();
  private store!: DocumentStore;
  private session!: DocumentSession;
  /** Sessions left running after a "zombie" restart; closed at the end. */
  private readonly zombies: DocumentSession[] = [];
  private readonly clients = Array.from({ length: CLIENTS }, () => new Y.Doc());
  private readonly inFlight = new Set<Promise<void>>();
  /** Seqs the sessions acknowledged. */
  private readonly acked: number[] = [];
  /** Failures of edits other than a closed or fenced session's. */
  private readonly unexpected: unknown[] = [];
  /** The highest seq this session appended for an edit (0: none yet). */
  private appendedHere = 0;
  private next = 0;

  constructor(
    private readonly storage: Storage,
    private readonly s: Scenario,
    private readonly totals: Totals,
  ) {}

  private get history() {
    return resolveHistoryOptions({
      quietMs: this.s.quietMs,
      minIntervalMs: 0,
      // keepAllMs 0: each automatic version drops the earlier automatic ones of its hour.
      retention: this.s.thinning ? { keepAllMs: 0, hourlyForMs: 86_400_000 } : {},
    });
  }

  async open(): Promise<void> {
    this.store = this.log.keep(this.storage.open());
    this.session = await openSession(DOC, {
      store: this.store,
      history: this.history,
      snapshotPolicy: new HybridSnapshotPolicy({ maxOps: this.s.snapshotEvery }),
    });
    this.appendedHere = 0;
  }

  async execute(commands: readonly Command[]): Promise<void> {
    for (const cmd of commands) {
      await this.step(cmd);
      this.totals.commands += 1;
    }
  }

  private async step(cmd: Command): Promise<void> {
    switch (cmd.kind) {
      case "insert":
      case "delete":
      case "set":
        return this.edit(cmd);
      case "sync":
        return this.sync(cmd.client);
      case "named": {
        const { bytes } = await this.session.manage("version", encode({ name: `named ${this.next++}` }));
        assert.equal(decode<VersionInfo>(bytes).kind, "named");
        return;
      }
      case "auto":
        return this.awaitAutoVersion();
      case "compact":
        await this.session.manage("compact");
        return;
      case "restart":
        return this.restart(cmd.how);
      case "restore":
        return this.restore(cmd.pick);
    }
  }

  private async edit(cmd: Extract<Command, { kind: "insert" | "delete" | "set" }>): Promise<void> {
    const doc = this.clients[cmd.client]!;
    const text = doc.getText("text");
    const updates: Uint8Array[] = [];
    const record = (update: Uint8Array) => updates.push(update);
    doc.on("update", record);
    doc.transact(() => {
      if (cmd.kind === "insert") {
        const chars = Array.from({ length: cmd.length }, () =>
          String.fromCodePoint(0x61 + (this.next++ % 26)),
        );
        text.insert(cmd.at % (text.length + 1), chars.join(""));
      } else if (cmd.kind === "delete" && text.length > 0) {
        const at = cmd.at % text.length;
        text.delete(at, Math.min(cmd.count, text.length - at));
      } else if (cmd.kind === "set") {
        doc.getMap("map").set(`k${cmd.key}`, `c${cmd.client}-${this.next++}`);
      }
    });
    doc.off("update", record);
    if (updates.length === 0) return;
    const sent = this.send(cmd.client, Y.mergeUpdates(updates));
    if (cmd.wait) await sent;
  }

  /** Applies `update` from client `c` on the current session; settles once acknowledged or refused. */
  private send(c: number, update: Uint8Array): Promise<void> {
    const session = this.session;
    const sent = session.apply(update, { kind: "peer", peerId: `client-${c}` }).then(
      (seq) => {
        if (seq === null) return;
        this.acked.push(seq);
        if (session === this.session) this.appendedHere = Math.max(this.appendedHere, seq);
      },
      (error: unknown) => {
        // A crashed or fenced session refuses it: the client keeps it and resends on sync.
        if (!isOpStreamError(error, ErrorCodes.SESSION_CLOSED) && !isOpStreamError(error, ErrorCodes.FENCED))
          this.unexpected.push(error);
      },
    );
    this.inFlight.add(sent);
    void sent.finally(() => this.inFlight.delete(sent));
    return sent;
  }

  private async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Client `c` sends its whole state (the session skips what it has) and takes the document's. */
  private async sync(c: number): Promise<void> {
    const doc = this.clients[c]!;
    await this.send(c, Y.encodeStateAsUpdate(doc));
    Y.applyUpdate(doc, (await this.session.state()).bytes);
  }

  private async awaitAutoVersion(): Promise<void> {
    await this.settle();
    const due = this.appendedHere;
    if (due === 0) return; // only this session's own edits are sure to get one
    await eventually(async () => {
      const versions = await this.store.listVersions(DOC);
      assert.ok(
        versions.some((v) => v.seq >= due),
        `an automatic version holds seq ${due} (latest: ${versions.at(-1)?.seq})`,
      );
    }, 3000);
  }

  private async restart(how: "graceful" | "crash" | "zombie"): Promise<void> {
    this.totals.restarts += 1;
    if (how === "graceful") {
      await this.settle();
      await this.session.close();
    } else if (how === "crash") {
      // Nothing more is written: no final snapshot, no final version; edits in flight may fail.
      await this.session.close("storage-failure");
    } else {
      this.zombies.push(this.session);
    }
    await this.log.collect(this.store);
    await this.open();
    for (let c = 0; c < CLIENTS; c++) await this.sync(c);
  }

  private async restore(pick: number): Promise<void> {
    const versions = await this.store.listVersions(DOC);
    if (versions.length === 0) return;
    const target = versions[pick % versions.length]!;
    const quiet = this.inFlight.size === 0;
    const before = quiet ? contentOf(docOf((await this.session.state()).bytes)) : undefined;
    const { bytes } = await this.session.manage("restore", encode({ versionId: target.id }));
    const result = decode<RestoreResult>(bytes);
    this.totals.restores += 1;
    assert.equal(result.restored.id, target.id);
    assert.deepEqual([result.before.kind, result.after.kind], ["before-restore", "restore"]);
    assert.equal(result.after.restoredFrom, target.id);
    if (!quiet || this.inFlight.size > 0) return;
    // Nothing ran alongside it: the document holds exactly the version's content,
    // and `before` exactly what it held before.
    const stored = await this.store.loadVersion(DOC, target.id);
    const beforeVersion = await this.store.loadVersion(DOC, result.before.id);
    assert.deepEqual(contentOf(docOf((await this.session.state()).bytes)), contentOf(docOf(stored!.state)));
    assert.deepEqual(contentOf(docOf(beforeVersion!.state)), before);
  }

  /** Everything settled: the invariants. */
  async check(): Promise<void> {
    await this.settle();
    for (const zombie of this.zombies.splice(0)) await zombie.close("step-down");
    for (let c = 0; c < CLIENTS; c++) await this.sync(c);
    await this.settle();
    assert.deepEqual(this.unexpected, [], "no edit failed but for a closed or fenced session");
    await this.log.collect(this.store);
    const logged = new Set(this.log.ops.map((op) => op.seq));
    assert.deepEqual(
      this.acked.filter((seq) => !logged.has(seq)),
      [],
      "every acknowledged seq is in the log",
    );

    const live = docOf((await this.session.state()).bytes);
    assertSameDoc(live, this.log.replay(), "the live document vs a replay of the full log");
    const { snapshot, ops } = await this.store.load(DOC);
    const loaded = docOf(...(snapshot ? [snapshot.state] : []), ...ops.map((op) => op.update));
    assertSameDoc(loaded, live, "a fresh load from the store");
    this.clients.forEach((doc, c) => assert.deepEqual(contentOf(doc), contentOf(live), `client ${c}`));

    for (const info of await this.store.listVersions(DOC)) {
      const version = await this.store.loadVersion(DOC, info.id);
      assert.ok(version, `version ${info.id} is listed and loads`);
      assert.ok(info.seq <= this.log.lastSeq, `version ${info.id} at seq ${info.seq} is within the log`);
      assertSameDoc(
        docOf(version.state),
        this.log.replay(info.seq),
        `version ${info.id} (${info.kind}, seq ${info.seq}) vs a replay of the log to its seq`,
      );
      this.totals.versionsChecked += 1;
    }
  }

  async stop(): Promise<void> {
    await this.settle();
    for (const zombie of this.zombies.splice(0)) await zombie.close("step-down");
    await this.session.close();
    this.clients.forEach((doc) => doc.destroy());
    await this.storage.closeAll();
  }
}

describe("History property: every retained version is the replay of the full op log at its seq", function () {
  this.timeout(60_000);

  for (const storage of [memoryStorage, sqliteStorage]) {
    const name = storage === memoryStorage ? "memory" : "SQLite file (reopened on each restart)";
    it(`through edits, compactions, restarts, crashes, named and automatic versions and restores (${name}, ${RUNS} runs)`, async () => {
      const totals: Totals = { runs: 0, commands: 0, restores: 0, versionsChecked: 0, restarts: 0 };
      const started = performance.now();
      await fc.assert(
        fc.asyncProperty(scenario, async (s) => {
          totals.runs += 1;
          const run = new Run(storage(), s, totals);
          await run.open();
          try {
            await run.execute(s.commands);
            await run.check();
          } finally {
            await run.stop();
          }
        }),
        { numRuns: RUNS },
      );
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(
        `[measure] history property (${name}): ${totals.runs} runs, ${totals.commands} commands, ${totals.restarts} restarts, ${totals.restores} restores, ${totals.versionsChecked} versions checked in ${seconds} s`,
      );
    });
  }
});
