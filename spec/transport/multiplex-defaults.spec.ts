// One Hocuspocus socket carrying as many documents as `maxDocumentsPerSocket`
// allows (100), at every default transport limit: opening them all is a burst of
// several frames per document, which the default rate limit (`messageRate` 100/s,
// `messageBurst` 300) must delay, never refuse.
import { strict as assert } from "node:assert";
import { TRANSPORT_DEFAULTS } from "../../src/index.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
  type StockSocket,
} from "../support/hocuspocus.js";
import { counted } from "../support/metrics.js";
import { startServer, type TestServer } from "../support/server.js";

const DOCUMENTS = TRANSPORT_DEFAULTS.maxDocumentsPerSocket;

for (const version of PROVIDER_VERSIONS) {
  describe(`a ${version.name} Hocuspocus socket with ${DOCUMENTS} documents, at the default limits`, function () {
    this.timeout(30_000);
    let server: TestServer;
    const sockets: StockSocket[] = [];
    const clients: HocuspocusClient[] = [];

    /** One socket carrying a provider for each of `names`. */
    function multiplexed(names: readonly string[]): HocuspocusClient[] {
      const socket = version.socket(`${server.url}/hocuspocus`);
      sockets.push(socket);
      const opened = names.map((name) => connectHocuspocus(version, "", name, { socket }));
      clients.push(...opened);
      return opened;
    }

    before(async () => (server = await startServer()));
    after(async () => {
      clients.splice(0).forEach((client) => client.destroy());
      sockets.splice(0).forEach((socket) => socket.destroy());
      await server.stop();
    });

    it("syncs every document, and an edit of each reaches a second such socket", async () => {
      const names = Array.from({ length: DOCUMENTS }, (_, i) => `${version.name}-multiplex-${i}`);
      const first = multiplexed(names);
      await Promise.all(first.map((client) => hpSynced(client, 20_000)));
      const second = multiplexed(names);
      await Promise.all(second.map((client) => hpSynced(client, 20_000)));
      first.forEach((client, i) => client.text.insert(0, `edit ${i}`));
      await eventually(() => {
        const behind = second.filter((client, i) => client.text.toString() !== `edit ${i}`);
        assert.equal(behind.length, 0, `${behind.length} documents have not received their edit yet`);
      }, 20_000);
      assert.equal(
        await counted(server.host.metrics.closes, { dialect: "hocuspocus" }),
        0,
        "the server closed no socket (no flood, no pending overflow)",
      );
      assert.equal(
        await counted(server.host.metrics.joinsRefused, {}),
        0,
        "no document was refused (socket, principal or node cap)",
      );
    });
  });
}
