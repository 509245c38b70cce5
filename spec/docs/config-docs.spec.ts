import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { builderCalls, docsFiles } from "../../scripts/config-docs.js";

describe("configuration docs (scripts/config-docs.ts)", () => {
  it("every generated table in docs/ is what the option declarations and CLI_FLAGS give", async () => {
    // docsFiles() also throws when a @default disagrees with the *_DEFAULTS object
    // the code reads, or an option has no JSDoc: the message says which.
    const files = await docsFiles();
    assert.ok(files.length > 0, "docs/ has generated tables");
    for (const file of files) {
      assert.deepEqual(
        file.stale,
        [],
        `${file.path}: the table(s) ${file.stale.join(", ")} differ from the declarations: run npm run docs:config`,
      );
    }
  });

  it("docs/configuration.md's builder table names every public call of OpStreamBuilder, and no other", () => {
    const text = readFileSync(new URL("../../docs/configuration.md", import.meta.url), "utf8");
    const section = text.split(/^## /m).find((part) => part.startsWith("Builder\n"));
    assert.ok(section, 'docs/configuration.md has a "## Builder" section');
    const documented = [...section.matchAll(/^\| `(\w+)[(<]/gm)].map((match) => match[1]!);
    assert.deepEqual(
      [...documented].sort(),
      builderCalls().sort(),
      "add a row for each new builder call (and remove rows of calls that are gone)",
    );
  });
});
