/** Source lines around a failure, for reports: `> 42 | test.eq(...)` with a line of context. */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

const cache = new Map<string, string[] | null>();

function linesOf(path: string): string[] | null {
  let lines = cache.get(path);
  if (lines === undefined) {
    try {
      lines = readFileSync(path, "utf8").split(/\r?\n/);
    } catch {
      lines = null;
    }
    cache.set(path, lines);
  }
  return lines;
}

/**
 * The lines `line - context .. line + context` of `file` (relative to `cwd`), numbered, the
 * failing one marked with `>`; empty when the file cannot be read.
 */
export function sourceExcerpt(file: string, line: number, cwd: string, context = 1): string[] {
  const lines = linesOf(resolve(cwd, file));
  if (lines === null || line < 1 || line > lines.length) return [];
  const first = Math.max(1, line - context);
  const last = Math.min(lines.length, line + context);
  const width = String(last).length;
  const out: string[] = [];
  for (let n = first; n <= last; n++) {
    const text = lines[n - 1]!.replace(/\t/g, "  ").trimEnd();
    out.push(`${n === line ? ">" : " "} ${String(n).padStart(width)} | ${text}`.trimEnd());
  }
  return out;
}
