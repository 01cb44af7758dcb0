/**
 * What `luastore test --coverage` reports (./coverage.ts collects it): the summary the reporters
 * print as a table and the JSON report carries, and the lcov tracefile. Apart from the collector
 * so that the reporters load no fengari internals.
 */

/** One file's lines: every executable line with the times it ran (0: never). */
export interface FileCoverage {
  /** Path relative to the working directory, as reports name it. */
  file: string;
  /** Executable line → hits, in line order. */
  lines: Map<number, number>;
}

export interface CoverageTotals {
  /** Executable lines. */
  lines: number;
  /** Executable lines that ran at least once. */
  covered: number;
  /** covered / lines × 100 (100 for a file without executable lines). */
  percent: number;
}

export interface CoverageSummary extends CoverageTotals {
  files: (CoverageTotals & { file: string; uncovered: number[] })[];
}

/** The summary as a table for the terminal: file, lines, covered, %, and a total row. */
export function coverageTable(summary: CoverageSummary): string {
  const rows = [
    ["file", "lines", "covered", "%"],
    ...summary.files.map((f) => [f.file, String(f.lines), String(f.covered), f.percent.toFixed(1)]),
    ["all files", String(summary.lines), String(summary.covered), summary.percent.toFixed(1)],
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]): string => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ");
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(rows[0]!), rule, ...rows.slice(1, -1).map(line), rule, line(rows.at(-1)!)].map((l) => `${l.trimEnd()}\n`).join("");
}

/** The files as an lcov tracefile (SF, DA per executable line, LF, LH, end_of_record), for editors and CI. */
export function lcov(files: readonly FileCoverage[]): string {
  let out = "";
  for (const { file, lines } of files) {
    out += `TN:\nSF:${file}\n`;
    let hit = 0;
    for (const [line, n] of lines) {
      out += `DA:${line},${n}\n`;
      if (n > 0) hit++;
    }
    out += `LF:${lines.size}\nLH:${hit}\nend_of_record\n`;
  }
  return out;
}
