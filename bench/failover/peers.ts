/**
 * The failover bench's peers: two Hocuspocus nodes on `@hocuspocus/extension-redis`,
 * each of which can be killed and restarted (on a new port) on its own.
 */
import { startPeer, type NodeProcess } from "../targets/processes.js";
import { HOCUSPOCUS } from "./client.js";
import type { Choice, FailoverTarget } from "./targets.js";

export class HocuspocusPair implements FailoverTarget {
  readonly name = "hocuspocus";
  readonly dialect = HOCUSPOCUS;
  readonly crossNode = false;
  readonly count = 2;
  private readonly down = new Set<number>();
  private readonly exited = new Map<number, Promise<void>>();
  private stopped = false;

  private constructor(
    private readonly nodes: NodeProcess[],
    private readonly args: readonly string[],
  ) {}

  /** Two nodes of the stock server with the stock Redis extension on `redisUrl`, no persistence. */
  static async start(redisUrl: string): Promise<HocuspocusPair> {
    const args = ["--redis", redisUrl];
    const started = await Promise.allSettled([0, 1].map(() => startPeer("hocuspocus-server", args)));
    const nodes = started.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
    const failed = started.find((result) => result.status === "rejected");
    if (failed) {
      await Promise.all(nodes.map((node) => node.stop("SIGKILL")));
      throw failed.reason;
    }
    return new HocuspocusPair(nodes, args);
  }

  nodeName(node: number): string {
    return `hocuspocus-${node + 1}`;
  }

  pids(): number[] {
    return this.nodes.flatMap((node, index) => (this.down.has(index) ? [] : [node.pid]));
  }

  private node(node: number): NodeProcess {
    const entry = this.nodes[node];
    if (!entry) throw new Error(`no node ${node}`);
    return entry;
  }

  baseUrl(node: number): string {
    return `ws://127.0.0.1:${this.node(node).port}`;
  }

  isUp(node: number): boolean {
    return !this.down.has(node);
  }

  /** Every document has clients on both nodes and lives on both: the nodes take turns. */
  pick(index: number, docIds: readonly string[]): Promise<Choice | null> {
    const docId = docIds[Math.floor(Math.random() * docIds.length)];
    return Promise.resolve(docId === undefined ? null : { docId, victim: index % 2, affected: docIds });
  }

  signal(node: number, signal: "SIGKILL" | "SIGTERM"): Promise<void> {
    this.down.add(node);
    const exited = this.node(node).stop(signal);
    this.exited.set(node, exited);
    return exited;
  }

  /** Starts the node again, on a new port (clients learn it from `baseUrl`). */
  async restart(node: number): Promise<void> {
    await this.exited.get(node);
    this.nodes[node] = await startPeer("hocuspocus-server", this.args);
    this.exited.delete(node);
    this.down.delete(node);
  }

  pause(node: number): void {
    process.kill(this.node(node).pid, "SIGSTOP");
  }

  resume(node: number): void {
    process.kill(this.node(node).pid, "SIGCONT");
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map((node, index) =>
        this.down.has(index) ? (this.exited.get(index) ?? Promise.resolve()) : node.stop("SIGKILL"),
      ),
    );
    this.stopped = true;
  }

  /** Synchronous last resort for process exit. */
  killNow(): void {
    if (this.stopped) return;
    for (const [index, node] of this.nodes.entries()) {
      if (this.down.has(index)) continue;
      try {
        process.kill(node.pid, "SIGKILL");
      } catch (error) {
        // Already gone (ESRCH) is what we want; anything else is worth a line.
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") process.stderr.write(`${String(error)}\n`);
      }
    }
  }
}
