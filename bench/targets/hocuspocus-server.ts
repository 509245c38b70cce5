/**
 * `@hocuspocus/server` as a benchmark target, run in its own process (bench/targets/peers.ts
 * starts it): stock configuration, no persistence, or with `--redis <url>` the stock
 * `@hocuspocus/extension-redis` for the 2-node targets. Only the cold-load scenario (S4)
 * passes `--persist-dir`: documents are then kept as one Yjs state file each through
 * the onLoadDocument/onStoreDocument hooks (stored on Hocuspocus's own debounce, and
 * flushed on SIGTERM), since a server without storage has nothing to load.
 *
 * Prints `{"listening":<port>}` once it accepts connections.
 */
import { Redis } from "@hocuspocus/extension-redis";
import { Server, type Extension } from "@hocuspocus/server";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as Y from "yjs";

const { values } = parseArgs({
  options: { redis: { type: "string" }, "persist-dir": { type: "string" } },
});

function filePersistence(dir: string): Extension {
  const file = (name: string): string => join(dir, `${encodeURIComponent(name)}.ystate`);
  return {
    onLoadDocument({ documentName, document }) {
      const path = file(documentName);
      if (existsSync(path)) Y.applyUpdate(document, readFileSync(path));
      return Promise.resolve();
    },
    onStoreDocument({ documentName, document }) {
      // Synchronous, so that flushPendingStores() during destroy() has written it before the exit.
      writeFileSync(file(documentName), Y.encodeStateAsUpdate(document));
      return Promise.resolve();
    },
  };
}

const extensions: Extension[] = [];
if (values.redis !== undefined) {
  const url = new URL(values.redis);
  extensions.push(new Redis({ host: url.hostname, port: Number(url.port) }));
}
if (values["persist-dir"] !== undefined) extensions.push(filePersistence(values["persist-dir"]));

const server = new Server({ port: 0, address: "127.0.0.1", quiet: true, stopOnSignals: false, extensions });
await server.listen();
process.stdout.write(`${JSON.stringify({ listening: server.address.port })}\n`);

process.once("SIGTERM", () => {
  server.destroy().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`hocuspocus destroy failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
});
