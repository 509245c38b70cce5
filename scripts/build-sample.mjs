// Bundles the sample editor (samples/editor/src) into samples/editor/public/bundle.js.
import { build } from "esbuild";

await build({
  entryPoints: ["samples/editor/src/main.ts"],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  outfile: "samples/editor/public/bundle.js",
  logLevel: "warning",
});
