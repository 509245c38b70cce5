import Database from "better-sqlite3";
import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ErrorCodes, OpStreamError, isOpStreamError } from "../errors.js";
import type { ImportEntry, ImportSource } from "./import.js";

/** Options of {@link hocuspocusSqliteSource}. */
export interface HocuspocusSqliteSourceOptions {
  /**
   * The table `@hocuspocus/extension-sqlite` writes: one row per document, with a
   * `name` (the document name) and a `data` blob (`Y.encodeStateAsUpdate`). Only
   * those two columns are read, so a custom `schema` with more columns works too.
   * @default "documents" (the extension's default schema)
   */
  table?: string;
}

/** The defaults of {@link HocuspocusSqliteSourceOptions}. */
export const HOCUSPOCUS_SQLITE_DEFAULTS: Readonly<Required<HocuspocusSqliteSourceOptions>> = Object.freeze({
  table: "documents",
});

/**
 * The documents of a database written by `@hocuspocus/extension-sqlite` (2.x to
 * 4.x all use the same table: `"documents" ("name" varchar(255), "data" blob,
 * UNIQUE(name))`). The file is opened read-only, and each document is read with
 * the query the extension loads it with (the newest row of that name), in a
 * statement of its own: a Hocuspocus server still writing to the file is never
 * held up for the length of the import (stop it first anyway, or its later edits
 * are not imported).
 */
export function hocuspocusSqliteSource(
  path: string,
  options: HocuspocusSqliteSourceOptions = {},
): ImportSource {
  const { table } = { ...HOCUSPOCUS_SQLITE_DEFAULTS, ...options };
  if (!existsSync(path)) throw sourceError(`No Hocuspocus database at ${path}.`, { path });
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw sourceError(`Could not open ${path} as a SQLite database: ${String(error)}`, { path }, error);
  }
  try {
    assertColumns(db, path, table);
  } catch (error) {
    db.close();
    // better-sqlite3 reads the file on the first statement: "file is not a database" comes here.
    if (isOpStreamError(error)) throw error;
    throw sourceError(`Could not read ${path} as a SQLite database: ${String(error)}`, { path }, error);
  }
  const quoted = `"${table.replaceAll('"', '""')}"`;
  const names = db.prepare(`SELECT DISTINCT name FROM ${quoted} ORDER BY name`).pluck();
  const data = db.prepare(`SELECT data FROM ${quoted} WHERE name = ? ORDER BY rowid DESC LIMIT 1`).pluck();
  return {
    description: `Hocuspocus SQLite database ${path} (table ${table})`,
    // eslint-disable-next-line @typescript-eslint/require-await -- better-sqlite3 is synchronous; sources are async iterables
    async *entries(): AsyncGenerator<ImportEntry> {
      // Names first (small), then one short read per document.
      for (const value of names.all()) {
        const name = String(value);
        const state: unknown = data.get(name);
        if (state instanceof Uint8Array) yield { name, state };
        else
          yield { name, state: new Uint8Array(0), unreadable: `its data is ${describe(state)}, not a blob` };
      }
    },
    close: () => {
      db.close();
    },
  };
}

/**
 * The documents of a folder holding one file per document, named
 * `<encodeURIComponent(name)>.bin` and holding `Y.encodeStateAsUpdate(doc)`: the
 * simplest form to dump any other store into. Other files and folders are left out.
 */
export function directorySource(dir: string): ImportSource {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw sourceError(`No folder at ${dir}.`, { path: dir });
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(FILE_SUFFIX))
    .map((entry) => entry.name)
    .sort();
  return {
    description: `folder ${dir} (${files.length} ${FILE_SUFFIX} files)`,
    async *entries(): AsyncGenerator<ImportEntry> {
      for (const file of files) {
        const encoded = file.slice(0, -FILE_SUFFIX.length);
        let name: string;
        try {
          name = decodeURIComponent(encoded);
        } catch {
          yield {
            name: encoded,
            state: new Uint8Array(0),
            unreadable: `${file}: malformed %-escape in the name`,
          };
          continue;
        }
        yield { name, state: await readFile(join(dir, file)) };
      }
    },
  };
}

const FILE_SUFFIX = ".bin";

/** Throws unless `table` exists in `db` with a `name` and a `data` column. */
function assertColumns(db: Database.Database, path: string, table: string): void {
  const columns = db
    .prepare("SELECT name FROM pragma_table_info(?)")
    .pluck()
    .all(table)
    .map((column) => String(column));
  if (columns.includes("name") && columns.includes("data")) return;
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    .pluck()
    .all()
    .map((name) => String(name));
  throw sourceError(
    columns.length === 0
      ? `${path} has no table "${table}" (it has: ${tables.join(", ") || "no tables"}); name the table Hocuspocus used with --table.`
      : `Table "${table}" of ${path} has columns ${columns.join(", ")}; the import reads "name" and "data" (@hocuspocus/extension-sqlite's schema).`,
    { path, table, tables, columns },
  );
}

function describe(value: unknown): string {
  return value === null ? "NULL" : typeof value;
}

function sourceError(message: string, details: Record<string, unknown>, cause?: unknown): OpStreamError {
  return new OpStreamError(ErrorCodes.INVALID_IMPORT_SOURCE, message, details, cause);
}
