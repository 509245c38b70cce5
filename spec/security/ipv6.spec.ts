import { strict as assert } from "node:assert";
import { ErrorCodes, ServiceCollection, isOpStreamError } from "../../src/index.js";
import { addressKey } from "../../src/transport/address-key.js";
import { eventually } from "../support/eventually.js";
import { startServer, type TestServer } from "../support/server.js";
import { tryUpgrade, type UpgradeOutcome } from "../support/upgrade.js";
import { counted } from "../support/metrics.js";

describe("per-IP limit over IPv6 (transport.ipv6PrefixLength)", () => {
  describe("addressKey", () => {
    const sameKey = (prefix: number, ...addresses: string[]) => {
      const keys = addresses.map((address) => addressKey(address, prefix));
      assert.equal(new Set(keys).size, 1, `${addresses.join(", ")} -> ${keys.join(", ")}`);
    };
    const distinctKeys = (prefix: number, ...addresses: string[]) => {
      const keys = addresses.map((address) => addressKey(address, prefix));
      assert.equal(new Set(keys).size, addresses.length, `${addresses.join(", ")} -> ${keys.join(", ")}`);
    };

    it("counts a /64 as one host, whatever the textual form", () => {
      sameKey(
        64,
        "2001:db8:1:2::1",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",
        "2001:0DB8:0001:0002:0000:0000:0000:0009",
        "2001:db8:1:2:a:b:192.0.2.1", // mixed notation
        "2001:db8:1:2::7%eth0", // a zone
      );
      sameKey(64, "fe80::1%eth0", "fe80::2%wlan0", "FE80::abcd");
      sameKey(64, "::1", "::", "::2:0:1");
      distinctKeys(64, "2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8::1", "::1");
    });

    it("counts an IPv4-mapped address as the IPv4 address; leaves IPv4 and other strings as they are", () => {
      assert.equal(addressKey("::ffff:192.0.2.1", 64), "192.0.2.1");
      assert.equal(addressKey("::FFFF:c000:201", 64), "192.0.2.1");
      assert.equal(addressKey("0:0:0:0:0:ffff:192.0.2.1", 128), "192.0.2.1");
      assert.equal(addressKey("192.0.2.1", 64), "192.0.2.1");
      assert.equal(addressKey("unknown", 64), "unknown");
      assert.equal(addressKey("client-a", 64), "client-a");
      // NAT64 and IPv4-compatible addresses are IPv6 hosts, masked like any other.
      sameKey(64, "64:ff9b::192.0.2.1", "64:ff9b::198.51.100.7");
    });

    it("applies any prefix from 1 to 128; 128 counts each address", () => {
      distinctKeys(128, "2001:db8::1", "2001:db8::2");
      assert.equal(addressKey("2001:db8::1", 128), addressKey("2001:0db8:0:0:0:0:0:1", 128));
      sameKey(48, "2001:db8:1:2::1", "2001:db8:1:ffff::1");
      distinctKeys(48, "2001:db8:1::1", "2001:db8:2::1");
      sameKey(63, "2001:db8:0:2::1", "2001:db8:0:3::1");
      distinctKeys(63, "2001:db8:0:3::1", "2001:db8:0:4::1");
      sameKey(1, "2001:db8::1", "7fff::1");
      distinctKeys(1, "7fff::1", "8000::1");
      sameKey(65, "2001:db8:1:2:7fff::1", "2001:db8:1:2::");
      distinctKeys(65, "2001:db8:1:2:7fff::1", "2001:db8:1:2:8000::1");
    });
  });

  describe("on a live server", () => {
    let server: TestServer;
    const opened: UpgradeOutcome[] = [];
    // The header stands in for the address a trusted proxy forwards: loopback is only ::1.
    const from = (address: string) => ({ headers: { "x-client": address } });
    const upgrade = async (path: string, address: string) => {
      const outcome = await tryUpgrade(`${server.url}${path}`, [], from(address));
      opened.push(outcome);
      return outcome.status;
    };
    before(async () => {
      server = await startServer(undefined, {
        transport: {
          maxConnectionsPerIp: 2,
          clientAddress: (request) => String(request.headers["x-client"]),
        },
      });
    });
    afterEach(() => opened.splice(0).forEach((o) => o.ws?.close()));
    after(() => server.stop());

    it("refuses a third connection from one /64 with 429, on both dialects, until one closes", async () => {
      const ipLimit = () => counted(server.host.metrics.upgradesRefused, { reason: "ip-limit" });
      const before = await ipLimit();
      assert.equal(await upgrade("/v6-doc", "2001:db8:1:2::a"), 101);
      assert.equal(await upgrade("/hocuspocus", "2001:db8:1:2:ffff::b"), 101);
      assert.equal(await upgrade("/v6-doc", "2001:db8:1:2::c%eth0"), 429);
      assert.equal(await upgrade("/hocuspocus", "2001:0db8:0001:0002::d"), 429);
      assert.equal(await ipLimit(), before + 2);
      assert.equal(await upgrade("/v6-doc", "2001:db8:1:3::a"), 101, "the next /64 is another host");
      opened[0]?.ws?.close();
      // The slot is freed under the masked key too.
      await eventually(async () => {
        const again = await tryUpgrade(`${server.url}/v6-doc`, [], from("2001:db8:1:2::e"));
        opened.push(again);
        assert.equal(again.status, 101);
      });
    });

    it("counts an IPv4-mapped address together with the IPv4 address", async () => {
      assert.equal(await upgrade("/v4-doc", "::ffff:10.1.1.1"), 101);
      assert.equal(await upgrade("/v4-doc", "10.1.1.1"), 101);
      assert.equal(await upgrade("/v4-doc", "::ffff:a01:101"), 429);
    });

    it("ipv6PrefixLength: 128 counts each address", async () => {
      const exact = await startServer(undefined, {
        transport: {
          maxConnectionsPerIp: 2,
          ipv6PrefixLength: 128,
          clientAddress: (request) => String(request.headers["x-client"]),
        },
      });
      try {
        for (const address of ["2001:db8::1", "2001:db8::2", "2001:db8::3"]) {
          const outcome = await tryUpgrade(`${exact.url}/exact`, [], from(address));
          opened.push(outcome);
          assert.equal(outcome.status, 101, address);
        }
      } finally {
        opened.splice(0).forEach((o) => o.ws?.close());
        await exact.stop();
      }
    });

    it("refuses a prefix length outside 1–128 with INVALID_OPTION", () => {
      for (const ipv6PrefixLength of [0, 129, 64.5, Number.NaN]) {
        assert.throws(
          () => new ServiceCollection().addOpStream({ transport: { ipv6PrefixLength } }),
          (error: unknown) => isOpStreamError(error, ErrorCodes.INVALID_OPTION),
          String(ipv6PrefixLength),
        );
      }
    });
  });
});
