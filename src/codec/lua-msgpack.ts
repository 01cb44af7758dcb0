/**
 * MessagePack ⇄ Lua stack: how stored values cross the Lua/host boundary.
 *
 * A value is encoded straight from the Lua stack to MessagePack bytes and decoded straight back
 * into fresh Lua tables, with no JS object in between. The same bytes are what the stores keep
 * and what later crosses to worker threads, SQLite BLOBs and Redis, so they must mean one thing
 * to every reader.
 *
 * ## Format
 * | Lua value            | encoded as                                   | decoded from                         |
 * |----------------------|----------------------------------------------|--------------------------------------|
 * | boolean              | true / false                                 | true / false                         |
 * | integer              | smallest int form (fixint, uint8..32, int8..32) | any int in `[-2^31, 2^31)`        |
 * | float                | always float64 (1.0, -0.0, inf, nan survive) | float64, float32, and int64/uint64 outside int32 |
 * | string               | str family with the raw bytes (may be non-UTF-8, may hold `\0`) | str or bin      |
 * | table with keys 1..n | array                                        | array                                |
 * | any other table      | map (keys: strings, integers, floats)        | map                                  |
 * | —                    | —                                            | nil: a nil value; map entries with a nil value are dropped |
 *
 * - `math.type` survives: fengari integers are 32-bit, so every integer fits an int form, and
 *   floats are never narrowed to an int or to float32 by the encoder.
 * - An empty table encodes as an empty map (`0x80`).
 * - Refused (a {@link CodecError} naming the path, e.g. `value.profile.cb: functions cannot be
 *   stored`): nil at the top, functions, userdata, light userdata, threads, keys other than strings
 *   and numbers, cyclic tables, tables nested deeper than {@link MAX_DEPTH}, and values whose
 *   encoding would exceed `maxBytes` (encoding stops as soon as the limit is crossed).
 * - Metatables are ignored: tables are read and built raw, no metamethod ever runs (untrusted
 *   scripts must not get a callback in the middle of a store operation).
 * - Decoding builds new tables every time: a stored value is a snapshot.
 *
 * ## fengari internals
 * The hot paths go under fengari's public API, each behind a small documented function
 * (measured against the public-API equivalent: 3x faster decode of a 5-field table, and a
 * full encode cheaper than a bare `lua_next` walk):
 * - {@link encodeTable} walks a table's entry list (`Table.f`/`entry.n`, `Table.strong`) instead
 *   of `lua_next`, which allocates a stack slot and rehashes the key for every entry.
 * - Decoding builds tables off-stack: `luaH_new`, then {@link appendEntry} links each entry the
 *   way fengari's own `add` does, minus its `Map#clear()` of the (empty) dead-key maps, which
 *   V8 makes allocate a new table every time (~65 ns per field; `lua_rawset` and a Lua table
 *   constructor pay it). Long strings are zero-copy views of the input ({@link wrapString})
 *   where `lua_pushstring` would copy; short strings, keys and values alike, come from a cache
 *   of immutable TStrings ({@link internString}).
 * The internal types are declared in src/lua/fengari-internals.d.ts.
 */
import { lua, type lua_State } from "fengari";
import { constant_types } from "fengari/src/defs.js";
import { pushobj2s, pushsvalue2s, TValue } from "fengari/src/lobject.js";
import { luaS_bless, luaS_hashlongstr, type TString } from "fengari/src/lstring.js";
import { invalidateTMcache, luaH_new, luaH_setfrom, type Table } from "fengari/src/ltable.js";
import { CodecError } from "./codec-error.js";
import { MsgpackWriter } from "./msgpack-writer.js";
import { bytesKeySegment, numberKeySegment } from "./value-path.js";

/** Tables may nest this deep (the top-level table counts as 1); one more is refused. */
export const MAX_DEPTH = 32;

const {
  LUA_TNIL, LUA_TBOOLEAN, LUA_TLIGHTUSERDATA, LUA_TNUMFLT, LUA_TNUMINT, LUA_TSHRSTR, LUA_TLNGSTR,
  LUA_TTABLE, LUA_TFUNCTION, LUA_TUSERDATA, LUA_TTHREAD,
} = constant_types;

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

// Encoding runs no Lua code and cannot re-enter itself, so one set of scratch state serves
// every call on this thread.
const writer = new MsgpackWriter();
/** `ancestors[d]`: the table being encoded at depth `d`, for the cycle check. */
const ancestors: (Table | undefined)[] = new Array<Table | undefined>(MAX_DEPTH).fill(undefined);
/** `pathKeys[d]`: the key taken out of `ancestors[d]`, to name the path in an error. */
const pathKeys: (TValue | undefined)[] = new Array<TValue | undefined>(MAX_DEPTH).fill(undefined);
/** Slots below this depth may hold references into the Lua state; cleared after each call. */
let usedDepth = 0;
let rootName = "value";

/**
 * Encodes the Lua value at stack index `idx` as MessagePack, refusing it with a {@link CodecError}
 * if it cannot be stored or would take more than `maxBytes` bytes.
 */
export function encodeFromLua(L: lua_State, idx: number, maxBytes: number, root = "value"): Uint8Array {
  writer.begin(maxBytes, root);
  rootName = root;
  const type = lua.lua_type(L, idx);
  switch (type) {
    case lua.LUA_TNUMBER:
      if (lua.lua_isinteger(L, idx)) writer.writeInt(lua.lua_tointeger(L, idx));
      else writer.writeFloat(lua.lua_tonumber(L, idx));
      break;
    case lua.LUA_TSTRING:
      writer.writeStr(lua.lua_tolstring(L, idx)!);
      break;
    case lua.LUA_TBOOLEAN:
      writer.writeBoolean(lua.lua_toboolean(L, idx));
      break;
    case lua.LUA_TTABLE:
      try {
        // fengari's lua_topointer returns the Table object itself.
        encodeTable(lua.lua_topointer(L, idx) as Table, 0);
      } finally {
        releaseEncodeState();
      }
      break;
    default:
      throw new CodecError(root, unstorable(type === lua.LUA_TNONE ? LUA_TNIL : type));
  }
  return writer.finish();
}

/** Longest string {@link encodeShortString} encodes (a fixstr). */
export const SHORT_STRING_BYTES = 31;

/**
 * The MessagePack of a Lua string of at most {@link SHORT_STRING_BYTES} bytes (a fixstr): the
 * bytes {@link encodeFromLua} writes for it, without the scratch writer and its copy out.
 */
export function encodeShortString(bytes: Uint8Array): Uint8Array {
  const n = bytes.length;
  const out = new Uint8Array(n + 1);
  out[0] = 0xa0 | n;
  for (let i = 0; i < n; i++) out[i + 1] = bytes[i]!;
  return out;
}

/** Encodes one table value found at `depth` keys below the root. */
function encodeTValue(tv: TValue, depth: number): void {
  switch (tv.type) {
    case LUA_TNUMINT:
      writer.writeInt(tv.value as number);
      return;
    case LUA_TNUMFLT:
      writer.writeFloat(tv.value as number);
      return;
    case LUA_TLNGSTR:
    case LUA_TSHRSTR:
      writer.writeStr((tv.value as TString).realstring);
      return;
    case LUA_TBOOLEAN:
      writer.writeBoolean(tv.value === true);
      return;
    case LUA_TTABLE:
      encodeTable(tv.value as Table, depth);
      return;
    default:
      refuse(depth, unstorable(tv.type & 0x0f));
  }
}

/**
 * Encodes a table by walking fengari's insertion-ordered entry list (`Table.f` → `entry.n`,
 * live entries only, `strong.size` of them) rather than `lua_next`: no stack traffic, no key
 * rehash per entry, and no metamethod can run. Reads only; nothing else touches the table
 * meanwhile because no Lua code runs during encoding.
 */
function encodeTable(t: Table, depth: number): void {
  if (depth >= MAX_DEPTH) refuse(depth, `tables nested deeper than ${MAX_DEPTH}`);
  for (let d = 0; d < depth; d++) if (ancestors[d] === t) refuse(depth, "cyclic table");
  ancestors[depth] = t;
  if (depth >= usedDepth) usedDepth = depth + 1;

  const n = t.strong.size;
  // An array iff every key is an integer in 1..n: n distinct such keys are exactly 1..n.
  let isArray = n > 0;
  let inOrder = true;
  let i = 1;
  for (let e = t.f; e !== undefined; e = e.n, i++) {
    const key = e.key;
    if (key.type !== LUA_TNUMINT || (key.value as number) < 1 || (key.value as number) > n) {
      isArray = false;
      break;
    }
    if (key.value !== i) inOrder = false;
  }

  if (isArray) {
    writer.writeArrayHeader(n);
    if (inOrder) {
      for (let e = t.f; e !== undefined; e = e.n) {
        pathKeys[depth] = e.key;
        encodeTValue(e.value, depth + 1);
      }
    } else {
      for (let k = 1; k <= n; k++) {
        const e = t.strong.get(k)!; // integer keys hash to themselves
        pathKeys[depth] = e.key;
        encodeTValue(e.value, depth + 1);
      }
    }
    return;
  }

  writer.writeMapHeader(n);
  for (let e = t.f; e !== undefined; e = e.n) {
    const key = e.key;
    switch (key.type) {
      case LUA_TLNGSTR:
      case LUA_TSHRSTR:
        writer.writeStr((key.value as TString).realstring);
        break;
      case LUA_TNUMINT:
        writer.writeInt(key.value as number);
        break;
      case LUA_TNUMFLT:
        writer.writeFloat(key.value as number);
        break;
      default:
        refuse(depth, `${typeName(key.type & 0x0f)} keys cannot be stored`);
    }
    pathKeys[depth] = key;
    encodeTValue(e.value, depth + 1);
  }
}

/** Throws the CodecError for the value at `depth` keys below the root. */
function refuse(depth: number, reason: string): never {
  let path = rootName;
  for (let d = 0; d < depth; d++) {
    const key = pathKeys[d]!;
    path +=
      key.type === LUA_TNUMINT || key.type === LUA_TNUMFLT
        ? numberKeySegment(key.value as number)
        : bytesKeySegment((key.value as TString).realstring);
  }
  throw new CodecError(path, reason);
}

/** Drops the references the scratch arrays hold, so a finished call pins no Lua objects. */
function releaseEncodeState(): void {
  for (let d = 0; d < usedDepth; d++) {
    ancestors[d] = undefined;
    pathKeys[d] = undefined;
  }
  usedDepth = 0;
}

function unstorable(type: number): string {
  switch (type) {
    case LUA_TNIL: return "nil cannot be stored";
    case LUA_TFUNCTION: return "functions cannot be stored";
    case LUA_TTHREAD: return "threads cannot be stored";
    default: return `${typeName(type)} cannot be stored`;
  }
}

/** The name of a base type (no variant bits), as in `<name> keys cannot be stored`. */
function typeName(type: number): string {
  switch (type) {
    case LUA_TNIL: return "nil";
    case LUA_TBOOLEAN: return "boolean";
    case LUA_TLIGHTUSERDATA: return "light userdata";
    case LUA_TTABLE: return "table";
    case LUA_TFUNCTION: return "function";
    case LUA_TUSERDATA: return "userdata";
    case LUA_TTHREAD: return "thread";
    default: return `type ${type}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

// Like encoding, decoding runs no Lua code: one set of scratch state per thread.
const EMPTY = new Uint8Array(0);
let input: Uint8Array = EMPTY;
let pos = 0;
/** The value `readValue` just decoded, as a TValue type tag and payload. */
let resultType: number = LUA_TNIL;
let resultValue: unknown = null;
/** Reused argument slots: `luaH_setfrom` copies what it stores. */
const keySlot = new TValue(LUA_TNIL, null);
const valueSlot = new TValue(LUA_TNIL, null);
const floatScratch = new DataView(new ArrayBuffer(8));

/**
 * Decodes the MessagePack value at `offset` in `bytes` and pushes it onto the Lua stack;
 * returns the offset just after it. Long strings pushed are views of `bytes`, which must not
 * change afterwards (stored bytes are immutable). Malformed bytes throw a {@link CodecError} and
 * push nothing.
 */
export function pushMsgpack(L: lua_State, bytes: Uint8Array, offset = 0): number {
  if (!lua.lua_checkstack(L, 1)) throw new CodecError("value", "Lua stack overflow");
  // A Buffer's subarray/slice would make Lua strings Buffers (and Buffer#slice does not copy).
  input = bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pos = offset;
  readValue(L, 0);
  valueSlot.type = resultType;
  valueSlot.value = resultValue;
  pushobj2s(L, valueSlot);
  const end = pos;
  releaseDecodeState();
  return end;
}

/**
 * Pushes the stored value `bytes` when it is one short string (a fixstr, what
 * {@link encodeShortString} writes) and returns true; returns false, pushing nothing, for any
 * other value (then {@link pushMsgpack} it). The hot `s:get` path: no decoder state to set up.
 */
export function pushShortString(L: lua_State, bytes: Uint8Array): boolean {
  const ts = shortTString(L, bytes);
  if (ts === null) return false;
  if (!lua.lua_checkstack(L, 1)) throw new CodecError("value", "Lua stack overflow");
  pushsvalue2s(L, ts);
  return true;
}

/**
 * A Lua string value (fengari's TString) as modules outside the codec see it: opaque, to be placed
 * on a stack (replaceTopWithString in src/lua/internals.ts). Not fengari's own type, which no
 * published declaration names.
 */
export interface LuaString {
  readonly realstring: Uint8Array;
}

/**
 * The Lua string of a stored fixstr (what {@link pushShortString} pushes), or null for any other
 * value: for a host function that returns it with replaceTopWithString (src/lua/internals.ts).
 */
export function shortStringOf(L: lua_State, bytes: Uint8Array): LuaString | null {
  return shortTString(L, bytes);
}

function shortTString(L: lua_State, bytes: Uint8Array): TString | null {
  for (let i = 0; i < PUSHED_SLOTS; i++) if (pushedBytes[i] === bytes) return pushedStrings[i]!;
  const length = bytes.length - 1;
  // A Buffer goes the long way: its slice would make the Lua string a Buffer.
  if (length < 0 || bytes[0] !== (0xa0 | length) || length > SHORT_STRING_BYTES || bytes.constructor !== Uint8Array) return null;
  const ts = internString(L, bytes, 1, length);
  pushedBytes[nextPushed] = bytes;
  pushedStrings[nextPushed] = ts;
  nextPushed = (nextPushed + 1) & (PUSHED_SLOTS - 1);
  return ts;
}

/**
 * The stored values {@link shortStringOf} answered last and their Lua strings. Bytes a store
 * answers never change afterwards (what lets {@link pushMsgpack} push long strings as views),
 * and a memory store answers the same view for a key read again, so the same array is the same
 * string: a loop of gets of one key skips the hash and compare of {@link internString}.
 */
const PUSHED_SLOTS = 4;
const pushedBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(PUSHED_SLOTS).fill(undefined);
const pushedStrings: (TString | undefined)[] = new Array<TString | undefined>(PUSHED_SLOTS).fill(undefined);
let nextPushed = 0;

/** Decodes one value at `pos` into `resultType`/`resultValue`; tables count `depth` from 0. */
function readValue(L: lua_State, depth: number): void {
  if (pos >= input.length) malformed("truncated input");
  const b = input[pos++]!;
  if (b < 0x80) return integer(b);
  if (b >= 0xe0) return integer(b - 0x100);
  if (b >= 0xa0 && b < 0xc0) return string(L, b & 0x1f);
  if (b < 0x90) return readMap(L, b & 0x0f, depth);
  if (b < 0xa0) return readArray(L, b & 0x0f, depth);
  switch (b) {
    case 0xc0: resultType = LUA_TNIL; resultValue = null; return;
    case 0xc2: resultType = LUA_TBOOLEAN; resultValue = false; return;
    case 0xc3: resultType = LUA_TBOOLEAN; resultValue = true; return;
    case 0xc4: case 0xd9: return string(L, readUint(1));
    case 0xc5: case 0xda: return string(L, readUint(2));
    case 0xc6: case 0xdb: return string(L, readUint(4));
    case 0xca: return float(readFloat(4));
    case 0xcb: return float(readFloat(8));
    case 0xcc: return integer(readUint(1));
    case 0xcd: return integer(readUint(2));
    case 0xce: return number(readUint(4));
    case 0xcf: return number(readUint(4) * 0x1_0000_0000 + readUint(4));
    case 0xd0: return integer((readUint(1) << 24) >> 24);
    case 0xd1: return integer((readUint(2) << 16) >> 16);
    case 0xd2: return integer(readUint(4) | 0);
    case 0xd3: return number((readUint(4) | 0) * 0x1_0000_0000 + readUint(4));
    case 0xdc: return readArray(L, readUint(2), depth);
    case 0xdd: return readArray(L, readUint(4), depth);
    case 0xde: return readMap(L, readUint(2), depth);
    case 0xdf: return readMap(L, readUint(4), depth);
    case 0xc1: return malformed("unknown type byte 0xc1", pos - 1);
    default: return malformed(`extension type byte 0x${b.toString(16)} is not supported`, pos - 1);
  }
}

function integer(v: number): void {
  resultType = LUA_TNUMINT;
  resultValue = v;
}

function float(x: number): void {
  resultType = LUA_TNUMFLT;
  resultValue = x;
}

/** An int64/uint64/uint32 from another producer: an integer if it fits fengari's 32 bits, else a float. */
function number(v: number): void {
  if ((v | 0) === v) integer(v);
  else float(v);
}

function string(L: lua_State, length: number): void {
  if (length > input.length - pos) malformed("truncated input");
  resultType = LUA_TLNGSTR; // fengari tags every string as long
  resultValue = length <= INTERNED_STRING_BYTES ? internString(L, input, pos, length) : wrapString(L, pos, pos + length);
  pos += length;
}

/**
 * Strings up to this size are copied. V8 keeps typed arrays of at most 64 bytes on the JS heap;
 * a view into one forces its buffer off-heap (measured: ~200 ns for a fresh small input), while
 * a copy of a short string costs no more than a view and does not keep the input alive.
 */
const COPIED_STRING_BYTES = 64;

/**
 * The Lua string for `input[start..end)` (longer than {@link INTERNED_STRING_BYTES}). Long
 * strings are zero-copy views: `luaS_bless` takes the array as is, which is sound because stored
 * bytes are never mutated (`lua_pushstring` would copy them with `Uint8Array.from`), and a
 * memory store's slab bytes are written once (src/store/slab-values.ts).
 */
function wrapString(L: lua_State, start: number, end: number): TString {
  return luaS_bless(L, end - start <= COPIED_STRING_BYTES ? input.slice(start, end) : input.subarray(start, end));
}

/**
 * Short strings repeat from value to value (field names above all, and enum-like values such
 * as "active"), and each new TString costs a copy of its bytes, and as a table key a hash that
 * fengari computes by building a hex string of its bytes (`luaS_hash`): strings up to
 * INTERNED_STRING_BYTES are interned here, in a small direct-mapped cache of TStrings (whose
 * key hash, once computed, stays with them). Sharing a TString between tables and states is
 * invisible to Lua (strings are immutable values). The cache keeps copies, never views, so it
 * does not keep inputs alive; colliding strings only cost a miss.
 */
const INTERNED_STRING_BYTES = 32;
const STRING_CACHE_SLOTS = 1024;
const stringCache: (TString | undefined)[] = new Array<TString | undefined>(STRING_CACHE_SLOTS).fill(undefined);

/** The Lua string for the `length` (at most INTERNED_STRING_BYTES) bytes of `input` at `start`; the caller checked the bounds. */
function internString(L: lua_State, input: Uint8Array, start: number, length: number): TString {
  const end = start + length;
  let h = 0x811c9dc5 ^ length; // FNV-1a
  for (let i = start; i < end; i++) h = Math.imul(h ^ input[i]!, 0x01000193);
  const slot = (h ^ (h >>> 16)) & (STRING_CACHE_SLOTS - 1);
  const cached = stringCache[slot];
  if (cached !== undefined && cached.realstring.length === length) {
    const bytes = cached.realstring;
    let i = 0;
    while (i < length && bytes[i] === input[start + i]) i++;
    if (i === length) return cached;
  }
  const ts = luaS_bless(L, input.slice(start, end));
  stringCache[slot] = ts;
  return ts;
}

/** The fields of fengari's Table and entries that {@link appendEntry} writes (ltable.js `add`). */
interface WritableTable {
  strong: Map<unknown, WritableEntry>;
  f: WritableEntry | undefined;
  l: WritableEntry | undefined;
}
interface WritableEntry {
  key: TValue;
  value: TValue;
  p: WritableEntry | undefined;
  n: WritableEntry | undefined;
}

/**
 * Adds a new entry at the end of a table being decoded, as fengari's `add` (ltable.js) does:
 * the same entry shape (so fengari's code stays monomorphic), linked after `t.l`, under `hash`
 * (the number itself for an integer key, `luaS_hashlongstr` for a string). `add` also empties
 * the table's dead-key maps, which a table still being built has not used yet. The caller
 * rules out repeated keys. `key` and `value` become the table's own (fengari mutates them).
 */
function appendEntry(table: Table, hash: unknown, key: TValue, value: TValue): void {
  const t = table as unknown as WritableTable;
  const prev = t.l;
  const entry: WritableEntry = { key, value, p: prev, n: undefined };
  if (prev === undefined) t.f = entry;
  else prev.n = entry;
  t.strong.set(hash, entry);
  t.l = entry;
}

function readArray(L: lua_State, n: number, depth: number): void {
  if (depth >= MAX_DEPTH) malformed(`tables nested deeper than ${MAX_DEPTH}`);
  if (n > input.length - pos) malformed("truncated input"); // every element takes a byte
  const t = luaH_new(L);
  for (let i = 1; i <= n; i++) {
    readValue(L, depth + 1);
    if (resultType === LUA_TNIL) continue; // a hole
    appendEntry(t, i, new TValue(LUA_TNUMINT, i), new TValue(resultType, resultValue));
  }
  resultType = LUA_TTABLE;
  resultValue = t;
}

function readMap(L: lua_State, n: number, depth: number): void {
  if (depth >= MAX_DEPTH) malformed(`tables nested deeper than ${MAX_DEPTH}`);
  if (n > (input.length - pos) / 2) malformed("truncated input"); // every entry takes two bytes
  const t = luaH_new(L);
  let entries = 0;
  for (let i = 0; i < n; i++) {
    const keyAt = pos;
    const tag = input[pos]!;
    if (tag >= 0xa0 && tag < 0xc0) {
      // fixstr: the usual field name.
      const length = tag & 0x1f;
      if (length >= input.length - pos) malformed("truncated input");
      pos++;
      const key = internString(L, input, pos, length);
      pos += length;
      readValue(L, depth + 1);
      if (resultType === LUA_TNIL) continue; // Lua tables hold no nil values
      appendEntry(t, luaS_hashlongstr(key), new TValue(LUA_TLNGSTR, key), new TValue(resultType, resultValue));
    } else {
      // Containers as keys are refused before they are built.
      if (tag >= 0x80 && tag < 0xa0 || tag >= 0xdc && tag <= 0xdf) malformed("map keys must be strings or numbers", keyAt);
      readValue(L, depth + 1);
      const keyType = resultType;
      const keyValue = resultValue;
      if (keyType === LUA_TNIL || keyType === LUA_TBOOLEAN) malformed("map keys must be strings or numbers", keyAt);
      // luaH_setfrom raises a Lua error on a NaN key, which outside a protected call aborts the state.
      if (keyType === LUA_TNUMFLT && Number.isNaN(keyValue)) malformed("map key is NaN", keyAt);
      readValue(L, depth + 1);
      if (resultType === LUA_TNIL) continue;
      // Other keys are rare: the general path (which also turns an integral float key into an integer).
      keySlot.type = keyType;
      keySlot.value = keyValue;
      valueSlot.type = resultType;
      valueSlot.value = resultValue;
      luaH_setfrom(L, t, keySlot, valueSlot);
    }
    // A repeated key would silently drop an entry. So would two keys that fengari hashes alike
    // (its string hash concatenates unpadded hex digits: "\1\17" and "\17\1" are one key).
    if (t.strong.size !== ++entries) malformed("duplicate map key", keyAt);
  }
  // The table may be used as a metatable later: its "absent metamethod" cache must start empty,
  // as lua_rawset leaves it.
  invalidateTMcache(t);
  resultType = LUA_TTABLE;
  resultValue = t;
}

/** Reads a big-endian unsigned integer of 1, 2 or 4 bytes. */
function readUint(size: 1 | 2 | 4): number {
  if (size > input.length - pos) malformed("truncated input");
  const p = pos;
  pos += size;
  if (size === 1) return input[p]!;
  if (size === 2) return (input[p]! << 8) | input[p + 1]!;
  return ((input[p]! << 24) | (input[p + 1]! << 16) | (input[p + 2]! << 8) | input[p + 3]!) >>> 0;
}

/** Reads a big-endian float32 or float64 (through a scratch view: no DataView per call). */
function readFloat(size: 4 | 8): number {
  if (size > input.length - pos) malformed("truncated input");
  for (let i = 0; i < size; i++) floatScratch.setUint8(i, input[pos + i]!);
  pos += size;
  return size === 4 ? floatScratch.getFloat32(0) : floatScratch.getFloat64(0);
}

/** Throws the CodecError for malformed input at byte `at` (the read position by default). */
function malformed(what: string, at = pos): never {
  releaseDecodeState();
  throw new CodecError("value", `malformed MessagePack: ${what} at byte ${at}`);
}

function releaseDecodeState(): void {
  input = EMPTY;
  resultValue = null;
  keySlot.value = null;
  valueSlot.value = null;
}
