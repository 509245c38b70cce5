/** The failover bench's command line (bench/README.md "Failover"). */
import { parseArgs } from "node:util";
import type { Mode } from "./round.js";
import { STORAGE_KINDS, type StorageKind } from "./storage.js";

/** Fault modes run by default, in this order; `steady` (no fault) only when asked for. */
export const FAULT_MODES = ["kill", "term", "stop"] as const;
export type BenchMode = Exclude<Mode, "baseline"> | "steady";
const ALL_MODES: readonly BenchMode[] = [...FAULT_MODES, "steady"];

export interface FailoverOptions {
  /** Rounds per fault mode. */
  readonly kills: number;
  readonly docs: number;
  /** In the order given; a baseline always runs first. */
  readonly modes: readonly BenchMode[];
  /** Whether the Hocuspocus pair runs after opstream. */
  readonly peers: boolean;
  readonly storage: StorageKind;
  /** `--lease-ttl-ms` for the nodes; undefined: the CLI's default. */
  readonly leaseTtlMs: number | undefined;
  /** Length of the `steady` mode. */
  readonly steadySeconds: number;
  /** Tokens per client per second, on average. */
  readonly rate: number;
}

function wholeNumber(flag: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${flag} wants a whole number >= ${min}, got ${value}`);
  return n;
}

export function parseOptions(args: string[] = process.argv.slice(2)): FailoverOptions {
  const { values } = parseArgs({
    args,
    options: {
      kills: { type: "string" },
      docs: { type: "string", default: "50" },
      modes: { type: "string", default: FAULT_MODES.join(",") },
      peers: { type: "boolean", default: true },
      // node 20's parseArgs has no allowNegative.
      "no-peers": { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      storage: { type: "string", default: "sqlite" },
      "lease-ttl-ms": { type: "string" },
      "steady-seconds": { type: "string", default: "60" },
      rate: { type: "string", default: "2" },
    },
  });
  const modes = values.modes.split(",").map((mode) => mode.trim());
  for (const mode of modes) {
    if (!(ALL_MODES as readonly string[]).includes(mode))
      throw new Error(`--modes takes a comma-separated list of ${ALL_MODES.join(", ")}; got ${mode}`);
  }
  const storage = values.storage;
  if (!(STORAGE_KINDS as readonly string[]).includes(storage))
    throw new Error(`--storage takes ${STORAGE_KINDS.join(" or ")}; got ${storage}`);
  const rate = Number(values.rate);
  if (!Number.isFinite(rate) || rate <= 0) throw new Error(`--rate wants a number > 0, got ${values.rate}`);
  const leaseTtl = values["lease-ttl-ms"];
  return {
    kills: wholeNumber("kills", values.kills ?? (values.quick ? "3" : "20"), 1),
    docs: wholeNumber("docs", values.docs, 1),
    modes: modes as BenchMode[],
    peers: values.peers && !values["no-peers"],
    storage: storage as StorageKind,
    leaseTtlMs: leaseTtl === undefined ? undefined : wholeNumber("lease-ttl-ms", leaseTtl, 1),
    steadySeconds: wholeNumber("steady-seconds", values["steady-seconds"], 1),
    rate,
  };
}
