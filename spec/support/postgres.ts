import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { accessSync, chownSync, constants, readFileSync, readdirSync } from "node:fs";
import { delimiter, join } from "node:path";
import pg from "pg";
import { eventually } from "./eventually.js";
import { killOnExit } from "./exit.js";
import { tempDir } from "./temp.js";
import { freePort } from "./ports.js";

/** A real Postgres server on a free local port, with a fresh data folder and trust auth. */
export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  /** Stops the server (fast shutdown: open connections are closed) and resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

const MISSING = "Postgres (initdb, postgres) is missing: run `apt-get install -y postgresql`";

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch (error) {
    // Not usable here; keep looking (the final error names the fix).
    if (!["ENOENT", "ENOTDIR", "EACCES"].includes((error as NodeJS.ErrnoException).code ?? "")) throw error;
    return false;
  }
}

/**
 * The folder holding both `initdb` and `postgres`: on PATH, else Debian's highest
 * `/usr/lib/postgresql/<version>/bin`. Throws the install command when there is none.
 */
export function findPostgresBinaries(
  path = process.env.PATH ?? "",
  debianRoot = "/usr/lib/postgresql",
): string {
  const onPath = path.split(delimiter).filter(Boolean);
  let versions: string[] = [];
  try {
    versions = readdirSync(debianRoot).sort((a, b) => Number(b) - Number(a));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const candidates = [...onPath, ...versions.map((version) => join(debianRoot, version, "bin"))];
  const dir = candidates.find((d) => executable(join(d, "initdb")) && executable(join(d, "postgres")));
  if (!dir) throw new Error(MISSING);
  return dir;
}

/** initdb and postgres refuse to run as root: then they run as Debian's `postgres` system user. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((entry) => entry.startsWith("postgres:"));
  const [, , uid, gid] = line?.split(":") ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error(`Running as root needs the "postgres" system user (it comes with Postgres): ${MISSING}`);
  }
  return { uid: Number(uid), gid: Number(gid) };
}

async function selectOne(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
  } finally {
    await client.end();
  }
}

/**
 * initdb into a fresh temp folder, then `postgres -D <dir> -p <free port> -k <dir>`
 * listening on 127.0.0.1 only; resolves once it answers `SELECT 1`. Specs share one
 * server ({@link sharedPostgres}) and isolate themselves with their own schema.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = findPostgresBinaries();
  const user = serverUser();
  const dir = tempDir("opstream-pg-");
  if (user) chownSync(dir, user.uid, user.gid);
  const spawnOptions: SpawnOptions = { cwd: dir, stdio: ["ignore", "pipe", "pipe"], ...user };
  let output = "";
  const keep = (chunk: Buffer): void => void (output = (output + chunk.toString()).slice(-4000));

  // --no-sync: the initial files need no fsync in a throwaway cluster; the server itself runs with fsync=on.
  const initdb = spawn(
    join(bin, "initdb"),
    ["-D", dir, "--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C", "--no-sync"],
    spawnOptions,
  );
  initdb.stdout?.on("data", keep);
  initdb.stderr?.on("data", keep);
  const [code] = (await once(initdb, "exit")) as [number | null];
  if (code !== 0) throw new Error(`initdb exited with ${code}: ${output}`);

  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  output = "";
  const child: ChildProcess = spawn(
    join(bin, "postgres"),
    ["-D", dir, "-p", String(port), "-k", dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on"],
    spawnOptions,
  );
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = once(child, "exit");
  const guard = killOnExit(child);

  const stop = async (): Promise<void> => {
    guard.release();
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGINT"); // fast shutdown; SIGTERM would wait for every client to disconnect
    await exited;
  };

  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`postgres exited with ${child.exitCode}: ${output}`);
      await selectOne(url);
    }, 20_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, port, stop };
}

let shared: Promise<PostgresServer> | undefined;

/** One server per mocha run, started on first use; stop it with {@link stopSharedPostgres} in a root `after` hook. */
export function sharedPostgres(): Promise<PostgresServer> {
  shared ??= startPostgres();
  return shared;
}

/** Stops the shared server if it was started. */
export async function stopSharedPostgres(): Promise<void> {
  const started = shared;
  shared = undefined;
  // A server that failed to start has already failed the spec that asked for it.
  const server = await started?.catch(() => undefined);
  await server?.stop();
}

/**
 * Creates a fresh database named `<prefix>_<random>` on `server` and returns its
 * URL: each cluster spec (and benchmark) gets tables of its own.
 */
export async function freshDatabase(server: PostgresServer, prefix: string): Promise<string> {
  const database = `${prefix}_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  const url = new URL(server.url);
  url.pathname = `/${database}`;
  return url.toString();
}
