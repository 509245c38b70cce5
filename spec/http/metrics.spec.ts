import { strict as assert } from "node:assert";
import { join } from "node:path";
import WebSocket from "ws";
import { OpStreamError, ErrorCodes } from "../../src/index.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import { startServer, type TestServer } from "../support/server.js";
import { tempDir } from "../support/temp.js";

/** The value of one sample line of `/metrics` (0 when absent). */
function sample(text: string, name: string, labels = ""): number {
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`${name}${labels} `) || (labels === "" && l.startsWith(`${name} `)));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

describe("/metrics", () => {
  let server: TestServer;
  const clients: Client[] = [];
  const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  before(async () => {
    server = await startServer((b) =>
      b.useSqliteStorage(join(tempDir(), "metrics.sqlite")).addValidator((update) => {
        if (update.byteLength > 200)
          throw new OpStreamError(ErrorCodes.UPDATE_REJECTED, "too big for this spec");
      }),
    );
  });
  after(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await server.stop();
  });

  it("counts applied ops, apply latency and fan-out; rejections by reason; close codes; fenced writes", async () => {
    const [alice, bob] = [connectClient(server.url, "m"), connectClient(server.url, "m")];
    clients.push(alice, bob);
    await Promise.all([synced(alice), synced(bob)]);
    alice.text.insert(0, "counted");
    await eventually(() => assert.equal(bob.text.toString(), "counted"));
    let text = await scrape();
    assert.ok(sample(text, "opstream_updates_applied_total") >= 1);
    assert.ok(sample(text, "opstream_apply_seconds_count") >= 1);
    assert.ok(sample(text, "opstream_fanout_peers_count") >= 1);
    assert.equal(sample(text, "opstream_connections", '{dialect="y-websocket"}'), 2);

    alice.text.insert(0, "x".repeat(500)); // refused by the validator: the socket closes with 1008
    await eventually(async () => {
      text = await scrape();
      assert.ok(sample(text, "opstream_updates_rejected_total", '{reason="validator"}') >= 1);
      assert.ok(sample(text, "opstream_connection_closes_total", '{dialect="y-websocket",code="1008"}') >= 1);
    });

    const raw = new WebSocket(`${server.url}/m`);
    await new Promise((resolve) => raw.on("open", resolve));
    raw.send("a text frame");
    await eventually(async () =>
      assert.ok(
        sample(await scrape(), "opstream_connection_closes_total", '{dialect="y-websocket",code="1003"}') >=
          1,
      ),
    );

    // Another owner claims the document's next epoch behind this node's back: its next append is fenced.
    await server.host.store.claimEpoch("m");
    bob.text.insert(0, "after the claim ");
    await eventually(async () => assert.ok(sample(await scrape(), "opstream_fenced_writes_total") >= 1));
  });
});
