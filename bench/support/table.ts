/** The results tables: per scenario, each target's medians and their ratio to opstream's; any grid. */
import type { Repetition, Scenario } from "../scenarios/scenario.js";
import { median } from "./histogram.js";

const fmt = (n: number): string =>
  !Number.isFinite(n)
    ? "–"
    : Math.abs(n) >= 100
      ? n.toFixed(0)
      : Math.abs(n) >= 10
        ? n.toFixed(1)
        : n.toFixed(2);

/**
 * Prints `scenario`'s table: one row per target, each cell "median (×ratio)" where the
 * ratio is target / opstream (the opstream target of the same node count when it ran).
 */
export function printTable(
  scenario: Scenario,
  results: readonly Repetition[],
  log: (line: string) => void,
): void {
  const mine = results.filter((r) => r.scenario === scenario.name);
  const targets = [...new Set(mine.map((r) => r.target))];
  if (targets.length === 0) return;
  const medians = new Map(
    targets.map((target) => {
      const runs = mine.filter((r) => r.target === target && r.numbers);
      const values = scenario.metrics.map((m) => median(runs.map((r) => r.numbers?.[m.key] ?? NaN)));
      const failed = mine.filter((r) => r.target === target).length - runs.length;
      const unaccepted = runs.filter((r) => r.accepted === false).length;
      return [target, { values, ok: runs.length, failed, unaccepted }];
    }),
  );
  const reference = medians.get(targets.find((t) => t.startsWith("opstream")) ?? "");
  const head = [
    "target",
    "runs",
    ...scenario.metrics.map((m) => `${m.label} (${m.better === "lower" ? "↓" : "↑"})`),
  ];
  const rows = targets.map((target) => {
    const { values, ok, failed, unaccepted } = medians.get(target)!;
    const cells = values.map((value, i) => {
      const base = scenario.metrics[i]?.check ? undefined : reference?.values[i];
      const ratio =
        base !== undefined && Number.isFinite(base) && Number.isFinite(value) && base !== 0
          ? ` (×${fmt(value / base)})`
          : "";
      return `${fmt(value)}${ratio}`;
    });
    const runs = [
      String(ok),
      failed ? `+${failed} failed` : "",
      unaccepted ? ` (${unaccepted} not admitted)` : "",
    ];
    return [target, runs.join(""), ...cells];
  });
  log("");
  log(`${scenario.name}: ${scenario.description} (medians; ×ratio to opstream)`);
  printGrid(head, rows, log);
}

/** After a calibrated scenario's table: the calibration target's p99, the floor the others are read against. */
export function printCalibration(
  scenario: Scenario,
  results: readonly Repetition[],
  calibration: string,
  log: (line: string) => void,
): void {
  const runs = results.filter((r) => r.scenario === scenario.name && r.target === calibration && r.numbers);
  const p99 = median(runs.map((r) => r.numbers?.p99 ?? NaN));
  if (!Number.isFinite(p99)) return;
  log(
    `calibration: ${calibration}'s p99 is ${fmt(p99)} ms, what the generator, loopback and a ` +
      `forwarder that keeps nothing cost together; read the servers' p99 against it`,
  );
}

/** Lists rejected attempts and the problems of each repetition (lost tokens, closed sockets). */
export function printNotes(results: readonly Repetition[], log: (line: string) => void): void {
  const rejected = results.flatMap((r) =>
    (r.rejected ?? []).map(
      (x) => `${r.scenario} ${r.target} rep ${r.rep} attempt ${x.attempt}: ${x.reasons.join("; ")}`,
    ),
  );
  const problems = results.flatMap((r) =>
    (r.problems ?? []).map((p) => `${r.scenario} ${r.target} rep ${r.rep}: ${p}`),
  );
  if (rejected.length > 0) {
    log(
      '\nrejected attempts (each run again on fresh processes; "not admitted" in a table: every attempt was rejected):',
    );
    for (const line of rejected) log(`  ${line}`);
  }
  if (problems.length > 0) {
    log("\nPROBLEMS (the run fails):");
    for (const line of problems) log(`  ${line}`);
  }
}

/** Prints `head`, a rule and `rows` as aligned columns: the first left-aligned, the rest (numbers) right-aligned. */
export function printGrid(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  log: (line: string) => void,
): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  log(line(head));
  log(line(widths.map((w) => "-".repeat(w))));
  for (const row of rows) log(line(row));
}
