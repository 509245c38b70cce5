import { strict as assert } from "node:assert";
import type { AuthorizationRequest, VersionInfo } from "../../src/index.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
} from "../support/hocuspocus.js";
import { MANAGEMENT_TOKEN as TOKEN } from "../support/management.js";
import { startServer, type TestServer } from "../support/server.js";

interface ErrorBody {
  error: { code: string; message: string };
}

/** Calls `base` + `path` with JSON in and out. */
async function call(
  base: string,
  method: string,
  path: string,
  options: { token?: string | null; body?: unknown } = {},
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = {};
  if (options.token !== null && options.token !== undefined)
    headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const type = response.headers.get("content-type") ?? "";
  return {
    status: response.status,
    body: type.includes("json") ? await response.json() : await response.arrayBuffer(),
  };
}

const codeOf = (body: unknown): string => (body as ErrorBody).error.code;

describe("document history over HTTP", function () {
  this.timeout(20_000);
  let server: TestServer;
  let base: string;
  const clients: { destroy(): void }[] = [];
  afterEach(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await server.stop();
  });

  async function start(
    configure: Parameters<typeof startServer>[0] = (b) =>
      b.useMemoryStorage().useManagementAuthorization(TOKEN),
    options: Parameters<typeof startServer>[1] = {},
  ): Promise<void> {
    server = await startServer(configure, options);
    base = `http://127.0.0.1:${server.port}`;
  }

  async function editor(name: string, text: string, params: Record<string, string> = {}): Promise<Client> {
    const client = connectClient(server.url, name, { params });
    clients.push(client);
    await synced(client);
    if (text) client.text.insert(client.text.length, text);
    return client;
  }

  it("saves, lists, reads, diffs and restores versions through the management API; connected clients see the restore", async () => {
    await start();
    const alice = await editor("notes", "first draft");
    const bob = await editor("notes", "");
    await eventually(() => assert.equal(bob.text.toString(), "first draft"));
    await eventually(async () =>
      assert.deepEqual((await call(base, "GET", "/api/documents/notes", { token: TOKEN })).body, {
        id: "notes",
        seq: 1,
        content: { text: "first draft" },
      }),
    );

    assert.equal((await call(base, "GET", "/api/documents/notes/versions")).status, 403, "needs the token");
    const saved = await call(base, "POST", "/api/documents/notes/versions", {
      token: TOKEN,
      body: { name: "v1" },
    });
    assert.equal(saved.status, 201);
    const v1 = saved.body as VersionInfo;
    assert.deepEqual([v1.kind, v1.name, v1.seq], ["named", "v1", 1]);

    alice.text.insert(alice.text.length, ", then more");
    await eventually(() => assert.equal(bob.text.toString(), "first draft, then more"));
    const listed = (await call(base, "GET", "/api/documents/notes/versions", { token: TOKEN })).body as {
      versions: VersionInfo[];
    };
    assert.deepEqual(
      listed.versions.map((v) => [v.id, v.name]),
      [[v1.id, "v1"]],
    );
    assert.deepEqual(
      (await call(base, "GET", `/api/documents/notes/versions/${v1.id}`, { token: TOKEN })).body,
      {
        version: v1,
        content: { text: "first draft" },
      },
    );
    const binary = await call(base, "GET", `/api/documents/notes/versions/${v1.id}?format=yjs`, {
      token: TOKEN,
    });
    assert.ok(binary.body instanceof ArrayBuffer && binary.body.byteLength > 0);

    await eventually(async () => {
      const diff = (
        await call(base, "GET", `/api/documents/notes/versions/${v1.id}/diff/now`, { token: TOKEN })
      ).body as {
        types: { text: { changes: { type: string; text: string; index: number; client: number }[] } };
      };
      assert.deepEqual(diff.types.text.changes, [
        { type: "added", text: ", then more", index: 11, client: alice.doc.clientID, path: [] },
      ]);
    });

    const restored = await call(base, "POST", `/api/documents/notes/versions/${v1.id}/restore`, {
      token: TOKEN,
    });
    assert.equal(restored.status, 200);
    const result = restored.body as {
      before: VersionInfo;
      after: VersionInfo;
      restored: VersionInfo;
      seq: number;
    };
    assert.deepEqual(
      [result.before.kind, result.after.kind, result.restored.id],
      ["before-restore", "restore", v1.id],
    );
    for (const client of [alice, bob])
      await eventually(() => assert.equal(client.text.toString(), "first draft"));
    assert.equal(alice.provider.wsconnected && bob.provider.wsconnected, true, "nobody reconnected");

    await call(base, "POST", `/api/documents/notes/versions/${result.before.id}/restore`, { token: TOKEN });
    for (const client of [alice, bob])
      await eventually(() => assert.equal(client.text.toString(), "first draft, then more"));
  });

  it("answers typed errors: a bad or unknown version, an unknown document, a long name, a bad body", async () => {
    await start();
    await editor("doc", "x");
    const cases: [string, string, unknown, number, string][] = [
      ["GET", "/api/documents/doc/versions/abc", undefined, 400, "OPS_ERR_BAD_REQUEST"],
      ["GET", "/api/documents/doc/versions/0", undefined, 400, "OPS_ERR_BAD_REQUEST"],
      ["GET", "/api/documents/doc/versions/77", undefined, 404, "OPS_ERR_VERSION_NOT_FOUND"],
      ["POST", "/api/documents/doc/versions/77/restore", undefined, 404, "OPS_ERR_VERSION_NOT_FOUND"],
      ["GET", "/api/documents/missing/versions", undefined, 404, "OPS_ERR_DOCUMENT_NOT_FOUND"],
      ["POST", "/api/documents/missing/versions", { name: "x" }, 404, "OPS_ERR_DOCUMENT_NOT_FOUND"],
      ["POST", "/api/documents/doc/versions", { name: "n".repeat(201) }, 400, "OPS_ERR_BAD_REQUEST"],
      ["POST", "/api/documents/doc/versions", { name: 5 }, 400, "OPS_ERR_BAD_REQUEST"],
    ];
    for (const [method, path, body, status, code] of cases) {
      const answer = await call(base, method, path, { token: TOKEN, body });
      assert.deepEqual([answer.status, codeOf(answer.body)], [status, code], `${method} ${path}`);
    }
    assert.deepEqual(await server.host.store.list(), ["doc"], "no request created a document");
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /opstream_http_errors_total\{status="404",code="OPS_ERR_VERSION_NOT_FOUND"\} 2/);
  });

  it("answers HISTORY_DISABLED on a node started with history: false, and writes no version", async () => {
    await start(undefined, { history: false });
    await editor("doc", "x");
    for (const path of ["/api/documents/doc/versions", "/api/history/doc/versions"]) {
      const answer = await call(base, "GET", path, { token: TOKEN });
      assert.deepEqual([answer.status, codeOf(answer.body)], [404, "OPS_ERR_HISTORY_DISABLED"], path);
    }
    await server.host.router.manage("doc", "opstream.doc.compact");
    assert.deepEqual(await server.host.store.listVersions("doc"), []);
  });

  it("serves editors at /api/history/:name under the WebSocket authorizer: readers read, only writers save and restore", async () => {
    const tokens: Record<string, "readonly" | "read-write"> = { reader: "readonly", writer: "read-write" };
    await start((b) =>
      b
        .useMemoryStorage()
        .useAuthorization((request: AuthorizationRequest) => tokens[request.token ?? ""] ?? "deny"),
    );
    await editor("shared", "hello", { token: "writer" });
    assert.deepEqual(
      codeOf((await call(base, "GET", "/api/history/shared/versions")).body),
      "OPS_ERR_FORBIDDEN",
    );
    const denied = await call(base, "POST", "/api/history/shared/versions", {
      token: "reader",
      body: { name: "r" },
    });
    assert.deepEqual([denied.status, codeOf(denied.body)], [403, "OPS_ERR_FORBIDDEN"]);
    const saved = await call(base, "POST", "/api/history/shared/versions?token=writer", {
      body: { name: "w" },
    });
    assert.equal(saved.status, 201);
    const version = saved.body as VersionInfo;
    const read = await call(base, "GET", `/api/history/shared/versions/${version.id}`, { token: "reader" });
    assert.deepEqual((read.body as { content: unknown }).content, { text: "hello" });
    const restore = await call(base, "POST", `/api/history/shared/versions/${version.id}/restore`, {
      token: "reader",
    });
    assert.equal(restore.status, 403);
    assert.equal(
      (await call(base, "GET", "/api/documents/shared/versions")).status,
      403,
      "the management API keeps its own authorizer",
    );
  });

  it("keeps tenants apart: an editor names its own document, the management API the full id", async () => {
    await start((b) =>
      b
        .useMemoryStorage()
        .useManagementAuthorization(TOKEN)
        .useTenantResolver(
          (request) => new URL(request.url ?? "/", "http://x").searchParams.get("tenant") ?? undefined,
        ),
    );
    await editor("notes", "acme text", { tenant: "acme" });
    await editor("notes", "globex text", { tenant: "globex" });
    const saved = await call(base, "POST", "/api/history/notes/versions?tenant=acme", {
      body: { name: "a1" },
    });
    assert.equal(saved.status, 201);
    const listed = await call(base, "GET", "/api/documents/acme%2Fnotes/versions", { token: TOKEN });
    assert.deepEqual(
      (listed.body as { id: string; versions: VersionInfo[] }).versions.map((v) => v.name),
      ["a1"],
    );
    assert.equal((listed.body as { id: string }).id, "acme/notes");
    const other = await call(base, "GET", "/api/history/notes/versions?tenant=globex");
    assert.deepEqual(
      (other.body as { versions: VersionInfo[] }).versions,
      [],
      "globex's notes have no version",
    );
    const content = await call(
      base,
      "GET",
      `/api/history/notes/versions/${(saved.body as VersionInfo).id}?tenant=acme`,
    );
    assert.deepEqual((content.body as { content: unknown }).content, { text: "acme text" });
    assert.equal(
      (await call(base, "GET", "/api/history/notes/versions")).status,
      403,
      "no tenant, no answer",
    );
  });

  for (const version of PROVIDER_VERSIONS) {
    it(`saves a named version on a Hocuspocus stateless message from a writer, and refuses a reader (${version.name})`, async () => {
      await start((b) =>
        b
          .useMemoryStorage()
          .useAuthorization((request) => (request.token === "writer" ? "read-write" : "readonly")),
      );
      await editor("doc", "stateless", { token: "writer" });
      const connect = (token: string): HocuspocusClient => {
        const client = connectHocuspocus(version, `${server.url}/hocuspocus`, "doc", { token });
        clients.push(client);
        return client;
      };
      const writer = connect("writer");
      const reader = connect("reader");
      await Promise.all([hpSynced(writer), hpSynced(reader)]);
      writer.provider.sendStateless(JSON.stringify({ type: "opstream.version", name: "from the editor" }));
      reader.provider.sendStateless(JSON.stringify({ type: "opstream.version", name: "not allowed" }));
      writer.provider.sendStateless("not json: ignored");
      await eventually(() => assert.equal(writer.events.stateless.length, 1));
      await eventually(() => assert.equal(reader.events.stateless.length, 1));
      const answer = JSON.parse(writer.events.stateless[0]!) as { type: string; version: VersionInfo };
      assert.deepEqual(
        [answer.type, answer.version.name, answer.version.kind],
        ["opstream.version.saved", "from the editor", "named"],
      );
      assert.deepEqual(JSON.parse(reader.events.stateless[0]!), {
        type: "opstream.version.failed",
        code: "OPS_ERR_FORBIDDEN",
        message: "Saving a version needs write access.",
      });
      assert.deepEqual(
        (await server.host.store.listVersions("doc")).map((v) => v.name),
        ["from the editor"],
      );
    });
  }

  it("offers the same from code on any node: host.history", async () => {
    await start();
    const client = await editor("api", "one");
    await eventually(async () =>
      assert.equal((await server.host.history.diff("api", "now", "now")).toSeq, 1),
    );
    const first = await server.host.history.create("api", "one");
    client.text.insert(3, " two");
    await eventually(async () => {
      const diff = await server.host.history.diff("api", first.id, "now");
      assert.deepEqual(
        diff.types.text?.changes.map((c) => c.text),
        [" two"],
      );
    });
    assert.deepEqual((await server.host.history.content("api", first.id)).content, { text: "one" });
    await server.host.history.restore("api", first.id);
    await eventually(() => assert.equal(client.text.toString(), "one"));
    assert.deepEqual(
      (await server.host.history.list("api")).map((v) => v.kind),
      ["named", "before-restore", "restore"],
    );
  });
});
