import { createHmac, timingSafeEqual } from "node:crypto";
import type { ConsumerHandler, ConsumerRecord } from "./consumers.js";

/** Options of {@link webhookConsumer}. */
export interface WebhookOptions {
  /** The shared secret of the HMAC-SHA256 signature (`x-opstream-signature`). */
  secret: string;
  /** A POST that has not answered by then fails (and is retried). @default 10000 */
  timeoutMs?: number;
  /** Extra request headers (e.g. an API key). @default none */
  headers?: Record<string, string>;
}

/** The JSON body a webhook receives. */
export interface WebhookBody {
  docId: string;
  seq: number;
  epoch: number;
  /** The Yjs update (v1), base64. */
  update: string;
}

/** Header names of a webhook delivery. */
export const WebhookHeaders = Object.freeze({
  /** `sha256=<hex>`: HMAC-SHA256 with the secret over `<timestamp>.<raw body>`. */
  SIGNATURE: "x-opstream-signature",
  /** Unix milliseconds when the request was signed (part of the signed text: replay protection). */
  TIMESTAMP: "x-opstream-timestamp",
  /** `<docId>:<seq>`, the same for every retry of one record: receivers de-duplicate on it. */
  DELIVERY: "x-opstream-delivery",
});

/** The signature header value of `body` signed at `timestamp`. */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/**
 * For receivers: true when `signature` (the `x-opstream-signature` header) signs
 * the raw `body` at `timestamp` with `secret`, and the timestamp is within
 * `toleranceMs` of now (default 5 minutes). Compares in constant time.
 */
export function verifyWebhookSignature(
  secret: string,
  timestamp: string,
  body: string,
  signature: string,
  toleranceMs = 300_000,
): boolean {
  const sentAt = Number(timestamp);
  if (!Number.isFinite(sentAt) || Math.abs(Date.now() - sentAt) > toleranceMs) return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, body));
  const actual = Buffer.from(signature);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * A consumer handler that POSTs each record as JSON ({@link WebhookBody}) to
 * `url`, signed with HMAC-SHA256. Any answer but 2xx, a network error or a
 * timeout throws, so the consumer retries it with backoff (at-least-once: use the
 * `x-opstream-delivery` header to de-duplicate).
 *
 * ```ts
 * services.addOpStream().addConsumer("search", webhookConsumer(url, { secret }));
 * ```
 */
export function webhookConsumer(url: string | URL, options: WebhookOptions): ConsumerHandler {
  if (!options.secret) throw new TypeError("webhookConsumer needs a non-empty secret.");
  const timeoutMs = options.timeoutMs ?? 10_000;
  return async (record: ConsumerRecord) => {
    const body = JSON.stringify({
      docId: record.docId,
      seq: record.seq,
      epoch: record.epoch,
      update: Buffer.from(record.update).toString("base64"),
    } satisfies WebhookBody);
    const timestamp = String(Date.now());
    const response = await fetch(url, {
      method: "POST",
      body,
      signal: AbortSignal.timeout(timeoutMs),
      headers: {
        ...options.headers,
        "content-type": "application/json",
        [WebhookHeaders.SIGNATURE]: signWebhook(options.secret, timestamp, body),
        [WebhookHeaders.TIMESTAMP]: timestamp,
        [WebhookHeaders.DELIVERY]: `${record.docId}:${record.seq}`,
      },
    });
    await response.arrayBuffer(); // release the connection
    if (!response.ok) {
      throw new Error(`webhook ${String(url)} answered ${response.status} for ${record.docId}:${record.seq}`);
    }
  };
}
