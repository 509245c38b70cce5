import type { Extension } from "@codemirror/state";
import { EditorView, keymap, placeholder } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { yUndoManagerKeymap } from "y-codemirror.next";

/** CodeMirror's basic setup, with Y's undo keys first so undo only reverts this user's edits. */
export function plainTextSetup(): Extension {
  return [keymap.of(yUndoManagerKeymap), basicSetup, EditorView.lineWrapping, placeholder("Start typing…")];
}
