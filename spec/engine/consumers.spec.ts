import { strict as assert } from "node:assert";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import * as Y from "yjs";
import {
  ErrorCodes,
  HybridSnapshotPolicy,
  OpStreamMetrics,
  SqliteDocumentStore,
  WebhookHeaders,
  isOpStreamError,
  verifyWebhookSignature,
  webhookConsumer,
  type ConsumerHandler,
  type ConsumerOptions,
  type ConsumerRecord,
  type DocumentStore,
  type WebhookBody,
} from "../../src/index.js";
import { DocumentSession } from "../../src/engine/document-session.js";
import { consumerRegistration } from "../../src/engine/consumers.js";
import { peerOrigin } from "../../src/engine/origin.js";
import { captureLogger } from "../support/capture-logger.js";
import { insertUpdate, sessionDeps } from "../support/engine.js";
import { eventually } from "../support/eventually.js";
import { tempDir } from "../support/temp.js";

const ORIGIN = peerOrigin("writer");

/** A consumer that records the seqs it handled, with an optional failure rule. */
function recorder(fail: (record: ConsumerRecord, attempt: number) => boolean = () => false) {
  const seen: number[] = [];
  const attempts = new Map<number, number>();
  const handler: ConsumerHandler = (record) => {
    const attempt = (attempts.get(record.seq) ?? 0) + 1;
    attempts.set(record.seq, attempt);
    if (fail(record, attempt)) throw new Error(`handler failed on ${record.seq} (attempt ${attempt})`);
    seen.push(record.seq);
  };
  return { seen, attempts, handler };
}

describe("side-effect consumers", function () {
  this.timeout(20_000);
  const stores: DocumentStore[] = [];
  const sessions: DocumentSession[] = [];
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((session) => session.close("shutdown")));
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });

  function sqlite(path = join(tempDir(), "consumers.sqlite")): SqliteDocumentStore {
    const store = new SqliteDocumentStore({ path });
    stores.push(store);
    return store;
  }

  async function open(
    store: DocumentStore,
    consumers: { name: string; handler: ConsumerHandler; options?: ConsumerOptions }[],
    extra: Partial<Parameters<typeof sessionDeps>[1]> = {},
  ): Promise<DocumentSession> {
    const deps = await sessionDeps("doc", {
      store,
      consumers: consumers.map(({ name, handler, options }) => consumerRegistration(name, handler, options)),
      ...extra,
    });
    const session = await DocumentSession.open("doc", deps);
    sessions.push(session);
    return session;
  }

  async function write(session: DocumentSession, source: Y.Doc, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      await session.apply(insertUpdate(source, source.getText("text").length, "x"), ORIGIN);
    }
  }

  it("hands every op over in order and resumes from the committed offset after a restart (no replay)", async () => {
    const path = join(tempDir(), "restart.sqlite");
    const first = recorder();
    const source = new Y.Doc();
    let session = await open(sqlite(path), [{ name: "index", handler: first.handler }]);
    await write(session, source, 5);
    await eventually(() => assert.deepEqual(first.seen, [1, 2, 3, 4, 5]));
    await eventually(async () => assert.equal((await stores[0]!.readOffsets("doc")).get("index"), 5));
    await session.close("shutdown");
    await stores[0]!.close();

    const second = recorder();
    session = await open(sqlite(path), [{ name: "index", handler: second.handler }]);
    await write(session, source, 2);
    await eventually(() => assert.deepEqual(second.seen, [6, 7]));
  });

  it("after a failover the new owner resumes from the committed offset; the record in hand is delivered again", async () => {
    const store = sqlite();
    const source = new Y.Doc();
    let releaseThird: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (releaseThird = resolve));
    const onOld: number[] = [];
    const old = await open(store, [
      {
        name: "mail",
        handler: async (record) => {
          if (record.seq === 3) await held; // the old owner stalls on record 3
          onOld.push(record.seq);
        },
      },
    ]);
    await write(old, source, 4);
    await eventually(async () => assert.equal((await store.readOffsets("doc")).get("mail"), 2));

    const successor = recorder();
    const next = await open(store, [{ name: "mail", handler: successor.handler }]); // claims a newer epoch
    assert.ok(next.epoch > old.epoch);
    await eventually(() => assert.deepEqual(successor.seen, [3, 4]), 5000);
    releaseThird();
    await eventually(() => assert.deepEqual(onOld, [1, 2, 3]));
    await eventually(async () => assert.equal((await store.readOffsets("doc")).get("mail"), 4));
    assert.deepEqual(onOld, [1, 2, 3], "the fenced ex-owner's consumer stopped after its commit failed");
  });

  it("retries a failing record with growing backoff, then goes on", async () => {
    const times: number[] = [];
    const flaky = recorder((record, attempt) => {
      if (record.seq === 1) times.push(performance.now());
      return record.seq === 1 && attempt <= 4;
    });
    const session = await open(sqlite(), [
      { name: "flaky", handler: flaky.handler, options: { initialBackoffMs: 40 } },
    ]);
    await write(session, new Y.Doc(), 2);
    await eventually(() => assert.deepEqual(flaky.seen, [1, 2]), 5000);
    assert.equal(flaky.attempts.get(1), 5);
    const gaps = times.slice(1).map((time, i) => time - times[i]!);
    // Attempt n waits 40 ms × 2^(n-1) × [0.5, 1.5): at least 20, 40, 80, 160 ms.
    gaps.forEach((gap, i) => assert.ok(gap >= 40 * 2 ** i * 0.5 - 5, `gap ${i + 1}: ${Math.round(gap)} ms`));
    assert.ok(gaps[3]! > gaps[0]!, `backoff grows: ${gaps.map(Math.round).join(", ")} ms`);
  });

  it("blocks on a poison record by default, loudly, and hands nothing after it", async () => {
    const { logger, entries } = captureLogger();
    const metrics = new OpStreamMetrics();
    const stuck = recorder((record) => record.seq === 2);
    const store = sqlite();
    const session = await open(
      store,
      [{ name: "stuck", handler: stuck.handler, options: { initialBackoffMs: 1, maxBackoffMs: 5 } }],
      { logger, metrics },
    );
    await write(session, new Y.Doc(), 4);
    await eventually(() => assert.ok((stuck.attempts.get(2) ?? 0) >= 10));
    assert.deepEqual(stuck.seen, [1], "nothing after the poison record");
    assert.equal((await store.readOffsets("doc")).get("stuck"), 1);
    const warnings = entries().filter((entry) => entry.msg.includes("blocked on a record"));
    assert.equal(warnings.length, 1, "one warning per record, after warnAfterAttempts");
    const failures = await metrics.consumerFailures.get();
    assert.ok((failures.values[0]?.value ?? 0) >= 10);
  });

  it("skips a poison record only when opted in, and only after the dead-letter sink succeeded", async () => {
    const order: string[] = [];
    let deadLetterCalls = 0;
    const handler: ConsumerHandler = (record) => {
      order.push(`handle ${record.seq}`);
      if (record.seq === 2) throw new Error("poison");
    };
    const deadLetter = (record: ConsumerRecord, cause: unknown) => {
      deadLetterCalls++;
      order.push(`dead-letter ${record.seq} (${(cause as Error).message})`);
      if (deadLetterCalls <= 2) throw new Error("dead-letter sink down");
    };
    const store = sqlite();
    const session = await open(store, [
      { name: "dl", handler, options: { maxAttempts: 3, deadLetter, initialBackoffMs: 1, maxBackoffMs: 5 } },
    ]);
    await write(session, new Y.Doc(), 3);
    await eventually(() => assert.ok(order.includes("handle 3")));
    assert.deepEqual(order, [
      "handle 1",
      "handle 2",
      "handle 2",
      "handle 2",
      "dead-letter 2 (poison)",
      "dead-letter 2 (poison)",
      "dead-letter 2 (poison)",
      "handle 3",
    ]);
    await eventually(async () => assert.equal((await store.readOffsets("doc")).get("dl"), 3));
    assert.throws(
      () => consumerRegistration("dl", handler, { maxAttempts: 3 }),
      (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
    );
  });

  it("never trims ops the slowest consumer has not committed", async () => {
    let unblock: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (unblock = resolve));
    const store = sqlite();
    const fast = recorder();
    const session = await open(
      store,
      [
        { name: "fast", handler: fast.handler },
        {
          name: "slow",
          handler: async (record) => {
            if (record.seq === 3) await gate;
          },
        },
      ],
      { snapshotPolicy: new HybridSnapshotPolicy({ maxOps: 4 }) },
    );
    const source = new Y.Doc();
    await write(session, source, 8);
    await eventually(() => assert.equal(fast.seen.length, 8));
    await session.snapshot();
    assert.equal((await store.loadSnapshot("doc"))?.seq, 8);
    assert.deepEqual(
      (await store.readOps("doc", 0)).map((op) => op.seq),
      [3, 4, 5, 6, 7, 8],
      "ops from the slow consumer's next record on are kept",
    );
    unblock();
    await eventually(async () => assert.equal((await store.readOffsets("doc")).get("slow"), 8));
    await write(session, source, 1);
    await eventually(async () =>
      assert.deepEqual(
        await store.readOffsets("doc"),
        new Map([
          ["fast", 9],
          ["slow", 9],
        ]),
      ),
    );
    await session.snapshot();
    assert.deepEqual(await store.readOps("doc", 0), [], "trimmed once every consumer caught up");
    const loaded = await store.load("doc");
    const doc = new Y.Doc();
    Y.applyUpdate(doc, loaded.snapshot!.state);
    assert.equal(doc.getText("text").toString(), "x".repeat(9));
  });

  describe("webhookConsumer", () => {
    let server: Server;
    let url: string;
    const received: { headers: IncomingMessage["headers"]; body: string }[] = [];
    let failFirst = 0;
    beforeEach(async () => {
      received.length = 0;
      server = createServer((request, response) => {
        let body = "";
        request.on("data", (chunk: Buffer) => (body += chunk.toString()));
        request.on("end", () => {
          received.push({ headers: request.headers, body });
          response.statusCode = failFirst-- > 0 ? 503 : 204;
          response.end();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    });
    afterEach(() => new Promise((resolve) => server.close(resolve)));

    it("POSTs each op signed with HMAC-SHA256; the signature verifies; a 5xx is retried with the same delivery id", async () => {
      failFirst = 1;
      const session = await open(sqlite(), [
        {
          name: "hook",
          handler: webhookConsumer(url, { secret: "s3cret" }),
          options: { initialBackoffMs: 1 },
        },
      ]);
      const source = new Y.Doc();
      await write(session, source, 2);
      await eventually(() => assert.equal(received.length, 3));
      const [failed, first, second] = received as [
        (typeof received)[0],
        (typeof received)[0],
        (typeof received)[0],
      ];
      assert.equal(failed.headers[WebhookHeaders.DELIVERY], "doc:1");
      assert.equal(first.headers[WebhookHeaders.DELIVERY], "doc:1", "the retry carries the same delivery id");
      assert.equal(second.headers[WebhookHeaders.DELIVERY], "doc:2");
      for (const { headers, body } of [first, second]) {
        const timestamp = String(headers[WebhookHeaders.TIMESTAMP]);
        const signature = String(headers[WebhookHeaders.SIGNATURE]);
        assert.equal(verifyWebhookSignature("s3cret", timestamp, body, signature), true);
        assert.equal(verifyWebhookSignature("wrong", timestamp, body, signature), false);
        assert.equal(
          verifyWebhookSignature("s3cret", timestamp, body.replace("doc", "dox"), signature),
          false,
        );
      }
      const doc = new Y.Doc();
      for (const { body } of [first, second]) {
        const parsed = JSON.parse(body) as WebhookBody;
        Y.applyUpdate(doc, Buffer.from(parsed.update, "base64"));
      }
      assert.equal(doc.getText("text").toString(), "xx");
    });
  });
});
