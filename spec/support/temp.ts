import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made: string[] = [];

/** A fresh temporary folder, removed when the mocha run ends. */
export function tempDir(prefix = "opstream-spec-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

process.once("exit", () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});
