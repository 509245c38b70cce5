import { strict as assert } from "node:assert";
import {
  ChannelMessageType,
  ErrorCodes,
  OpStreamError,
  isOpStreamError,
  type ChannelMessage,
  type IBackplane,
} from "../../src/index.js";
import { eventually } from "../support/eventually.js";

/** Creates `count` backplane nodes that form one cluster; `stop` ends them. */
export interface BackplaneFactory {
  create(count: number): Promise<{ nodes: IBackplane[]; stop(): Promise<void> }>;
}

const update = (origin: string, seq: number): ChannelMessage => ({
  type: ChannelMessageType.Update,
  origin,
  epoch: 1,
  seq,
  payload: new Uint8Array([seq]),
});

/** The behaviour every IBackplane must have; run once per implementation. */
export function backplaneContract(name: string, factory: BackplaneFactory): void {
  describe(`IBackplane contract: ${name}`, () => {
    let nodes: IBackplane[];
    let cluster: Awaited<ReturnType<BackplaneFactory["create"]>>;
    beforeEach(async () => {
      cluster = await factory.create(3);
      nodes = cluster.nodes;
    });
    afterEach(() => cluster.stop());

    it("delivers a document's messages to the other subscribed nodes, in order, never to the publisher", async () => {
      const [a, b, c] = nodes as [IBackplane, IBackplane, IBackplane];
      const got = new Map<string, ChannelMessage[]>([
        [a.nodeId, []],
        [b.nodeId, []],
        [c.nodeId, []],
      ]);
      for (const node of [a, b]) await node.subscribe("doc", (m) => got.get(node.nodeId)!.push(m));
      await c.subscribe("other-doc", (m) => got.get(c.nodeId)!.push(m));
      for (let seq = 1; seq <= 5; seq++) await a.publish("doc", update(a.nodeId, seq));
      await eventually(() =>
        assert.deepEqual(
          got.get(b.nodeId)!.map((m) => (m.type === ChannelMessageType.Update ? m.seq : -1)),
          [1, 2, 3, 4, 5],
        ),
      );
      assert.deepEqual(got.get(a.nodeId), [], "the publisher does not hear itself");
      assert.deepEqual(got.get(c.nodeId), [], "other documents' subscribers hear nothing");
    });

    it("stops delivering after unsubscribe", async () => {
      const [a, b] = nodes as [IBackplane, IBackplane];
      const got: ChannelMessage[] = [];
      const subscription = await b.subscribe("doc", (m) => got.push(m));
      await a.publish("doc", update(a.nodeId, 1));
      await eventually(() => assert.equal(got.length, 1));
      await subscription.unsubscribe();
      await a.publish("doc", update(a.nodeId, 2));
      const probe: ChannelMessage[] = [];
      await b.subscribe("doc", (m) => probe.push(m));
      await a.publish("doc", update(a.nodeId, 3));
      await eventually(() => assert.equal(probe.length, 1));
      assert.equal(got.length, 1, "the old handler got nothing after unsubscribing");
    });

    it("answers requests with the handler's payload and carries the caller's node id", async () => {
      const [a, b] = nodes as [IBackplane, IBackplane];
      b.registerRequestHandler("echo", (payload, from) =>
        Promise.resolve(new TextEncoder().encode(`${from}:${new TextDecoder().decode(payload)}`)),
      );
      const answer = await a.sendRequest(b.nodeId, "echo", new TextEncoder().encode("hi"));
      assert.equal(new TextDecoder().decode(answer), `${a.nodeId}:hi`);
    });

    it("propagates a handler's coded error to the caller", async () => {
      const [a, b] = nodes as [IBackplane, IBackplane];
      b.registerRequestHandler("owner", () =>
        Promise.reject(new OpStreamError(ErrorCodes.NOT_OWNER, "not mine", { docId: "d" })),
      );
      await assert.rejects(a.sendRequest(b.nodeId, "owner", new Uint8Array()), (error: unknown) =>
        isOpStreamError(error, ErrorCodes.NOT_OWNER),
      );
    });

    it("times out a request nobody answers, and refuses an unknown type", async () => {
      const [a, b] = nodes as [IBackplane, IBackplane];
      b.registerRequestHandler("slow", () => new Promise<Uint8Array>(() => undefined));
      await assert.rejects(
        a.sendRequest(b.nodeId, "slow", new Uint8Array(), { timeoutMs: 50 }),
        (error: unknown) => isOpStreamError(error, ErrorCodes.REQUEST_TIMEOUT),
      );
      const off = b.registerRequestHandler("gone", () => Promise.resolve(new Uint8Array()));
      off();
      await assert.rejects(
        a.sendRequest(b.nodeId, "gone", new Uint8Array(), { timeoutMs: 500 }),
        (error: unknown) => isOpStreamError(error, ErrorCodes.NO_HANDLER),
      );
    });
  });
}
