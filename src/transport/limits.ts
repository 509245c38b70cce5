import { ErrorCodes, OpStreamError } from "../errors.js";
import { MAX_TIMEOUT_MS } from "./authorization.js";
import { compileTrust } from "./client-address.js";
import type { TransportOptions } from "./transport-options.js";

/** The rate limit of one connection (the transport options of the same names). */
export interface RateLimitOptions {
  /** Frames per second on average; 0 turns the limit off. */
  readonly messageRate: number;
  /** Frames accepted at once before throttling: the token bucket's size. */
  readonly messageBurst: number;
  /** Frames delayed in one throttled stretch before the connection counts as flooding. */
  readonly maxThrottledMessages: number;
}

/** The socket's read side: paused while frames wait, so TCP pushes back on the client. */
export interface ReadFlow {
  pause(): void;
  resume(): void;
}

/** What a {@link MessageRateLimiter} reports. */
export interface RateLimitEvents {
  /** A frame within the rate, or a delayed one whose turn came. */
  deliver(frame: Uint8Array): void;
  /** A frame was delayed. */
  throttled(): void;
  /** More than `maxThrottledMessages` frames were delayed in one stretch; the limiter has stopped. */
  flooded(): void;
}

/**
 * A token bucket per connection. Frames within `messageBurst` and `messageRate`
 * are handled at once; beyond, they are delayed in order (the socket stops being
 * read meanwhile, so the client is slowed by TCP, and the queue holds only what
 * was already read). A stretch of throttling ends when the bucket is full again;
 * a client that has more than `maxThrottledMessages` frames delayed within one
 * stretch is flooding and is reported (the transport closes it with 4008), so one
 * client cannot take more than its share of a document's apply queue.
 */
export class MessageRateLimiter {
  private tokens: number;
  private refilledAt = performance.now();
  private readonly queue: Uint8Array[] = [];
  private delayed = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly options: RateLimitOptions,
    private readonly flow: ReadFlow,
    private readonly events: RateLimitEvents,
  ) {
    this.tokens = options.messageBurst;
  }

  /** Takes one frame from the client. */
  push(frame: Uint8Array): void {
    if (this.stopped) return;
    if (this.options.messageRate <= 0) return this.events.deliver(frame);
    this.refill();
    if (this.queue.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return this.events.deliver(frame);
    }
    this.delayed += 1;
    if (this.delayed > this.options.maxThrottledMessages) {
      this.stop();
      return this.events.flooded();
    }
    this.events.throttled();
    this.queue.push(frame);
    this.flow.pause();
    this.schedule();
  }

  /** Drops what waits and stops delivering; the socket is read again so its close handshake can finish. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.queue.length = 0;
    this.flow.resume();
  }

  private refill(): void {
    const now = performance.now();
    const { messageRate, messageBurst } = this.options;
    this.tokens = Math.min(messageBurst, this.tokens + ((now - this.refilledAt) * messageRate) / 1000);
    this.refilledAt = now;
    if (this.tokens >= messageBurst && this.queue.length === 0) this.delayed = 0;
  }

  private schedule(): void {
    if (this.timer) return;
    const waitMs = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.options.messageRate));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, waitMs);
  }

  private drain(): void {
    this.refill();
    while (!this.stopped && this.queue.length > 0 && this.tokens >= 1) {
      this.tokens -= 1;
      this.events.deliver(this.queue.shift()!);
    }
    if (this.stopped) return;
    if (this.queue.length > 0) this.schedule();
    else this.flow.resume();
  }
}

/**
 * Open connections per node and per client address, counted from the start of
 * the upgrade (so authorizers still running count too) until the socket closes.
 * An address is counted under its key (`ClientOrigin.key`: an IPv6 address
 * by its `ipv6PrefixLength` prefix, one /64 being one host in practice); a
 * connection without a key (a trusted proxy's own) counts towards the node's
 * total only.
 */
export class ConnectionCounter {
  private total = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(
    private readonly maxConnections: number,
    private readonly maxPerAddress: number,
  ) {}

  /** Takes a slot for an address `key`, or says which limit is reached (0 = no limit). */
  acquire(key: string | undefined): "node-limit" | "ip-limit" | undefined {
    if (this.maxConnections > 0 && this.total >= this.maxConnections) return "node-limit";
    const count = key === undefined ? 0 : (this.perAddress.get(key) ?? 0);
    if (key !== undefined && this.maxPerAddress > 0 && count >= this.maxPerAddress) return "ip-limit";
    this.total += 1;
    if (key !== undefined) this.perAddress.set(key, count + 1);
    return undefined;
  }

  /** Gives back a slot taken with {@link acquire} for the same `key`. */
  release(key: string | undefined): void {
    this.total -= 1;
    if (key === undefined) return;
    const count = (this.perAddress.get(key) ?? 1) - 1;
    if (count > 0) this.perAddress.set(key, count);
    else this.perAddress.delete(key);
  }
}

/**
 * Checks the admission limits beyond "a non-negative number" (which every
 * numeric option is checked for): throws OpStreamError(INVALID_OPTION).
 */
export function checkAdmissionOptions(
  options: Pick<
    Required<TransportOptions>,
    "ipv6PrefixLength" | "authTimeoutMs" | "maxRefusedKeyBytes" | "trustProxy"
  >,
): void {
  const invalid = (option: Exclude<keyof typeof options, "trustProxy">, want: string): OpStreamError =>
    new OpStreamError(
      ErrorCodes.INVALID_OPTION,
      `transport.${option} must be ${want}; got ${options[option]}.`,
      { option: `transport.${option}`, value: options[option] },
    );
  const { ipv6PrefixLength, authTimeoutMs, maxRefusedKeyBytes } = options;
  if (!Number.isInteger(ipv6PrefixLength) || ipv6PrefixLength < 1 || ipv6PrefixLength > 128)
    throw invalid(
      "ipv6PrefixLength",
      "an integer from 1 to 128 (64: one /64 counts as one host; 128: per address)",
    );
  if (!Number.isInteger(authTimeoutMs) || authTimeoutMs < 0 || authTimeoutMs > MAX_TIMEOUT_MS)
    throw invalid("authTimeoutMs", `an integer number of milliseconds from 0 (off) to ${MAX_TIMEOUT_MS}`);
  if (!Number.isInteger(maxRefusedKeyBytes) || maxRefusedKeyBytes < 0)
    throw invalid("maxRefusedKeyBytes", "a non-negative integer number of bytes");
  compileTrust(options.trustProxy);
}
