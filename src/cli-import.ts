import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { CLI_FLAGS, stateDefault, type CliFlag } from "./cli-flags.js";
import { ErrorCodes, OpStreamError } from "./errors.js";
import { importDocuments, type ImportResult, type ImportSummary } from "./storage/import.js";
import {
  HOCUSPOCUS_SQLITE_DEFAULTS,
  directorySource,
  hocuspocusSqliteSource,
} from "./storage/import-sources.js";
import { openStore, storageKind } from "./storage/open-store.js";
import { isRedisClusterUrl } from "./storage/redis/cluster-url.js";

/** `--storage` and `--key-prefix` mean what they mean for `opstream serve`: same variables, same defaults. */
const storageFlag = serveFlag("storage");
const keyPrefixFlag = serveFlag("key-prefix");

const USAGE = `Usage: opstream import --from <hocuspocus.sqlite> [--table <name>] [options]
       opstream import --from-dir <dir> [options]

Loads documents into opstream storage from a database written by @hocuspocus/extension-sqlite,
or from a folder of <encodeURIComponent(name)>.bin files each holding Y.encodeStateAsUpdate(doc).

  --from <file>         the Hocuspocus SQLite database (opened read-only)
  --table <name>        its table of name and data columns (default ${HOCUSPOCUS_SQLITE_DEFAULTS.table})
  --from-dir <dir>      a folder with one <encodeURIComponent(name)>.bin file per document
  --storage <path|url>  where to import: ${storageFlag.help}
                        (env ${storageFlag.env}, default ${stateDefault(storageFlag)})
  --key-prefix <p>      Redis storage's key prefix (env ${keyPrefixFlag.env}, default ${stateDefault(keyPrefixFlag)})
  --tenant <id>         store each document as <id>/<name>, for a server with a tenant resolver
  --merge               add the imported state to documents that already hold other content
                        (default: refuse them and leave them untouched)
  --dry-run             check everything and report what would happen; write nothing
  --help                print this text

Exit status 0 when every document was imported or was already there; 1 when any was
refused, invalid or failed (each is listed on stderr with its reason).
`;

/** `opstream import …`: see {@link USAGE}. Sets `process.exitCode` to 1 when a document was not imported. */
export async function runImport(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      from: { type: "string" },
      table: { type: "string", default: HOCUSPOCUS_SQLITE_DEFAULTS.table },
      "from-dir": { type: "string" },
      storage: option(storageFlag),
      "key-prefix": option(keyPrefixFlag),
      tenant: { type: "string" },
      merge: { type: "boolean", default: false },
      "dry-run": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const storage = values.storage ?? "";
  if ((values.from === undefined) === (values["from-dir"] === undefined))
    throw usageError("Give exactly one source: --from <hocuspocus.sqlite> or --from-dir <dir>.");
  if (
    values.from !== undefined &&
    storageKind(storage) === "sqlite" &&
    resolve(values.from) === resolve(storage)
  )
    throw usageError("--from and --storage name the same file; import into another one.");
  const source =
    values.from !== undefined
      ? hocuspocusSqliteSource(values.from, { table: values.table })
      : directorySource(values["from-dir"] ?? "");
  try {
    const store = await openStore(storage, { keyPrefix: values["key-prefix"] });
    try {
      await store.ping();
      process.stdout.write(
        `Importing from ${source.description} into ${store.kind} storage ${redacted(storage)}\n`,
      );
      const summary = await importDocuments(store, source, {
        existing: values.merge ? "merge" : "refuse",
        dryRun: values["dry-run"],
        onResult: report,
        ...(values.tenant === undefined ? {} : { tenant: values.tenant }),
      });
      process.stdout.write(summaryLine(summary));
      if (summary.problems.length > 0) process.exitCode = 1;
    } finally {
      await store.close();
    }
  } finally {
    await source.close?.();
  }
}

/** Lists each document that was not imported, on stderr, as it finishes. */
function report(result: ImportResult): void {
  if (result.reason === undefined) return;
  const id = result.docId === result.name ? result.name : `${result.name} (as ${result.docId})`;
  process.stderr.write(`${result.outcome} ${JSON.stringify(id)}: ${result.reason}\n`);
}

function summaryLine(summary: ImportSummary): string {
  const { imported, merged, unchanged, refused, invalid, failed } = summary.counts;
  const done = summary.dryRun ? "Dry run, nothing written. Would import" : "Imported";
  const merge = summary.dryRun ? "merge" : "merged";
  return (
    `${done} ${imported} new documents and ${merge} ${merged} (${summary.bytes} bytes); ` +
    `${unchanged} were already there; ${refused} refused, ${invalid} invalid, ${failed} failed.\n`
  );
}

/** A URL's password is not printed. */
function redacted(storage: string): string {
  if (storageKind(storage) === "sqlite") return storage;
  // A redis-cluster:// URL lists several hosts, which WHATWG URLs cannot parse.
  if (isRedisClusterUrl(storage)) return storage.replace(/^([^/]*\/\/[^:@/]*:)[^@/]+@/, "$1***@");
  try {
    const url = new URL(storage);
    if (url.password !== "") url.password = "***";
    return url.toString();
  } catch {
    return "(unparsable URL)";
  }
}

function serveFlag(name: string): CliFlag {
  const flag = CLI_FLAGS.find((f) => f.name === name);
  if (flag === undefined) throw new Error(`opstream serve has no --${name} flag (src/cli-flags.ts)`);
  return flag;
}

/** A serve flag's parseArgs option: its variable, else its default. */
function option(flag: CliFlag): { type: "string"; default?: string } {
  const value = (flag.env === undefined ? undefined : process.env[flag.env]) ?? flag.default;
  return value === undefined ? { type: "string" } : { type: "string", default: value };
}

function usageError(message: string): OpStreamError {
  return new OpStreamError(ErrorCodes.INVALID_OPTION, `${message} See opstream import --help.`);
}
