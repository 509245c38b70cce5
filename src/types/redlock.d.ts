/**
 * The part of redlock 4.2 (a CommonJS module without bundled types) that
 * `LeaseLocks` uses. `@types/redlock` is not used: it pulls in `@types/ioredis`
 * v4, which clashes with the types ioredis ships itself.
 */
declare module "redlock" {
  import { EventEmitter } from "node:events";

  namespace Redlock {
    /** A held lock: its resources, its value (stored under every resource) and its expiry. */
    class Lock {
      constructor(
        redlock: Redlock,
        resource: string | string[],
        value: string,
        expiration: number,
        attempts?: number,
        attemptsRemaining?: number,
      );
      readonly redlock: Redlock;
      readonly resource: string | string[];
      value: string;
      /** `Date.now()`-based; 0 once unlocked. */
      expiration: number;
    }
    /** Why a lock, extend or unlock did not reach a quorum. */
    class LockError extends Error {
      readonly attempts: number;
    }
    interface Options {
      driftFactor?: number;
      /** Attempts after the first; -1 retries forever. */
      retryCount?: number;
      retryDelay?: number;
      retryJitter?: number;
      /** Receives the default script, returns the one to use. */
      lockScript?: (defaultScript: string) => string;
      unlockScript?: (defaultScript: string) => string;
      extendScript?: (defaultScript: string) => string;
    }
  }

  class Redlock extends EventEmitter {
    /** `clients`: ioredis (or node-redis) clients, one per independent Redis. */
    constructor(clients: object[], options?: Redlock.Options);
    lock(resource: string | string[], ttl: number): Promise<Redlock.Lock>;
    extend(lock: Redlock.Lock, ttl: number): Promise<Redlock.Lock>;
    unlock(lock: Redlock.Lock): Promise<void>;
    /** The value a new lock stores; random by default. */
    protected _random(): string;
  }

  export = Redlock;
}
