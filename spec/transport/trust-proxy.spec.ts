// transport.trustProxy: which peers' X-Forwarded-For names the client that the
// per-address cap counts. Every socket here comes from 127.0.0.1 (loopback, a
// trusted peer by default); the header stands in for a reverse proxy's.
import { strict as assert } from "node:assert";
import { ErrorCodes, ServiceCollection, TRANSPORT_DEFAULTS, isOpStreamError } from "../../src/index.js";
import { counted } from "../support/metrics.js";
import { startServer, type TestServer } from "../support/server.js";
import { tryUpgrade, type UpgradeOutcome } from "../support/upgrade.js";

describe("transport.trustProxy", () => {
  const opened: UpgradeOutcome[] = [];
  afterEach(() => opened.splice(0).forEach((o) => o.ws?.close()));

  /** Opens an upgrade to `path`, with `X-Forwarded-For: forwarded` when given; the status. */
  async function upgrade(server: TestServer, path: string, forwarded?: string): Promise<number> {
    const headers: Record<string, string> = forwarded === undefined ? {} : { "x-forwarded-for": forwarded };
    const outcome = await tryUpgrade(`${server.url}${path}`, [], { headers });
    opened.push(outcome);
    return outcome.status;
  }

  describe("at its default (loopback, linklocal, uniquelocal)", () => {
    let server: TestServer;
    before(async () => (server = await startServer(undefined, { transport: { maxConnectionsPerIp: 2 } })));
    after(() => server.stop());

    it("counts the forwarded client address per IP, on both dialects", async () => {
      const before = await counted(server.host.metrics.upgradesRefused, { reason: "ip-limit" });
      assert.equal(await upgrade(server, "/fwd", "203.0.113.7"), 101);
      assert.equal(await upgrade(server, "/hocuspocus", "203.0.113.7"), 101);
      assert.equal(await upgrade(server, "/fwd", "203.0.113.7"), 429);
      assert.equal(await upgrade(server, "/hocuspocus", "203.0.113.7"), 429);
      assert.equal(await upgrade(server, "/fwd", "203.0.113.8"), 101, "another client behind the same proxy");
      assert.equal(await counted(server.host.metrics.upgradesRefused, { reason: "ip-limit" }), before + 2);
    });

    it("does not count a trusted peer that forwards no address (a local rig, a server-side client)", async () => {
      for (let i = 0; i < 6; i++) {
        assert.equal(await upgrade(server, i % 2 ? "/hocuspocus" : "/direct"), 101, `connection ${i + 1}`);
      }
    });

    it("walks X-Forwarded-For from the right past trusted hops, to the first untrusted address", async () => {
      // A private hop (another proxy) is passed; the client is the address before it.
      assert.equal(await upgrade(server, "/hops", "198.51.100.1, 10.0.0.5"), 101);
      assert.equal(await upgrade(server, "/hops", "198.51.100.1"), 101);
      assert.equal(await upgrade(server, "/hops", "198.51.100.1, 192.168.1.9"), 429);
      // What a client put to the left of an untrusted address is not believed.
      assert.equal(await upgrade(server, "/hops", "192.0.2.1, 198.51.100.2"), 101);
      assert.equal(await upgrade(server, "/hops", "192.0.2.2, 198.51.100.2"), 101);
      assert.equal(await upgrade(server, "/hops", "192.0.2.3, 198.51.100.2"), 429);
    });

    it("counts a forwarded IPv6 client per ipv6PrefixLength prefix", async () => {
      assert.equal(await upgrade(server, "/v6", "2001:db8:7:1::a"), 101);
      assert.equal(await upgrade(server, "/v6", "2001:db8:7:1::b"), 101);
      assert.equal(await upgrade(server, "/v6", "2001:db8:7:1:ffff::c"), 429, "same /64");
    });
  });

  it("with loopback untrusted, counts the peer and ignores the header: the 101st connection gets 429", async () => {
    // Loopback plays a public client connecting directly, at the default cap (100).
    const server = await startServer(undefined, { transport: { trustProxy: ["uniquelocal"] } });
    try {
      const cap = TRANSPORT_DEFAULTS.maxConnectionsPerIp;
      const statuses = await Promise.all(
        Array.from({ length: cap }, (_, i) => upgrade(server, "/public", `203.0.113.${i % 250}`)),
      );
      assert.deepEqual(new Set(statuses), new Set([101]), "the first 100 connect");
      assert.equal(await upgrade(server, "/public", "203.0.113.250"), 429, "a forged header changes nothing");
      assert.equal(await upgrade(server, "/hocuspocus"), 429);
    } finally {
      opened.splice(0).forEach((o) => o.ws?.close());
      await server.stop();
    }
  });

  it("false trusts no peer: every connection counts as its socket's address", async () => {
    const server = await startServer(undefined, { transport: { trustProxy: false, maxConnectionsPerIp: 2 } });
    try {
      assert.equal(await upgrade(server, "/none"), 101);
      assert.equal(await upgrade(server, "/none", "203.0.113.9"), 101);
      assert.equal(await upgrade(server, "/none", "203.0.113.10"), 429);
    } finally {
      await server.stop();
    }
  });

  it("a custom clientAddress replaces it, and counts every connection", async () => {
    const server = await startServer(undefined, {
      transport: { maxConnectionsPerIp: 1, clientAddress: (request) => String(request.headers["x-real-ip"]) },
    });
    try {
      const as = (ip: string) => ({ headers: { "x-real-ip": ip, "x-forwarded-for": "203.0.113.1" } });
      const first = await tryUpgrade(`${server.url}/custom`, [], as("192.0.2.50"));
      opened.push(first);
      assert.equal(first.status, 101);
      const second = await tryUpgrade(`${server.url}/custom`, [], as("192.0.2.50"));
      opened.push(second);
      assert.equal(second.status, 429);
    } finally {
      await server.stop();
    }
  });

  it("refuses an entry that is neither an address, a CIDR nor a known name, with INVALID_OPTION", () => {
    for (const trustProxy of [["10.0.0.0/33"], ["proxy.internal"], ["loopback", "1.2.3"]]) {
      assert.throws(
        () => new ServiceCollection().addOpStream({ transport: { trustProxy } }),
        (error: unknown) =>
          isOpStreamError(error, ErrorCodes.INVALID_OPTION) &&
          error.details.option === "transport.trustProxy",
        JSON.stringify(trustProxy),
      );
    }
    assert.doesNotThrow(() =>
      new ServiceCollection().addOpStream({
        transport: { trustProxy: ["192.0.2.10", "fd00::/8", "linklocal"] },
      }),
    );
  });
});
