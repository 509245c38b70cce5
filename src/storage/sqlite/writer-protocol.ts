import { OpStreamError, isOpStreamError, type ErrorCode } from "../../errors.js";
import type { NewVersion } from "../document-store.js";
import { storageError } from "./sqlite-database.js";

/** What the SQLite store asks of its writer thread. Every write goes through it, in order. */
export type WriterCall =
  | { op: "append"; docId: string; epoch: number; updates: Uint8Array[] }
  | { op: "claimEpoch"; docId: string; atLeast: number; mustExist: boolean }
  | {
      op: "saveSnapshot";
      docId: string;
      epoch: number;
      state: Uint8Array;
      uptoSeq: number;
      trimThrough: number;
    }
  | { op: "commitOffset"; docId: string; epoch: number; consumer: string; seq: number }
  | { op: "saveVersion"; docId: string; epoch: number; version: NewVersion }
  | { op: "dropVersions"; docId: string; epoch: number; ids: number[] }
  | { op: "delete"; docId: string }
  | { op: "ping" }
  | { op: "close" };

export type WriterRequest = WriterCall & { id: number };

/** The id of the message the writer sends once its connection is open. */
export const READY_ID = 0;

/** An error as it crosses the thread boundary: coded errors keep their code and details. */
export interface WireError {
  code?: string;
  message: string;
  details?: Record<string, unknown>;
}

export type WriterReply = { id: number; value: unknown } | { id: number; error: WireError };

export function toWire(error: unknown): WireError {
  if (isOpStreamError(error))
    return { code: error.code, message: error.message, details: { ...error.details } };
  return { message: error instanceof Error ? error.message : String(error) };
}

/** The writer's error as the store's callers see it: the coded error, or STORAGE_UNAVAILABLE. */
export function fromWire(error: WireError, operation: string, docId: string | undefined): Error {
  if (error.code !== undefined) {
    return new OpStreamError(error.code as ErrorCode, error.message, error.details ?? {});
  }
  return storageError(operation, docId, new Error(error.message));
}

/**
 * The bytes of `view` alone: posting a view to another thread copies its whole
 * underlying buffer, and a frame's update is often a slice of a larger one.
 */
export function exact(view: Uint8Array): Uint8Array {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength ? view : view.slice();
}
