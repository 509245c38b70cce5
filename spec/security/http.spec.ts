import { strict as assert } from "node:assert";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { ErrorCodes, ServiceCollection, isOpStreamError, type OpStreamHost } from "../../src/index.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { MANAGEMENT_TOKEN, api } from "../support/management.js";
import { startServer, testLogger, type TestServer } from "../support/server.js";

interface ErrorBody {
  error: { code: string; message: string };
}

/** What an Express development-mode error page or a leaked stack would contain. */
const INTERNALS = /\bat \S+ \(|node_modules|\/work\/|\.ts:\d|\.js:\d|<pre>|<!DOCTYPE/i;

async function errorBody(response: Response): Promise<ErrorBody> {
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  const text = await response.text();
  assert.doesNotMatch(text, INTERNALS, "no stack, paths or HTML in an error answer");
  const body = JSON.parse(text) as ErrorBody & Record<string, unknown>;
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "message"]);
  return body;
}

/** The value of `opstream_http_errors_total` for one label set (0 when never counted). */
async function httpErrors(base: string, status: number, code: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`opstream_http_errors_total{status="${status}",code="${code}"}`));
  return line === undefined ? 0 : Number(line.split(" ").pop());
}

describe("HTTP surface (issue 23)", function () {
  let server: TestServer | undefined;
  let base: string;
  const clients: Client[] = [];
  const nodeEnv = process.env.NODE_ENV;

  beforeEach(() => {
    // Express shows its development error page (stack, file paths) when NODE_ENV is unset.
    delete process.env.NODE_ENV;
  });
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await server?.stop();
    server = undefined;
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  });

  async function start(...args: Parameters<typeof startServer>): Promise<TestServer> {
    server = await startServer(...args);
    base = `http://127.0.0.1:${server.port}`;
    return server;
  }

  it("answers a malformed percent-escape in a management URL with a JSON 400, NODE_ENV unset", async () => {
    await start((b) => b.useMemoryStorage().useManagementAuthorization(MANAGEMENT_TOKEN));
    for (const [method, path] of [
      ["GET", "/%E0%A4%A"],
      ["DELETE", "/%E0%A4%A"],
      ["POST", "/%ZZ/compact"],
    ] as const) {
      const response = await api(base, method, path);
      assert.equal(response.status, 400, `${method} ${path}`);
      assert.equal((await errorBody(response)).error.code, ErrorCodes.BAD_REQUEST);
    }
    assert.equal(await httpErrors(base, 400, ErrorCodes.BAD_REQUEST), 3, "each one counted");
    // Without the credential the authorizer answers first, in JSON as well.
    const denied = await api(base, "GET", "/%E0%A4%A", null);
    assert.equal(denied.status, 403);
    assert.equal((await errorBody(denied)).error.code, ErrorCodes.FORBIDDEN);
    assert.equal(await httpErrors(base, 403, ErrorCodes.FORBIDDEN), 1);
  });

  it("answers unknown routes under /api with a JSON 404", async () => {
    await start((b) => b.useMemoryStorage().useManagementAuthorization(MANAGEMENT_TOKEN));
    for (const [method, path] of [
      ["GET", "/api/nope"],
      ["GET", "/api/documents/a/b"],
      ["PUT", "/api/documents/a"],
      ["GET", "/nowhere"],
    ] as const) {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${MANAGEMENT_TOKEN}` },
      });
      assert.equal(response.status, 404, `${method} ${path}`);
      assert.equal((await errorBody(response)).error.code, ErrorCodes.ROUTE_NOT_FOUND);
    }
    assert.equal(await httpErrors(base, 404, ErrorCodes.ROUTE_NOT_FOUND), 4);
  });

  it("answers body-parser errors with their status and failing routes with 500, in JSON, on the app listen() serves", async () => {
    const app = express();
    app.post("/echo", express.json({ limit: "64b" }), (req, res) => {
      res.json(req.body);
    });
    app.get("/broken", () => {
      throw new Error(`secret internals at ${import.meta.url}`);
    });
    const services = new ServiceCollection();
    services.addOpStream({ processMetrics: false }).useLogger(testLogger()).useMemoryStorage();
    const host: OpStreamHost = services.build();
    const listening: Server = await host.listen(0, { host: "127.0.0.1", app });
    server = {
      host,
      server: listening,
      port: 0,
      url: "",
      stop: () => host.shutdown({ drainTimeoutMs: 5000 }),
    };
    base = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;
    const post = (body: string) =>
      fetch(`${base}/echo`, { method: "POST", headers: { "content-type": "application/json" }, body });

    assert.equal((await post('{"a":1}')).status, 200);
    const unparsable = await post('{"a":');
    assert.equal(unparsable.status, 400);
    assert.equal((await errorBody(unparsable)).error.code, ErrorCodes.BAD_REQUEST);
    const tooLarge = await post(JSON.stringify({ a: "x".repeat(100) }));
    assert.equal(tooLarge.status, 413);
    assert.equal((await errorBody(tooLarge)).error.code, ErrorCodes.BAD_REQUEST);
    const broken = await fetch(`${base}/broken`);
    assert.equal(broken.status, 500);
    const body = await errorBody(broken);
    assert.equal(body.error.code, ErrorCodes.INTERNAL);
    assert.doesNotMatch(body.error.message, /secret/);
    assert.equal(await httpErrors(base, 413, ErrorCodes.BAD_REQUEST), 1);
    assert.equal(await httpErrors(base, 500, ErrorCodes.INTERNAL), 1);
  });

  it("answers JSON errors from http() alone, mounted on an app without handlers of its own", async () => {
    const services = new ServiceCollection();
    services
      .addOpStream({ processMetrics: false })
      .useLogger(testLogger())
      .useMemoryStorage()
      .useManagementAuthorization((request) => {
        if (request.headers["x-break"] !== undefined) throw new Error("authorizer internals");
        return request.headers.authorization === `Bearer ${MANAGEMENT_TOKEN}`;
      });
    const host = services.build();
    const app = express();
    app.use(host.http());
    const listening = createServer(app).listen(0, "127.0.0.1");
    await once(listening, "listening");
    server = {
      host,
      server: listening,
      port: 0,
      url: "",
      stop: async () => {
        listening.close();
        await host.shutdown({ drainTimeoutMs: 5000 });
      },
    };
    base = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`;

    const malformed = await api(base, "GET", "/%E0%A4%A");
    assert.equal(malformed.status, 400);
    assert.equal((await errorBody(malformed)).error.code, ErrorCodes.BAD_REQUEST);
    const unknown = await api(base, "GET", "/a/b");
    assert.equal(unknown.status, 404);
    assert.equal((await errorBody(unknown)).error.code, ErrorCodes.ROUTE_NOT_FOUND);
    const broken = await fetch(`${base}/api/documents`, { headers: { "x-break": "1" } });
    assert.equal(broken.status, 500);
    assert.equal((await errorBody(broken)).error.code, ErrorCodes.INTERNAL);
    const health = await fetch(`${base}/healthz?doc=x`, { headers: { "x-break": "1" } });
    assert.equal(health.status, 200, "a failing authorizer does not fail the probe");
    assert.equal("owns" in ((await health.json()) as object), false);
  });

  it("answers /healthz?doc with `owns` only behind the management credential", async () => {
    await start((b) => b.useMemoryStorage().useManagementAuthorization(MANAGEMENT_TOKEN));
    const client = connectClient(server!.url, "private-plans");
    clients.push(client);
    await synced(client);
    const health = async (headers: Record<string, string>) => {
      const response = await fetch(`${base}/healthz?doc=private-plans`, { headers });
      assert.equal(response.status, 200, "probes keep working");
      return (await response.json()) as Record<string, unknown>;
    };

    for (const headers of [{}, { authorization: "Bearer not-the-management-token" }] as Record<
      string,
      string
    >[]) {
      const anonymous = await health(headers);
      assert.equal(anonymous.status, "ok");
      assert.equal(anonymous.sessions, 1);
      assert.equal("owns" in anonymous, false, "nothing about the document");
    }
    assert.equal(await httpErrors(base, 200, ErrorCodes.FORBIDDEN), 2, "the refusals are counted");
    assert.equal((await health({ authorization: `Bearer ${MANAGEMENT_TOKEN}` })).owns, true);
  });

  it("answers /healthz?doc without `owns` when no management authorizer is configured", async () => {
    await start();
    const body = (await (await fetch(`${base}/healthz?doc=x`)).json()) as Record<string, unknown>;
    assert.equal(body.status, "ok");
    assert.equal("owns" in body, false);
  });

  it("refuses document names longer than transport.maxDocumentNameLength in the management API and documents.open()", async () => {
    const { host } = await start((b) => b.useMemoryStorage().useManagementAuthorization(MANAGEMENT_TOKEN), {
      transport: { maxDocumentNameLength: 16 },
    });
    const tooLong = "n".repeat(17);
    for (const [method, path] of [
      ["GET", `/${tooLong}`],
      ["DELETE", `/${tooLong}`],
      ["POST", `/${tooLong}/compact`],
    ] as const) {
      const response = await api(base, method, path);
      assert.equal(response.status, 400, `${method} ${path}`);
      const body = await errorBody(response);
      assert.equal(body.error.code, ErrorCodes.INVALID_DOCUMENT_NAME);
      assert.doesNotMatch(body.error.message, /nnnnnnnnnnnnnnnnn/, "the name is not echoed");
    }
    assert.equal(await httpErrors(base, 400, ErrorCodes.INVALID_DOCUMENT_NAME), 3);
    assert.equal((await api(base, "GET", `/${"n".repeat(16)}`)).status, 404, "at the bound: just unknown");

    await assert.rejects(host.documents.open(tooLong), (error: unknown) => {
      assert.ok(isOpStreamError(error, ErrorCodes.INVALID_DOCUMENT_NAME), String(error));
      assert.equal(error.details.maxDocumentNameLength, 16);
      return true;
    });
    // Counted in UTF-16 code units, like the transport: 8 emoji are 16 units.
    const atBound = await host.documents.open("😀".repeat(8));
    await atBound.close();
    await assert.rejects(host.documents.open("😀".repeat(8) + "x"), /maxDocumentNameLength/);
    const stored = await host.store.list();
    assert.deepEqual(
      stored.filter((name) => name.length > 16),
      [],
      "nothing was created for the refused names",
    );
  });
});
