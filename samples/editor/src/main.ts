// The sample editor: CodeMirror 6 bound to a shared Y.Text, synced through an
// opstream server with the stock y-websocket provider.
import { EditorView } from "@codemirror/view";
import { yCollab } from "y-codemirror.next";
import type { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { element, historyElement } from "./dom.js";
import { mountHistoryPanel } from "./history-panel.js";
import { showPresence } from "./presence.js";
import { serverLocation } from "./providers.js";
import { plainTextSetup } from "./setup.js";
import { showStatus } from "./status.js";
import { makeUser } from "./user.js";
import { createYWebsocketProvider } from "./y-websocket-provider.js";

/** What the page exposes for end-to-end specs and for poking at in the devtools. */
export interface OpStreamSample {
  doc: Y.Doc;
  provider: WebsocketProvider;
  text: Y.Text;
  view: EditorView;
}

declare global {
  interface Window {
    opstreamSample?: OpStreamSample;
  }
}

const params = new URLSearchParams(location.search);
const docName = params.get("doc")?.trim() || "welcome";

const doc = new Y.Doc();
const text = doc.getText("text");
const server = serverLocation(params);
const token = params.get("token") ?? undefined;
const connection = createYWebsocketProvider(docName, doc, server, token);
const provider = connection.provider;
provider.awareness.setLocalStateField("user", makeUser(params.get("name")));

element("doc-name").textContent = docName;
document.title = `${docName} · opstream`;
showStatus(element("status"), connection);
showPresence(element("peers"), provider.awareness);

const view = new EditorView({
  doc: text.toJSON(),
  extensions: [plainTextSetup(), yCollab(text, provider.awareness)],
  parent: element("editor"),
});

mountHistoryPanel({ container: historyElement(), docName, server, token, doc, root: "text" });
provider.connect();
window.opstreamSample = { doc, provider, text, view };
