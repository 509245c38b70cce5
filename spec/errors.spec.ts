import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import * as api from "../src/index.js";

describe("error catalogue", () => {
  it("documents every error code in docs/errors.md and exports the catalogue", () => {
    const page = readFileSync(new URL("../docs/errors.md", import.meta.url), "utf8");
    // A code counts as documented when it has its own row in the table.
    const rows = new Set([...page.matchAll(/^\| `(OPS_ERR_[A-Z_]+)` +\|/gm)].map((m) => m[1]));
    for (const code of Object.values(api.ErrorCodes))
      assert.ok(rows.has(code), `${code} has a row in docs/errors.md`);
    const named = [...page.matchAll(/`(OPS_ERR_[A-Z_]+)`/g)].map((m) => m[1]);
    for (const code of named)
      assert.ok(Object.values(api.ErrorCodes).includes(code as api.ErrorCode), `${code} exists`);
  });

  it("documents every metric in OPERATIONS.md", async () => {
    const operations = readFileSync(new URL("../OPERATIONS.md", import.meta.url), "utf8");
    const metrics = await new api.OpStreamMetrics().registry.getMetricsAsJSON();
    for (const { name } of metrics) assert.ok(operations.includes(`| \`${name}\``), `${name} is documented`);
  });

  it("documents every close code in PROTOCOL.md", () => {
    const protocol = readFileSync(new URL("../PROTOCOL.md", import.meta.url), "utf8");
    for (const [name, code] of Object.entries(api.CloseCodes)) {
      assert.ok(
        protocol.includes(`| ${code} |`) && protocol.includes(name),
        `${name} (${code}) is documented`,
      );
    }
  });
});
