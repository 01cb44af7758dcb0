/**
 * Where the worker threads' entry scripts are.
 *
 * A worker_thread needs JavaScript. Built (dist/, what `bin/luastore.js` and package users
 * run), the entries sit in the folders beside this file's. Run from the TypeScript sources
 * (vitest), there is no JavaScript beside it, so workers load the build in
 * `<package root>/dist/runtime/`:
 * `npm test` builds first. A build older than the runtime's own sources (src/runtime, src/lua:
 * the thread protocol and the sandbox) is refused with an error that says so, rather than
 * mixing a host thread from the sources with workers from an older protocol.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Each thread's entry script, relative to src/runtime (and dist/runtime). */
const ENTRIES = { "lua-worker": "worker/lua-worker", "store-thread": "store-thread/store-thread" } as const;

export type RuntimeEntry = keyof typeof ENTRIES;

let checkedBuild: string | null = null;

/** Source folders whose build must be current: the thread protocol and the sandbox. */
const CHECKED = ["runtime", "lua"];

/** Newest modification time of the .ts files under `dir`. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** The URL of a compiled runtime entry script. */
export function runtimeEntry(name: RuntimeEntry): URL {
  const here = new URL(import.meta.url);
  if (here.pathname.endsWith(".js")) return new URL(`../${ENTRIES[name]}.js`, here);
  const root = new URL("../../../", here);
  const entry = new URL(`dist/runtime/${ENTRIES[name]}.js`, root);
  const file = fileURLToPath(entry);
  if (checkedBuild !== file) {
    if (!existsSync(file)) {
      throw new Error(`worker isolation from TypeScript sources needs the build: ${file} is missing (run \`npm run build\`)`);
    }
    const built = statSync(file).mtimeMs;
    const src = fileURLToPath(new URL("src/", root));
    if (Math.max(...CHECKED.map((dir) => newestSource(join(src, dir)))) > built) {
      throw new Error(`worker isolation from TypeScript sources: ${file} is older than src/runtime or src/lua (run \`npm run build\`)`);
    }
    checkedBuild = file;
  }
  return entry;
}
