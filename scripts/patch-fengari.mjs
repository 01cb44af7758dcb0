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
 * 4. luaL_Buffer (src/lauxlib.js), what string.format, gsub, rep, concat, upper... build their
 *    result in. luaL_addchar asked luaL_prepbuffsize for a view of the one byte it writes, and
 *    threw the view away; luaL_addlstring took two views per call; an empty buffer grew one byte
 *    at a time (1, 2, 4, 8...). Measured: about 7 % of a 200-line plugin's run, mostly those
 *    views and the garbage they make. The patched functions write into the buffer in place, grow
 *    it from 32 bytes, and still change `B.n` only through ordinary assignments (the string
 *    limit watches it through an accessor, src/lua/string-limit.ts), so the limit sees every
 *    byte exactly as before.
 *
 * 5. A method call on a userdata (src/lvm.js's OP_SELF, `s:get(k)` on a store handle). fengari looks
 *    the method up the generic way every call: luaV_gettable, luaT_gettmbyobj, then two Map lookups
 *    under string keys ("__index" in the metatable, the method's name in the __index table), each
 *    comparing the key's characters. Measured: those lookups were 13 % of a loop of `s:get`, and the
 *    call of a method that only echoes cost 1.5 calls of a local function. Each OP_SELF instruction
 *    now remembers what it found on a userdata whose metatable's __index is a table: the metatable,
 *    the key, and the two table entries (fengari's entry objects, not copies). An entry's value is
 *    read through the entry at every call, so the cache needs no invalidation: fengari changes a
 *    live entry's value in place (or gives it a new value cell) and marks a removed entry by
 *    clearing its value, and a key set again gets a new entry. A call takes the remembered method
 *    only when the userdata's metatable and the key are the same objects, both entries are still
 *    live, __index still holds the same table and the method is not nil: exactly when the generic
 *    lookup would find it there without calling anything. Otherwise the generic lookup runs as
 *    before (the error for a missing method too). Only host code can give a userdata a metatable
 *    (the sandbox has no debug library), so what an instruction remembers is the host's; a
 *    store handle's metatable is one per thread, shared by every run (src/lua/sandbox.ts).
 *    Instructions get the (null) cache field where fengari makes them (lopcodes.js's fullins,
 *    lundump.js's LoadCode), so every instruction keeps one shape.
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

/** The first line of luaL_prepbuffsize once patched: what marks lauxlib.js's buffer functions as done. */
export const BUFFER_MARK = "/* luastore: luaL_Buffer writes in place, no view per call (scripts/patch-fengari.mjs) */";

/** The line above OP_SELF's cache helper in lvm.js once patched. */
export const SELF_CACHE_MARK = "/* luastore: OP_SELF on a userdata remembers the method it found (scripts/patch-fengari.mjs) */";

/**
 * fengari 0.1.5's text of each piece rewritten (exactly as installed) and its replacement, by
 * file: luaL_Buffer's functions (4 above; every `B.n` change stays an assignment, so the string
 * limit's accessor sees it) and OP_SELF's cache (5 above).
 */
export const FUNCTION_PATCHES = {
  "lauxlib.js": [
    [
      `const luaL_prepbuffsize = function(B, sz) {
    let newend = B.n + sz;
    if (B.b.length < newend) {
        let newsize = Math.max(B.b.length * 2, newend);  /* double buffer size */
        let newbuff = new Uint8Array(newsize);  /* create larger buffer */
        newbuff.set(B.b);  /* copy original content */
        B.b = newbuff;
    }
    return B.b.subarray(B.n, newend);
};`,
      `${BUFFER_MARK}
const luastore_growbuffer = function(B, newend) {
    let newsize = Math.max(B.b.length * 2, newend, 32);  /* double buffer size; C Lua's starts at LUAL_BUFFERSIZE */
    let newbuff = new Uint8Array(newsize);  /* create larger buffer */
    newbuff.set(B.b);  /* copy original content */
    B.b = newbuff;
};

const luaL_prepbuffsize = function(B, sz) {
    let n = B.n;
    let newend = n + sz;
    if (B.b.length < newend) luastore_growbuffer(B, newend);
    return B.b.subarray(n, newend);
};`,
    ],
    [
      `const luaL_addlstring = function(B, s, l) {
    if (l > 0) {
        s = from_userstring(s);
        let b = luaL_prepbuffsize(B, l);
        b.set(s.subarray(0, l));
        luaL_addsize(B, l);
    }
};`,
      `const luaL_addlstring = function(B, s, l) {
    if (l > 0) {
        s = from_userstring(s);
        let n = B.n;
        if (B.b.length < n + l) luastore_growbuffer(B, n + l);
        let b = B.b;
        if (l <= 16) { for (let i = 0; i < l; i++) b[n + i] = s[i]; }  /* a short copy costs less in JS than set() */
        else b.set(l === s.length ? s : s.subarray(0, l), n);
        B.n = n + l;
    }
};`,
    ],
    [
      `const luaL_addchar = function(B, c) {
    luaL_prepbuffsize(B, 1);
    B.b[B.n++] = c;
};`,
      `const luaL_addchar = function(B, c) {
    let n = B.n;
    if (B.b.length <= n) luastore_growbuffer(B, n + 1);
    B.b[n] = c;
    B.n = n + 1;
};`,
    ],
  ],
  "lvm.js": [
    [
      `const luaV_execute = function(L) {`,
      `${SELF_CACHE_MARK}
const luastore_selfmiss = function(L, i, mt, key) {
    let c = i.luastore_ic;
    if (c) c.mt = void 0;  /* forget the last one (undefined: a userdata with no metatable has null) */
    if (mt === null || !key.ttisstring()) return;
    let ie = mt.strong.get(luaS_hashlongstr(L.l_G.tmname[ltm.TMS.TM_INDEX]));
    if (ie === void 0 || ie.value.type !== LUA_TTABLE) return;
    let idx = ie.value.value;
    let me = idx.strong.get(luaS_hashlongstr(key.value));
    if (me === void 0 || me.value.type === LUA_TNIL) return;
    if (!c) i.luastore_ic = { mt: mt, key: key.value, ie: ie, idx: idx, me: me };
    else { c.mt = mt; c.key = key.value; c.ie = ie; c.idx = idx; c.me = me; }
};

const luaV_execute = function(L) {`,
    ],
    [
      `            case OP_SELF: {
                let rb = RB(L, base, i);
                let rc = RKC(L, base, k, i);
                lobject.setobjs2s(L, ra + 1, rb);
                luaV_gettable(L, L.stack[rb], rc, ra);
                break;
            }`,
      `            case OP_SELF: {
                let rb = RB(L, base, i);
                let rc = RKC(L, base, k, i);
                let o = L.stack[rb];
                lobject.setobjs2s(L, ra + 1, rb);
                if (o.type === LUA_TUSERDATA) {  /* luastore: the method this instruction found last, if it still holds */
                    let c = i.luastore_ic;
                    if (c != null && c.mt === o.value.metatable && c.key === rc.value) {
                        let iv = c.ie.value;
                        let mv = c.me.value;
                        if (iv !== void 0 && iv.value === c.idx && mv !== void 0 && mv.type !== LUA_TNIL) {
                            lobject.setobj2s(L, ra, mv);
                            break;
                        }
                    }
                    luastore_selfmiss(L, i, o.value.metatable, rc);
                }
                luaV_gettable(L, o, rc, ra);
                break;
            }`,
    ],
  ],
  "lopcodes.js": [
    [
      `            sBx:    ((ins >> POS_Bx) & MASK1(SIZE_Bx, 0)) - MAXARG_sBx
        };`,
      `            sBx:    ((ins >> POS_Bx) & MASK1(SIZE_Bx, 0)) - MAXARG_sBx,
            luastore_ic: null  /* luastore: OP_SELF's cache (scripts/patch-fengari.mjs) */
        };`,
    ],
  ],
  "lundump.js": [
    [
      `                sBx:    ((ins >> POS_Bx) & p.MASK1(SIZE_Bx, 0)) - MAXARG_sBx
            };`,
      `                sBx:    ((ins >> POS_Bx) & p.MASK1(SIZE_Bx, 0)) - MAXARG_sBx,
                luastore_ic: null  /* luastore: OP_SELF's cache (scripts/patch-fengari.mjs) */
            };`,
    ],
  ],
};

/** Applies one file's function patches to its text (each original found exactly once, or every replacement already there). */
export function patchFunctions(text, file, patches) {
  const done = patches.filter(([, patched]) => text.includes(patched)).length;
  if (done === patches.length) return { text, state: "already patched" };
  if (done !== 0) throw new Error(`fengari's ${file} has ${done} of its ${patches.length} function patches: patch a clean copy`);
  for (const [original] of patches) {
    const count = text.split(original).length - 1;
    if (count !== 1) {
      throw new Error(
        `expected the function '${original.split("\n")[0]}' exactly once in fengari's ${file}, found it ${count} times: ` +
          "this fengari version is not the one luastore was written against",
      );
    }
  }
  for (const [original, patched] of patches) text = text.replace(original, () => patched);
  return { text, state: "patched" };
}

/** Patches the fengari sources in `srcDir` in place; returns what was done per file. */
export function patchFengari(srcDir) {
  const done = {};
  const files = new Set([...Object.keys(SLOT_DELETES), ...Object.keys(FUNCTION_PATCHES)]);
  for (const file of files) {
    const path = join(srcDir, file);
    const original = readFileSync(path, "utf8");
    const states = [];
    let text = original;
    if (file === "lapi.js") {
      const r = repair(text);
      text = r.text;
      states.push(`lua_pcallk ${r.state}`);
    }
    const expected = SLOT_DELETES[file];
    if (expected !== undefined) {
      const s = clearSlotsByAssignment(text, file, expected);
      text = s.text;
      states.push(`stack slots ${s.state}`);
    }
    const patches = FUNCTION_PATCHES[file];
    if (patches !== undefined) {
      const f = patchFunctions(text, file, patches);
      text = f.text;
      states.push(`functions ${f.state}`);
    }
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
