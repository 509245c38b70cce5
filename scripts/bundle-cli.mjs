// Bundles the CLI (dist/cli.js, after tsc) into dist/opstream-cli.js, the package's
// `opstream` bin, and the SQLite writer thread into dist/sqlite-writer.js, which the
// bundle's store finds next to itself: one file to read and compile instead of the
// ~460 modules of the server and its dependencies, whose resolution and loading
// took ~120 ms of each start (BENCHMARKS.md, "Start-up, 2026-12-05"). Drivers
// loaded only for some configurations, native addons and optional dependencies stay
// outside and load from node_modules as before.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

/** The files this script writes into dist/ (no src/ counterpart: prune-dist keeps them). */
export const BUNDLED_FILES = [
  "opstream-cli.js",
  "opstream-cli.js.map",
  "sqlite-writer.js",
  "sqlite-writer.js.map",
];

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await build({
    entryPoints: {
      "opstream-cli": "dist/cli.js",
      "sqlite-writer": "dist/storage/sqlite/sqlite-writer.js",
    },
    outdir: "dist",
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["better-sqlite3", "pg", "ioredis", "redlock", "pino-pretty", "bufferutil", "utf-8-validate"],
    // Bundled CommonJS modules (express and its dependencies) call require().
    banner: {
      js: "import { createRequire as __opstreamRequire } from 'node:module'; const require = __opstreamRequire(import.meta.url);",
    },
    // Stack traces keep every name; `node --enable-source-maps` maps them to src/.
    sourcemap: true,
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: "warning",
  });
}
