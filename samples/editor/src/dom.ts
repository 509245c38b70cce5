/** The page's element with `id`; a missing one is a bug in the page's HTML. */
export function element(id: string): HTMLElement {
  const found = document.getElementById(id);
  if (!found) throw new Error(`${location.pathname} has no #${id}`);
  return found;
}

/** The page's `<details id="history">`, which the history panel fills. */
export function historyElement(): HTMLDetailsElement {
  const found = element("history");
  if (!(found instanceof HTMLDetailsElement)) throw new Error("#history must be a <details>");
  return found;
}
