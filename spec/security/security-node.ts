import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { SessionOptions, TransportOptions } from "../../src/index.js";

/** How node-process.ts configures its node. */
export interface NodeConfig {
  /** SQLite storage at this path. @default memory storage */
  readonly sqlitePath?: string;
  /** The tenant from the `tenant` query parameter. @default no tenant resolver */
  readonly tenants?: boolean;
  readonly transport?: TransportOptions;
  readonly sessions?: SessionOptions;
}

export interface StoredDoc {
  readonly id: string;
  readonly text: string;
  /** Base64 of the stored state vector. */
  readonly stateVector: string;
}

export type NodeRequest = { type: "rss" } | { type: "stored" };

export type NodeReply =
  | { type: "listening"; port: number }
  | { type: "rss"; rss: number }
  | { type: "stored"; docs: StoredDoc[] }
  | { type: "error"; message: string };

/** A node under attack, in its own process (node-process.ts): its RSS is the server's alone. */
export class SecurityNode {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(config: NodeConfig = {}): Promise<SecurityNode> {
    const script = fileURLToPath(new URL("./node-process.ts", import.meta.url));
    const child = fork(script, [JSON.stringify(config)], {
      execArgv: ["--import", "tsx", "--expose-gc"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      // The RSS specs measure what the server keeps, not what glibc caches: by
      // default, once a large buffer (a 4 MiB frame) is freed, glibc raises its mmap
      // threshold and serves later ones from the heap, whose freed pages it may keep
      // resident (+13 and +25 MB after 100 such frames on CI machines, while the
      // same run locally grew 1 MB). A fixed threshold returns every freed large
      // buffer to the kernel; a leak of what the frames carried still shows.
      env: { ...process.env, MALLOC_MMAP_THRESHOLD_: String(128 * 1024) },
    });
    const [reply] = (await once(child, "message")) as [NodeReply];
    if (reply.type !== "listening") throw new Error(`security node did not start: ${JSON.stringify(reply)}`);
    return new SecurityNode(child, reply.port);
  }

  /** `ws://127.0.0.1:<port>` */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** The node's resident set size after two full garbage collections. */
  async rss(): Promise<number> {
    return (await this.ask({ type: "rss" }, "rss")).rss;
  }

  /** Every stored document, read from storage. */
  async stored(): Promise<StoredDoc[]> {
    return (await this.ask({ type: "stored" }, "stored")).docs;
  }

  async stop(): Promise<void> {
    const exited = once(this.child, "exit");
    this.child.disconnect();
    await exited;
  }

  private async ask<T extends NodeReply["type"]>(
    request: NodeRequest,
    type: T,
  ): Promise<Extract<NodeReply, { type: T }>> {
    this.child.send(request);
    const [reply] = (await once(this.child, "message")) as [NodeReply];
    if (reply.type !== type) throw new Error(`security node answered ${JSON.stringify(reply)}`);
    return reply as Extract<NodeReply, { type: T }>;
  }
}
