// The sample editor: CodeMirror 6 bound to a shared Y.Text, synced through an
// opstream server with the stock y-websocket provider.
import { EditorView } from "@codemirror/view";
import { yCollab } from "y-codemirror.next";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { showPresence } from "./presence.js";
import { plainTextSetup } from "./setup.js";
import { showStatus } from "./status.js";
import { makeUser } from "./user.js";

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

function element(id: string): HTMLElement {
  const found = document.getElementById(id);
  if (!found) throw new Error(`index.html has no #${id}`);
  return found;
}

const params = new URLSearchParams(location.search);
const docName = params.get("doc")?.trim() || "welcome";
// `?prefix=/collab` when the server runs with `--prefix /collab`.
const prefix = (params.get("prefix") ?? "").replace(/\/+$/, "");
const serverUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${prefix}`;

const doc = new Y.Doc();
const text = doc.getText("text");
// disableBc: tabs of one browser would otherwise sync over BroadcastChannel and
// hide whether the server is doing its job. connect: false so the status
// listener sees the first "connecting".
const provider = new WebsocketProvider(serverUrl, encodeURIComponent(docName), doc, {
  connect: false,
  disableBc: true,
});
provider.awareness.setLocalStateField("user", makeUser(params.get("name")));

element("doc-name").textContent = docName;
document.title = `${docName} · opstream`;
showStatus(element("status"), provider);
showPresence(element("peers"), provider.awareness);

const view = new EditorView({
  doc: text.toJSON(),
  extensions: [plainTextSetup(), yCollab(text, provider.awareness)],
  parent: element("editor"),
});

provider.connect();
window.opstreamSample = { doc, provider, text, view };
