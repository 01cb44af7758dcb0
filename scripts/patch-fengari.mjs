#!/usr/bin/env node
/**
 * Repairs and speeds up fengari 0.1.x at install time (run as `postinstall`).
 *
 * 1. lua_pcallk (src/lapi.js). Its continuation path saves the "hooks allowed" bit as
 *        ci.callstatus &= ~lstate.CIST_OAH | L.allowhook;
 *    which drops C Lua's parentheses (`(callstatus & ~CIST_OAH) | allowhook`): the bit is never
 *    saved, so after an error caught by pcall inside a coroutine (every luastore run is one),
 *    ldo.js's recover() restores allowhook = 0 and the count hook never fires again. That hook
 *    carries the instruction limit, the inline wall-clock limit and the memory probe, so one
 *    `pcall(error, "x")` would switch them all off. src/lua/sandbox.ts also refuses to create a
 *    sandbox on an unrepaired fengari.
 *
 * 2. Stack slots above the top. fengari clears them with `delete L.stack[i]`, which V8 runs as a
 *    runtime call on a holey array: measured, about 15 % of a loop of store calls went to the
 *    deletes in ldo.js's moveresults alone. Assigning `undefined` reads the same everywhere
 *    (`L.stack[i]` is undefined either way, the array's length is unchanged, the old value is
 *    no longer referenced) and is a plain store. Every such delete in the listed files is
 *    rewritten, and the file is marked.
 *
 * Idempotent. It fails loudly (exit 1) when it finds neither the original nor the patched text
 * in the expected number, so a fengari upgrade cannot silently undo a fix; the tests check the
 * installed copy (test/lua/hooks-after-caught-errors.test.ts, test/lua/fengari-patch.test.ts).
 * Files are written to a temp file and renamed, so a hard-linked node_modules elsewhere is not
 * changed behind its back.
 */
import { readFileSync, writeFileSync, renameSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

export const FAULTY = "ci.callstatus &= ~lstate.CIST_OAH | L.allowhook;";
export const REPAIRED = "ci.callstatus = (ci.callstatus & ~lstate.CIST_OAH) | L.allowhook; /* luastore: C Lua's parentheses */";

/** Repairs the text of lapi.js's lua_pcallk; returns the new text and what was done. */
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

/** The first line of a file whose stack-slot deletes were rewritten. */
export const SLOTS_MARK = "/* luastore: stack slots are cleared by assignment, not delete (scripts/patch-fengari.mjs) */";

/** fengari 0.1.5's files with `delete <state>.stack[...]`, and how many each has. */
export const SLOT_DELETES = { "lapi.js": 18, "ldebug.js": 1, "ldo.js": 5, "lparser.js": 1, "ltm.js": 1, "lvm.js": 3 };

const DELETE_SLOT = /\bdelete ([A-Za-z_]\w*\.stack\[[^\]\n]+\]);/g;

/** Rewrites every `delete X.stack[i];` of one file's text (`expected` of them); returns the new text and what was done. */
export function clearSlotsByAssignment(text, file, expected) {
  const found = text.match(DELETE_SLOT)?.length ?? 0;
  if (text.startsWith(SLOTS_MARK)) {
    if (found !== 0) throw new Error(`fengari's ${file} is marked as patched but still has ${found} stack-slot deletes`);
    return { text, state: "already patched" };
  }
  if (found !== expected) {
    throw new Error(
      `expected ${expected} stack-slot deletes ('delete L.stack[...]') in fengari's ${file}, found ${found}: ` +
        "this fengari version is not the one luastore was written against",
    );
  }
  return { text: `${SLOTS_MARK}\n${text.replace(DELETE_SLOT, "$1 = void 0;")}`, state: "patched" };
}

/** Patches the fengari sources in `srcDir` in place; returns what was done per file. */
export function patchFengari(srcDir) {
  const done = {};
  for (const [file, expected] of Object.entries(SLOT_DELETES)) {
    const path = join(srcDir, file);
    const original = readFileSync(path, "utf8");
    const states = [];
    let text = original;
    if (file === "lapi.js") {
      const r = repair(text);
      text = r.text;
      states.push(`lua_pcallk ${r.state}`);
    }
    const s = clearSlotsByAssignment(text, file, expected);
    text = s.text;
    states.push(`stack slots ${s.state}`);
    if (text !== original) {
      const tmp = `${path}.luastore-tmp`;
      writeFileSync(tmp, text);
      renameSync(tmp, path);
    }
    done[file] = states.join(", ");
  }
  return done;
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain) {
  const require = createRequire(import.meta.url);
  const srcDir = process.argv[2] ?? join(dirname(require.resolve("fengari/package.json")), "src");
  try {
    const done = patchFengari(srcDir);
    for (const [file, state] of Object.entries(done)) console.log(`luastore: fengari ${file}: ${state}`);
  } catch (err) {
    console.error(`luastore: cannot patch fengari: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
