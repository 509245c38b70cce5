// The Tiptap sample: a rich-text editor (Tiptap's StarterKit) bound to a shared
// Y.XmlFragment, synced through opstream with the provider the query string picks:
//
//   tiptap.html?doc=<name>&provider=hocuspocus|y-websocket&name=<user>[&token=<t>]
//
// Both providers edit the same fragment of the same document, so a page on
// @hocuspocus/provider and one on y-websocket's WebsocketProvider edit together.
import { Editor } from "@tiptap/core";
import { Collaboration } from "@tiptap/extension-collaboration";
import { CollaborationCaret } from "@tiptap/extension-collaboration-caret";
import { StarterKit } from "@tiptap/starter-kit";
import * as Y from "yjs";
import { element, historyElement } from "./dom.js";
import { mountHistoryPanel } from "./history-panel.js";
import { createHocuspocusProvider } from "./hocuspocus-provider.js";
import { showPresence } from "./presence.js";
import {
  PROVIDER_LABELS,
  providerKind,
  serverLocation,
  type ProviderKind,
  type SampleProvider,
} from "./providers.js";
import { showStatus } from "./status.js";
import { makeUser } from "./user.js";
import { createYWebsocketProvider } from "./y-websocket-provider.js";

/**
 * The shared type the editors edit. Tiptap's Collaboration extension uses
 * `doc.getXmlFragment("default")` unless told otherwise, so any Tiptap client
 * with default options edits the same content as this page.
 */
export const TIPTAP_FIELD = "default";

/** What the Tiptap page exposes for end-to-end specs and for poking at in the devtools. */
export interface OpStreamTiptapSample {
  doc: Y.Doc;
  fragment: Y.XmlFragment;
  kind: ProviderKind;
  provider: SampleProvider["provider"];
  /** Status, connect() and disconnect() the same way for either provider. */
  connection: SampleProvider;
  editor: Editor;
}

declare global {
  interface Window {
    opstreamTiptap?: OpStreamTiptapSample;
  }
}

const params = new URLSearchParams(location.search);
const docName = params.get("doc")?.trim() || "welcome-tiptap";
const kind = providerKind(params.get("provider"), "hocuspocus");
const server = serverLocation(params);
const token = params.get("token") ?? undefined;
const user = makeUser(params.get("name"));

const doc = new Y.Doc();
const fragment = doc.getXmlFragment(TIPTAP_FIELD);
const connection =
  kind === "hocuspocus"
    ? createHocuspocusProvider(docName, doc, server, token)
    : createYWebsocketProvider(docName, doc, server, token);

element("doc-name").textContent = docName;
element("provider-name").textContent = PROVIDER_LABELS[kind];
element("provider-name").title = connection.url;
document.title = `${docName} · Tiptap · opstream`;
linkOtherProvider(element("switch-provider"), kind);
showStatus(element("status"), connection);
showPresence(element("peers"), connection.awareness);

const editor = new Editor({
  element: element("editor"),
  extensions: [
    // Collaboration brings its own undo (only this user's changes); StarterKit's
    // would undo other people's edits too.
    StarterKit.configure({ undoRedo: false }),
    Collaboration.configure({ fragment }),
    // Publishes `user` in awareness (the presence list reads it too) and draws
    // the other users' carets and selections.
    CollaborationCaret.configure({ provider: connection.provider, user }),
  ],
  editorProps: { attributes: { "aria-label": "Document" } },
});

mountHistoryPanel({ container: historyElement(), docName, server, token, doc, root: TIPTAP_FIELD });
connection.connect();
window.opstreamTiptap = { doc, fragment, kind, provider: connection.provider, connection, editor };

/** Points `link` at this document and server through the other provider, for a second user. */
function linkOtherProvider(link: HTMLElement, current: ProviderKind): void {
  if (!(link instanceof HTMLAnchorElement)) throw new Error("#switch-provider must be a link");
  const other: ProviderKind = current === "hocuspocus" ? "y-websocket" : "hocuspocus";
  const query = new URLSearchParams(params);
  query.set("doc", docName);
  query.set("provider", other);
  query.delete("name"); // whoever opens it gets a name of their own
  link.href = `?${query.toString()}`;
  link.textContent = `the same document on ${PROVIDER_LABELS[other]}`;
}
