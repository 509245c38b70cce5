// Bundles the sample pages (samples/editor/src) into samples/editor/public:
// bundle.js for the CodeMirror page (index.html), tiptap.js for the Tiptap page.
import { build } from "esbuild";

await build({
  entryPoints: {
    bundle: "samples/editor/src/main.ts",
    tiptap: "samples/editor/src/tiptap.ts",
  },
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  outdir: "samples/editor/public",
  logLevel: "warning",
});
