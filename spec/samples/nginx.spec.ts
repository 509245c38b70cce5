// The cluster sample's deployment: nginx (the Debian package, started here with the
// configuration samples/cluster/nginx-config.ts generates) in front of three real
// `opstream serve` processes on a real redis-server, both stock client families
// through it. nginx connects to every node from 127.0.0.1, so only the address it
// forwards in X-Forwarded-For can tell its clients apart: each client here binds a
// source address of its own in 127.0.0.0/8 (all of it routes to loopback on Linux).
import { strict as assert } from "node:assert";
import WebSocket, { type ClientOptions } from "ws";
import { TRANSPORT_DEFAULTS } from "../../src/index.js";
import { PROXY_TIMEOUT_SECONDS } from "../../samples/cluster/nginx-config.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { startCluster, type Cluster } from "../support/cluster.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
  type StockSocket,
} from "../support/hocuspocus.js";
import { startNginx, type Nginx } from "../support/nginx.js";
import type { ServerProcess } from "../support/process.js";
import { tryUpgrade, type UpgradeOutcome } from "../support/upgrade.js";

const NODES = 3;
/** Per node: nginx's round-robin puts a client's 7th sequential connection on a node holding 2 of its. */
const MAX_CONNECTIONS_PER_IP = 2;

/** A `ws` WebSocket that connects from `localAddress`, for the stock providers' `WebSocketPolyfill`. */
function webSocketFrom(localAddress: string): typeof globalThis.WebSocket {
  class BoundWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[], options: ClientOptions = {}) {
      super(url, protocols, { ...options, localAddress });
    }
  }
  return BoundWebSocket as unknown as typeof globalThis.WebSocket;
}

/** A metric's value summed over its series (and `label="value"` if given), from a node's /metrics. */
async function scraped(node: ServerProcess, name: string, label?: string): Promise<number> {
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => label === undefined || line.includes(label))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

describe("samples/cluster: nginx in front of 3 nodes", function () {
  this.timeout(60_000);
  let cluster: Cluster;
  let nginx: Nginx;
  const ywebsocket: Client[] = [];
  const hocuspocus: HocuspocusClient[] = [];
  const sockets: StockSocket[] = [];
  const opened: UpgradeOutcome[] = [];

  before(async () => {
    cluster = await startCluster(NODES, {
      extraArgs: ["--max-connections-per-ip", String(MAX_CONNECTIONS_PER_IP)],
    });
    nginx = await startNginx({
      upstreams: cluster.nodes.map((node) => ({ host: "127.0.0.1", port: node.port })),
    });
  });
  afterEach(() => {
    [...ywebsocket.splice(0), ...hocuspocus.splice(0)].forEach((client) => client.destroy());
    sockets.splice(0).forEach((socket) => socket.destroy());
    opened.splice(0).forEach((outcome) => outcome.ws?.close());
  });
  after(async () => {
    await nginx?.close();
    await cluster?.stop();
  });

  it("is configured as deployed: upgrade headers, X-Forwarded-For, timeouts above the keep-alive, no affinity", () => {
    for (const directive of [
      "proxy_set_header Upgrade $http_upgrade;",
      "proxy_set_header Connection $connection_upgrade;",
      "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
      "proxy_set_header X-Forwarded-Proto $scheme;",
    ]) {
      assert.ok(nginx.config.includes(directive), `the configuration has ${directive}`);
    }
    const slowest =
      Math.max(TRANSPORT_DEFAULTS.keepAliveIntervalMs, TRANSPORT_DEFAULTS.pingIntervalMs) / 1000;
    assert.ok(
      PROXY_TIMEOUT_SECONDS > slowest,
      `proxy timeouts (${PROXY_TIMEOUT_SECONDS} s) above ${slowest} s`,
    );
    const directives = nginx.config
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => !line.startsWith("#"));
    for (const sticky of ["ip_hash", "hash ", "sticky", "least_conn", "random"]) {
      assert.ok(!directives.some((line) => line.startsWith(sticky)), `plain round-robin, no ${sticky}`);
    }
  });

  it("serves both client families on every node: their edits converge", async () => {
    const doc = "through-nginx";
    // Six clients, each from its own address (under the per-address cap), two per node.
    for (let i = 0; i < 3; i++) {
      const webSocket = webSocketFrom(`127.0.1.${10 + i}`);
      ywebsocket.push(connectClient(nginx.url, doc, { webSocket }));
      const version = PROVIDER_VERSIONS[i % PROVIDER_VERSIONS.length]!;
      const socket = version.socket(`${nginx.url}/hocuspocus`, {
        WebSocketPolyfill: webSocketFrom(`127.0.1.${20 + i}`),
      });
      sockets.push(socket);
      hocuspocus.push(connectHocuspocus(version, "", doc, { socket }));
    }
    await Promise.all([
      ...ywebsocket.map((client) => synced(client, 10_000)),
      ...hocuspocus.map((client) => hpSynced(client, 10_000)),
    ]);
    const perNode = await Promise.all(cluster.nodes.map((node) => scraped(node, "opstream_connections")));
    assert.deepEqual(perNode, [2, 2, 2], "nginx spread the six connections over the three nodes");
    const clients = [...ywebsocket, ...hocuspocus];
    clients.forEach((client, i) => client.text.insert(client.text.length, `[${i}]`));
    await eventually(() => {
      const texts = clients.map((client) => client.text.toString());
      for (const text of texts) assert.equal(text, texts[0], "every client holds the same text");
      for (let i = 0; i < clients.length; i++)
        assert.ok(texts[0]!.includes(`[${i}]`), `client ${i}'s edit arrived`);
    }, 20_000);
  });

  it("the per-address cap counts the forwarded client address, not nginx's", async () => {
    const from = (localAddress: string) => tryUpgrade(`${nginx.url}/capped`, [], { localAddress });
    const refusedBefore = await Promise.all(
      cluster.nodes.map((node) => scraped(node, "opstream_upgrades_refused_total", 'reason="ip-limit"')),
    );
    // Sequential, so round-robin gives each node 2 of them: every node is then at the cap for 127.0.0.2.
    for (let i = 0; i < NODES * MAX_CONNECTIONS_PER_IP; i++) {
      const outcome = await from("127.0.0.2");
      opened.push(outcome);
      assert.equal(outcome.status, 101, `connection ${i + 1} from 127.0.0.2`);
    }
    const third = await from("127.0.0.2");
    opened.push(third);
    assert.equal(third.status, 429, "one more from 127.0.0.2: its node already holds 2 of its connections");
    const other = await from("127.0.0.3");
    opened.push(other);
    assert.equal(
      other.status,
      101,
      "127.0.0.3 is another client, though nginx connects from 127.0.0.1 for both",
    );
    const refusedAfter = await Promise.all(
      cluster.nodes.map((node) => scraped(node, "opstream_upgrades_refused_total", 'reason="ip-limit"')),
    );
    const refused =
      refusedAfter.reduce((sum, n) => sum + n, 0) - refusedBefore.reduce((sum, n) => sum + n, 0);
    assert.equal(refused, 1, "one ip-limit refusal, counted by the node");
  });
});
