import { strict as assert } from "node:assert";
import { TRANSPORT_DEFAULTS } from "../../src/index.js";
import { startServer, type TestServer } from "../support/server.js";
import { refusedWith, tryUpgrade } from "../support/upgrade.js";
import { counted } from "../support/metrics.js";

describe("maxDocumentNameLength on the y-websocket path (issue #23, finding 1)", () => {
  let server: TestServer;
  before(async () => (server = await startServer()));
  after(() => server.stop());

  const refused = (reason: string) =>
    counted(server.host.metrics.upgradesRefused, { dialect: "y-websocket", reason });

  it("refuses a longer name with 400 before any document work, counted as name-too-long", async () => {
    const before = await refused("name-too-long");
    const tooLong = "n".repeat(TRANSPORT_DEFAULTS.maxDocumentNameLength + 1);
    assert.equal(await refusedWith(`${server.url}/${tooLong}`), 400);
    // Counted in characters after percent-decoding, as the Hocuspocus dialect counts them.
    assert.equal(await refusedWith(`${server.url}/${encodeURIComponent("€".repeat(513))}`), 400);
    assert.equal(await refused("name-too-long"), before + 2);
    assert.deepEqual(await server.host.store.list(), [], "nothing was created");
  });

  it("opens a name of exactly the longest length", async () => {
    const longest = "€".repeat(TRANSPORT_DEFAULTS.maxDocumentNameLength);
    const outcome = await tryUpgrade(`${server.url}/${encodeURIComponent(longest)}`);
    assert.equal(outcome.status, 101);
    outcome.ws?.close();
  });

  it("counts the other refused paths too: a missing name (400) and a malformed one (404)", async () => {
    const [missing, malformed] = [await refused("no-document"), await refused("not-found")];
    assert.equal(await refusedWith(`${server.url}/`), 400);
    assert.equal(await refusedWith(`${server.url}/%E0%A4%A`), 404);
    assert.equal(await refused("no-document"), missing + 1);
    assert.equal(await refused("not-found"), malformed + 1);
  });
});
