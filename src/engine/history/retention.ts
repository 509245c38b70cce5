import type { VersionInfo } from "../../storage/document-store.js";
import type { ResolvedHistoryOptions } from "./history-options.js";

const HOUR = 3_600_000;
const DAY = 86_400_000;

/**
 * The ids of the versions retention drops at `now`: only automatic ones. Each is
 * in the tier its age puts it in —
 * - younger than `keepAllMs`: kept;
 * - younger than `hourlyForMs`: kept when it is the latest automatic version of its hour;
 * - younger than `dailyForMs` (or any age when that is 0): kept when it is the latest of its UTC day;
 * - older: dropped.
 *
 * "Latest of its hour/day" is among the automatic versions of that tier, so a
 * version's fate depends only on its own tier: thinning never depends on
 * versions newer than the tier. The latest version of the document is always kept.
 */
export function versionsToDrop(
  versions: readonly VersionInfo[],
  now: number,
  retention: ResolvedHistoryOptions["retention"],
): number[] {
  const latestId = versions.reduce((max, v) => Math.max(max, v.id), 0);
  const keepers = new Map<string, VersionInfo>(); // bucket -> the latest version in it
  const candidates: { version: VersionInfo; bucket: string }[] = [];
  const drop: number[] = [];
  for (const version of versions) {
    if (version.kind !== "auto" || version.id === latestId) continue;
    const age = now - version.time;
    if (age < retention.keepAllMs) continue;
    let bucket: string;
    if (age < retention.hourlyForMs) bucket = `h${Math.floor(version.time / HOUR)}`;
    else if (retention.dailyForMs === 0 || age < retention.dailyForMs)
      bucket = `d${Math.floor(version.time / DAY)}`;
    else {
      drop.push(version.id);
      continue;
    }
    candidates.push({ version, bucket });
    const kept = keepers.get(bucket);
    if (!kept || later(version, kept)) keepers.set(bucket, version);
  }
  for (const { version, bucket } of candidates) {
    if (keepers.get(bucket) !== version) drop.push(version.id);
  }
  return drop.sort((a, b) => a - b);
}

function later(a: VersionInfo, b: VersionInfo): boolean {
  return a.time > b.time || (a.time === b.time && a.id > b.id);
}
