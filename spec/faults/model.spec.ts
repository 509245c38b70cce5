import { strict as assert } from "node:assert";
import { join } from "node:path";
import { setImmediate as tick, setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import * as Y from "yjs";
import { SqliteDocumentStore } from "../../src/index.js";
import { eventually } from "../support/eventually.js";
import { tempDir } from "../support/temp.js";
import { ModelClient, ModelCluster, type FaultFilter } from "./model-cluster.js";

/** Runs of the property: 1000 in CI; OPSTREAM_MODEL_RUNS sets another number locally. */
const RUNS = Number(process.env.OPSTREAM_MODEL_RUNS ?? 1000);
/** Runs in flight at once. */
const LANES = Number(process.env.OPSTREAM_MODEL_LANES ?? 2);
/** Replays one lane: the seed (and path) a failure printed. */
const SEED =
  process.env.OPSTREAM_MODEL_SEED === undefined ? undefined : Number(process.env.OPSTREAM_MODEL_SEED);
const PATH = process.env.OPSTREAM_MODEL_PATH;
/** How long the healed cluster may take to converge at the end of a run. */
const CONVERGE_MS = 5000;

type Command =
  | { kind: "insert"; client: number; at: number; length: number }
  | { kind: "delete"; client: number; pick: number; count: number }
  | { kind: "set"; client: number; key: number }
  | { kind: "disconnect"; client: number }
  | { kind: "reconnect"; client: number }
  | { kind: "fault"; action: "drop" | "duplicate"; filter: FaultFilter }
  | { kind: "restart"; node: number }
  | { kind: "kill" }
  | { kind: "wait"; ms: number };

interface Scenario {
  nodes: number;
  clients: number;
  commands: Command[];
}

const client = fc.nat({ max: 2 });
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("insert"),
      client,
      at: fc.nat(),
      length: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("delete"),
      client,
      pick: fc.nat(),
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("set"), client, key: fc.nat({ max: 2 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("disconnect"), client }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("reconnect"), client }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("fault"),
      action: fc.constantFrom("drop", "duplicate"),
      filter: fc.constantFrom<FaultFilter>("update", "heartbeat", "closed", "any"),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("restart"), node: fc.nat({ max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("kill") }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("wait"), ms: fc.integer({ min: 1, max: 10 }) }) },
);

const scenario: fc.Arbitrary<Scenario> = fc.record({
  nodes: fc.integer({ min: 2, max: 3 }),
  clients: fc.integer({ min: 2, max: 3 }),
  commands: fc.array(command, { minLength: 5, maxLength: 30 }),
});

/**
 * What the clients did, kept apart from any document: every inserted character is
 * unique in the run, and only its author ever deletes it, so the final text must
 * hold exactly the inserted-minus-deleted characters, once each.
 */
class Model {
  private next = 0;
  readonly author = new Map<string, number>();
  readonly deleted = new Set<string>();
  /** Each client's own characters, in its order, as it saw them after its last edit. */
  readonly lastView: string[][];
  /** Every value set per map key, and who set it. */
  readonly values = new Map<string, { client: number; value: string }[]>();

  constructor(clients: number) {
    this.lastView = Array.from({ length: clients }, () => []);
  }

  freshChars(length: number, client: number): string {
    let text = "";
    for (let i = 0; i < length; i++) {
      const char = String.fromCodePoint(0x4e00 + this.next++);
      this.author.set(char, client);
      text += char;
    }
    return text;
  }

  own(text: string, client: number): string[] {
    return [...text].filter((char) => this.author.get(char) === client);
  }
}

class Run {
  readonly model: Model;
  private constructor(
    readonly cluster: ModelCluster,
    readonly clients: ModelClient[],
  ) {
    this.model = new Model(clients.length);
  }

  static async start(path: string, docId: string, s: Scenario): Promise<Run> {
    const cluster = await ModelCluster.start(path, docId, s.nodes);
    const clients = Array.from(
      { length: s.clients },
      (_, i) => new ModelClient(docId, () => cluster.route(i % cluster.nodeCount)),
    );
    // No waiting for the first sync: commands race the clients' first connections too.
    return new Run(cluster, clients);
  }

  async execute(commands: readonly Command[]): Promise<void> {
    for (const cmd of commands) {
      await this.step(cmd);
      await tick(); // let sockets, relays and sessions move between commands
    }
  }

  private async step(cmd: Command): Promise<void> {
    const c = "client" in cmd ? this.clients[cmd.client % this.clients.length]! : undefined;
    const index = "client" in cmd ? cmd.client % this.clients.length : -1;
    switch (cmd.kind) {
      case "insert": {
        const text = this.model.freshChars(cmd.length, index);
        c!.text.insert(cmd.at % (c!.text.length + 1), text);
        this.model.lastView[index] = this.model.own(c!.text.toString(), index);
        return;
      }
      case "delete": {
        const mine = [...c!.text.toString()]
          .map((char, at) => ({ char, at }))
          .filter(({ char }) => this.model.author.get(char) === index);
        if (mine.length === 0) return;
        const start = cmd.pick % mine.length;
        const doomed = mine.slice(start, start + cmd.count).reverse();
        c!.doc.transact(() => doomed.forEach(({ at }) => c!.text.delete(at, 1)));
        doomed.forEach(({ char }) => this.model.deleted.add(char));
        this.model.lastView[index] = this.model.own(c!.text.toString(), index);
        return;
      }
      case "set": {
        const key = `k${cmd.key}`;
        const value = `${index}:${this.model.author.size}:${this.model.values.get(key)?.length ?? 0}`;
        c!.map.set(key, value);
        this.model.values.set(key, [...(this.model.values.get(key) ?? []), { client: index, value }]);
        return;
      }
      case "disconnect":
        c!.disconnect();
        return;
      case "reconnect":
        c!.connect();
        return;
      case "fault":
        this.cluster.arm({ action: cmd.action, filter: cmd.filter });
        return;
      case "restart":
        await this.cluster.restart(cmd.node % this.cluster.nodeCount);
        return;
      case "kill": {
        const owner = this.cluster.ownerSlot();
        // Someone must be left to fail over to.
        if (owner !== undefined && this.cluster.aliveCount >= 2) await this.cluster.kill(owner);
        return;
      }
      case "wait":
        await sleep(cmd.ms);
        return;
    }
  }

  /** Heals everything, reconnects every client, and checks the invariants. */
  async settle(storage: SqliteDocumentStore): Promise<void> {
    this.cluster.heal();
    await this.cluster.startAll();
    for (const c of this.clients) if (!c.online) c.connect();
    const expected = await eventually(
      () => {
        const acked = ackedDoc(this.cluster);
        this.clients.forEach((c, i) => {
          assert.ok(c.provider.synced, `client ${i} is synced`);
          assertSameDoc(c.doc, acked, `client ${i}`);
        });
        return acked;
      },
      CONVERGE_MS,
      2,
    );
    const stored = new Y.Doc();
    try {
      const { snapshot, ops } = await storage.load(this.cluster.docId);
      if (snapshot) Y.applyUpdate(stored, snapshot.state);
      for (const op of ops) Y.applyUpdate(stored, op.update);
      assertSameDoc(stored, expected, "a fresh load from storage");
    } finally {
      stored.destroy();
    }
    this.checkModel(expected);
    expected.destroy();
  }

  private checkModel(doc: Y.Doc): void {
    const { model } = this;
    const chars = [...doc.getText("text").toString()];
    const alive = [...model.author.keys()].filter((char) => !model.deleted.has(char));
    assert.equal(chars.length, alive.length, "text length = characters inserted − deleted");
    assert.deepEqual([...chars].sort(), alive.sort(), "every live character once, no deleted one");
    model.lastView.forEach((view, i) =>
      assert.deepEqual(model.own(chars.join(""), i), view, `client ${i}'s characters in its order`),
    );
    const map = doc.getMap<string>("map").toJSON() as Record<string, string>;
    assert.deepEqual(Object.keys(map).sort(), [...model.values.keys()].sort(), "every key set is present");
    for (const [key, sets] of model.values) {
      assert.ok(
        sets.some((s) => s.value === map[key]),
        `${key} holds a value set for it`,
      );
      const setters = new Set(sets.map((s) => s.client));
      if (setters.size === 1)
        assert.equal(map[key], sets.at(-1)!.value, `${key}: its only writer's last value`);
    }
    const seqs = this.cluster.acked.map((a) => a.seq);
    assert.equal(new Set(seqs).size, seqs.length, `no sequence number acknowledged twice: ${seqs.join(",")}`);
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.destroy();
    await this.cluster.stop();
  }
}

/** The merge of every acknowledged update, as a document. */
function ackedDoc(cluster: ModelCluster): Y.Doc {
  const doc = new Y.Doc();
  if (cluster.acked.length > 0) Y.applyUpdate(doc, Y.mergeUpdates(cluster.acked.map((a) => a.update)));
  return doc;
}

/** Same structs and deletions (no pending ones), same text, same map. */
function assertSameDoc(doc: Y.Doc, expected: Y.Doc, name: string): void {
  assert.equal(doc.store.pendingStructs, null, `${name} has pending structs`);
  assert.equal(doc.store.pendingDs, null, `${name} has pending deletions`);
  assert.equal(doc.getText("text").toString(), expected.getText("text").toString(), `${name}: text`);
  assert.deepEqual(doc.getMap("map").toJSON(), expected.getMap("map").toJSON(), `${name}: map`);
  assert.ok(Y.equalSnapshots(Y.snapshot(doc), Y.snapshot(expected)), `${name}: state vector and delete set`);
}

describe("model-based faults: in-process cluster, stock clients, one SQLite file", function () {
  this.timeout(Math.max(180_000, RUNS * 300));
  // Each y-websocket provider listens for the process's exit: 3 per lane at once.
  const listeners = process.getMaxListeners();
  before(() => process.setMaxListeners(listeners + 3 * LANES));
  after(() => process.setMaxListeners(listeners));

  it(`converges to exactly what was acknowledged, keeping every client edit (${RUNS} runs)`, async () => {
    // One real SQLite file for the whole spec, one document per run: a fresh file per
    // run cost ~30 ms of fsyncs (creation, the switch to WAL, the checkpoint when the
    // last handle closes), a third of a run. This handle stays open throughout and
    // reads each run's document back as a fresh load.
    const path = join(tempDir("opstream-model-"), "model.sqlite");
    const storage = new SqliteDocumentStore({ path, synchronous: "normal" });
    let runs = 0;
    let commands = 0;
    const totals = { kills: 0, restarts: 0, dropped: 0, duplicated: 0 };
    const property = fc.asyncProperty(scenario, async (s) => {
      const run = await Run.start(path, `model-${runs++}`, s);
      try {
        await run.execute(s.commands);
        await run.settle(storage);
      } finally {
        await run.stop();
        for (const [k, v] of Object.entries(run.cluster.counts)) totals[k as keyof typeof totals] += v;
        commands += s.commands.length;
      }
    });
    const started = performance.now();
    // Runs mostly wait on sockets and timers, so lanes of runs overlap; each lane is
    // its own fc.assert with its own seed, which a failure prints with its path.
    const lanes = SEED === undefined ? LANES : 1;
    const base = SEED ?? Math.floor(Math.random() * 0x7fffffff);
    const outcomes = await Promise.allSettled(
      Array.from({ length: lanes }, (_, lane) =>
        fc.assert(property, {
          seed: base + lane,
          numRuns: Math.ceil(RUNS / lanes),
          ...(PATH === undefined ? {} : { path: PATH }),
        }),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `[measure] model-based faults: ${RUNS} runs in ${lanes} lanes (seeds ${base}..${base + lanes - 1}), ${commands} commands (${totals.kills} kills, ${totals.restarts} graceful restarts, ${totals.dropped} dropped and ${totals.duplicated} duplicated deliveries) in ${seconds.toFixed(1)} s, ${((seconds * 1000 * lanes) / runs).toFixed(0)} ms per run per lane`,
    );
    await storage.close();
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    if (failure) throw failure.reason;
  });
});
