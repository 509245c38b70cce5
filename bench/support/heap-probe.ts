/**
 * Exact retained heap of a running node, for the soak's heap slope: opens the
 * node's inspector (SIGUSR1, as `node --inspect` would, on 127.0.0.1:9229), forces a
 * full garbage collection and reads the used heap. Sampling `nodejs_heap_size_used_bytes`
 * instead gives a saw-tooth whose slope over an hour is mostly noise.
 */
import { createWriteStream } from "node:fs";
import { finished } from "node:stream/promises";
import WebSocket from "ws";

const INSPECTOR = "http://127.0.0.1:9229";

export class HeapProbe {
  private nextId = 1;
  private readonly pending = new Map<number, (result: unknown) => void>();

  /** Where the chunks of a heap snapshot in progress go. */
  private chunkSink: ((chunk: string) => void) | undefined;

  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data: Buffer) => {
      const reply = JSON.parse(data.toString()) as {
        id?: number;
        method?: string;
        params?: { chunk?: string };
        result?: unknown;
        error?: unknown;
      };
      if (reply.method === "HeapProfiler.addHeapSnapshotChunk" && reply.params?.chunk !== undefined) {
        this.chunkSink?.(reply.params.chunk);
        return;
      }
      if (reply.id === undefined) return;
      this.pending.get(reply.id)?.(reply.error ? new Error(JSON.stringify(reply.error)) : reply.result);
      this.pending.delete(reply.id);
    });
  }

  /** Opens the inspector of process `pid` (which must be the only one on port 9229). */
  static async attach(pid: number, timeoutMs = 10_000): Promise<HeapProbe> {
    process.kill(pid, "SIGUSR1");
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      try {
        const targets = (await fetch(`${INSPECTOR}/json/list`).then((r) => r.json())) as {
          webSocketDebuggerUrl: string;
        }[];
        const url = targets[0]?.webSocketDebuggerUrl;
        if (!url) throw new Error("no inspector target");
        const socket = new WebSocket(url);
        await new Promise<void>((resolve, reject) => {
          socket.once("open", resolve);
          socket.once("error", reject);
        });
        return new HeapProbe(socket);
      } catch (error) {
        if (performance.now() > deadline)
          throw new Error(`inspector of pid ${pid} not reachable`, { cause: error });
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  /**
   * Used heap right after a full (major) garbage collection: in all (`bytes`),
   * without V8's code spaces (`withoutCodeBytes`), and without any compiled code or
   * bytecode together with their metadata (`dataBytes`). The JIT's machine code
   * lives in the code spaces, but its deoptimization data, relocation info and
   * source position tables, and the bytecode arrays, live in the old space: heap
   * snapshots of a soak node showed them growing as faults warm up new paths and
   * optimized code is replaced. Their sizes come from `v8.getHeapCodeStatistics()`
   * (code and bytecode are counted apart, each with its metadata).
   */
  async retained(): Promise<{ bytes: number; withoutCodeBytes: number; dataBytes: number }> {
    await this.call("HeapProfiler.collectGarbage");
    const reply = (await this.call("Runtime.evaluate", {
      expression:
        "(() => { const v8 = process.getBuiltinModule('v8'); return JSON.stringify({ " +
        "spaces: v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]), " +
        "code: v8.getHeapCodeStatistics() }); })()",
      returnByValue: true,
    })) as { result: { value: string } };
    const { spaces, code } = JSON.parse(reply.result.value) as {
      spaces: [string, number][];
      code: { code_and_metadata_size: number; bytecode_and_metadata_size: number };
    };
    let bytes = 0;
    let codeSpaces = 0;
    for (const [name, used] of spaces) {
      bytes += used;
      if (name.startsWith("code_")) codeSpaces += used;
    }
    return {
      bytes,
      withoutCodeBytes: bytes - codeSpaces,
      dataBytes: bytes - code.code_and_metadata_size - code.bytecode_and_metadata_size,
    };
  }

  /**
   * Writes a heap snapshot of the node to `path` (V8 collects garbage first). The
   * node is paused while V8 takes it: about 3.5 s for a 20 MB heap.
   */
  async snapshot(path: string): Promise<void> {
    if (this.chunkSink) throw new Error("a heap snapshot is already in progress");
    const file = createWriteStream(path);
    this.chunkSink = (chunk) => file.write(chunk);
    try {
      await this.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    } finally {
      this.chunkSink = undefined;
      file.end();
      await finished(file);
    }
  }

  close(): void {
    this.socket.close();
  }

  private call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, (result) => (result instanceof Error ? reject(result) : resolve(result)));
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }
}
