import * as Y from "yjs";
import type { Captured, ChangeRecorder } from "./batch.js";
import { SEED_ORIGIN } from "./origin.js";
import type { Seeder } from "./validation.js";

/**
 * Runs `seeder` on a brand-new document and returns what it wrote as one update
 * (null when it wrote nothing), for the session to append before anyone sees it.
 * Recording spans an async seeder's later transactions too.
 */
export async function runSeeder(
  docId: string,
  doc: Y.Doc,
  recorder: ChangeRecorder,
  seeder: Seeder,
): Promise<Uint8Array | null> {
  const updates: Captured[] = [];
  recorder.start(updates);
  try {
    await Promise.resolve(Y.transact(doc, () => seeder({ docId, doc }), SEED_ORIGIN));
  } finally {
    recorder.stop();
  }
  return updates.length > 0 ? Y.mergeUpdates(updates.map((c) => c.update)) : null;
}
