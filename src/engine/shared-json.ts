import * as Y from "yjs";

/**
 * Every top-level shared type of a Yjs state as JSON. Yjs does not record a
 * type's kind in the update, so it is told from the content: map entries → an
 * object, XML nodes → the XML string, text (strings, formats, embeds) → the
 * string, anything else → an array.
 */
export function sharedTypesAsJson(state: Uint8Array): Record<string, unknown> {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, state);
  const json: Record<string, unknown> = {};
  for (const name of [...doc.share.keys()]) {
    const kind = rootKind(doc, name);
    json[name] =
      kind === "map"
        ? doc.getMap(name).toJSON()
        : kind === "xml"
          ? doc.getXmlFragment(name).toJSON()
          : kind === "text"
            ? doc.getText(name).toString()
            : kind === "array"
              ? doc.getArray(name).toJSON()
              : null; // empty: its kind is unknowable
  }
  doc.destroy();
  return json;
}

/** What a root type of `doc` is, as far as its content tells (see {@link sharedTypesAsJson}). */
export type RootKind = "map" | "xml" | "text" | "array" | "empty";

/**
 * The kind of `doc`'s root type `name`, told from its content: Yjs does not record
 * it in updates. `visible` decides which items count (by default, those not deleted).
 */
export function rootKind(doc: Y.Doc, name: string, visible = (item: Y.Item) => !item.deleted): RootKind {
  const type = doc.share.get(name);
  if (!type) return "empty";
  if (type._map.size > 0) return "map";
  let item = type._start;
  while (item && !visible(item)) item = item.right;
  const content = item?.content;
  if (content instanceof Y.ContentType) {
    return content.type instanceof Y.XmlElement || content.type instanceof Y.XmlText ? "xml" : "array";
  }
  if (content instanceof Y.ContentString || content instanceof Y.ContentFormat) return "text";
  return content ? "array" : "empty";
}
