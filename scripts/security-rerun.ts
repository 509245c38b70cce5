// Reruns the security review's probes against `opstream serve` as a user starts
// it (defaults, plus --jwt-secret and --management-token), and prints what each
// one got. The specs in spec/security/ assert the same behaviour; this shows it
// on the real CLI, with the review's sizes (4 MiB keys, 800 joins, 40 MiB).
//
//   npm run build && npx tsx scripts/security-rerun.ts
//
// The server's RSS is read from /proc/<pid>/status (Linux), as the review did:
// no forced garbage collection.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { SignJWT } from "jose";
import * as encoding from "lib0/encoding";
import WebSocket from "ws";
import * as Y from "yjs";

const SECRET = "security-rerun-secret-of-at-least-32-bytes";
const MANAGEMENT = "security-rerun-management-token";
const MiB = 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), "opstream-rerun-"));
const child = spawn(
  process.execPath,
  [
    "dist/opstream-cli.js",
    "serve",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--storage",
    join(dir, "rerun.sqlite"),
    "--jwt-secret",
    SECRET,
    "--management-token",
    MANAGEMENT,
    "--no-sample",
  ],
  { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, OPSTREAM_LOG_LEVEL: "info" } },
);
// However this script ends (a closed stdout pipe included), the server goes with it.
process.once("exit", () => child.kill("SIGKILL"));
const port = await new Promise<number>((resolve, reject) => {
  child.once("exit", (code) => reject(new Error(`opstream serve exited with ${code}`)));
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (!line.startsWith("{")) return;
    const entry = JSON.parse(line) as { msg?: string; port?: number };
    if (entry.msg === "opstream listening" && entry.port) resolve(entry.port);
  });
});
const http = `http://127.0.0.1:${port}`;
const ws = `ws://127.0.0.1:${port}`;
const results: [string, string][] = [];
const report = (probe: string, outcome: string): void => {
  results.push([probe, outcome]);
  process.stdout.write(`${probe}: ${outcome}\n`);
};

const token = (scope: string): Promise<string> =>
  new SignJWT({ scope, sub: "rerun" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(SECRET));

function rssMB(): number {
  const line = readFileSync(`/proc/${child.pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return Number(line?.[1] ?? 0) / 1024;
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n"))
    if (line.startsWith(`${name}{`) && line.includes(labels)) sum += Number(line.split(" ").at(-1));
  return sum;
}

function hocuspocusFrame(key: string, write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, key);
  write(encoder);
  return encoding.toUint8Array(encoder);
}

const authFrame = (key: string, jwt: string): Uint8Array =>
  hocuspocusFrame(key, (e) => {
    encoding.writeVarUint(e, 2);
    encoding.writeVarUint(e, 0);
    encoding.writeVarString(e, jwt);
  });

function open(url: string, protocols: string[] = []): Promise<WebSocket | number> {
  const socket = new WebSocket(url, protocols);
  return new Promise((resolve) => {
    socket.once("open", () => resolve(socket));
    socket.once("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0));
    socket.once("error", () => resolve(0));
  });
}

async function opened(url: string, protocols: string[] = []): Promise<WebSocket> {
  const socket = await open(url, protocols);
  if (typeof socket === "number") throw new Error(`upgrade to ${url} refused with ${socket}`);
  return socket;
}

/** A y-websocket frame: sync (0) with `step` and bytes, or awareness (1). */
function yFrame(type: 0 | 1, step: number | undefined, bytes: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, type);
  if (step !== undefined) encoding.writeVarUint(encoder, step);
  encoding.writeVarUint8Array(encoder, bytes);
  return encoding.toUint8Array(encoder);
}

try {
  // 1. Denied Auth frames with 4 MiB routing keys, no credentials: 10 to warm up
  // the allocator's pools (a node that served one large frame has them), then 100.
  const attack = async (count: number): Promise<number> => {
    let closes = 0;
    for (let i = 0; i < count; i++) {
      const socket = await opened(`${ws}/hocuspocus`);
      const closed = once(socket, "close");
      socket.send(authFrame(`${i}-`.padEnd(4 * MiB, "k"), ""));
      await Promise.race([closed, once(socket, "message")]);
      if (socket.readyState !== WebSocket.OPEN) closes += 1;
      socket.terminate();
    }
    return closes;
  };
  await attack(10);
  const before = rssMB();
  const closes = await attack(100);
  const after = rssMB();
  await new Promise((resolve) => setTimeout(resolve, 5000));
  report(
    "100 denied 4 MiB routing keys",
    `RSS ${before.toFixed(1)} -> ${after.toFixed(1)} MB (${after >= before ? "+" : ""}${(after - before).toFixed(1)}), ${rssMB().toFixed(1)} MB after 5 s idle; the server closed ${closes} of 100 sockets (1007, key too long)`,
  );

  // 2. The 0.1 read scope, and the new one, against documents named to confuse them.
  const oldRead = await token("opstream:foo:read");
  const newRead = await token("opstream.read:foo");
  const statuses: string[] = [];
  for (const [jwt, doc] of [
    [oldRead, "foo:read"],
    [oldRead, "foo"],
    [newRead, "foo:read"],
    [newRead, "read:foo"],
  ] as const) {
    const outcome = await open(`${ws}/${encodeURIComponent(doc)}`, ["opstream", jwt]);
    statuses.push(`${doc}: ${typeof outcome === "number" ? outcome : "opened"}`);
    if (typeof outcome !== "number") outcome.terminate();
  }
  report("read-only scopes as write grants", statuses.join(", "));

  // 3. 800 read-only joins of documents that do not exist, on one socket.
  const reader = await opened(`${ws}/hocuspocus`);
  const readAll = await token("opstream.read:*");
  const denied = new Map<string, number>();
  let answers = 0;
  reader.on("message", (data: Buffer) => {
    answers += 1;
    const reason = data.toString("latin1").match(/(document-not-found|too-many-documents)/)?.[1];
    if (reason) denied.set(reason, (denied.get(reason) ?? 0) + 1);
  });
  for (let i = 0; i < 800; i++) reader.send(authFrame(`ghost-${i}`, readAll));
  const deadline = Date.now() + 30_000;
  while (answers < 800 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  const listed = (await (
    await fetch(`${http}/api/documents`, { headers: { authorization: `Bearer ${MANAGEMENT}` } })
  ).json()) as { documents?: unknown[] };
  report(
    "800 read-only joins",
    `${answers} answers (${[...denied].map(([r, n]) => `${n} ${r}`).join(", ")}); storage lists ${listed.documents?.length ?? "?"} documents`,
  );
  reader.terminate();

  // 4. A reader takes over a writer's awareness id.
  const writeAll = await token("opstream.write:*");
  const victimDoc = new Y.Doc();
  victimDoc.getText("text").insert(0, "hello");
  const victim = await opened(`${ws}/presence`, ["opstream", writeAll]);
  victim.send(yFrame(0, 2, Y.encodeStateAsUpdate(victimDoc)));
  const presence = (clientId: number, clock: number, name: string): Uint8Array => {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 1);
    encoding.writeVarUint(encoder, clientId);
    encoding.writeVarUint(encoder, clock);
    encoding.writeVarString(encoder, JSON.stringify({ user: { name } }));
    return encoding.toUint8Array(encoder);
  };
  victim.send(yFrame(1, undefined, presence(victimDoc.clientID, 1, "victim")));
  const spoofer = await opened(`${ws}/presence`, ["opstream", readAll]);
  await once(spoofer, "message");
  const spoofedBefore = await metric("opstream_awareness_refused_total", 'reason="foreign-client"');
  spoofer.send(yFrame(1, undefined, presence(victimDoc.clientID, 1000, "spoofer")));
  let spoofCounted = 0;
  for (let i = 0; i < 50 && spoofCounted === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    spoofCounted =
      (await metric("opstream_awareness_refused_total", 'reason="foreign-client"')) - spoofedBefore;
  }
  report("spoofed awareness id", `refused and counted: foreign-client +${spoofCounted}`);
  spoofer.terminate();

  // 5. 40 updates of 1 MiB whose dependencies never arrive.
  const orphan = (size: number): Uint8Array => {
    const doc = new Y.Doc();
    const text = doc.getText("text");
    text.insert(0, "never sent");
    const sv = Y.encodeStateVector(doc);
    text.insert(text.length, "x".repeat(size));
    return Y.encodeStateAsUpdate(doc, sv);
  };
  const writer = await opened(`${ws}/pending`, ["opstream", writeAll]);
  const closed = once(writer, "close") as Promise<[number, Buffer]>;
  let sent = 0;
  for (; sent < 40 && writer.readyState === WebSocket.OPEN; sent++) {
    writer.send(yFrame(0, 2, orphan(MiB)));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const [code] = await closed;
  report("40 x 1 MiB pending updates", `closed with ${code} after ${sent} sent (budget 4 MiB)`);
  victim.terminate();

  // 6. /healthz?doc without and with the management credential.
  const anonymous = (await (await fetch(`${http}/healthz?doc=presence`)).json()) as Record<string, unknown>;
  const operator = (await (
    await fetch(`${http}/healthz?doc=presence`, { headers: { authorization: `Bearer ${MANAGEMENT}` } })
  ).json()) as Record<string, unknown>;
  report(
    "/healthz?doc",
    `without credential: owns ${"owns" in anonymous ? String(anonymous.owns) : "absent"}; with: owns ${String(operator.owns)}`,
  );

  // 7. A malformed percent-escape in a management URL.
  const malformed = await fetch(`${http}/api/documents/%E0%A4%A`, {
    headers: { authorization: `Bearer ${MANAGEMENT}` },
  });
  report(
    "malformed management URL",
    `${malformed.status} ${malformed.headers.get("content-type")}: ${await malformed.text()}`,
  );
} finally {
  child.kill("SIGTERM");
  await once(child, "exit");
  rmSync(dir, { recursive: true, force: true });
}
