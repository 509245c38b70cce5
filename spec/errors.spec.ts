import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import * as api from "../src/index.js";

describe("error catalogue", () => {
  it("documents every error code in README.md and exports the catalogue", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    for (const code of Object.values(api.ErrorCodes))
      assert.ok(readme.includes(`\`${code}\``), `${code} is documented`);
    const documented = [...readme.matchAll(/`(OPS_ERR_[A-Z_]+)`/g)].map((m) => m[1]);
    for (const code of documented)
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
