import * as Y from "yjs";
import type { DocumentSession } from "../../src/engine/document-session.js";

/**
 * The text `name` of a session's durable document, read under its apply lock
 * through the session's own API; undefined when there is no session.
 */
export async function sessionText(
  session: DocumentSession | undefined,
  name = "text",
): Promise<string | undefined> {
  if (!session) return undefined;
  const doc = new Y.Doc();
  try {
    Y.applyUpdate(doc, (await session.state()).bytes);
    return doc.getText(name).toString();
  } finally {
    doc.destroy();
  }
}
