/** Finding test files, and the Lua modules a test file may require from its directory. */
import { readdirSync, statSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import { OptionsError } from "../errors.js";

/** A Lua test file: where it is, and how reports name it. */
export interface TestFile {
  /** Absolute path. */
  path: string;
  /** Path relative to the working directory, with `/` separators (also the Lua chunk name). */
  display: string;
}

export const TEST_FILE_SUFFIX = "_test.lua";

/** Directories never searched: dependencies and hidden folders. */
export function skipDirectory(name: string): boolean {
  return name === "node_modules" || name.startsWith(".");
}

export function displayPath(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return (rel === "" ? path : rel).split(sep).join("/");
}

function walk(dir: string, visit: (path: string, name: string) => void): void {
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = resolve(dir, entry.name);
    if (entry.isDirectory()) {
      if (!skipDirectory(entry.name)) walk(path, visit);
    } else if (entry.isFile()) {
      visit(path, entry.name);
    }
  }
}

/**
 * The `*_test.lua` files under `paths` (files are taken as given), sorted by display path.
 * A path that does not exist is an OptionsError.
 */
export function discoverTestFiles(paths: readonly string[], cwd: string = process.cwd()): TestFile[] {
  const found = new Map<string, TestFile>();
  for (const given of paths) {
    const path = resolve(cwd, given);
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch {
      throw new OptionsError(`no such file or directory: ${given}`);
    }
    if (!isDirectory) {
      found.set(path, { path, display: displayPath(path, cwd) });
      continue;
    }
    walk(path, (file, name) => {
      if (name.endsWith(TEST_FILE_SUFFIX)) found.set(file, { path: file, display: displayPath(file, cwd) });
    });
  }
  return [...found.values()].sort((a, b) => (a.display < b.display ? -1 : a.display > b.display ? 1 : 0));
}

const MODULE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
/** Enough for any real script folder; a test file at the root of a huge tree stops here. */
const MAX_MODULE_FILES = 10_000;

/**
 * The Lua modules next to a test file: every `.lua` file under its directory except test
 * files, named like Lua's package path would (`lib/util.lua` → `lib.util`). Names in
 * `reserved` (the host's modules) are left out, so a file cannot shadow `store`.
 */
export function findScriptModules(
  testFile: string,
  cwd: string,
  reserved: ReadonlySet<string>,
): Map<string, { path: string; display: string }> {
  const dir = dirname(testFile);
  const modules = new Map<string, { path: string; display: string }>();
  let seen = 0;
  try {
    walk(dir, (path, name) => {
      if (++seen > MAX_MODULE_FILES) throw new RangeError("too many files");
      if (!name.endsWith(".lua") || name.endsWith(TEST_FILE_SUFFIX)) return;
      const moduleName = relative(dir, path).slice(0, -".lua".length).split(sep).join(".");
      if (!MODULE_NAME.test(moduleName) || reserved.has(moduleName)) return;
      modules.set(moduleName, { path, display: displayPath(path, cwd) });
    });
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
  }
  return modules;
}
