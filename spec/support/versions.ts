import type { NewVersion } from "../../src/index.js";

/** An automatic version holding `state`, for specs: seq 1 at time 0 unless `fields` say otherwise. */
export function newVersion(state: Uint8Array, fields: Partial<Omit<NewVersion, "state">> = {}): NewVersion {
  return {
    seq: 1,
    time: 0,
    kind: "auto",
    name: "",
    clients: [],
    authors: [],
    restoredFrom: 0,
    ...fields,
    state,
  };
}
