// Writes the configuration tables in docs/*.md from their definitions, so the docs
// cannot drift from the code (a flag was once missing from the README's list):
//
// - option tables from the options interfaces (each property's JSDoc and its
//   `@default`), checked against the frozen `*_DEFAULTS` objects the code reads;
// - the `opstream serve` table from CLI_FLAGS (src/cli-flags.ts), the list that
//   also builds `--help` and the parser.
//
// A table sits between `<!-- generated:<name> … -->` and `<!-- /generated:<name> -->`
// in any docs/*.md file; the rest of the file is left alone (and formatted with
// prettier, as `npm run format` would). spec/docs/config-docs.spec.ts fails when a
// committed table differs from what this writes.
//
//   npm run docs:config            rewrite the tables
//   npm run docs:config -- --check exit 1 and name the stale tables instead
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as prettier from "prettier";
import ts from "typescript";
import { REDIS_BACKPLANE_DEFAULTS } from "../src/backplane/redis/options.js";
import { CLI_FLAGS, stateDefault, type CliFlag } from "../src/cli-flags.js";
import { AWARENESS_DEFAULTS } from "../src/engine/awareness.js";
import { CONSUMER_DEFAULTS } from "../src/engine/consumers.js";
import { HISTORY_DEFAULTS, RETENTION_DEFAULTS } from "../src/engine/history/history-options.js";
import { HYBRID_SNAPSHOT_DEFAULTS } from "../src/engine/snapshot-policy.js";
import { SESSION_DEFAULTS } from "../src/hosting/options.js";
import { RETRY_LIMITS } from "../src/router/retry-policy.js";
import { POSTGRES_STORE_DEFAULTS } from "../src/storage/postgres/postgres-store.js";
import { REDIS_STORE_DEFAULTS } from "../src/storage/redis/store-options.js";
import { TRANSPORT_DEFAULTS } from "../src/transport/transport-options.js";

const ROOT = new URL("../", import.meta.url);
const DOCS = new URL("docs/", ROOT);

/** Rows of an options table: the properties of one interface. */
interface Section {
  /** The file declaring the interface, relative to the repository root. */
  readonly file: string;
  readonly type: string;
  /** Put before each option's name, e.g. `transport.`. */
  readonly prefix?: string;
  /** The frozen defaults the code reads: each `@default` must state the same value. */
  readonly defaults?: Readonly<Record<string, unknown>>;
  /** Properties whose options are rows of their own (`<name>.<option>`). */
  readonly nested?: Readonly<Record<string, Section>>;
  /** Properties left out: the call that takes these options sets them itself. */
  readonly omit?: readonly string[];
}

const OPTIONS_FILE = "src/hosting/options.ts";

/** Every options table, by the name its markers use. */
export const OPTION_TABLES: Readonly<Record<string, Section>> = Object.freeze({
  "opstream-options": {
    file: OPTIONS_FILE,
    type: "OpStreamOptions",
    nested: {
      sessions: { file: OPTIONS_FILE, type: "SessionOptions", defaults: SESSION_DEFAULTS },
      transport: {
        file: "src/transport/transport-options.ts",
        type: "TransportOptions",
        defaults: TRANSPORT_DEFAULTS,
      },
      awareness: { file: "src/engine/awareness.ts", type: "AwarenessOptions", defaults: AWARENESS_DEFAULTS },
    },
  },
  shutdown: { file: "src/hosting/host.ts", type: "ShutdownOptions" },
  history: {
    file: "src/engine/history/history-options.ts",
    type: "HistoryOptions",
    prefix: "history.",
    defaults: { ...HISTORY_DEFAULTS },
    nested: {
      retention: {
        file: "src/engine/history/history-options.ts",
        type: "RetentionOptions",
        defaults: RETENTION_DEFAULTS,
      },
    },
  },
  "snapshot-policy": {
    file: "src/engine/snapshot-policy.ts",
    type: "HybridSnapshotOptions",
    defaults: HYBRID_SNAPSHOT_DEFAULTS,
  },
  "sqlite-store": { file: "src/storage/sqlite/sqlite-store.ts", type: "SqliteStoreOptions" },
  "postgres-store": {
    file: "src/storage/postgres/postgres-store.ts",
    type: "PostgresStoreOptions",
    defaults: POSTGRES_STORE_DEFAULTS,
  },
  "redis-store": {
    file: "src/storage/redis/store-options.ts",
    type: "RedisStoreOptions",
    defaults: REDIS_STORE_DEFAULTS,
  },
  "redis-backplane": {
    file: "src/backplane/redis/options.ts",
    type: "RedisBackplaneOptions",
    defaults: REDIS_BACKPLANE_DEFAULTS,
    omit: ["metrics", "logger"],
  },
  "jwt-authorizer": { file: "src/transport/jwt-authorizer.ts", type: "JwtAuthorizerOptions" },
  consumer: { file: "src/engine/consumers.ts", type: "ConsumerOptions", defaults: CONSUMER_DEFAULTS },
  webhook: { file: "src/engine/webhook-consumer.ts", type: "WebhookOptions" },
  "open-document": {
    file: "src/hosting/documents.ts",
    type: "OpenDocumentOptions",
    defaults: { timeoutMs: RETRY_LIMITS.serverDocument.timeoutMs },
  },
});

/** The table of `opstream serve`'s flags. */
export const CLI_TABLE = "cli";

const GROUP_TITLES: Readonly<Record<string, string>> = Object.freeze({
  serve: "Every node:",
  cluster: "Cluster (the Redis backplane; all nodes share one Redis and one store):",
});

/** One row of an options table. */
interface OptionRow {
  readonly name: string;
  readonly defaultText: string;
  readonly meaning: string;
}

const parsed = new Map<string, ts.SourceFile>();

function sourceFile(file: string): ts.SourceFile {
  let source = parsed.get(file);
  if (!source) {
    const text = readFileSync(new URL(file, ROOT), "utf8");
    source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
    parsed.set(file, source);
  }
  return source;
}

function findInterface(file: string, type: string): ts.InterfaceDeclaration {
  const found = sourceFile(file).statements.find(
    (node): node is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(node) && node.name.text === type,
  );
  if (!found) throw new Error(`${file} declares no interface ${type}: update scripts/config-docs.ts.`);
  return found;
}

/** JSDoc text on one line, links as code, ready for a table cell. */
function cell(text: string): string {
  return text
    .replace(/\{@link\s+([^}\s|]+)[^}]*\}/g, "`$1`")
    .replace(/\s+/g, " ")
    .trim()
    .replace(/\|/g, "\\|");
}

function jsDocOf(node: ts.Node): { comment: string; defaultText: string | undefined } {
  const docs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc);
  const doc = docs.at(-1);
  const comment = ts.getTextOfJSDocComment(doc?.comment) ?? "";
  const tag = ts.getJSDocTags(node).find((t) => t.tagName.text === "default");
  return { comment, defaultText: tag ? ts.getTextOfJSDocComment(tag.comment) : undefined };
}

/** The literal a `@default` starts with (a number, boolean, string or array), and the rest. */
function leadingLiteral(text: string): { literal: string; rest: string } | undefined {
  const match = /^(-?\d[\d_.]*|true|false|"[^"]*"|\[[^\]]*\])(.*)$/s.exec(text);
  return match ? { literal: match[1]!, rest: match[2]! } : undefined;
}

function literalValue(literal: string): unknown {
  return JSON.parse(literal.replace(/(\d)_(\d)/g, "$1$2")) as unknown;
}

/** Throws when a `@default` names another value than the defaults object the code reads. */
function checkDefault(where: string, stated: string | undefined, actual: unknown): void {
  if (actual === undefined || typeof actual === "function") return;
  const literal = stated === undefined ? undefined : leadingLiteral(stated);
  const same =
    literal !== undefined && JSON.stringify(literalValue(literal.literal)) === JSON.stringify(actual);
  if (!same) {
    throw new Error(
      `${where}: the JSDoc says @default ${stated ?? "(nothing)"}, the code's default is ` +
        `${JSON.stringify(actual)}. Fix the JSDoc (or the default), then run npm run docs:config.`,
    );
  }
}

function defaultCell(stated: string | undefined, actual: unknown, required: boolean): string {
  if (stated === undefined) {
    if (actual !== undefined && typeof actual !== "function") return `\`${JSON.stringify(actual)}\``;
    return required ? "required" : "";
  }
  const literal = leadingLiteral(stated);
  return cell(literal ? `\`${literal.literal}\`${literal.rest}` : stated);
}

function optionRows(section: Section): OptionRow[] {
  const declaration = findInterface(section.file, section.type);
  const declared = new Set<string>();
  const rows: OptionRow[] = [];
  for (const member of declaration.members) {
    if (!ts.isPropertySignature(member) || !member.name || !ts.isIdentifier(member.name)) continue;
    const key = member.name.text;
    declared.add(key);
    if (section.omit?.includes(key)) continue;
    const nested = section.nested?.[key];
    if (nested) {
      rows.push(...optionRows({ ...nested, prefix: `${section.prefix ?? ""}${key}.` }));
      continue;
    }
    const where = `${section.type}.${key} (${section.file})`;
    const { comment, defaultText } = jsDocOf(member);
    if (comment.trim() === "")
      throw new Error(`${where} has no JSDoc: say what it does where it is declared.`);
    const actual = section.defaults?.[key];
    checkDefault(where, defaultText, actual);
    rows.push({
      name: `\`${section.prefix ?? ""}${key}\``,
      defaultText: defaultCell(defaultText, actual, member.questionToken === undefined),
      meaning: cell(comment),
    });
  }
  for (const key of Object.keys(section.defaults ?? {})) {
    if (!declared.has(key)) throw new Error(`${section.type} (${section.file}) declares no option ${key}.`);
  }
  return rows;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

function optionTable(section: Section): string {
  const rows = optionRows(section).map((row) => [row.name, row.defaultText, row.meaning]);
  return table(["option", "default", "meaning"], rows);
}

function flagCells(flag: CliFlag): string[] {
  const stated = stateDefault(flag);
  const shown =
    stated === undefined ? "" : flag.default !== undefined || /^\d+$/.test(stated) ? `\`${stated}\`` : stated;
  return [
    cell(`\`--${flag.name}${flag.value ? ` ${flag.value}` : ""}\``),
    flag.env ? `\`${flag.env}\`` : "",
    cell(shown),
    cell(flag.help),
  ];
}

function cliTable(): string {
  const groups = [...new Set(CLI_FLAGS.map((flag) => flag.group))];
  return groups
    .map((group) => {
      const rows = CLI_FLAGS.filter((flag) => flag.group === group).map(flagCells);
      return `${GROUP_TITLES[group] ?? `${group}:`}\n\n${table(["flag", "environment", "default", "meaning"], rows)}`;
    })
    .join("\n\n");
}

function sourcesOf(name: string): string {
  if (name === CLI_TABLE) return "src/cli-flags.ts";
  const files = new Set<string>();
  const walk = (section: Section): void => {
    files.add(section.file);
    for (const nested of Object.values(section.nested ?? {})) walk(nested);
  };
  walk(OPTION_TABLES[name]!);
  return [...files].join(", ");
}

/** The body of one generated block. */
export function generate(name: string): string {
  if (name === CLI_TABLE) return cliTable();
  const section = OPTION_TABLES[name];
  if (!section) throw new Error(`No generated table is named "${name}": see OPTION_TABLES.`);
  return optionTable(section);
}

const BLOCK = /<!-- generated:([a-z-]+)(?: [^>]*)? -->[\s\S]*?<!-- \/generated:\1 -->/g;

function block(name: string): string {
  const what = name === CLI_TABLE ? "CLI_FLAGS" : "the JSDoc";
  const note = `written by npm run docs:config from ${sourcesOf(name)}; edit ${what} there, not this table`;
  return `<!-- generated:${name} — ${note} -->\n\n${generate(name)}\n\n<!-- /generated:${name} -->`;
}

/** Each generated block of `text`, by name. */
function blocksOf(text: string): Map<string, string> {
  return new Map([...text.matchAll(BLOCK)].map((match) => [match[1]!, match[0]]));
}

/** A docs file with its tables as they should be. */
export interface DocsFile {
  readonly path: string;
  readonly current: string;
  readonly expected: string;
  /** The names of the tables whose committed text differs from `expected`. */
  readonly stale: readonly string[];
}

/** Every docs/*.md file with generated tables, regenerated (in memory). */
export async function docsFiles(): Promise<DocsFile[]> {
  const names = readdirSync(DOCS).filter((file) => file.endsWith(".md"));
  const seen = new Map<string, string>();
  const files: DocsFile[] = [];
  for (const file of names) {
    const path = fileURLToPath(new URL(file, DOCS));
    const current = readFileSync(path, "utf8");
    const blocks = blocksOf(current);
    if (blocks.size === 0) continue;
    for (const name of blocks.keys()) {
      if (seen.has(name)) throw new Error(`Table "${name}" is in docs/${seen.get(name)} and docs/${file}.`);
      seen.set(name, file);
    }
    const replaced = current.replace(BLOCK, (_match, name: string) => block(name));
    const config = (await prettier.resolveConfig(path)) ?? {};
    const expected = await prettier.format(replaced, { ...config, filepath: path });
    const after = blocksOf(expected);
    const stale = [...blocks].filter(([name, text]) => after.get(name) !== text).map(([name]) => name);
    files.push({ path, current, expected, stale });
  }
  const missing = [CLI_TABLE, ...Object.keys(OPTION_TABLES)].filter((name) => !seen.has(name));
  if (missing.length > 0) {
    throw new Error(
      `No docs file has the table(s) ${missing.join(", ")}: add <!-- generated:<name> --><!-- /generated:<name> --> where each belongs.`,
    );
  }
  return files;
}

/**
 * The public calls of OpStreamBuilder (its methods without `@internal`), from
 * src/hosting/builder.ts: docs/configuration.md's builder table must name each.
 */
export function builderCalls(): string[] {
  const file = "src/hosting/builder.ts";
  const declaration = sourceFile(file).statements.find(
    (node): node is ts.ClassDeclaration =>
      ts.isClassDeclaration(node) && node.name?.text === "OpStreamBuilder",
  );
  if (!declaration) throw new Error(`${file} declares no class OpStreamBuilder.`);
  const hidden = (member: ts.ClassElement): boolean =>
    ts.getCombinedModifierFlags(member) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)
      ? true
      : ts.getJSDocTags(member).some((tag) => tag.tagName.text === "internal");
  return declaration.members
    .filter((member): member is ts.MethodDeclaration => ts.isMethodDeclaration(member))
    .filter((member) => !hidden(member) && ts.isIdentifier(member.name))
    .map((member) => (member.name as ts.Identifier).text);
}

async function main(check: boolean): Promise<void> {
  const files = await docsFiles();
  const stale = files.filter((file) => file.stale.length > 0);
  if (check) {
    for (const file of stale) process.stderr.write(`${file.path}: stale ${file.stale.join(", ")}\n`);
    if (stale.length > 0) process.stderr.write("Run npm run docs:config.\n");
    process.exitCode = stale.length > 0 ? 1 : 0;
    return;
  }
  for (const file of files) {
    if (file.expected !== file.current) writeFileSync(file.path, file.expected);
    if (file.stale.length > 0) process.stdout.write(`${file.path}: ${file.stale.join(", ")}\n`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv.includes("--check")).catch((error: unknown) => {
    process.stderr.write(`docs:config: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
