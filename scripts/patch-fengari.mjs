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
 * 3. Where a yield leaves luaV_execute (src/lvm.js). A store call that waits (Redis, the worker
 *    channel) yields, and fengari yields by throwing through luaV_execute's frame. While that
 *    frame is V8 baseline (Sparkplug) code, the unwinder maps its return address to a bytecode
 *    offset by walking the function's offset table from the start, and luaV_execute is large, with
 *    OP_CALL two thirds down its switch. A yielding loop keeps it baseline: it is entered anew on
 *    every resume and left by the throw, which skips the returns and loop back-edges where V8
 *    counts a function as hot. Measured (`node --perf-basic-prof`, perf): that walk was 38 % of a
 *    loop of `s:get` on a store answering with resolved promises, 13-14 us CPU per call. With the
 *    OP_CALL and OP_TAILCALL cases first in the switch the walk is short and the call took 6 us.
 *    Case order is no part of the semantics: every case ends in break or continue.
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

/** The first case of luaV_execute's switch once its calls were moved there. */
export const CALLS_FIRST_MARK = "/* luastore: OP_CALL and OP_TAILCALL first, so a yield's unwinding is short (scripts/patch-fengari.mjs) */";
const SWITCH = "        switch (opcode) {\n";
const CALL_CASE = "            case OP_CALL: {\n";
const AFTER_CALLS = "            case OP_RETURN: {\n";

/** Moves the OP_CALL and OP_TAILCALL cases (adjacent in fengari 0.1.5) to the head of luaV_execute's switch; returns the new text and what was done. */
export function callsFirst(text) {
  const count = (needle) => text.split(needle).length - 1;
  if (text.includes(CALLS_FIRST_MARK)) {
    if (!text.includes(`${SWITCH}            ${CALLS_FIRST_MARK}\n${CALL_CASE}`)) {
      throw new Error("fengari's lvm.js is marked as having OP_CALL first in luaV_execute, but it is not there");
    }
    return { text, state: "already first" };
  }
  const at = text.indexOf("            case OP_TAILCALL: {\n");
  if (count(SWITCH) !== 1 || count(CALL_CASE) !== 1 || count(AFTER_CALLS) !== 1 || at < text.indexOf(CALL_CASE) || text.indexOf(AFTER_CALLS) < at) {
    throw new Error(
      "expected one luaV_execute switch in fengari's lvm.js with OP_CALL, then OP_TAILCALL, then OP_RETURN: " +
        "this fengari version is not the one luastore was written against",
    );
  }
  const start = text.indexOf(CALL_CASE);
  const end = text.indexOf(AFTER_CALLS);
  const calls = text.slice(start, end);
  const rest = text.slice(0, start) + text.slice(end);
  const head = rest.indexOf(SWITCH) + SWITCH.length;
  return { text: `${rest.slice(0, head)}            ${CALLS_FIRST_MARK}\n${calls}${rest.slice(head)}`, state: "moved first" };
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
    if (file === "lvm.js") {
      const c = callsFirst(text);
      text = c.text;
      states.push(`calls ${c.state}`);
    }
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
