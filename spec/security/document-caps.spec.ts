import { strict as assert } from "node:assert";
import { join } from "node:path";
import {
  CloseCodes,
  ErrorCodes,
  ServiceCollection,
  isOpStreamError,
  type AccessGrant,
  type Authorizer,
  type OpStreamOptions,
} from "../../src/index.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
  type StockSocket,
} from "../support/hocuspocus.js";
import { startServer, type TestServer } from "../support/server.js";
import { tempDir } from "../support/temp.js";
import { refusedWith } from "../support/upgrade.js";
import { counted } from "../support/metrics.js";
import { sessionText } from "../support/session.js";
import { RawHocuspocusSocket, authFrame } from "./raw-hocuspocus.js";
import * as encoding from "lib0/encoding";

/** A Hocuspocus frame for `key`: its routing key, then `write`'s message. */
function hocuspocusFrame(key: string, write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, key);
  write(encoder);
  return encoding.toUint8Array(encoder);
}

/** An Awareness message (1): client 1 sets a state. */
const awarenessMessage = (encoder: encoding.Encoder): void => {
  const update = encoding.createEncoder();
  encoding.writeVarUint(update, 1);
  encoding.writeVarUint(update, 1);
  encoding.writeVarUint(update, 1);
  encoding.writeVarString(update, JSON.stringify({ user: { name: "denied" } }));
  encoding.writeVarUint(encoder, 1);
  encoding.writeVarUint8Array(encoder, encoding.toUint8Array(update));
};

/** A Close message (7). */
const closeMessage = (encoder: encoding.Encoder): void => encoding.writeVarUint(encoder, 7);

/**
 * Finding 4 of issue #23: caps on the documents one socket, one principal and one
 * node hold open. Each refusal is counted and documented; honest clients carry on.
 */

/** Every token writes; a token names its principal, except "anonymous" (counted by its address). */
const authorizer: Authorizer = ({ token }): AccessGrant =>
  token === "anonymous" ? { access: "read-write" } : { access: "read-write", principal: token ?? "nobody" };
const v4 = PROVIDER_VERSIONS.find((version) => version.name === "v4")!;

describe("security: caps on open documents (finding 4)", function () {
  this.timeout(30_000);
  let server: TestServer;
  const clients: { destroy(): void }[] = [];
  const track = <T extends { destroy(): void }>(client: T): T => {
    clients.push(client);
    return client;
  };
  const hpUrl = () => `${server.url}/hocuspocus`;
  const start = async (options: OpStreamOptions) => {
    server = await startServer(
      (b) => b.useSqliteStorage(join(tempDir(), "caps.sqlite")).useAuthorization(authorizer),
      options,
    );
  };
  /** One stock provider per document name, all on `socket`. */
  const open = (socket: StockSocket, token: string, names: readonly string[]): HocuspocusClient[] =>
    names.map((name) => track(connectHocuspocus(v4, "", name, { token, socket })));

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await server.stop();
  });

  describe("transport.maxDocumentsPerSocket", () => {
    beforeEach(() => start({ transport: { maxDocumentsPerSocket: 3 } }));

    it("denies one more document on a socket too-many-documents; the socket's others carry on, and a closed one frees its slot", async () => {
      const socket = track(v4.socket(hpUrl()));
      const [a, b, c] = open(socket, "alice", ["a", "b", "c"]);
      await Promise.all([a, b, c].map((client) => hpSynced(client!)));
      const [d] = open(socket, "alice", ["d"]);
      await eventually(() => assert.deepEqual(d!.events.denied, ["too-many-documents"]));
      assert.equal(await counted(server.host.metrics.joinsRefused, { reason: "socket-limit" }), 1);
      assert.equal(server.host.router.localSession("d"), undefined, "nothing was loaded for it");

      a!.text.insert(0, "still editing");
      await eventually(async () =>
        assert.equal(await sessionText(server.host.router.localSession("a")), "still editing"),
      );
      b!.destroy(); // the stock provider sends Close for its document
      const [e] = open(socket, "alice", ["e"]);
      await hpSynced(e!);
      // Another socket of the same principal has slots of its own.
      const other = track(v4.socket(hpUrl()));
      await Promise.all(open(other, "alice", ["f", "g", "h"]).map((client) => hpSynced(client)));
    });
    it("forgets a document it denied too-many-documents: that provider's later frames hold no slot", async () => {
      const socket = await RawHocuspocusSocket.open(hpUrl());
      for (const key of ["a", "b", "c", "d"]) socket.send(authFrame(key, "alice"));
      await eventually(async () =>
        assert.equal(await counted(server.host.metrics.joinsRefused, { reason: "socket-limit" }), 1),
      );
      // A slot frees; then the denied provider goes on sending for "d" (an awareness
      // renewal): dropped as refused, never queued under a document that takes a slot.
      socket.send(hocuspocusFrame("a", closeMessage));
      await socket.roundTrip();
      socket.send(hocuspocusFrame("d", awarenessMessage));
      await socket.roundTrip();
      socket.send(authFrame("e", "alice"));
      await socket.roundTrip();
      await eventually(() => assert.ok(server.host.router.localSession("e"), "e was opened"));
      assert.equal(await counted(server.host.metrics.joinsRefused, { reason: "socket-limit" }), 1);
      socket.close();
    });
  });

  describe("transport.maxDocumentsPerPrincipal", () => {
    beforeEach(() => start({ transport: { maxDocumentsPerSocket: 3, maxDocumentsPerPrincipal: 4 } }));

    it("counts one principal's distinct documents over its sockets and dialects: Hocuspocus gets too-many-documents, y-websocket 429", async () => {
      const first = track(v4.socket(hpUrl()));
      const second = track(v4.socket(hpUrl()));
      await Promise.all(open(first, "alice", ["p1", "p2", "p3"]).map((client) => hpSynced(client)));
      const [p4] = open(second, "alice", ["p4"]);
      await hpSynced(p4!);

      const [p5] = open(second, "alice", ["p5"]);
      await eventually(() => assert.deepEqual(p5!.events.denied, ["too-many-documents"]));
      assert.equal(await counted(server.host.metrics.joinsRefused, { reason: "principal-limit" }), 1);
      assert.equal(
        await refusedWith(`${server.url}/p5?token=alice`),
        429,
        "y-websocket: refused before the upgrade",
      );
      assert.equal(await counted(server.host.metrics.upgradesRefused, { reason: "principal-limit" }), 1);

      // A document the principal already holds is counted once, whatever opens it again.
      const again = track(connectClient(server.url, "p1", { params: { token: "alice" } }));
      await synced(again);
      // Others are not affected.
      const bob = track(connectClient(server.url, "p5", { params: { token: "bob" } }));
      await synced(bob);

      // Released when the documents leave: one socket closing frees its three.
      first.destroy();
      await eventually(async () => assert.notEqual(await refusedWith(`${server.url}/p6?token=alice`), 429));
      const alice = track(connectClient(server.url, "p6", { params: { token: "alice" } }));
      await synced(alice);
    });

    it("without a principal from the authorizer, counts the client address", async () => {
      const first = track(v4.socket(hpUrl()));
      const second = track(v4.socket(hpUrl()));
      await Promise.all(open(first, "anonymous", ["n1", "n2", "n3"]).map((client) => hpSynced(client)));
      await hpSynced(open(second, "anonymous", ["n4"])[0]!);
      const [n5] = open(second, "anonymous", ["n5"]);
      await eventually(() => assert.deepEqual(n5!.events.denied, ["too-many-documents"]));
      // A named principal on the same address has its own count.
      await hpSynced(open(second, "carol", ["n5"])[0]!);
    });
  });

  describe("sessions.maxDocuments", () => {
    beforeEach(() => start({ sessions: { maxDocuments: 3, idleTimeoutMs: 60_000 } }));

    it("refuses a new document past the node's cap with 1013 on both dialects; open documents still join, and an idle one makes room", async () => {
      const writers: Client[] = ["m1", "m2", "m3"].map((name) =>
        track(connectClient(server.url, name, { params: { token: "alice" } })),
      );
      await Promise.all(writers.map((writer) => synced(writer)));

      const late = track(connectClient(server.url, "m4", { params: { token: "bob" } }));
      const lateCodes: number[] = [];
      late.provider.on("connection-close", (event: CloseEvent | null) => {
        if (event) lateCodes.push(event.code);
      });
      const hpSocket = track(v4.socket(hpUrl()));
      const hpCodes: number[] = [];
      hpSocket.on("close", ({ event }: { event: CloseEvent }) => hpCodes.push(event.code));
      open(hpSocket, "carol", ["m5"]);
      await eventually(() =>
        assert.ok(lateCodes.includes(CloseCodes.TRY_AGAIN_LATER), `y-websocket ${lateCodes.join()}`),
      );
      await eventually(() =>
        assert.ok(hpCodes.includes(CloseCodes.TRY_AGAIN_LATER), `hocuspocus ${hpCodes.join()}`),
      );
      assert.ok((await counted(server.host.metrics.joinsRefused, { reason: "node-limit" })) >= 2);
      assert.ok(
        lateCodes.every((code) => code === CloseCodes.TRY_AGAIN_LATER),
        lateCodes.join(),
      );
      assert.deepEqual(
        await server.host.store.list(),
        ["m1", "m2", "m3"],
        "the refused documents were not created",
      );

      // Joining an already open document always works.
      const reader = track(connectClient(server.url, "m1", { params: { token: "dave" } }));
      await synced(reader);

      // m2's last client leaves: its idle session is unloaded early to make room, and
      // the retrying client (the stock provider reconnects after 1013) gets in.
      hpSocket.destroy(); // one retrier at a time, so the room is not taken by the other
      writers[1]!.destroy();
      await synced(late, 10_000);
      late.text.insert(0, "made room");
      await eventually(async () => assert.ok((await server.host.store.list()).includes("m4")));
      assert.equal(server.host.router.localSession("m2"), undefined, "m2 was unloaded");
    });
  });
});

describe("security: document caps refuse bad values", () => {
  for (const [section, option, value] of [
    ["transport", "maxDocumentsPerSocket", 1.5],
    ["transport", "maxDocumentsPerPrincipal", -1],
    ["transport", "maxDocumentsPerPrincipal", Number.NaN],
    ["sessions", "maxDocuments", 2.5],
    ["sessions", "maxDocuments", -3],
  ] as const) {
    it(`refuses ${section}.${option} = ${value} with INVALID_OPTION`, () => {
      const build = () => {
        const services = new ServiceCollection();
        services.addOpStream({ processMetrics: false, [section]: { [option]: value } }).useMemoryStorage();
        return services.build();
      };
      assert.throws(
        build,
        (error: unknown) =>
          isOpStreamError(error, ErrorCodes.INVALID_OPTION) &&
          error.details.option === `${section}.${option}`,
      );
    });
  }
});
