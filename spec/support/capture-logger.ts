import { Writable } from "node:stream";
import { pino, type Logger } from "pino";

/** A real pino logger writing JSON lines into memory, for specs that check what was logged. */
export function captureLogger(): {
  logger: Logger;
  entries: () => { level: number; msg: string }[];
  /** The raw JSON lines. */
  lines: () => string[];
} {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      callback();
    },
  });
  return {
    logger: pino({ level: "debug" }, sink),
    entries: () => lines.map((line) => JSON.parse(line) as { level: number; msg: string }),
    lines: () => [...lines],
  };
}
