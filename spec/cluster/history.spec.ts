import { strict as assert } from "node:assert";
import Database from "better-sqlite3";
import * as Y from "yjs";
import { SqliteDocumentStore, type VersionInfo } from "../../src/index.js";
import type { RestoreResult } from "../../src/hosting/history.js";
import { synced, type Client } from "../support/clients.js";
import { startCluster, type Cluster } from "../support/cluster.js";
import { eventually } from "../support/eventually.js";
import { allAcknowledged, hpSynced, type HocuspocusClient } from "../support/hocuspocus.js";
import { MANAGEMENT_TOKEN, api } from "../support/management.js";
import type { ServerProcess } from "../support/process.js";
import { clientsOn, countDisconnects, keepTyping, measure, receivedCounts, type Typing } from "./editing.js";
import { ownersOf, tokensOf } from "./support.js";

/** What the cases read of a client of either family. */
interface Editor {
  readonly doc: Y.Doc;
  readonly text: Y.Text;
}

interface Content {
  text: string;
  map: unknown;
}

function contentOf(doc: Y.Doc): Content {
  return { text: doc.getText("text").toString(), map: doc.getMap("map").toJSON() };
}

function docOf(...updates: Uint8Array[]): Y.Doc {
  const doc = new Y.Doc();
  for (const update of updates) Y.applyUpdate(doc, update);
  return doc;
}

/** The document storage holds now (latest snapshot + the ops after it). */
async function storedContent(store: SqliteDocumentStore, doc: string): Promise<Content> {
  const { snapshot, ops } = await store.load(doc);
  const ydoc = docOf(...(snapshot ? [snapshot.state] : []), ...ops.map((op) => op.update));
  try {
    return contentOf(ydoc);
  } finally {
    ydoc.destroy();
  }
}

/** Calls `/api/documents/<doc>/versions<path>` on `node` with the management token. */
async function versions(
  node: ServerProcess,
  doc: string,
  method: "GET" | "POST",
  path = "",
  body?: unknown,
): Promise<Response> {
  return fetch(`${node.httpUrl}/api/documents/${encodeURIComponent(doc)}/versions${path}`, {
    method,
    headers: {
      authorization: `Bearer ${MANAGEMENT_TOKEN}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(20_000),
  });
}

async function json<T>(response: Response, status: number): Promise<T> {
  const text = await response.text();
  assert.equal(response.status, status, `answered ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** Every editor holds `expected`, with nothing pending, and so does storage. */
async function allHold(
  editors: readonly Editor[],
  store: SqliteDocumentStore,
  doc: string,
  expected: Content,
): Promise<void> {
  await eventually(async () => {
    editors.forEach((editor, e) => {
      assert.deepEqual(contentOf(editor.doc), expected, `client ${e}`);
      assert.equal(editor.doc.store.pendingStructs, null, `client ${e} has pending structs`);
    });
    assert.deepEqual(await storedContent(store, doc), expected, "storage");
  }, 15_000);
}

/** Every editor holds the same content as the others and as storage; resolves with it. */
async function converged(
  editors: readonly Editor[],
  store: SqliteDocumentStore,
  doc: string,
): Promise<Content> {
  return eventually(async () => {
    const first = contentOf(editors[0]!.doc);
    editors.forEach((editor, e) => {
      assert.deepEqual(contentOf(editor.doc), first, `client ${e} holds what client 0 holds`);
      assert.equal(editor.doc.store.pendingStructs, null, `client ${e} has pending structs`);
    });
    assert.deepEqual(await storedContent(store, doc), first, "storage holds what the clients hold");
    return first;
  }, 20_000);
}

/**
 * The typists' tokens an update inserts: the strings of the items written by the
 * clients in `typists`, joined per client in clock order (a typist's insert is
 * one whole token). Deleted content a sender has collected carries no string.
 */
function tokensIn(update: Uint8Array, typists: ReadonlySet<number>): string[] {
  const byClient = new Map<number, { clock: number; str: string }[]>();
  for (const struct of Y.decodeUpdate(update).structs) {
    if (!(struct instanceof Y.Item) || !(struct.content instanceof Y.ContentString)) continue;
    if (!typists.has(struct.id.client)) continue;
    const list = byClient.get(struct.id.client) ?? [];
    list.push({ clock: struct.id.clock, str: struct.content.str });
    byClient.set(struct.id.client, list);
  }
  return [...byClient.values()].flatMap((items) =>
    items
      .sort((a, b) => a.clock - b.clock)
      .map((item) => item.str)
      .join("")
      .split(";")
      .filter(Boolean),
  );
}

/** One op of a document's log. */
interface LoggedOp {
  readonly seq: number;
  readonly epoch: number;
  readonly update: Uint8Array;
}

/**
 * Every op storage ever held, trimmed ones included. A snapshot (a compaction, or
 * the policy's every 100 ops) trims the log up to the op it follows, moments after
 * that op was appended, so a reader polling the log misses some. The spec adds
 * to the nodes' SQLite file a table and a trigger that keep a copy of each op a
 * snapshot deletes. The nodes' own tables and statements are untouched (SQLite
 * re-prepares them for the new trigger).
 */
class FullLog {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS spec_trimmed_ops (
        doc_id TEXT NOT NULL, seq INTEGER NOT NULL, epoch INTEGER NOT NULL, "update" BLOB NOT NULL,
        PRIMARY KEY (doc_id, seq)
      ) STRICT, WITHOUT ROWID;
      CREATE TRIGGER IF NOT EXISTS spec_keep_trimmed_ops BEFORE DELETE ON ops BEGIN
        INSERT OR IGNORE INTO spec_trimmed_ops VALUES (old.doc_id, old.seq, old.epoch, old."update");
      END;`);
  }

  /** Every op of `doc`, by seq; asserts that none is missing (SQLite's seqs are consecutive). */
  ops(doc: string): LoggedOp[] {
    const ops = this.db
      .prepare<[string, string], LoggedOp>(
        `SELECT seq, epoch, "update" FROM ops WHERE doc_id = ?
         UNION ALL SELECT seq, epoch, "update" FROM spec_trimmed_ops WHERE doc_id = ? ORDER BY seq`,
      )
      .all(doc, doc);
    ops.forEach((op, i) => assert.equal(op.seq, i + 1, "the log holds every seq once"));
    return ops;
  }

  close(): void {
    this.db.close();
  }
}

/** The seq and epoch of the op that first stored each of the typists' tokens. */
function storedTokens(
  ops: readonly LoggedOp[],
  typists: ReadonlySet<number>,
): Map<string, { seq: number; epoch: number }> {
  const tokens = new Map<string, { seq: number; epoch: number }>();
  for (const op of ops)
    for (const token of tokensIn(op.update, typists))
      if (!tokens.has(token)) tokens.set(token, { seq: op.seq, epoch: op.epoch });
  return tokens;
}

describe("document history on a 3-node cluster: restore through non-owner nodes, y-websocket and Hocuspocus clients", function () {
  this.timeout(60_000);
  let cluster: Cluster;
  let store: SqliteDocumentStore;
  let log: FullLog;
  const running: { destroy(): void }[] = [];
  const typing: Typing[] = [];
  const { yws, hocuspocus } = clientsOn(running);

  before(async () => {
    cluster = await startCluster(3);
    // The spec only reads: written inline, it starts no writer thread.
    store = new SqliteDocumentStore({ path: cluster.storage, writerThread: false });
    log = new FullLog(cluster.storage);
  });
  afterEach(async () => {
    await Promise.allSettled(typing.splice(0).map((typist) => typist.stop()));
    running.splice(0).forEach((client) => client.destroy());
  });
  after(async () => {
    log?.close();
    await store?.close();
    await cluster?.stop();
  });

  /** A y-websocket and a Hocuspocus client on each node, node `owner`'s first so that it owns `doc`. */
  async function everyoneOn(
    doc: string,
    owner: number,
  ): Promise<{ clients: Client[]; hp: HocuspocusClient[] }> {
    const opener = yws(cluster.nodes[owner]!, doc);
    await synced(opener, 10_000);
    const others = [0, 1, 2].filter((n) => n !== owner);
    const clients = [opener, ...others.map((n) => yws(cluster.nodes[n]!, doc))];
    const hp = [owner, ...others].map((n) => hocuspocus(cluster.nodes[n]!, doc));
    await Promise.all([
      ...clients.map((client) => synced(client, 10_000)),
      ...hp.map((client) => hpSynced(client, 10_000)),
    ]);
    assert.deepEqual(await ownersOf(cluster.nodes, doc), [owner], `node ${owner} owns "${doc}"`);
    return { clients, hp };
  }

  it("a named version saved on one non-owner node and restored through another: every client on every node holds exactly its content, none reconnects, storage agrees; restoring `before` brings the edits back", async () => {
    const doc = "restore";
    const { clients, hp } = await everyoneOn(doc, 0);
    const editors: Editor[] = [...clients, ...hp];
    const disconnects = clients.map(countDisconnects);

    editors.forEach((editor, e) => {
      editor.text.insert(editor.text.length, `first${e};`);
      editor.doc.getMap("map").set(`k${e}`, `first${e}`);
    });
    const v1Content = await converged(editors, store, doc);
    assert.equal(tokensOf(v1Content.text).size, editors.length, "every client's first edit");

    const v1 = await json<VersionInfo>(
      await versions(cluster.nodes[1]!, doc, "POST", "", { name: "v1" }),
      201,
    );
    assert.deepEqual([v1.kind, v1.name], ["named", "v1"]);
    const stored = await store.loadVersion(doc, v1.id);
    assert.deepEqual(contentOf(docOf(stored!.state)), v1Content, "the version holds what everyone held");
    const served = await json<{ content: Record<string, unknown> }>(
      await versions(cluster.nodes[2]!, doc, "GET", `/${v1.id}`),
      200,
    );
    assert.deepEqual(served.content, v1Content, "another node serves its content");

    // Edits after v1: inserts, deletions of v1's text, a changed and a new map key.
    editors.forEach((editor, e) => {
      editor.text.insert(0, `second${e};`);
      editor.doc.getMap("map").set(`k${e}`, `second${e}`);
    });
    await converged(editors, store, doc);
    editors[1]!.text.delete(editors[1]!.text.toString().indexOf("first0;"), "first0;".length);
    editors[2]!.doc.getMap("map").set("extra", "later");
    const edited = await converged(editors, store, doc);
    assert.notDeepEqual(edited, v1Content);

    const restored = await json<RestoreResult>(
      await versions(cluster.nodes[2]!, doc, "POST", `/${v1.id}/restore`),
      200,
    );
    assert.deepEqual(
      [restored.restored.id, restored.before.kind, restored.after.kind, restored.after.restoredFrom],
      [v1.id, "before-restore", "restore", v1.id],
    );
    assert.ok(restored.seq !== null && restored.seq > v1.seq, "the restore is a new op");
    await allHold(editors, store, doc, v1Content);
    const before = await store.loadVersion(doc, restored.before.id);
    assert.deepEqual(contentOf(docOf(before!.state)), edited, "`before` holds the edited document");

    const undone = await json<RestoreResult>(
      await versions(cluster.nodes[1]!, doc, "POST", `/${restored.before.id}/restore`),
      200,
    );
    assert.equal(undone.after.restoredFrom, restored.before.id);
    await allHold(editors, store, doc, edited);

    const list = await json<{ versions: VersionInfo[] }>(await versions(cluster.nodes[2]!, doc, "GET"), 200);
    assert.deepEqual(
      list.versions.map((v) => v.kind),
      ["named", "before-restore", "restore", "before-restore", "restore"],
    );
    assert.deepEqual(await ownersOf(cluster.nodes, doc), [0], "node 0 owned it throughout");
    assert.deepEqual(
      disconnects.map((counter) => counter.closes),
      clients.map(() => []),
      "no y-websocket client's socket closed",
    );
    assert.deepEqual(
      disconnects.map((counter) => counter.count),
      clients.map(() => 0),
    );
    assert.deepEqual(
      hp.map((client) => client.events.closed),
      hp.map(() => []),
      "no Hocuspocus client's socket closed",
    );
  });

  /**
   * Clients of both families on every node type; node `owner` owns `doc`; v1 is
   * saved through one non-owner and restored through the other, and the owner is
   * SIGKILLed `killWhen` the request is sent, or when the restore's first write
   * (its `before` version) is in storage. The killed node restarts, as a relay for
   * its clients.
   */
  async function restoreWhileTheOwnerDies(
    doc: string,
    owner: number,
    killWhen: "sent" | "before-version",
  ): Promise<void> {
    const [saveOn, restoreOn] = [0, 1, 2].filter((n) => n !== owner).map((n) => cluster.nodes[n]!) as [
      ServerProcess,
      ServerProcess,
    ];
    const { clients, hp } = await everyoneOn(doc, owner);
    // Typists 0–2 are the y-websocket clients (the owner's first), 3–5 the Hocuspocus ones.
    const editors: Editor[] = [...clients, ...hp];
    const survivors = { clients: clients.slice(1), hp: hp.slice(1) };
    const disconnects = survivors.clients.map(countDisconnects);
    const typistIds = new Set(editors.map((editor) => editor.doc.clientID));
    const typists = keepTyping(editors, "t", new Set(), 40);
    typing.push(typists);
    const own = (e: number) => [...typists.typed].filter((token) => token.startsWith(`t${e}-`));

    // What clients received from the server (it fans out only what is durable) and
    // what the Hocuspocus clients had acknowledged, sampled until the kill.
    const received = new Set<string>();
    editors.forEach((editor) =>
      editor.doc.on("update", (update: Uint8Array, origin: unknown) => {
        if (origin !== null) for (const token of tokensIn(update, typistIds)) received.add(token);
      }),
    );
    const acknowledged = new Set<string>();
    const sampleAcks = () =>
      hp.forEach((client, h) => {
        if (!client.provider.hasUnsyncedChanges) for (const token of own(3 + h)) acknowledged.add(token);
      });
    const sampling = setInterval(sampleAcks, 10);
    try {
      const flowing = async (count: number) => {
        const since = receivedCounts(editors, "t");
        await eventually(
          () =>
            receivedCounts(editors, "t").forEach((n, e) =>
              assert.ok(
                n >= since[e]! + count,
                `client ${e} received ${n - since[e]!} new tokens, not ${count}`,
              ),
            ),
          20_000,
        );
      };
      await flowing(10);
      const v1 = await json<VersionInfo>(await versions(saveOn, doc, "POST", "", { name: "v1" }), 201);
      const v1Tokens = tokensOf(contentOf(docOf((await store.loadVersion(doc, v1.id))!.state)).text);
      assert.ok(v1Tokens.size > 0);
      await flowing(5);
      // A compaction on the way trims the log (the spec's copy keeps the trimmed ops).
      assert.equal((await api(saveOn.httpUrl, "POST", `/${doc}/compact`)).status, 200);
      await flowing(5);

      // The non-owner relays the restore to the owner, which dies meanwhile.
      const request = versions(restoreOn, doc, "POST", `/${v1.id}/restore`);
      if (killWhen === "before-version") {
        await eventually(
          async () => {
            const kinds = (await store.listVersions(doc)).map((v) => v.kind);
            assert.ok(kinds.includes("before-restore"), "the restore has begun");
          },
          10_000,
          5,
        );
      }
      const ownerEpoch = v1.epoch; // the owner's, which held the document until the kill
      clearInterval(sampling);
      sampleAcks();
      const beforeKill = new Set([...received, ...acknowledged]);
      await cluster.nodes[owner]!.stop("SIGKILL");
      const killedAt = performance.now();
      const restarted = cluster.restart(owner); // its clients come back through it, as a relay

      let response = await request;
      let retried = false;
      if (response.status !== 200) {
        retried = true;
        response = await versions(saveOn, doc, "POST", `/${v1.id}/restore`);
      }
      const answer = await json<RestoreResult>(response, 200);
      const answeredMs = performance.now() - killedAt;
      await restarted;
      await Promise.all([synced(clients[0]!, 20_000), hpSynced(hp[0]!, 20_000)]);
      await flowing(5); // typing goes on after the restore, through the new owner
      await typists.stop();
      await Promise.all(hp.map((client) => allAcknowledged(client, 20_000)));
      const final = await converged(editors, store, doc);
      const ops = log.ops(doc);
      const stored = storedTokens(ops, typistIds);

      const finalTokens = tokensOf(final.text);
      assert.equal(final.text.split(";").filter(Boolean).length, finalTokens.size, "no token twice");
      // Durable before acknowledged or sent on: the killed owner stored each of these.
      const notStored = [...beforeKill].filter((token) => stored.get(token)?.epoch !== ownerEpoch);
      assert.deepEqual(
        notStored.slice(0, 10),
        [],
        `${notStored.length} of ${beforeKill.size} tokens acknowledged or received before the kill were not stored by the owner (epoch ${ownerEpoch})`,
      );
      const unstored = [...typists.typed].filter((token) => !stored.has(token));
      assert.deepEqual(unstored.slice(0, 10), [], `${unstored.length} typed tokens never reached storage`);

      // The restore took effect, durably: its op is stored, and the document is v1
      // plus what was stored after it; what was stored after v1 and up to the
      // `before` version is gone. (Between the two, an edit can go either way.)
      assert.ok(answer.seq !== null, "the restore changed the document");
      assert.equal(
        ops[answer.seq - 1]?.epoch,
        answer.after.epoch,
        "its op is stored, by the owner that answered",
      );
      const dropped = [...v1Tokens].filter((token) => !finalTokens.has(token));
      assert.deepEqual(dropped, [], "v1's content is in the document");
      const revived: string[] = [];
      const lost: string[] = [];
      for (const [token, { seq }] of stored) {
        if (v1Tokens.has(token)) continue;
        if (seq <= answer.before.seq && finalTokens.has(token)) revived.push(token);
        if (seq > answer.seq && !finalTokens.has(token)) lost.push(token);
      }
      assert.deepEqual(revived.slice(0, 10), [], `${revived.length} tokens the restore reverted are back`);
      assert.deepEqual(lost.slice(0, 10), [], `${lost.length} tokens stored after the restore are missing`);
      const retained = await store.listVersions(doc);
      const befores = retained.filter((v) => v.kind === "before-restore");
      const restores = retained.filter((v) => v.kind === "restore" && v.restoredFrom === v1.id);
      assert.ok(
        restores.some((v) => v.id === answer.after.id),
        "the answer's `restore` version is stored",
      );

      assert.equal((await ownersOf(cluster.nodes, doc)).length, 1, "one owner");
      assert.deepEqual(
        disconnects.map((counter) => counter.closes),
        survivors.clients.map(() => []),
        "no y-websocket client of a surviving node lost its socket",
      );
      assert.deepEqual(
        survivors.hp.map((client) => client.events.closed),
        survivors.hp.map(() => []),
        "no Hocuspocus client of a surviving node lost its socket",
      );
      measure({
        case: `restore-kill-when-${killWhen}`,
        answeredMs: Math.round(answeredMs),
        retried: String(retried),
        // Which owner ran the restore that answered, and how many attempts began.
        answeredBy: answer.after.epoch === ownerEpoch ? "killed-owner" : "new-owner",
        attempts: befores.length,
        restoresStored: restores.length,
        beforeKill: beforeKill.size,
        typed: typists.typed.size,
        final: finalTokens.size,
        ops: ops.length,
        compactedAt: (await store.loadSnapshot(doc))?.seq ?? 0,
      });
    } finally {
      clearInterval(sampling);
    }
  }

  it("kill -9 of the owner right after a restore is sent to a non-owner, clients typing on every node: every edit acknowledged or received before the kill was stored by it, the restore takes effect durably (retried on a surviving node if it failed), everyone converges", async () => {
    await restoreWhileTheOwnerDies("restore-kill-sent", 0, "sent");
  });

  it("kill -9 of the owner once the restore's `before` version is stored: the same", async () => {
    await restoreWhileTheOwnerDies("restore-kill-begun", 1, "before-version");
  });
});
