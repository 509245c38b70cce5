/**
 * Who used the machine during a phase: the whole machine (/proc/stat), the
 * generator (this process) and the servers under test, whose pids change as nodes
 * restart. On a shared 2-core machine the difference says how much other work ran.
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { cpuSeconds } from "../support/proc-stats.js";

const SAMPLE_MS = 1000;

/** Busy and total clock ticks of all cores since boot (the `cpu` line of /proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  // idle and iowait (fields 4 and 5) are the only non-busy states.
  return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
}

/** CPU use over a phase, each in % of one core. */
export interface CpuShares {
  machineBusyPct: number;
  cores: number;
  generatorPct: number;
  serversPct: number;
}

export class CpuMeter {
  private readonly startedAt = performance.now();
  private readonly startMachine = machineTicks();
  private readonly startGenerator = cpuSeconds(process.pid);
  /** CPU seconds each server pid had at its previous sample. */
  private readonly last = new Map<number, number>();
  private servers = 0;
  private readonly timer: NodeJS.Timeout;
  private result: CpuShares | undefined;

  /** `pids()` lists the servers' current processes. */
  constructor(private readonly pids: () => readonly number[]) {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
  }

  /**
   * Adds each server's CPU time since its previous sample. A process that exited
   * since then loses at most one interval, and a new one counts from its first sample.
   */
  private sample(): void {
    for (const pid of this.pids()) {
      let now: number;
      try {
        now = cpuSeconds(pid);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") continue; // exited: a kill round
        throw error;
      }
      const before = this.last.get(pid);
      if (before !== undefined) this.servers += now - before;
      this.last.set(pid, now);
    }
  }

  /** Ends the sampling; later calls return the same figures. */
  stop(): CpuShares {
    if (this.result) return this.result;
    this.sample();
    clearInterval(this.timer);
    const seconds = (performance.now() - this.startedAt) / 1000;
    const machine = machineTicks();
    const cores = availableParallelism();
    this.result = {
      machineBusyPct:
        (100 * cores * (machine.busy - this.startMachine.busy)) / (machine.total - this.startMachine.total),
      cores,
      generatorPct: (100 * (cpuSeconds(process.pid) - this.startGenerator)) / seconds,
      serversPct: (100 * this.servers) / seconds,
    };
    return this.result;
  }
}
