import type { NewVersion, VersionInfo } from "./document-store.js";

/** What `saveVersion` returns for `version`, stored as `id` by the owner of `epoch`: every field but the state, copied. */
export function versionInfo(id: number, epoch: number, version: NewVersion): VersionInfo {
  return {
    id,
    epoch,
    bytes: version.state.byteLength,
    seq: version.seq,
    time: version.time,
    kind: version.kind,
    name: version.name,
    clients: [...version.clients],
    authors: [...version.authors],
    restoredFrom: version.restoredFrom,
  };
}
