import type { Awareness } from "y-protocols/awareness";
import { userOf } from "./user.js";

/** Lists every connected user (from awareness) in `list`, the local one first and marked. */
export function showPresence(list: HTMLElement, awareness: Awareness): void {
  const render = (): void => {
    const items: HTMLLIElement[] = [];
    for (const [clientId, state] of awareness.getStates()) {
      const user = userOf(state);
      if (!user) continue;
      const self = clientId === awareness.clientID;
      const item = document.createElement("li");
      item.className = self ? "peer self" : "peer";
      item.dataset.clientId = String(clientId);
      item.style.setProperty("--peer-color", user.color);
      item.textContent = self ? `${user.name} (you)` : user.name;
      if (self) items.unshift(item);
      else items.push(item);
    }
    list.replaceChildren(...items);
  };
  render();
  awareness.on("change", render);
}
