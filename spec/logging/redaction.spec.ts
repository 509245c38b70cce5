import { strict as assert } from "node:assert";
import WebSocket from "ws";
import { redactUrl, withRedaction } from "../../src/logging/logger.js";
import { captureLogger } from "../support/capture-logger.js";
import { eventually } from "../support/eventually.js";
import { startServer } from "../support/server.js";

const SECRET = "s3cret-token-value";

describe("logs never carry secrets", () => {
  it("redacts tokens, authorization headers, cookies and connection strings", () => {
    const { logger, lines } = captureLogger();
    withRedaction(logger).info(
      {
        token: SECRET,
        request: { headers: { authorization: `Bearer ${SECRET}`, cookie: `session=${SECRET}` } },
        options: { connectionString: `redis://:${SECRET}@host:6379`, secret: SECRET },
      },
      "something happened",
    );
    const text = lines().join("\n");
    assert.ok(text.includes("something happened"));
    assert.ok(!text.includes(SECRET), text);
  });

  it("reduces a query string to its parameter names", () => {
    assert.equal(redactUrl(`/doc?token=${SECRET}&x=1`), "/doc?token=[redacted]&x=[redacted]");
    assert.equal(redactUrl("/doc"), "/doc");
  });

  it("a refused client is logged with node, document and peer ids, and without its token", async () => {
    const { logger, lines } = captureLogger();
    const server = await startServer((b) => b.useMemoryStorage().useLogger(logger), { nodeId: "node-7" });
    try {
      const socket = new WebSocket(`${server.url}/ids-doc?token=${SECRET}`);
      await new Promise((resolve) => socket.on("open", resolve));
      socket.send(new Uint8Array([0, 2, 3, 1, 2, 3])); // a sync update that is not a Yjs update
      await new Promise((resolve) => socket.on("close", resolve));
      const entry = lines()
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .find((line) => line.msg === "invalid input; closing the connection");
      assert.ok(entry, lines().join("\n"));
      assert.equal(entry.nodeId, "node-7");
      assert.equal(entry.docId, "ids-doc");
      assert.equal(typeof entry.peerId, "string");
      assert.ok(!lines().join("\n").includes(SECRET));
    } finally {
      await server.stop();
    }
  });

  it("a failed upgrade is logged without the token from the URL", async () => {
    const { logger, lines } = captureLogger();
    const server = await startServer((b) =>
      b
        .useMemoryStorage()
        .useLogger(logger)
        .useAuthorization(() => {
          throw new Error("authorizer crashed");
        }),
    );
    try {
      const socket = new WebSocket(`${server.url}/doc?token=${SECRET}`);
      socket.on("error", () => undefined); // the upgrade is refused with 500
      await eventually(() => assert.ok(lines().some((line) => line.includes("upgrade failed"))));
      socket.terminate();
      const text = lines().join("\n");
      assert.ok(text.includes("token=[redacted]"), "the URL is logged, its token is not");
      assert.ok(!text.includes(SECRET), text);
    } finally {
      await server.stop();
    }
  });
});
