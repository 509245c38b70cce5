/**
 * Exact retained heap of a running node, for the soak's heap slope: opens the
 * node's inspector (SIGUSR1, as `node --inspect` would, on 127.0.0.1:9229), forces a
 * full garbage collection and reads the used heap. Sampling `nodejs_heap_size_used_bytes`
 * instead gives a saw-tooth whose slope over an hour is mostly noise.
 */
import WebSocket from "ws";

const INSPECTOR = "http://127.0.0.1:9229";

export class HeapProbe {
  private nextId = 1;
  private readonly pending = new Map<number, (result: unknown) => void>();

  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data: Buffer) => {
      const reply = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: unknown };
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
   * Used heap right after a full (major) garbage collection: in all, and without
   * V8's code spaces (JIT-compiled code, which grows as new paths warm up and is
   * bounded by the program rather than by time or data).
   */
  async retained(): Promise<{ bytes: number; withoutCodeBytes: number }> {
    await this.call("HeapProfiler.collectGarbage");
    const reply = (await this.call("Runtime.evaluate", {
      expression:
        "JSON.stringify(process.getBuiltinModule('v8').getHeapSpaceStatistics().map((s) => [s.space_name, s.space_used_size]))",
      returnByValue: true,
    })) as { result: { value: string } };
    const spaces = JSON.parse(reply.result.value) as [string, number][];
    let bytes = 0;
    let code = 0;
    for (const [name, used] of spaces) {
      bytes += used;
      if (name.startsWith("code_")) code += used;
    }
    return { bytes, withoutCodeBytes: bytes - code };
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
