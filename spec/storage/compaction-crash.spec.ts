import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import pg from "pg";
import * as Y from "yjs";
import {
  PostgresDocumentStore,
  SqliteDocumentStore,
  type DocumentStore,
  type StoredDocument,
} from "../../src/index.js";
import { openSession } from "../support/engine.js";
import { eventually } from "../support/eventually.js";
import { sharedPostgres, stopSharedPostgres } from "../support/postgres.js";
import { tempDir } from "../support/temp.js";
import { sessionText } from "../support/session.js";

const CHILD = fileURLToPath(new URL("./compaction-child.ts", import.meta.url));
const DOC_ID = "crash";
const RUNS = 50;
/** Two children at a time: start-up (tsx) dominates a run, and the machine may have two cores. */
const CONCURRENCY = 2;
/** The child snapshots and trims after every COMPACT_EVERY ops. */
const COMPACT_EVERY = 2;
/** Acknowledged tokens to wait for before the random delay starts. */
const MIN_ACKS = 5;
const MAX_KILL_DELAY_MS = 150;

/** One fresh, empty database that a child writes to and the spec then reloads. */
interface CrashTarget {
  /** The child's store argument: `sqlite:<path>` or `postgres:<connectionString>#<schema>`. */
  readonly arg: string;
  /** A new store over the same data, as a restarted node would open it. */
  open(): Promise<DocumentStore>;
  /** Resolves once nothing the killed child sent can still change the data. */
  settle(): Promise<void>;
}

interface Backend {
  readonly name: string;
  fresh(): Promise<CrashTarget>;
}

/** What one run found after the crash. */
interface RunOutcome {
  readonly snapshotSeq: number;
  /** Ops in the log after the snapshot: where in the append/compaction cycle the kill landed. */
  readonly opsAfterSnapshot: number;
}

/**
 * Spawns the child on `arg`, waits until it has acknowledged MIN_ACKS tokens, kills
 * it with SIGKILL after a random delay, and returns every token it acknowledged.
 */
async function writeUntilKilled(arg: string): Promise<number> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, arg, String(COMPACT_EVERY)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout });
  const drained = once(lines, "close");
  let ready = false;
  const acks: string[] = [];
  let onLine = (): void => undefined;
  lines.on("line", (line) => {
    if (line === "ready" && !ready) ready = true;
    else acks.push(line);
    onLine();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`the child acknowledged ${acks.length} tokens in 20 s (ready: ${ready}): ${stderr}`),
          ),
        20_000,
      );
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the child exited (${code ?? signal}) before it was killed: ${stderr}`));
      });
      onLine = () => {
        if (!ready || acks.length < MIN_ACKS) return;
        clearTimeout(timer);
        resolve();
      };
    });
    // The one deliberate wait: a random delay, so that kills land at every point of
    // the append → snapshot → trim cycle (the child runs hundreds of them per second).
    await new Promise((resolve) => setTimeout(resolve, Math.random() * MAX_KILL_DELAY_MS));
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  const [, signal] = await exited;
  await drained; // every line the child wrote before it died has been read
  assert.equal(signal, "SIGKILL", `the child died from the kill, not on its own: ${stderr}`);
  assert.equal(stderr, "", "the child logged no warning or error (a failed snapshot would be one)");
  acks.forEach((token, i) => assert.equal(token, `t${i}`, "the child acknowledges its tokens in order"));
  return acks.length;
}

function rebuild(stored: StoredDocument): Y.Doc {
  const doc = new Y.Doc();
  if (stored.snapshot) Y.applyUpdate(doc, stored.snapshot.state);
  for (const op of stored.ops) Y.applyUpdate(doc, op.update);
  return doc;
}

/** Reloads the crashed document and checks that it holds exactly t0…tK, K >= every acknowledged token. */
async function checkReload(target: CrashTarget, acked: number): Promise<RunOutcome> {
  const store = await target.open();
  try {
    const first = await store.load(DOC_ID);
    const doc = rebuild(first);
    assert.equal(doc.store.pendingStructs, null, "no op depends on a missing one");
    assert.equal(doc.store.pendingDs, null, "no delete depends on a missing op");
    const text = doc.getText("text").toString();
    const recovered = text.split(";").length - 1;
    const expected = Array.from({ length: recovered }, (_, i) => `t${i};`).join("");
    assert.equal(text, expected, "the text is t0;t1;…;tK; in order, without holes or duplicates");
    assert.ok(recovered >= acked, `all ${acked} acknowledged tokens survive (found ${recovered})`);

    const snapshotSeq = first.snapshot?.seq ?? 0;
    const lastSeq = first.ops.at(-1)?.seq ?? snapshotSeq;
    assert.equal(lastSeq, recovered, "one op per token: the log neither lost nor repeated one");
    assert.deepEqual(
      first.ops.map((op) => op.seq),
      Array.from({ length: lastSeq - snapshotSeq }, (_, i) => snapshotSeq + 1 + i),
      "the ops after the snapshot are contiguous",
    );
    assert.ok(
      first.ops.length <= COMPACT_EVERY,
      `a compaction follows every ${COMPACT_EVERY} ops, so no more stay in the log (found ${first.ops.length})`,
    );
    const epochs = new Set([
      ...first.ops.map((op) => op.epoch),
      ...(first.snapshot ? [first.snapshot.epoch] : []),
    ]);
    assert.deepEqual([...epochs], [1], "everything was written by the child's epoch");

    assert.equal(await store.claimEpoch(DOC_ID), 2, "the next owner claims the next epoch");
    assert.deepEqual(await store.load(DOC_ID), first, "a second load equals the first");

    // The engine's own cold load sees the same document.
    const session = await openSession(DOC_ID, { store });
    try {
      assert.equal(await sessionText(session), text);
      assert.equal(session.lastSeq, lastSeq);
    } finally {
      await session.close("step-down"); // no final snapshot: leave the store as the crash left it
    }
    return { snapshotSeq, opsAfterSnapshot: first.ops.length };
  } finally {
    await store.close();
  }
}

/** Runs `task(0..count-1)` with at most `concurrency` at a time; stops starting new ones after a failure. */
async function runPool<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < count) {
      const i = next++;
      try {
        results[i] = await task(i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure) throw failure.error;
  return results;
}

function crashDuringCompaction(backend: Backend): void {
  describe(`crash during compaction: ${backend.name}`, function () {
    this.timeout(180_000);

    it(`keeps every acknowledged update when a writer is killed -9 during snapshot+trim (${RUNS} runs)`, async () => {
      const outcomes = await runPool(RUNS, CONCURRENCY, async (run) => {
        const target = await backend.fresh();
        try {
          const acked = await writeUntilKilled(target.arg);
          await target.settle();
          return await checkReload(target, acked);
        } catch (error) {
          throw new Error(`run ${run} on ${target.arg}: ${String(error)}`, { cause: error });
        }
      });

      const snapshotted = outcomes.filter((o) => o.snapshotSeq > 0).length;
      assert.ok(snapshotted >= RUNS * 0.9, `most runs compacted before the kill (${snapshotted}/${RUNS})`);
      // With a compaction every COMPACT_EVERY ops, the ops left after the snapshot tell
      // where the kill landed: 0 = just after a compaction, COMPACT_EVERY = just before
      // one or inside it. Random kills must have hit every phase.
      const phases = new Set(outcomes.map((o) => o.opsAfterSnapshot));
      for (let left = 0; left <= COMPACT_EVERY; left++) {
        assert.ok(
          phases.has(left),
          `some kill left ${left} ops after the snapshot (saw ${[...phases].join(", ")})`,
        );
      }
    });
  });
}

crashDuringCompaction({
  name: "SQLite",
  fresh: () => {
    const path = join(tempDir("opstream-compaction-"), "crash.sqlite");
    return Promise.resolve({
      arg: `sqlite:${path}`,
      open: () => Promise.resolve(new SqliteDocumentStore({ path })),
      // The file is all there is: once the process is gone, so is every write of it.
      settle: () => Promise.resolve(),
    });
  },
});

// One server for the whole mocha run (stopped by a root hook); each run gets a fresh schema.
after(() => stopSharedPostgres());

crashDuringCompaction({
  name: "Postgres",
  fresh: async () => {
    const { url } = await sharedPostgres();
    const schema = `crash_${randomBytes(6).toString("hex")}`;
    // The child's connections carry their own application_name (a connection-string
    // parameter overrides the store's), so the spec can see when they are gone.
    const app = `opstream-${schema}`;
    const childUrl = new URL(url);
    childUrl.searchParams.set("application_name", app);
    return {
      arg: `postgres:${childUrl.href}#${schema}`,
      open: () => Promise.resolve(new PostgresDocumentStore({ connectionString: url, schema })),
      // A killed client's backend may still be committing what it was sent (a COMMIT
      // whose answer never arrived): the state to check is the one after its backends
      // have finished, committed or rolled back, and exited.
      settle: async () => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await eventually(async () => {
            const { rows } = await client.query<{ n: number }>(
              "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1",
              [app],
            );
            assert.equal(rows[0]?.n, 0, "the killed child's backends have exited");
          }, 10_000);
        } finally {
          await client.end();
        }
      },
    };
  },
});
