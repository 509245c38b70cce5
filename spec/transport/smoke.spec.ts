import { strict as assert } from "node:assert";
import { connectClient, synced } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import { startServer, type TestServer } from "../support/server.js";

describe("smoke: two stock y-websocket clients", () => {
  let server: TestServer;
  before(async () => (server = await startServer()));
  after(() => server.stop());

  it("see each other's edits through the server", async () => {
    const a = connectClient(server.url, "smoke");
    const b = connectClient(server.url, "smoke");
    try {
      await Promise.all([synced(a), synced(b)]);
      a.text.insert(0, "hello");
      await eventually(() => assert.equal(b.text.toString(), "hello"));
      b.text.insert(5, " world");
      await eventually(() => assert.equal(a.text.toString(), "hello world"));
    } finally {
      a.destroy();
      b.destroy();
    }
  });
});
