// Removes files from dist/ whose source in src/ no longer exists (run by prepack,
// after the build). tsc overwrites what it emits but never deletes, so a module
// renamed or removed in a working tree would otherwise ship in the package.
// Deleting dist/ before building would do the same, but leave a window without
// dist/ for anything running from it meanwhile (a server, a spec).
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { BUNDLED_FILES } from "./bundle-cli.mjs";

const EMITTED = [".d.ts.map", ".d.ts", ".js.map", ".js"];

/** The source file `dist/<path>` was built from: `src/<path>` with a .ts extension. */
function sourceOf(file) {
  const suffix = EMITTED.find((ending) => file.endsWith(ending));
  if (suffix === undefined) return undefined;
  return join("src", `${relative("dist", file).slice(0, -suffix.length)}.ts`);
}

function prune(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      prune(path);
      if (readdirSync(path).length === 0) rmSync(path, { recursive: true });
      continue;
    }
    // The bundles (scripts/bundle-cli.mjs) are built from dist/, not from one source.
    if (BUNDLED_FILES.includes(relative("dist", path))) continue;
    const source = sourceOf(path);
    if (source !== undefined && !existsSync(source)) {
      rmSync(path);
      process.stdout.write(`prune-dist: removed ${path} (no ${source})\n`);
    }
  }
}

if (existsSync("dist")) prune("dist");
