/**
 * Bench scripts that run as their own processes (peer servers, load workers) are
 * bundled with esbuild and run by plain `node`, not through tsx: a server measured
 * for CPU and RSS must not carry a TypeScript loader that opstream (run from dist/)
 * does not. Packages stay external and resolve from the repository's node_modules,
 * which is why the bundles are written under node_modules/.cache.
 */
import { build } from "esbuild";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";

const OUT_DIR = fileURLToPath(new URL("../../node_modules/.cache/opstream-bench/", import.meta.url));
const built = new Map<string, Promise<string>>();

/** Bundles `entry` (a bench .ts file) once per run; resolves with the .mjs path to give `node`. */
export function bundled(entry: URL): Promise<string> {
  const source = fileURLToPath(entry);
  let output = built.get(source);
  if (!output) {
    const outfile = `${OUT_DIR}${basename(source, ".ts")}.mjs`;
    output = build({
      entryPoints: [source],
      outfile,
      bundle: true,
      packages: "external",
      platform: "node",
      format: "esm",
      target: "node20",
      logLevel: "warning",
    }).then(() => outfile);
    built.set(source, output);
  }
  return output;
}
