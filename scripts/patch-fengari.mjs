#!/usr/bin/env node
/**
 * Repairs fengari 0.1.x's lua_pcallk (src/lapi.js) at install time.
 *
 * Its continuation path saves the "hooks allowed" bit as
 *     ci.callstatus &= ~lstate.CIST_OAH | L.allowhook;
 * which drops C Lua's parentheses (`(callstatus & ~CIST_OAH) | allowhook`): the bit is never
 * saved, so after an error caught by pcall inside a coroutine (every luastore run is one),
 * ldo.js's recover() restores allowhook = 0 and the count hook never fires again. That hook
 * carries the instruction limit, the inline wall-clock limit and the memory probe, so one
 * `pcall(error, "x")` would switch them all off.
 *
 * The script rewrites that one line and is idempotent. It fails loudly (exit 1) when it finds
 * neither the faulty nor the repaired line, so a fengari upgrade cannot silently undo the fix;
 * src/lua/sandbox.ts also refuses to create a sandbox on an unrepaired fengari.
 */
import { readFileSync, writeFileSync, renameSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

export const FAULTY = "ci.callstatus &= ~lstate.CIST_OAH | L.allowhook;";
export const REPAIRED = "ci.callstatus = (ci.callstatus & ~lstate.CIST_OAH) | L.allowhook; /* luastore: C Lua's parentheses */";

/** Repairs the text of lapi.js; returns the new text and what was done. */
export function repair(text) {
  if (text.includes(REPAIRED) && !text.includes(FAULTY)) return { text, state: "already repaired" };
  const count = text.split(FAULTY).length - 1;
  if (count !== 1) {
    throw new Error(
      `expected exactly one line '${FAULTY}' in fengari's lapi.js, found ${count}: ` +
        "this fengari version is not the one luastore was written against; check lua_pcallk by hand",
    );
  }
  return { text: text.replace(FAULTY, REPAIRED), state: "repaired" };
}

/** Repairs the lapi.js at `file` in place (write to a temp file, then rename). */
export function repairFile(file) {
  const { text, state } = repair(readFileSync(file, "utf8"));
  if (state === "repaired") {
    const tmp = `${file}.luastore-tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  }
  return state;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const require = createRequire(import.meta.url);
  const file = process.argv[2] ?? join(dirname(require.resolve("fengari/package.json")), "src", "lapi.js");
  try {
    const state = repairFile(file);
    console.log(`luastore: fengari lua_pcallk ${state} (${file})`);
  } catch (err) {
    console.error(`luastore: cannot repair fengari: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
