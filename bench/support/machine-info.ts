/** The machine a result was measured on, as every bench script writes it to its JSON. */
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
}

export function machineInfo(): MachineInfo {
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

/** `machine: <cpu>, <n> cores, <m> GiB, Node <version>` */
export const describeMachine = (machine: MachineInfo): string =>
  `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`;

/** The 1, 5 and 15 min load averages, e.g. `1.2 0.9 0.7` (other work on the machine). */
export const loadAverage = (): string =>
  loadavg()
    .map((n) => n.toFixed(1))
    .join(" ");
