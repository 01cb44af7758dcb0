/**
 * `luastore test --watch`: runs the test files, then re-runs the ones a change touches: a test
 * file that changed, the files that required a changed module (each run records which script
 * modules a file required, ./results.ts `modules`), every file when the registry or the policies
 * changed. Bursts of events (an editor's save is often several) are gathered until the tree has
 * been quiet for `debounceMs`; a change during a run waits for the run to end.
 */
import { readdirSync, statSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";
import { LuastoreError } from "../errors.js";
import { discoverTestFiles, displayPath, skipDirectory, type TestFile } from "./discover.js";
import type { FileResult, RunSummary } from "./results.js";

export interface WatchOptions {
  /** What was given on the command line (test files and directories), relative to `cwd`. */
  paths: readonly string[];
  cwd: string;
  /** Files or directories whose change re-runs every test file (the registry, the policies). */
  configPaths?: readonly string[];
  /** Runs test files once and reports them (the command's usual run). */
  runFiles: (files: readonly TestFile[]) => Promise<RunSummary>;
  /** Status lines (what changed, what is re-run, that it is watching). */
  status: (text: string) => void;
  /** Reports an error that is not a test result (a configuration that no longer loads). */
  error: (err: unknown) => void;
  /** Ends the watch: no new run starts, the watchers close. */
  signal: AbortSignal;
  /** Quiet time that ends a burst of changes, in ms. @default 100 */
  debounceMs?: number;
}

/** True when `path` is `dir` or inside it. */
function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Directories to watch recursively: every given directory and every test file's directory (its modules' scope), nested ones dropped. */
function watchRoots(paths: readonly string[], files: readonly TestFile[], cwd: string): string[] {
  const dirs = new Set<string>(files.map((f) => dirname(f.path)));
  for (const given of paths) {
    const path = resolve(cwd, given);
    if (!files.some((f) => f.path === path)) dirs.add(path);
  }
  const sorted = [...dirs].sort((a, b) => a.length - b.length);
  return sorted.filter((dir, i) => !sorted.slice(0, i).some((outer) => within(dir, outer)));
}

/** Watches until `signal` aborts; resolves once the watchers are closed and no run is in progress. */
export async function watchTests(options: WatchOptions): Promise<void> {
  const { cwd, signal } = options;
  const debounceMs = options.debounceMs ?? 100;
  const configPaths = (options.configPaths ?? []).map((p) => resolve(cwd, p));
  /** The script modules each test file (by path) required in its last run. */
  const required = new Map<string, ReadonlySet<string>>();
  /** Test files whose last run failed outside any test (a module missing, a compile error). */
  const broken = new Set<string>();
  let files: TestFile[] = [];
  const pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const record = (results: readonly FileResult[], ran: readonly TestFile[]): void => {
    const byDisplay = new Map(ran.map((f) => [f.display, f.path]));
    for (const result of results) {
      const path = byDisplay.get(result.file);
      if (path === undefined) continue;
      required.set(path, new Set(result.modules ?? []));
      if (result.error !== undefined) broken.add(path);
      else broken.delete(path);
    }
  };

  const run = async (toRun: readonly TestFile[]): Promise<void> => {
    try {
      const summary = await options.runFiles(toRun);
      record(summary.files, toRun);
    } catch (err) {
      if (!(err instanceof LuastoreError)) throw err;
      options.error(err);
    }
  };

  /** The test files a set of changed paths touches. */
  const affected = (changed: ReadonlySet<string>): TestFile[] => {
    if ([...changed].some((path) => configPaths.some((config) => within(path, config)))) return files;
    return files.filter((file) => {
      for (const path of changed) {
        if (path === file.path) return true;
        if (required.get(file.path)?.has(path)) return true;
        // A module the file could not find before may be the one that appeared.
        if (broken.has(file.path) && path.endsWith(".lua") && within(path, dirname(file.path))) return true;
      }
      return false;
    });
  };

  const rerun = async (): Promise<void> => {
    while (pending.size > 0 && !signal.aborted) {
      const changed = new Set(pending);
      pending.clear();
      const known = new Set(files.map((f) => f.path));
      try {
        files = discoverTestFiles(options.paths, cwd);
      } catch (err) {
        if (!(err instanceof LuastoreError)) throw err;
        options.error(err);
        continue;
      }
      // A test file that appeared runs too; one that went away is forgotten.
      for (const file of files) if (!known.has(file.path)) changed.add(file.path);
      for (const path of known) if (!files.some((f) => f.path === path)) required.delete(path);
      const toRun = affected(changed);
      if (toRun.length === 0) continue;
      const names = [...changed].map((p) => displayPath(p, cwd)).join(", ");
      options.status(`\nchanged: ${names}\nre-running: ${toRun.map((f) => f.display).join(", ")}\n`);
      await run(toRun);
      watching();
    }
  };

  const watching = (): void => {
    if (!signal.aborted) options.status(`watching ${files.length} test file(s) and the modules they require (Ctrl-C to stop)\n`);
  };

  /**
   * One non-recursive watcher per directory: Node 20's recursive fs.watch on Linux misses a file
   * replaced a second time by rename (as editors save), so directories are walked here instead,
   * and a directory that appears is watched when its event arrives.
   */
  const watched = new Map<string, FSWatcher>();
  const watchDirectory = (dir: string): void => {
    if (watched.has(dir) || signal.aborted) return;
    try {
      const watcher = watch(dir, (_event, filename) => onEvent(dir, filename));
      watcher.on("error", () => {
        // The directory went away: forget it, so that one made again under its name is watched anew.
        watcher.close();
        watched.delete(dir);
      });
      watched.set(dir, watcher);
    } catch {
      // Gone, or not readable: nothing there can change a test's result.
    }
  };
  const watchTree = (dir: string): void => {
    watchDirectory(dir);
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.isDirectory() && !skipDirectory(entry.name)) watchTree(join(dir, entry.name));
    }
  };

  const onEvent = (dir: string, filename: string | Buffer | null): void => {
    if (filename === null) return;
    const path = resolve(dir, filename.toString());
    if (!watched.has(path) && !skipDirectory(basename(path)) && isDirectory(path)) {
      // A new folder (or one moved in): its files are module candidates too.
      watchTree(path);
      return;
    }
    const isConfig = configPaths.some((config) => within(path, config));
    if (!isConfig && !path.endsWith(".lua")) return;
    pending.add(path);
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (running === undefined) {
        running = rerun().finally(() => {
          running = undefined;
        });
      }
      // During a run the path waits in `pending`: rerun's loop takes it when the run ends.
    }, debounceMs);
  };

  files = discoverTestFiles(options.paths, cwd);
  await run(files);
  if (signal.aborted) return;

  const roots = watchRoots(options.paths, files, cwd);
  for (const root of roots) watchTree(root);
  for (const config of configPaths) {
    if (roots.some((root) => within(config, root))) continue;
    // A policy directory is watched whole; a file through its directory (editors replace files on save).
    if (isDirectory(config)) watchTree(config);
    else watchDirectory(dirname(config));
  }
  watching();

  await new Promise<void>((done) => {
    if (signal.aborted) done();
    else signal.addEventListener("abort", () => done(), { once: true });
  });
  clearTimeout(timer);
  for (const watcher of watched.values()) watcher.close();
  await running;
}
