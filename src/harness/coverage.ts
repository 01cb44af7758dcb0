/**
 * Line coverage of the Lua under test (`luastore test --coverage`): the test files and the script
 * modules they require, never luastore's own Lua (the harness driver, configured modules).
 *
 * Which lines can run is read from the compiled prototypes of each chunk as it loads, recursively:
 * a line is executable when an instruction was compiled from it, except the `return` the compiler
 * adds at every function's end (an `end` that only closes a function whose every path returns
 * would otherwise never count as run). Which lines ran comes from the debug line hook, which
 * shares one hook function with the count hook that enforces the run's limits
 * (../lua/control.ts `installLineHook`), so the limits hold exactly as without coverage.
 */
import type { lua_Debug, lua_State } from "fengari";
import { hookProto, loadedProto, type ProtoLines } from "../lua/internals.js";
import type { CoverageSummary, CoverageTotals, FileCoverage } from "./coverage-report.js";

interface ProtoCoverage {
  lines: ReadonlySet<number>;
  hits: Map<number, number>;
}

/** Collects hits over every file's run of one `luastore test`. */
export class CoverageCollector {
  readonly #files = new Map<string, Map<number, number>>();
  /** The prototypes of chunks under test (of every run so far), each with its own executable lines. */
  readonly #protos = new WeakMap<ProtoLines, ProtoCoverage>();

  /** Registers the chunk just compiled at the top of `L` as file `file` (its lines join the file's). */
  addChunk(L: lua_State, file: string): void {
    let hits = this.#files.get(file);
    if (hits === undefined) this.#files.set(file, (hits = new Map()));
    const visit = (proto: ProtoLines): void => {
      const lines = new Set<number>();
      // The last instruction is the compiler's implicit final return.
      for (let pc = 0; pc < proto.lineinfo.length - 1; pc++) lines.add(proto.lineinfo[pc]!);
      for (const line of lines) if (!hits.has(line)) hits.set(line, 0);
      this.#protos.set(proto, { lines, hits });
      for (const child of proto.p) visit(child);
    };
    visit(loadedProto(L));
  }

  /** The line hook's half: counts `ar.currentline` when it is an executable line of a chunk under test. */
  onLine(ar: lua_Debug): void {
    const proto = this.#protos.get(hookProto(ar));
    if (proto === undefined || !proto.lines.has(ar.currentline)) return;
    proto.hits.set(ar.currentline, proto.hits.get(ar.currentline)! + 1);
  }

  /** Every file seen, sorted by path, lines sorted. */
  files(): FileCoverage[] {
    return [...this.#files]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([file, hits]) => ({ file, lines: new Map([...hits].sort(([a], [b]) => a - b)) }));
  }

  summary(): CoverageSummary {
    const files = this.files().map(({ file, lines }) => {
      const uncovered = [...lines].filter(([, n]) => n === 0).map(([line]) => line);
      return { file, ...totals(lines.size, lines.size - uncovered.length), uncovered };
    });
    const all = files.reduce((sum, f) => sum + f.lines, 0);
    const covered = files.reduce((sum, f) => sum + f.covered, 0);
    return { ...totals(all, covered), files };
  }
}

function totals(lines: number, covered: number): CoverageTotals {
  return { lines, covered, percent: lines === 0 ? 100 : Math.floor((covered / lines) * 1000) / 10 };
}
