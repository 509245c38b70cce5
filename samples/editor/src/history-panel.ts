// The history panel of the sample pages: save a named version, list the versions
// (newest first), show one with what changed since, and restore it. It talks to
// the server's `/api/history/:name/…` (see history-api.ts); a restore arrives in
// every open editor as ordinary Yjs ops, so the page itself does nothing for it.
import type * as Y from "yjs";
import { HistoryClient, HistoryError, type VersionInfo } from "./history-api.js";
import {
  previewText,
  renderDiff,
  textElement,
  versionLabel,
  versionQuote,
  versionTime,
} from "./history-render.js";
import type { ServerLocation } from "./providers.js";

export interface HistoryPanelOptions {
  /** The page's `<details id="history">`; the panel fills it after its `<summary>`. */
  container: HTMLDetailsElement;
  docName: string;
  /** Where the page's provider connects: the history endpoint is on the same server. */
  server: ServerLocation;
  /** The page's `?token=`, sent as `Authorization: Bearer`. */
  token: string | undefined;
  /** The page's document: the panel asks for versions once it holds something. */
  doc: Y.Doc;
  /** The root type the page edits ("text" for CodeMirror, "default" for Tiptap). */
  root: string;
  /** How often the list (and the selected version's diff, after edits) is refreshed. @default 5000 */
  refreshMs?: number;
}

/** Fills `options.container` with the history panel and keeps it current. */
export function mountHistoryPanel(options: HistoryPanelOptions): void {
  new HistoryPanel(options).start(options.refreshMs ?? 5000);
}

type Tone = "info" | "error";

class HistoryPanel {
  private readonly client: HistoryClient;
  private readonly container: HTMLDetailsElement;
  private readonly doc: Y.Doc;
  private readonly root: string;
  private readonly ui = panelElements();
  private versions: VersionInfo[] = [];
  private shownKey = "";
  private selected: number | undefined;
  /** Set once the list is not asked for any more: no access, or no history on the server. */
  private stopped = false;
  /** Whether a list has been received since the page opened. */
  private loaded = false;
  private listing: Promise<void> | undefined;
  private firstAsk: ReturnType<typeof setTimeout> | undefined;
  /** The document changed since the selected version's diff was fetched. */
  private stale = false;
  /** Drops answers about a version the user has since moved away from. */
  private detailTicket = 0;

  constructor(options: HistoryPanelOptions) {
    this.client = new HistoryClient(options.server.httpOrigin, options.docName, options.token);
    this.container = options.container;
    this.doc = options.doc;
    this.root = options.root;
  }

  start(refreshMs: number): void {
    const { form, versions, restore } = this.ui;
    this.container.append(form, this.ui.message, versions, this.ui.detail);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.save();
    });
    versions.addEventListener("click", (event) => {
      const item = (event.target as Element).closest<HTMLElement>("[data-version-id]");
      if (item) this.select(Number(item.dataset.versionId));
    });
    restore.addEventListener("click", () => void this.restore());
    this.container.addEventListener("toggle", () => this.refreshIfShown());
    document.addEventListener("visibilitychange", () => this.refreshIfShown());
    this.doc.on("update", () => {
      this.stale = true;
      // A new document has no versions (the server answers 404) until its first
      // edit is stored: ask shortly after the page first holds something.
      if (!this.loaded && this.firstAsk === undefined) {
        this.firstAsk = setTimeout(() => {
          this.firstAsk = undefined;
          this.refreshIfShown();
        }, 500);
      }
    });
    setInterval(() => this.tick(), refreshMs);
    this.renderList();
    this.refreshIfShown();
  }

  private tick(): void {
    if (!this.shown()) return;
    this.refreshIfShown();
    if (this.selected !== undefined && this.stale) void this.loadDetail(this.selected, true);
  }

  private shown(): boolean {
    return this.container.open && document.visibilityState === "visible";
  }

  private refreshIfShown(): void {
    // An empty document has never been stored, so the server has nothing to list.
    if (this.shown() && !this.stopped && this.doc.store.clients.size > 0) void this.refresh();
  }

  /** Fetches the list again (one request at a time). */
  private refresh(): Promise<void> {
    this.listing ??= this.client
      .list()
      .then((versions) => {
        this.loaded = true;
        this.versions = versions;
        if (this.message("list")) this.say("");
        if (this.selected !== undefined && !versions.some((v) => v.id === this.selected)) this.unselect();
        this.renderList();
      })
      .catch((error: unknown) => this.failed(error, "list"))
      .finally(() => (this.listing = undefined));
    return this.listing;
  }

  private async save(): Promise<void> {
    const { name, saveButton } = this.ui;
    saveButton.disabled = true;
    try {
      const version = await this.client.save(name.value.trim());
      name.value = "";
      this.say(`Saved ${versionQuote(version)}.`);
      await this.refresh();
    } catch (error) {
      this.failed(error, "save");
    } finally {
      saveButton.disabled = this.stopped;
    }
  }

  private async restore(): Promise<void> {
    const id = this.selected;
    if (id === undefined) return;
    const { restore } = this.ui;
    restore.disabled = true;
    try {
      const result = await this.client.restore(id);
      this.say(`Restored ${versionQuote(result.restored)}. To undo, restore “Before restore”.`);
      await this.refresh();
      if (this.selected === id) await this.loadDetail(id, true);
    } catch (error) {
      this.failed(error, "restore");
    } finally {
      restore.disabled = false;
    }
  }

  private select(id: number): void {
    if (!this.versions.some((version) => version.id === id)) return;
    this.selected = id;
    this.markSelected();
    void this.loadDetail(id, false);
  }

  private unselect(): void {
    this.selected = undefined;
    this.detailTicket++;
    this.ui.detail.hidden = true;
  }

  /** Shows version `id`: its content, and what changed from it to now. `quiet` keeps the old view until the new one is in. */
  private async loadDetail(id: number, quiet: boolean): Promise<void> {
    const ticket = ++this.detailTicket;
    const { detail, title, preview, diff, restore } = this.ui;
    const version = this.versions.find((v) => v.id === id);
    this.stale = false;
    if (!quiet) {
      detail.hidden = false;
      title.textContent = version
        ? `${versionLabel(version, this.versions)} · ${versionTime(version.time)}`
        : `Version ${id}`;
      preview.replaceChildren(textElement("p", "history-note", "Loading…"));
      diff.replaceChildren();
      restore.disabled = true;
    }
    try {
      const [content, comparison] = await Promise.all([this.client.content(id), this.client.diffToNow(id)]);
      if (ticket !== this.detailTicket) return;
      const text = previewText(content.content[this.root]);
      preview.replaceChildren(
        text ? document.createTextNode(text) : textElement("p", "history-note", "(empty)"),
      );
      diff.replaceChildren(...renderDiff(comparison.types[this.root]));
      diff.dataset.fromSeq = String(comparison.fromSeq);
      diff.dataset.toSeq = String(comparison.toSeq);
      restore.disabled = false;
    } catch (error) {
      if (ticket !== this.detailTicket) return;
      preview.replaceChildren(textElement("p", "history-note", messageOf(error)));
      diff.replaceChildren();
    }
  }

  private renderList(): void {
    const key = this.versions.map((version) => version.id).join(",");
    if (key === this.shownKey && this.ui.versions.childElementCount > 0) return this.markSelected();
    this.shownKey = key;
    const items = this.versions.map((version) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "history-version";
      button.dataset.versionId = String(version.id);
      button.dataset.kind = version.kind;
      const time = textElement("time", "history-version-time", versionTime(version.time));
      time.setAttribute("datetime", new Date(version.time).toISOString());
      const label = versionLabel(version, this.versions);
      button.append(textElement("span", "history-version-label", label), time);
      button.title = `${label} (version ${version.id}${version.name ? `: ${version.name}` : ""})`;
      const item = document.createElement("li");
      item.append(button);
      return item;
    });
    if (items.length === 0)
      items.push(textElement("li", "history-empty", "No versions yet.") as HTMLLIElement);
    this.ui.versions.replaceChildren(...items);
    this.markSelected();
  }

  private markSelected(): void {
    this.ui.versions.querySelectorAll<HTMLElement>("[data-version-id]").forEach((button) => {
      button.setAttribute("aria-pressed", String(Number(button.dataset.versionId) === this.selected));
    });
  }

  /** Shows why `what` failed, as a short message (never on the console). */
  private failed(error: unknown, what: "list" | "save" | "restore"): void {
    if (error instanceof HistoryError && error.documentMissing) {
      this.loaded = false; // asked again after the next edit
      if (what !== "list")
        this.say("Nothing is stored for this document yet: type something first.", "error");
      return;
    }
    if (error instanceof HistoryError && what === "list" && (error.status === 403 || error.historyOff)) {
      this.stopped = true; // neither changes while the page is open
      this.ui.versions.hidden = true;
      this.ui.name.disabled = true;
      this.ui.saveButton.disabled = true;
    }
    this.say(messageOf(error), "error", what);
  }

  /** Whether the message shown came from `what`. */
  private message(what: string): boolean {
    return this.ui.message.dataset.source === what;
  }

  private say(text: string, tone: Tone = "info", source = ""): void {
    const { message } = this.ui;
    message.textContent = text;
    message.hidden = text === "";
    message.dataset.tone = tone;
    message.dataset.source = source;
  }
}

function messageOf(error: unknown): string {
  if (!(error instanceof HistoryError)) return "Something went wrong.";
  if (error.historyOff) return "This server keeps no history.";
  if (error.status === 403) return `Not allowed: ${error.message}`;
  return error.message;
}

/** The panel's elements, with the ids specs and styles find them by. */
function panelElements() {
  const form = document.createElement("form");
  form.id = "history-save";
  form.className = "history-save";
  const name = document.createElement("input");
  Object.assign(name, { id: "history-name", name: "name", placeholder: "Version name", maxLength: 200 });
  name.autocomplete = "off";
  name.setAttribute("aria-label", "Version name");
  const saveButton = textElement("button", "", "Save version") as HTMLButtonElement;
  saveButton.type = "submit";
  form.append(name, saveButton);

  const message = textElement("p", "history-message", "");
  message.id = "history-message";
  message.setAttribute("role", "status");
  message.hidden = true;

  const versions = document.createElement("ol");
  versions.id = "history-versions";
  versions.className = "history-versions";
  versions.setAttribute("aria-label", "Versions");

  const detail = document.createElement("section");
  detail.id = "history-detail";
  detail.className = "history-detail";
  detail.hidden = true;
  const title = textElement("h3", "", "");
  const preview = textElement("div", "history-text", "");
  preview.id = "history-preview";
  const diff = textElement("div", "history-text history-diff", "");
  diff.id = "history-diff";
  const restore = textElement("button", "history-restore", "Restore this version") as HTMLButtonElement;
  restore.id = "history-restore";
  restore.type = "button";
  detail.append(
    title,
    textElement("h4", "", "Content of this version"),
    preview,
    textElement("h4", "", "Changes since, up to now"),
    diff,
    restore,
  );
  return { form, name, saveButton, message, versions, detail, title, preview, diff, restore };
}
