import { fileURLToPath } from "node:url";

/**
 * The `opstream` command as the package ships it (its `bin`): the bundled CLI that
 * `npm run build` writes (scripts/bundle-cli.mjs). Specs run this file, not the
 * unbundled dist/cli.js, so they test what users run.
 */
export const CLI = fileURLToPath(new URL("../../dist/opstream-cli.js", import.meta.url));
