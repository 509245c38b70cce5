import { strict as assert } from "node:assert";
import {
  CloseCodes,
  ErrorCodes,
  ServiceCollection,
  isOpStreamError,
  type AccessGrant,
} from "../../src/index.js";
import { PROVIDER_VERSIONS, allAcknowledged, connectHocuspocus, hpSynced } from "../support/hocuspocus.js";
import { startServer, type TestServer } from "../support/server.js";
import { counted } from "../support/metrics.js";
import { RawHocuspocusSocket, authFrame } from "./raw-hocuspocus.js";

const AUTH_TIMEOUT_MS = 300;

describe("Hocuspocus pre-auth timeout (transport.authTimeoutMs)", () => {
  let server: TestServer;
  before(async () => {
    const authorizer = ({ token }: { token: string | undefined }): AccessGrant =>
      token === "valid" ? { access: "read-write" } : { access: "deny", reason: "unauthenticated" };
    server = await startServer((b) => b.useMemoryStorage().useAuthorization(authorizer), {
      transport: { authTimeoutMs: AUTH_TIMEOUT_MS },
    });
  });
  after(() => server.stop());

  const timedOut = () =>
    counted(server.host.metrics.badFrames, { dialect: "hocuspocus", reason: "auth-timeout" });
  const closed4010 = () => counted(server.host.metrics.closes, { dialect: "hocuspocus", code: "4010" });

  it("closes a socket that sends nothing with 4010 after authTimeoutMs, counted", async () => {
    const [badBefore, closesBefore] = [await timedOut(), await closed4010()];
    const opened = performance.now();
    const socket = await RawHocuspocusSocket.open(`${server.url}/hocuspocus`);
    const { code } = await socket.closed;
    assert.equal(code, CloseCodes.AUTH_TIMEOUT);
    assert.ok(performance.now() - opened >= AUTH_TIMEOUT_MS - 20, "not before the timeout");
    assert.equal(await timedOut(), badBefore + 1);
    assert.equal(await closed4010(), closesBefore + 1);
  });

  it("a denied Auth does not stop the clock", async () => {
    const socket = await RawHocuspocusSocket.open(`${server.url}/hocuspocus`);
    socket.send(authFrame("doc", "forged"));
    assert.equal((await socket.closed).code, CloseCodes.AUTH_TIMEOUT);
    assert.equal(socket.frames.length, 1, "the PermissionDenied, then the close");
  });

  for (const version of PROVIDER_VERSIONS) {
    it(`${version.name}: a stock provider that authenticated stays open past it`, async () => {
      const client = connectHocuspocus(version, `${server.url}/hocuspocus`, `kept-${version.name}`, {
        token: "valid",
      });
      try {
        await hpSynced(client);
        // A socket opened after the provider synced times out later than the provider would have.
        const witness = await RawHocuspocusSocket.open(`${server.url}/hocuspocus`);
        assert.equal((await witness.closed).code, CloseCodes.AUTH_TIMEOUT);
        assert.deepEqual(client.events.closed, [], "the provider's socket was never closed");
        assert.equal(client.socket.status, "connected");
        client.text.insert(0, "still editing");
        await allAcknowledged(client);
      } finally {
        client.destroy();
      }
    });
  }

  it("authTimeoutMs: 0 turns it off", async () => {
    const open = await startServer(undefined, { transport: { authTimeoutMs: 0 } });
    try {
      const idle = await RawHocuspocusSocket.open(`${open.url}/hocuspocus`);
      // The clock of the server above: one of its sockets times out meanwhile.
      const witness = await RawHocuspocusSocket.open(`${server.url}/hocuspocus`);
      await witness.closed;
      assert.ok(idle.isOpen);
      idle.close();
    } finally {
      await open.stop();
    }
  });

  it("refuses a timeout setTimeout cannot hold with INVALID_OPTION", () => {
    for (const authTimeoutMs of [-1, 2 ** 31, 1.5, Number.NaN]) {
      assert.throws(
        () => new ServiceCollection().addOpStream({ transport: { authTimeoutMs } }),
        (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
        String(authTimeoutMs),
      );
    }
  });
});
