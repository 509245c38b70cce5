/**
 * CPU used during a window by processes that are not the bench's own (Linux only):
 * the machine's busy time from the first line of /proc/stat minus what the runner and
 * every process it started (the target's servers, redis-server, the load workers)
 * used, from their /proc/<pid>/stat. On a 2-core machine another busy process
 * (a build, a test run) moves the numbers more than most changes under test, so a run
 * during which one was busy is rejected (scenarios/admission.ts).
 *
 * Busy time is user + nice + system. irq and softirq are left out: they are not
 * charged to any process's utime/stime, and loopback networking, which the bench
 * itself causes, is most of them.
 */
import { readdirSync, readFileSync } from "node:fs";
import { parseStat, TICKS_PER_SECOND, type Stat } from "./proc-stats.js";

/** What a {@link ForeignCpuSampler} saw between its start and `stop()`, in cores (1 = one core busy). */
export interface ForeignCpu {
  /** The machine's busy time not used by the runner's process tree. */
  readonly otherCores: number;
  /** The runner's process tree. */
  readonly ownCores: number;
  /** The whole machine. */
  readonly machineCores: number;
  /**
   * The foreign processes that used the most (up to 3), and what processes that were gone
   * by the end used, e.g. `node[1234] 0.52, kdamond.0[83] 0.06; 0.30 by processes that exited`.
   */
  readonly busiest: string;
}

interface Snapshot {
  readonly at: number;
  readonly busyTicks: number;
  /** Every process, by pid. */
  readonly stats: ReadonlyMap<number, Stat>;
  /** The root and its descendants. */
  readonly tree: ReadonlySet<number>;
}

/** How many foreign processes `busiest` names. */
const BUSIEST = 3;

/** Samples the machine's and the process tree's CPU from now until `stop()`. */
export class ForeignCpuSampler {
  private readonly start: Snapshot;

  /** `root`: the process whose tree counts as the bench's own (default: this process). */
  constructor(private readonly root = process.pid) {
    this.start = snapshot(root);
  }

  stop(): ForeignCpu {
    const end = snapshot(this.root);
    const seconds = (end.at - this.start.at) / 1000;
    const cores = (ticks: number): number => ticks / TICKS_PER_SECOND / seconds;
    // A process started during the window counts from 0; one that exited is not seen.
    const used = (pid: number, stat: Stat): number =>
      stat.cpuTicks - (this.start.stats.get(pid)?.cpuTicks ?? 0);
    let ownTicks = 0;
    const foreign: { pid: number; name: string; ticks: number }[] = [];
    for (const [pid, stat] of end.stats) {
      if (end.tree.has(pid) || this.start.tree.has(pid)) ownTicks += used(pid, stat);
      else if (used(pid, stat) > 0) foreign.push({ pid, name: stat.name, ticks: used(pid, stat) });
    }
    const busyTicks = end.busyTicks - this.start.busyTicks;
    // The counts are sampled a moment apart: never below zero.
    const otherTicks = Math.max(0, busyTicks - ownTicks);
    const seenTicks = foreign.reduce((sum, p) => sum + p.ticks, 0);
    const named = foreign
      .sort((a, b) => b.ticks - a.ticks)
      .slice(0, BUSIEST)
      .map((p) => `${p.name}[${p.pid}] ${cores(p.ticks).toFixed(2)}`);
    // A process that started and exited inside the window (a compiler, a test run) shows only here.
    const gone = cores(Math.max(0, otherTicks - seenTicks));
    if (gone >= 0.01) named.push(`${gone.toFixed(2)} by processes that exited`);
    return {
      otherCores: cores(otherTicks),
      ownCores: cores(ownTicks),
      machineCores: cores(busyTicks),
      busiest: named.join(", "),
    };
  }
}

function snapshot(root: number): Snapshot {
  const at = performance.now();
  const busyTicks = machineBusyTicks();
  const stats = processes();
  return { at, busyTicks, stats, tree: descendants(root, stats) };
}

function machineBusyTicks(): number {
  // `cpu  user nice system idle iowait irq softirq steal guest guest_nice` (guest is inside user).
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const [label, user, nice, system] = line.trim().split(/\s+/);
  if (label !== "cpu") throw new Error(`/proc/stat does not start with the cpu line: ${line}`);
  return Number(user) + Number(nice) + Number(system);
}

/** Every process's stat, by pid. */
function processes(): Map<number, Stat> {
  const stats = new Map<number, Stat>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(name);
    if (stat) stats.set(Number(name), stat);
  }
  return stats;
}

/** `root` and all its descendants. */
function descendants(root: number, stats: ReadonlyMap<number, Stat>): Set<number> {
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of stats) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const tree = new Set<number>();
  const queue = [root];
  for (let pid = queue.pop(); pid !== undefined; pid = queue.pop()) {
    if (!stats.has(pid)) continue;
    tree.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

function readStat(pid: string): Stat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch (error) {
    // The process exited between the directory listing and the read: it has no CPU to count now.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ESRCH") return undefined;
    throw error;
  }
}
