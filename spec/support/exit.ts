import type { ChildProcess } from "node:child_process";

const children = new Set<ChildProcess>();
let hooked = false;

/**
 * SIGKILLs `child` if the mocha process exits while it still runs (a failed or
 * interrupted run must not leave servers behind); `release` forgets it. One exit
 * listener serves every server the run starts, however many run at once.
 */
export function killOnExit(child: ChildProcess): { release(): void } {
  if (!hooked) {
    hooked = true;
    process.once("exit", () => {
      for (const running of children) running.kill("SIGKILL");
    });
  }
  children.add(child);
  return { release: () => void children.delete(child) };
}
