// How the history panel shows a version: its label, its content and what
// changed since it, for a text root (CodeMirror's Y.Text) or an XML one (Tiptap).
import type { DiffChange, DiffDeltaOp, TypeDiff } from "../../../src/index.js";
import type { VersionInfo } from "./history-api.js";

/**
 * "Named: v1", "Auto", "Before restore", "Restored: v1". A restore is named after
 * the version it brought back, found in `versions` when it is still listed (else
 * the server's name for it: that version's name, or "Version of <time>").
 */
export function versionLabel(version: VersionInfo, versions: readonly VersionInfo[] = []): string {
  switch (version.kind) {
    case "auto":
      return "Auto";
    case "named":
      return version.name ? `Named: ${version.name}` : "Named";
    case "before-restore":
      return "Before restore";
    case "restore": {
      const source = versions.find((other) => other.id === version.restoredFrom);
      return `Restored: ${source ? sourceName(source) : version.name || `version ${version.restoredFrom}`}`;
    }
    default:
      return version.name || String(version.kind);
  }
}

/** How a restore entry calls the version it brought back. */
function sourceName(source: VersionInfo): string {
  if (source.kind === "named" && source.name) return source.name;
  if (source.kind === "restore") return source.name;
  if (source.kind === "before-restore") return "before restore";
  return `${source.kind} of ${versionTime(source.time)}`;
}

/** A version as a message quotes it: “v1”, or "the version of 10:47:35". */
export function versionQuote(version: VersionInfo): string {
  if (version.kind === "named" && version.name) return `“${version.name}”`;
  return `the version of ${versionTime(version.time)}`;
}

/** The version's time in the browser's locale: the time alone today, with the date otherwise. */
export function versionTime(time: number): string {
  const date = new Date(time);
  const clock = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return date.toDateString() === new Date().toDateString()
    ? clock
    : `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${clock}`;
}

/** An element with `className` and text. */
export function textElement(tag: string, className: string, text: string): HTMLElement {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.textContent = text;
  return node;
}

/**
 * The root's content as plain text: a Y.Text root is already a string; an XML
 * root (the server sends its XML string) gives the text of each top-level node,
 * one per line; maps and arrays are shown as JSON.
 */
export function previewText(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") return JSON.stringify(value, null, 2);
  if (!value.startsWith("<")) return value;
  // Parsed as inert HTML (no script runs, nothing loads): only text is read from it.
  const body = new DOMParser().parseFromString(value, "text/html").body;
  return Array.from(body.children, (node) => node.textContent ?? "").join("\n");
}

/** What changed in one root since the version, ready for `#history-diff`. */
export function renderDiff(diff: TypeDiff | undefined): Node[] {
  if (!diff || diff.kind === "empty") return [note("Nothing here, then or now.")];
  if (diff.delta) return renderDelta(diff.delta);
  if (diff.kind === "xml") return renderChanges(diff.changes);
  const same = JSON.stringify(diff.before) === JSON.stringify(diff.after);
  if (same) return [note("No changes since this version.")];
  return [
    textElement("del", "removed block", JSON.stringify(diff.before, null, 2)),
    textElement("ins", "added block", JSON.stringify(diff.after, null, 2)),
  ];
}

type Mark = { type?: unknown; client?: unknown } | undefined;

function markOf(op: DiffDeltaOp): Mark {
  return op.attributes?.ychange as Mark;
}

/** The text now, with what was removed since kept in place: added text underlined, removed struck through. */
function renderDelta(delta: readonly DiffDeltaOp[]): Node[] {
  const nodes: Node[] = [];
  let changed = false;
  for (const op of delta) {
    const text = typeof op.insert === "string" ? op.insert : "\u{FFFC}";
    const mark = markOf(op);
    if (mark?.type === "added" || mark?.type === "removed") {
      changed = true;
      const node = textElement(mark.type === "added" ? "ins" : "del", mark.type, text);
      node.dataset.change = mark.type;
      node.title = `${mark.type === "added" ? "Added" : "Removed"} by client ${String(mark.client)}`;
      nodes.push(node);
    } else {
      nodes.push(document.createTextNode(text));
    }
  }
  if (!changed) nodes.unshift(note("No changes since this version."));
  return nodes;
}

/** An XML root's changed ranges, one per line: "+ text" or "− text" (an element shows as its tag). */
function renderChanges(changes: readonly DiffChange[]): Node[] {
  if (changes.length === 0) return [note("No changes since this version.")];
  const list = document.createElement("ul");
  list.className = "history-changes";
  for (const change of changes) {
    const item = document.createElement("li");
    item.dataset.change = change.type;
    const element = /^<([A-Za-z][\w-]*)>$/.exec(change.text)?.[1];
    const text =
      element === undefined
        ? change.text
        : change.type === "added"
          ? `(new ${element})`
          : `(${element} removed)`;
    item.append(textElement(change.type === "added" ? "ins" : "del", change.type, text));
    list.append(item);
  }
  return [list];
}

function note(text: string): HTMLElement {
  return textElement("p", "history-note", text);
}
