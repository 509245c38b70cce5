import { strict as assert } from "node:assert";
import { Redis } from "ioredis";
import type * as Y from "yjs";
import { connectClient, synced, type Client } from "../support/clients.js";
import { startCluster, type Cluster } from "../support/cluster.js";
import type { ServerProcess } from "../support/process.js";
import { eventually } from "../support/eventually.js";
import { storedEpochs } from "../cluster/editing.js";
import { keepWriting, ownersOf, receivedTokens, tokensOf } from "../cluster/support.js";
import { assertConverged, metricOf, watchLogs } from "./support.js";

const LEASE_TTL_MS = 3000;
/** The nodes' subscriber self-check period (the CLI default, passed explicitly so the bound below follows it). */
const CHECK_INTERVAL_MS = 1000;
/**
 * The self-check period of the slow-subscriber case's nodes. A paused subscriber
 * link holds back the self-check's answers too, so at the default period the node
 * resets the link itself before Redis's output-buffer limit is reached; at this
 * one no reset falls due (2.5 periods unanswered) while the case runs, and the
 * disconnection it sees is Redis's own.
 */
const SLOW_SUBSCRIBER_CHECK_INTERVAL_MS = 30_000;
const CLIENTS_PER_NODE = 2;

/** Time is the subject of these waits (an outage of a given length), not a condition. */
function outage(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function measure(values: Record<string, string | number>): void {
  const fields = Object.entries(values).map(([key, value]) => `${key}=${value}`);
  console.log(`[measure] ${fields.join(" ")}`);
}

/**
 * Faults on the links between nodes and Redis, each under concurrent edits by
 * stock y-websocket clients on all three nodes (issue #8, part 1). Every node
 * reaches Redis through its own FaultProxy (`cluster.redisLinks[i]`).
 */
describe("Redis link faults: 3 nodes, clients on every node", function () {
  this.timeout(90_000);
  let cluster: Cluster | undefined;
  let clients: Client[] = [];
  let byNode: Client[][] = [];
  /** Writers still running when a case fails; stopped after it, or mocha would never exit. */
  let writers: { stop(): Promise<void> }[] = [];

  /** A fresh cluster for the case, stopped in `afterEach` whatever the case did. */
  async function start(checkIntervalMs = CHECK_INTERVAL_MS): Promise<Cluster> {
    cluster = await startCluster(3, {
      faults: true,
      leaseTtlMs: LEASE_TTL_MS,
      extraArgs: ["--subscriber-check-interval-ms", String(checkIntervalMs)],
    });
    return cluster;
  }
  // Every step runs even when a case failed half-way: one writer, client or node
  // left running keeps mocha (exit: false) from ever exiting.
  afterEach(async () => {
    const running = { writers, clients, cluster };
    writers = [];
    clients = [];
    byNode = [];
    cluster = undefined;
    try {
      await Promise.allSettled(running.writers.map((writer) => writer.stop()));
      running.clients.forEach((client) => client.destroy());
    } finally {
      await running.cluster?.stop();
    }
  });

  /** {@link CLIENTS_PER_NODE} clients straight to each node, all synced; returns the owner's index. */
  async function clientsOnEveryNode(c: Cluster, doc: string): Promise<number> {
    // The first client opens the document, so its node owns it; the others relay.
    // Each is listed as soon as it exists, so `afterEach` destroys it even if a sync times out.
    const first = connectClient(c.nodes[0]!.url, doc);
    clients = [first];
    await synced(first, 10_000);
    byNode = c.nodes.map((node, index) =>
      Array.from({ length: CLIENTS_PER_NODE }, (_, k) =>
        index === 0 && k === 0 ? first : connectClient(node.url, doc),
      ),
    );
    clients = byNode.flat();
    await Promise.all(clients.map((client) => synced(client, 10_000)));
    const owners = await ownersOf(c.nodes, doc);
    assert.equal(owners.length, 1, "exactly one node owns the document");
    return owners[0]!;
  }

  const docs = (): Y.Doc[] => clients.map((client) => client.doc);
  const tracked = (running: { stop(): Promise<void> }): { stop(): Promise<void> } => {
    writers.push(running);
    return running;
  };

  it("a relay's subscriber link reset and refused for 5 s: gap detected, resynced, converged within 3 s of healing", async () => {
    const c = await start();
    const owner = await clientsOnEveryNode(c, "sub-reset");
    const relay = (owner + 1) % 3;
    const link = c.redisLinks[relay]!;
    const logs = watchLogs(c.nodes[relay]!);
    const before = await relayCounters(c.nodes[relay]!);
    const subscribersBefore = link.subscribersSeen;
    const writing = tracked(keepWriting(clients, 10));
    await eventually(() => assert.ok(receivedTokens(clients).size > 100), 20_000);

    link.cut({ subscribersOnly: true });
    await outage(5000);
    assert.ok(link.subscribersSeen > subscribersBefore, "the subscriber tried to come back and was refused");
    assert.ok(link.connectionCount > 0, "the command connections stayed up");
    await writing.stop();
    const received = receivedTokens(clients);
    link.heal();
    const healedAt = performance.now();
    await assertConverged({ clients: docs(), cluster: c, docName: "sub-reset", timeoutMs: 3000 });
    const convergedMs = performance.now() - healedAt;
    const final = tokensOf(clients[0]!.text.toString());
    assert.deepEqual(
      [...received].filter((token) => !final.has(token)),
      [],
      "nothing any client had received is lost",
    );
    const after = await relayCounters(c.nodes[relay]!);
    assert.equal(
      after.resubscribes - before.resubscribes,
      1,
      "the node counted one resubscription, not one per flap",
    );
    assert.equal(logs.entries("redis subscriber re-subscribed").length, 1);
    // The loss is handled either way: a relay that lived through the outage resyncs
    // (a gap); one whose requests timed out meanwhile (the answers come on its
    // subscriber) re-joined the owner with its clients, which got its full state.
    const gaps = after.gaps - before.gaps;
    const moves = after.moves - before.moves;
    assert.ok(gaps + moves > 0, "the relay resynced or re-joined the owner");
    assert.equal(after.closes - before.closes, 0, "the relay's clients stayed connected");
    measure({
      case: "subscriber-reset",
      refusedMs: 5000,
      convergedAfterHealMs: Math.round(convergedMs),
      resubscribes: after.resubscribes - before.resubscribes,
      gaps,
      resyncs: after.resyncs - before.resyncs,
      moves,
      refusedSubscribeAttempts: link.subscribersSeen - subscribersBefore - 1,
    });
  });

  it("a relay's subscriber link half-open: detected within 3 self-check intervals, reconnected, converged", async () => {
    const c = await start();
    const owner = await clientsOnEveryNode(c, "sub-stall");
    const relay = (owner + 1) % 3;
    const link = c.redisLinks[relay]!;
    const logs = watchLogs(c.nodes[relay]!);
    const writing = tracked(keepWriting(clients, 10));
    await eventually(() => assert.ok(receivedTokens(clients).size > 100), 20_000);

    const endedBefore = link.subscribersEnded;
    const seenBefore = link.subscribersSeen;
    const before = await relayCounters(c.nodes[relay]!);
    link.stall({ subscribersOnly: true });
    const stalledAt = performance.now();
    // The node itself must end the silent link: nothing else will (no FIN, no RST).
    await eventually(() => assert.ok(link.subscribersEnded > endedBefore), 10 * CHECK_INTERVAL_MS, 5);
    const detectedMs = performance.now() - stalledAt;
    link.heal();
    await eventually(() => assert.ok(link.subscribersSeen > seenBefore, "the subscriber reconnected"), 5000);
    const reconnectedMs = performance.now() - stalledAt;
    assert.ok(
      logs.entries("redis subscriber stopped receiving; reconnecting it").length > 0,
      "the self-check found it",
    );
    assert.ok(
      detectedMs <= 3 * CHECK_INTERVAL_MS,
      `detected after ${Math.round(detectedMs)} ms (3 intervals: ${3 * CHECK_INTERVAL_MS} ms)`,
    );
    await eventually(
      async () => assert.ok((await relayCounters(c.nodes[relay]!)).resubscribes > before.resubscribes),
      5000,
    );
    await writing.stop();
    const received = receivedTokens(clients);
    await assertConverged({ clients: docs(), cluster: c, docName: "sub-stall", timeoutMs: 10_000 });
    const after = await relayCounters(c.nodes[relay]!);
    const final = tokensOf(clients[0]!.text.toString());
    assert.deepEqual(
      [...received].filter((token) => !final.has(token)),
      [],
      "nothing received is lost",
    );
    measure({
      case: "subscriber-half-open",
      checkIntervalMs: CHECK_INTERVAL_MS,
      detectedMs: Math.round(detectedMs),
      reconnectedMs: Math.round(reconnectedMs),
      gaps: after.gaps - before.gaps,
      clientsClosed: after.closes - before.closes,
    });
  });

  it("a slow subscriber over Redis's pub/sub output-buffer limit is disconnected by Redis, resubscribes, resyncs, converges", async () => {
    const c = await start(SLOW_SUBSCRIBER_CHECK_INTERVAL_MS);
    const owner = await clientsOnEveryNode(c, "sub-slow");
    const admin = new Redis(c.redis.url);
    const tap = new Redis(c.redis.url);
    try {
      // Large updates from a client on the owner (the owner stores and publishes
      // each); a tap keeps their frames, to publish again below.
      const channel = `${c.keyPrefix}doc:sub-slow`;
      const frames: Buffer[] = [];
      tap.on("messageBuffer", (from: Buffer, message: Buffer) => {
        if (from.toString() === channel && message.length > 64 * 1024) frames.push(message);
      });
      await tap.subscribe(channel);
      const writer = byNode[owner]![0]!;
      const chunk = "x".repeat(128 * 1024);
      const bigWrites = 40;
      for (let i = 0; i < bigWrites; i++) writer.text.insert(writer.text.length, `big-${i}:${chunk};`);
      // The owner may merge several into one frame (one batch, one publish).
      const bytesOf = (list: Buffer[]): number => list.reduce((sum, frame) => sum + frame.length, 0);
      await eventually(() => assert.ok(bytesOf(frames) >= bigWrites * chunk.length), 20_000);
      await eventually(
        () =>
          clients.forEach((client) => assert.ok(client.text.toString().includes(`big-${bigWrites - 1}:`))),
        20_000,
      );

      // A node that relays the document now: under load the large writes may have cost
      // the owner its lease, or a relay its clients (its requests timed out, so it closed
      // and unsubscribed until they rejoin). Only a subscriber of the document's channel
      // (besides its node's: sub=2) has the frames below queued for it.
      const { relay, subscriberPort } = await eventually(async () => {
        const owners = await ownersOf(c.nodes, "sub-slow");
        assert.equal(owners.length, 1, "one owner");
        const index = (owners[0]! + 1) % 3;
        const [port] = c.redisLinks[index]!.subscriberUpstreamPorts();
        assert.ok(port, "the relay node has a subscriber link");
        const entry = (await clientEntry(admin, port)) ?? "";
        assert.ok(Number(/ sub=(\d+) /.exec(entry)?.[1]) >= 2, `the relay subscribes the document: ${entry}`);
        return { relay: index, subscriberPort: port };
      }, 20_000);
      const link = c.redisLinks[relay]!;
      const logs = watchLogs(c.nodes[relay]!);
      await admin.config("SET", "client-output-buffer-limit", "pubsub 256kb 128kb 1");
      const before = await relayCounters(c.nodes[relay]!);
      const resubscribedBefore = logs.entries("redis subscriber re-subscribed").length;
      const killedBefore = await outputBufferKills(admin);
      const seenBefore = link.subscribersSeen;

      const writing = tracked(keepWriting(clients, 20));
      link.pause({ subscribersOnly: true });
      const pausedAt = performance.now();
      // The owner's large update frames again (relays drop them as already seen), all
      // at once, so Redis must queue megabytes for the paused subscriber.
      let published = 0;
      for (let round = 0; round < 4 && (await clientEntry(admin, subscriberPort)); round++) {
        const pipeline = admin.pipeline();
        for (const frame of frames) pipeline.publish(channel, frame);
        await pipeline.exec();
        published += bytesOf(frames);
      }
      await eventually(
        async () => {
          // Its entry (sub=, omem=) tells a subscriber Redis kept from one it had nothing to send.
          const entry = await clientEntry(admin, subscriberPort);
          assert.ok(entry === undefined, `Redis still lists the paused subscriber: ${entry}`);
        },
        5000,
        10,
      );
      const killedMs = performance.now() - pausedAt;
      const selfChecked = logs.entries("redis subscriber stopped receiving; reconnecting it").length;
      assert.ok(
        link.subscriberUpstreamPorts().includes(subscriberPort) && selfChecked === 0,
        `the proxy still holds the link: Redis, not the node, ended it (after ${Math.round(killedMs)} ms; node self-check resets: ${selfChecked})`,
      );
      const killedAfter = await outputBufferKills(admin);
      const killed =
        killedBefore === undefined || killedAfter === undefined ? undefined : killedAfter - killedBefore;
      if (killed !== undefined) assert.ok(killed > 0, "Redis counted an output-buffer disconnection");
      // Back to Redis's default before the node recovers: with 256 kB, the resync of a
      // 5 MB document (one RPC reply on the subscriber) would be cut off again and again.
      await admin.config("SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60");
      link.resume();
      await eventually(() => assert.ok(link.subscribersSeen > seenBefore, "the node resubscribed"), 10_000);
      await eventually(
        () => assert.ok(logs.entries("redis subscriber re-subscribed").length > resubscribedBefore),
        10_000,
      );
      const resubscribedMs = performance.now() - pausedAt;
      await writing.stop();
      await assertConverged({ clients: docs(), cluster: c, docName: "sub-slow", timeoutMs: 20_000 });
      const text = clients[0]!.text.toString();
      for (let i = 0; i < bigWrites; i++) assert.ok(text.includes(`big-${i}:`), `big update ${i} is there`);
      const after = await relayCounters(c.nodes[relay]!);
      assert.ok(after.resubscribes > before.resubscribes, "the node counted its resubscription");
      // As after a reset: a relay that lived through the loss resyncs (a gap), one whose
      // requests went unanswered meanwhile re-joined the owner, its clients connected.
      const gaps = after.gaps - before.gaps;
      const resyncs = after.resyncs - before.resyncs;
      const moves = after.moves - before.moves;
      assert.ok(gaps + moves > 0, "the relay resynced or re-joined the owner");
      measure({
        case: "slow-subscriber",
        checkIntervalMs: SLOW_SUBSCRIBER_CHECK_INTERVAL_MS,
        bigUpdates: `${bigWrites}x128KiB`,
        publishedWhilePausedMiB: (published / 2 ** 20).toFixed(1),
        redisKilledAfterMs: Math.round(killedMs),
        outputBufferDisconnections: killed ?? "n/a",
        resubscribedAfterMs: Math.round(resubscribedMs),
        resubscribes: after.resubscribes - before.resubscribes,
        gaps,
        resyncs,
        moves,
        clientsClosed: after.closes - before.closes,
      });
    } finally {
      admin.disconnect();
      tap.disconnect();
    }
  });

  it("duplicated and reordered backplane messages: no duplicated content, converged", async () => {
    const c = await start();
    await clientsOnEveryNode(c, "dup");
    const channel = `${c.keyPrefix}doc:dup`;
    const tap = new Redis(c.redis.url);
    const injector = new Redis(c.redis.url);
    const recorded: Buffer[] = [];
    try {
      tap.on("messageBuffer", (from: Buffer, message: Buffer) => {
        if (from.toString() === channel) recorded.push(message);
      });
      await tap.subscribe(channel);
      let inserted = 0;
      let running = true;
      // Counts every character inserted, so duplication shows as extra length.
      const loops = clients.map(async (client, n) => {
        for (let i = 0; running; i++) {
          const token = `c${n}-${i};`;
          client.text.insert(client.text.length, token);
          inserted += token.length;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      });
      tracked({
        stop: async () => {
          running = false;
          await Promise.all(loops);
        },
      });
      await eventually(() => assert.ok(recorded.length > 200), 20_000);
      let injected = 0;
      for (let round = 0; round < 3; round++) {
        const batch = recorded.splice(0, recorded.length);
        const replay = shuffle([...batch, ...batch]);
        for (const message of replay) await injector.publish(channel, message);
        injected += replay.length;
        await eventually(() => assert.ok(recorded.length > 50), 10_000);
      }
      running = false;
      await Promise.all(loops);
      const { text } = await assertConverged({
        clients: docs(),
        cluster: c,
        docName: "dup",
        timeoutMs: 15_000,
      });
      assert.equal(text.length, inserted, "every inserted character is there exactly once");
      const nodes = await Promise.all(
        c.nodes.map(async (node) => ({
          gaps: await metricOf(node, "opstream_relay_gaps_total"),
          resyncs: await metricOf(node, "opstream_relay_resyncs_total"),
          closes: await metricOf(node, "opstream_connection_closes_total"),
        })),
      );
      measure({
        case: "duplicated-reordered",
        injected,
        insertedChars: inserted,
        gaps: nodes.map((n) => n.gaps).join("/"),
        resyncs: nodes.map((n) => n.resyncs).join("/"),
        serverCloses: nodes.map((n) => n.closes).join("/"),
      });
    } finally {
      tap.disconnect();
      injector.disconnect();
    }
  });

  it("the owner cut off from Redis: another node takes over at once, the cut owner is fenced or steps down by its deadline, nothing is lost", async () => {
    const c = await start();
    const owner = await clientsOnEveryNode(c, "cut");
    const cutNode = c.nodes[owner]!;
    const others = c.nodes.filter((_, index) => index !== owner);
    const writing = tracked(keepWriting(clients, 10));
    await eventually(() => assert.ok(receivedTokens(clients).size > 100), 20_000);
    const { epoch: oldEpoch } = await storedEpochs(c, "cut");
    const stopsBefore = await ownerStops(cutNode);

    c.redisLinks[owner]!.cut();
    const cutAt = performance.now();
    const received = receivedTokens(clients);
    // Its connections closed, so Redis shows it gone: a relay breaks its lease at once
    // (storage fences the cut owner), well before the lease could expire.
    await eventually(
      async () => assert.equal((await ownersOf(others, "cut")).length, 1),
      LEASE_TTL_MS + 10_000,
    );
    const takeoverMs = performance.now() - cutAt;
    // Sample the cut owner's metrics (served without Redis) until it has stopped: its
    // next append was fenced, or its renewal deadline passed, whichever came first.
    let appliedAtStepDown = 0;
    await eventually(
      async () => {
        const [applied, stops] = await Promise.all([
          metricOf(cutNode, "opstream_updates_applied_total"),
          ownerStops(cutNode),
        ]);
        assert.ok(stops > stopsBefore, "fenced or lease lost");
        appliedAtStepDown = applied;
      },
      LEASE_TTL_MS * 2,
      10,
    );
    const stepDownMs = performance.now() - cutAt;
    assert.ok(
      stepDownMs <= LEASE_TTL_MS * 0.8 + 1000,
      `stopped ${Math.round(stepDownMs)} ms after the cut (deadline ${LEASE_TTL_MS * 0.8} ms)`,
    );

    await writing.stop();
    c.redisLinks[owner]!.heal();
    const { text } = await assertConverged({
      clients: docs(),
      cluster: c,
      docName: "cut",
      timeoutMs: 20_000,
    });
    const final = tokensOf(text);
    assert.deepEqual(
      [...received].filter((token) => !final.has(token)),
      [],
      "nothing received is lost",
    );
    // Every client's own edits (the cut owner's clients' included) reached everyone.
    const counts = clients.map((_, n) => [...final].filter((token) => token.startsWith(`c${n}-`)).length);
    assert.ok(
      counts.every((count) => count > 0),
      `every client's edits are in the converged text: ${counts.join("/")}`,
    );
    assert.equal(
      await metricOf(cutNode, "opstream_updates_applied_total"),
      appliedAtStepDown,
      "the cut owner applied nothing after its lease was lost",
    );
    const { ops, epoch: newEpoch } = await storedEpochs(c, "cut");
    assert.ok(newEpoch > oldEpoch, "a newer epoch owns the document");
    const firstNew = ops.findIndex((op) => op.epoch > oldEpoch);
    const late = firstNew < 0 ? [] : ops.slice(firstNew).filter((op) => op.epoch <= oldEpoch);
    assert.deepEqual(late, [], "no op of the old epoch was stored after the new owner's first op");
    measure({
      case: "owner-cut",
      leaseTtlMs: LEASE_TTL_MS,
      stepDownMs: Math.round(stepDownMs),
      takeoverMs: Math.round(takeoverMs),
      oldEpoch,
      newEpoch,
    });
  });
});

/** How often a node stopped owning a document against its will: fenced appends and lost leases. */
async function ownerStops(node: ServerProcess): Promise<number> {
  const [fenced, lost] = await Promise.all([
    metricOf(node, "opstream_fenced_writes_total"),
    metricOf(node, "opstream_leases_lost_total"),
  ]);
  return fenced + lost;
}

/** A node's counters of backplane loss and how its relays handled it. */
async function relayCounters(
  node: ServerProcess,
): Promise<{ resubscribes: number; gaps: number; resyncs: number; closes: number; moves: number }> {
  const [resubscribes, gaps, resyncs, closes, moves] = await Promise.all(
    [
      "opstream_backplane_resubscribes_total",
      "opstream_relay_gaps_total",
      "opstream_relay_resyncs_total",
      "opstream_connection_closes_total",
      "opstream_relay_moves_total",
    ].map((name) => metricOf(node, name)),
  );
  return { resubscribes: resubscribes!, gaps: gaps!, resyncs: resyncs!, closes: closes!, moves: moves! };
}

/** Redis's `CLIENT LIST` line of the client connected from local port `port`, if it lists one. */
async function clientEntry(admin: Redis, port: number): Promise<string | undefined> {
  const list = await admin.client("LIST");
  return String(list)
    .split("\n")
    .find((line) => line.includes(`addr=127.0.0.1:${port} `));
}

/** Redis's count of clients it closed for their output buffer (Redis >= 7), or undefined. */
async function outputBufferKills(admin: Redis): Promise<number | undefined> {
  const match = /client_output_buffer_limit_disconnections:(\d+)/.exec(await admin.info("stats"));
  return match ? Number(match[1]) : undefined;
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
