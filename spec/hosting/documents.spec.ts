import { strict as assert } from "node:assert";
import { join } from "node:path";
import { ErrorCodes, isOpStreamError } from "../../src/index.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import { startServer, type TestServer } from "../support/server.js";
import { tempDir } from "../support/temp.js";

describe("server-side document API (documents.open)", () => {
  let server: TestServer;
  const clients: Client[] = [];
  beforeEach(async () => {
    server = await startServer((b) => b.useSqliteStorage(join(tempDir(), "documents.sqlite")));
  });
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await server.stop();
  });

  it("reads the durable state, and a transact is durable before it resolves and reaches every client", async () => {
    const client = connectClient(server.url, "shared");
    clients.push(client);
    await synced(client);
    client.text.insert(0, "from a client. ");
    await eventually(async () =>
      assert.equal((await server.host.store.readOps("shared", 0)).length > 0, true),
    );

    const handle = await server.host.documents.open("shared");
    assert.equal(handle.doc.getText("text").toString(), "from a client. ");
    const seq = await handle.transact((doc) => doc.getText("text").insert(15, "From the server."));
    assert.ok(seq !== null && seq > 0);
    const stored = await server.host.store.readOps("shared", 0);
    assert.ok(
      stored.some((op) => op.seq === seq),
      "the op is in the store when transact resolves",
    );
    await eventually(() => assert.equal(client.text.toString(), "from a client. From the server."));
    client.text.insert(0, ">");
    await eventually(() =>
      assert.equal(handle.doc.getText("text").toString(), ">from a client. From the server."),
    );
    assert.equal(await handle.transact(() => undefined), null, "a transact that changes nothing is a no-op");
    await handle.close();
    await assert.rejects(
      handle.transact((doc) => doc.getText("text").insert(0, "x")),
      (error: unknown) => isOpStreamError(error, ErrorCodes.SESSION_CLOSED),
    );
  });

  it("keeps the document loaded while open; close() lets it unload", async () => {
    await server.stop();
    server = await startServer((b) => b.useSqliteStorage(join(tempDir(), "idle.sqlite")), {
      sessions: { idleTimeoutMs: 50 },
    });
    const handle = await server.host.documents.open("held");
    await handle.transact((doc) => doc.getMap("meta").set("title", "Held"));
    const client = connectClient(server.url, "held");
    clients.push(client);
    await synced(client);
    assert.equal(client.doc.getMap("meta").get("title"), "Held");
    client.destroy();
    clients.pop();
    await eventually(() => assert.equal(server.host.transport.connectionCount, 0));
    // Asserting that something does not happen needs a window: 3× the idle timeout.
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.ok(server.host.router.localSession("held"), "the server-side handle keeps it loaded");
    await handle.close();
    await eventually(() => assert.equal(server.host.router.localSession("held"), undefined));
  });
});
