// `opstream serve` as a user first runs it: no flag but a free port, in an empty
// working directory. 400 stock clients from this one host (half y-websocket, half
// @hocuspocus/provider v3 and v4, each on a socket of its own) must all be served:
// the default limits must not refuse a test rig, a server-side client or a proxy.
import { strict as assert } from "node:assert";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
} from "../support/hocuspocus.js";
import { spawnServer, type ServerProcess } from "../support/process.js";
import { tempDir } from "../support/temp.js";

const CLIENTS = 400;
/**
 * The clients share 4 documents, 100 on each (of both families): every client's
 * presence goes to every other client of its document, so one document of 400
 * would make the spec spend its time on 160,000 awareness frames rather than on
 * admission (about 4× as long here).
 */
const DOCUMENTS = 4;

/** The value of a Prometheus metric summed over its series, from a node's /metrics text (0 when it has none). */
async function scraped(server: ServerProcess, name: string): Promise<number> {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

describe(`opstream serve at pure defaults, ${CLIENTS} stock clients from one host`, function () {
  this.timeout(60_000);
  let server: ServerProcess;
  const ywebsocket: { doc: number; client: Client }[] = [];
  const hocuspocus: { doc: number; client: HocuspocusClient }[] = [];

  before(async () => (server = await spawnServer({ cwd: tempDir() })));
  after(async () => {
    [...ywebsocket.splice(0), ...hocuspocus.splice(0)].forEach(({ client }) => client.destroy());
    await server.stop();
  });

  it("connects and syncs them all, and an edit of each document reaches every client of it", async () => {
    for (let i = 0; i < CLIENTS / 2; i++) {
      const doc = i % DOCUMENTS;
      const version = PROVIDER_VERSIONS[i % PROVIDER_VERSIONS.length]!;
      ywebsocket.push({ doc, client: connectClient(server.url, `pure-defaults-${doc}`) });
      const url = `${server.url}/hocuspocus`;
      hocuspocus.push({ doc, client: connectHocuspocus(version, url, `pure-defaults-${doc}`) });
    }
    await Promise.all([
      ...ywebsocket.map(({ client }) => synced(client, 30_000)),
      ...hocuspocus.map(({ client }) => hpSynced(client, 30_000)),
    ]);
    // The first clients hold documents 0, 1, 2, 3.
    for (let doc = 0; doc < DOCUMENTS; doc++) ywebsocket[doc]!.client.text.insert(0, `edit of ${doc}`);
    await eventually(() => {
      const behind = [...ywebsocket, ...hocuspocus].filter(
        ({ doc, client }) => client.text.toString() !== `edit of ${doc}`,
      );
      assert.equal(behind.length, 0, `${behind.length} clients have not received their document's edit yet`);
    }, 30_000);
    assert.equal(
      await scraped(server, "opstream_upgrades_refused_total"),
      0,
      "no upgrade was refused (the clients would have retried)",
    );
    assert.equal(
      await scraped(server, "opstream_connection_closes_total"),
      0,
      "the server closed no connection",
    );
    assert.equal(await scraped(server, "opstream_connections"), CLIENTS, "every client holds one connection");
  });
});
