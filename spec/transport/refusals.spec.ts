// Every admission refusal is counted by reason and logged at warn with the
// addresses it came from, at most one line per kind per interval.
import { install, type Clock } from "@sinonjs/fake-timers";
import { strict as assert } from "node:assert";
import { once } from "node:events";
import WebSocket from "ws";
import { CloseCodes, type Authorizer } from "../../src/index.js";
import { RefusalLog } from "../../src/transport/refusal-log.js";
import { captureLogger } from "../support/capture-logger.js";
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
import { tryUpgrade, type UpgradeOutcome } from "../support/upgrade.js";

const WARN = 40;

interface Line {
  level: number;
  msg: string;
  reason?: string;
  clientAddress?: string;
  peerAddress?: string;
  dialect?: string;
  docId?: string;
  suppressed?: number;
}

describe("refusals", () => {
  describe("RefusalLog (fake timers)", () => {
    let clock: Clock;
    beforeEach(() => (clock = install({ toFake: ["setTimeout", "clearTimeout"] })));
    afterEach(() => clock.uninstall());

    it("logs the first refusal of a kind at once and the rest as one line per interval, with their count", () => {
      const capture = captureLogger();
      const log = new RefusalLog(capture.logger, 10_000);
      const lines = () => capture.entries() as Line[];
      log.refused("connection refused", "ip-limit", { clientAddress: "192.0.2.1" });
      for (let i = 2; i <= 5; i++)
        log.refused("connection refused", "ip-limit", { clientAddress: `192.0.2.${i}` });
      log.refused("connection refused", "origin", { clientAddress: "192.0.2.9" });
      assert.deepEqual(
        lines().map((l) => [l.level, l.reason, l.clientAddress, l.suppressed]),
        [
          [WARN, "ip-limit", "192.0.2.1", undefined],
          [WARN, "origin", "192.0.2.9", undefined],
        ],
        "one line per reason",
      );
      clock.tick(10_000);
      assert.deepEqual(
        lines()
          .slice(2)
          .map((l) => [l.level, l.reason, l.clientAddress, l.suppressed]),
        [[WARN, "ip-limit", "192.0.2.5", 4]],
        "the interval's line: the latest of the 4 not logged",
      );
      log.refused("connection refused", "ip-limit", { clientAddress: "192.0.2.6" });
      clock.tick(10_000);
      assert.equal(lines().length, 4, "one more summary after the next interval");
      clock.tick(10_000);
      log.refused("connection refused", "ip-limit", { clientAddress: "192.0.2.7" });
      assert.equal(
        lines().at(-1)?.suppressed,
        undefined,
        "after a quiet interval the next one is logged at once",
      );
      log.refused("connection refused", "ip-limit", { clientAddress: "192.0.2.8" });
      log.close();
      assert.deepEqual(
        [lines().at(-1)?.clientAddress, lines().at(-1)?.suppressed],
        ["192.0.2.8", 1],
        "close writes what was not logged yet",
      );
      assert.equal(clock.countTimers(), 0, "and leaves no timer");
    });
  });

  describe("on a live server", () => {
    let server: TestServer;
    let capture: ReturnType<typeof captureLogger>;
    const opened: UpgradeOutcome[] = [];
    const clients: HocuspocusClient[] = [];
    const sockets: StockSocket[] = [];
    const authorizer: Authorizer = ({ docId }) => {
      if (docId.startsWith("denied")) return "deny";
      return docId.startsWith("viewer") ? "readonly" : "read-write";
    };
    const warnings = () => (capture.entries() as Line[]).filter((line) => line.level === WARN);
    const warningFor = (msg: string, reason: string) =>
      warnings().find((line) => line.msg === msg && line.reason === reason);

    before(async () => {
      capture = captureLogger();
      server = await startServer(
        (b) => b.useMemoryStorage().useAuthorization(authorizer).useLogger(capture.logger),
        {
          transport: {
            maxConnectionsPerIp: 1,
            maxDocumentsPerSocket: 1,
            allowedOrigins: ["https://app.example"],
            authTimeoutMs: 300,
          },
        },
      );
    });
    afterEach(() => {
      opened.splice(0).forEach((o) => o.ws?.close());
      clients.splice(0).forEach((c) => c.destroy());
      sockets.splice(0).forEach((s) => s.destroy());
    });
    after(() => server.stop());

    async function upgrade(path: string, headers: Record<string, string> = {}): Promise<number> {
      const outcome = await tryUpgrade(`${server.url}${path}`, [], { headers });
      opened.push(outcome);
      return outcome.status;
    }

    it("upgrades: logged with the forwarded client and the proxy's address, and counted by reason", async () => {
      const forwarded = { "x-forwarded-for": "203.0.113.5" };
      assert.equal(await upgrade("/a", forwarded), 101);
      assert.equal(await upgrade("/a", forwarded), 429);
      assert.equal(await upgrade("/a", forwarded), 429);
      assert.equal(await upgrade("/a", { origin: "https://evil.example" }), 403);
      assert.equal(await upgrade("/denied-doc"), 403);
      assert.equal(await counted(server.host.metrics.upgradesRefused, { reason: "ip-limit" }), 2);
      assert.equal(await counted(server.host.metrics.upgradesRefused, { reason: "origin" }), 1);
      assert.equal(await counted(server.host.metrics.upgradesRefused, { reason: "forbidden" }), 1);
      assert.deepEqual(
        warnings()
          .filter((line) => line.msg === "connection refused")
          .map((l) => [l.reason, l.dialect, l.clientAddress, l.peerAddress]),
        [
          ["ip-limit", "y-websocket", "203.0.113.5", "127.0.0.1"],
          ["origin", "y-websocket", "127.0.0.1", undefined],
          ["forbidden", "y-websocket", "127.0.0.1", undefined],
        ],
        "one line per reason (the second ip-limit waits for the interval's summary)",
      );
    });

    it("Hocuspocus documents: a denied Auth and one past maxDocumentsPerSocket are logged and counted", async () => {
      const version = PROVIDER_VERSIONS[1]!;
      const socket = version.socket(`${server.url}/hocuspocus`);
      sockets.push(socket);
      const allowed = connectHocuspocus(version, "", "allowed-doc", { socket });
      clients.push(allowed);
      await hpSynced(allowed);
      const extra = connectHocuspocus(version, "", "one-too-many", { socket });
      const denied = connectHocuspocus(version, `${server.url}/hocuspocus`, "denied-hp");
      clients.push(denied, extra);
      await eventually(() => {
        assert.deepEqual(denied.events.denied, ["permission-denied"]);
        assert.deepEqual(extra.events.denied, ["too-many-documents"]);
      });
      assert.equal(await counted(server.host.metrics.joinsRefused, { reason: "forbidden" }), 1);
      assert.equal(await counted(server.host.metrics.joinsRefused, { reason: "socket-limit" }), 1);
      for (const [reason, docId] of [
        ["forbidden", "denied-hp"],
        ["socket-limit", "one-too-many"],
      ] as const) {
        const line = warningFor("document refused", reason);
        assert.ok(line, `a warning for ${reason}`);
        assert.deepEqual([line.dialect, line.docId, line.clientAddress], ["hocuspocus", docId, "127.0.0.1"]);
      }
    });

    it("a y-websocket reader of a missing document: closed 4005, logged with its document", async () => {
      const ws = new WebSocket(`${server.url}/viewer-of-nothing`);
      const [code] = (await once(ws, "close")) as [number];
      assert.equal(code, CloseCodes.DOCUMENT_NOT_FOUND);
      const line = warningFor("document refused", "document-not-found");
      assert.ok(line, "a warning for document-not-found");
      assert.deepEqual(
        [line.dialect, line.docId, line.clientAddress],
        ["y-websocket", "viewer-of-nothing", "127.0.0.1"],
      );
      assert.equal(await counted(server.host.metrics.joinsRefused, { reason: "document-not-found" }), 1);
    });

    it("a Hocuspocus socket that authorizes nothing within authTimeoutMs: closed 4010, logged", async () => {
      const ws = new WebSocket(`${server.url}/hocuspocus`, {
        headers: { "x-forwarded-for": "198.51.100.20" },
      });
      const [code] = (await once(ws, "close")) as [number];
      assert.equal(code, CloseCodes.AUTH_TIMEOUT);
      const line = warningFor("connection refused", "auth-timeout");
      assert.ok(line, "a warning for auth-timeout");
      assert.deepEqual([line.clientAddress, line.peerAddress], ["198.51.100.20", "127.0.0.1"]);
      assert.equal(await counted(server.host.metrics.badFrames, { reason: "auth-timeout" }), 1);
    });
  });
});
