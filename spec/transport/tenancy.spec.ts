import { strict as assert } from "node:assert";
import { join } from "node:path";
import type { AuthorizationRequest } from "../../src/index.js";
import { connectClient, synced, type Client } from "../support/clients.js";
import { eventually } from "../support/eventually.js";
import {
  PROVIDER_VERSIONS,
  connectHocuspocus,
  hpSynced,
  type HocuspocusClient,
} from "../support/hocuspocus.js";
import { startServer, type TestServer } from "../support/server.js";
import { tempDir } from "../support/temp.js";
import { refusedWith } from "../support/upgrade.js";

/** The spec's resolver: the tenant is the `tenant` query parameter (a deployment would use the host or a token). */
const tenantOf = (url: string | undefined): string | undefined =>
  new URL(url ?? "/", "http://localhost").searchParams.get("tenant") ?? undefined;

describe("multitenancy (useTenantResolver)", () => {
  let server: TestServer;
  const seen: AuthorizationRequest[] = [];
  const clients: { destroy(): void }[] = [];
  before(async () => {
    server = await startServer((b) =>
      b
        .useSqliteStorage(join(tempDir(), "tenants.sqlite"))
        .useTenantResolver((request) => tenantOf(request.url))
        .useAuthorization((request) => {
          seen.push(request);
          return "read-write";
        }),
    );
  });
  after(async () => {
    clients.splice(0).forEach((client) => client.destroy());
    await server.stop();
  });

  it("keeps two tenants' documents of the same name apart, in storage too", async () => {
    const a = connectClient(server.url, "notes", { params: { tenant: "acme" } });
    const b = connectClient(server.url, "notes", { params: { tenant: "globex" } });
    const a2 = connectClient(server.url, "notes", { params: { tenant: "acme" } });
    clients.push(a, b, a2);
    await Promise.all([a, b, a2].map((client: Client) => synced(client)));
    a.text.insert(0, "acme's notes");
    b.text.insert(0, "globex's notes");
    await eventually(() => assert.equal(a2.text.toString(), "acme's notes"));
    assert.equal(b.text.toString(), "globex's notes", "nothing crossed between tenants");
    await eventually(async () =>
      assert.deepEqual(await server.host.store.list(), ["acme/notes", "globex/notes"]),
    );
    assert.ok(seen.some((request) => request.tenant === "acme" && request.docId === "notes"));
  });

  it("never lets a tenant name its way into another tenant's document", async () => {
    const intruder = connectClient(server.url, "globex/notes", { params: { tenant: "acme" } });
    clients.push(intruder);
    await synced(intruder);
    assert.equal(intruder.text.toString(), "", "acme/globex/notes is a document of acme's own");
    assert.ok((await server.host.store.list()).includes("acme/globex/notes"));
  });

  it("refuses an upgrade without a (valid) tenant with 401", async () => {
    for (const query of ["", "?tenant=a/b", "?tenant="]) {
      assert.equal(await refusedWith(`${server.url}/notes${query}`), 401, `query ${JSON.stringify(query)}`);
    }
    assert.equal(await refusedWith(`${server.url}/hocuspocus`), 401);
  });

  for (const version of PROVIDER_VERSIONS) {
    it(`namespaces Hocuspocus documents per socket tenant (${version.name})`, async () => {
      const url = (tenant: string) => `${server.url}/hocuspocus?tenant=${tenant}`;
      const a: HocuspocusClient = connectHocuspocus(version, url("acme"), `hp-${version.name}`);
      const b: HocuspocusClient = connectHocuspocus(version, url("globex"), `hp-${version.name}`);
      clients.push(a, b);
      await Promise.all([hpSynced(a), hpSynced(b)]);
      a.text.insert(0, "acme");
      await eventually(async () =>
        assert.ok((await server.host.store.list()).includes(`acme/hp-${version.name}`)),
      );
      assert.equal(b.text.toString(), "");
    });
  }
});
