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
