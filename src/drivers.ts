import { createRequire } from "node:module";
import type * as ioredis from "ioredis";
import type pg from "pg";
import type Redlock from "redlock";

/*
 * The drivers only some configurations use, loaded by the constructor that needs
 * them instead of when opstream is imported: a node on SQLite and the local
 * backplane never loads ioredis, redlock (with bluebird) or pg, which took more
 * time to load than anything else it imports. They are CommonJS, so `require`
 * loads them synchronously and the builder and constructors stay synchronous;
 * Node's module cache hands every caller the same instance (a caller's own
 * `import { Redis } from "ioredis"` included). Types come from `import type`.
 */
const require = createRequire(import.meta.url);

/** ioredis: the Redis backplane and the Redis store, when they open their own clients. */
export function loadIoredis(): typeof ioredis {
  return require("ioredis") as typeof ioredis;
}

/** redlock 4: the Redis backplane's ownership leases. */
export function loadRedlock(): typeof Redlock {
  return require("redlock") as typeof Redlock;
}

/** pg: the Postgres store. */
export function loadPg(): typeof pg {
  return require("pg") as typeof pg;
}
