/**
 * CPU and memory of server processes, read from /proc (Linux only): CPU time is
 * `utime + stime` of /proc/<pid>/stat (the process's own threads, not its children),
 * memory is `VmRSS` of /proc/<pid>/status. A sampler polls every 100 ms so that the
 * peak RSS of a run is seen, not just its end.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Clock ticks per second of the stat fields (`getconf CLK_TCK`, 100 on every common kernel). */
export const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch (error) {
    process.stderr.write(`getconf CLK_TCK failed (${String(error)}); assuming 100\n`);
    return 100;
  }
})();

/** The fields of a /proc/<pid>/stat line that the bench reads. */
export interface Stat {
  /** The command name (`comm`, at most 15 characters). */
  readonly name: string;
  readonly ppid: number;
  /** utime + stime, in clock ticks: every thread of the process, not its children. */
  readonly cpuTicks: number;
}

/** Parses the text of /proc/<pid>/stat. */
export function parseStat(stat: string): Stat {
  // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // After the name, field 3 (state) is index 0: ppid (4) is 1, utime (14) and stime (15) are 11 and 12.
  const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
  return { name, ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  return parseStat(readFileSync(`/proc/${pid}/stat`, "utf8")).cpuTicks / TICKS_PER_SECOND;
}

/**
 * CPU seconds (user + system) of the process's main thread alone (the task whose id
 * is the pid: Node's event loop). The rest of `cpuSeconds` is its other threads:
 * worker threads such as opstream's SQLite writer, libuv's pool, V8's GC helpers.
 */
export function mainThreadCpuSeconds(pid: number): number {
  return parseStat(readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8")).cpuTicks / TICKS_PER_SECOND;
}

/** Resident set size in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`/proc/${pid}/status has no VmRSS: has the process exited?`);
  return Number(kib) * 1024;
}

/** What a {@link ProcessSampler} saw between its start and `stop()`. */
export interface ProcessUsage {
  /** CPU seconds of all sampled processes together, divided by wall seconds (1 = one core busy). */
  readonly cpuCores: number;
  /** The same for the processes' main threads only (their event loops). */
  readonly mainThreadCores: number;
  /** Highest RSS any one sampled process reached, in bytes. */
  readonly peakRssBytes: number;
  /** RSS of each process at `stop()`, in bytes. */
  readonly endRssBytes: readonly number[];
  readonly wallSeconds: number;
}

/** Samples the CPU and RSS of `pids` from now until `stop()`. */
export class ProcessSampler {
  private readonly startCpu: number;
  private readonly startMainCpu: number;
  private readonly startedAt = performance.now();
  private peak = 0;
  private failure: Error | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pids: readonly number[]) {
    this.startCpu = this.totalCpu();
    this.startMainCpu = this.mainCpu();
    this.sample();
    this.timer = setInterval(() => this.sample(), 100);
  }

  /** Throws if a process could not be read (it exited during the run). */
  stop(): ProcessUsage {
    clearInterval(this.timer);
    this.sample();
    if (this.failure) throw this.failure;
    const wallSeconds = (performance.now() - this.startedAt) / 1000;
    return {
      cpuCores: (this.totalCpu() - this.startCpu) / wallSeconds,
      mainThreadCores: (this.mainCpu() - this.startMainCpu) / wallSeconds,
      peakRssBytes: this.peak,
      endRssBytes: this.pids.map(rssBytes),
      wallSeconds,
    };
  }

  private totalCpu(): number {
    return this.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  }

  private mainCpu(): number {
    return this.pids.reduce((sum, pid) => sum + mainThreadCpuSeconds(pid), 0);
  }

  private sample(): void {
    try {
      for (const pid of this.pids) this.peak = Math.max(this.peak, rssBytes(pid));
    } catch (error) {
      // Thrown from a timer it would end the runner: kept for stop() to report instead.
      this.failure ??= error instanceof Error ? error : new Error(String(error));
    }
  }
}
