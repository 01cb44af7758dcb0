/**
 * Types for the few fengari 0.1.5 internal modules (not part of its public API) that luastore
 * reads directly, each for a measured reason given where it is used (see src/codec/lua-msgpack.ts).
 * Only what we use is declared, as the fengari source defines it; an upgrade of fengari must
 * re-check these against node_modules/fengari/src.
 */

declare module "fengari/src/defs.js" {
  /** Type tags, including the variant tags (bits 4-5) that the public API folds away. */
  export const constant_types: {
    readonly LUA_TNIL: 0;
    readonly LUA_TBOOLEAN: 1;
    readonly LUA_TLIGHTUSERDATA: 2;
    readonly LUA_TNUMBER: 3;
    readonly LUA_TSTRING: 4;
    readonly LUA_TTABLE: 5;
    readonly LUA_TFUNCTION: 6;
    readonly LUA_TUSERDATA: 7;
    readonly LUA_TTHREAD: 8;
    /** Float numbers (LUA_TNUMBER | 0 << 4). */
    readonly LUA_TNUMFLT: 3;
    /** Integer numbers (LUA_TNUMBER | 1 << 4); the value is a JS number with `(v | 0) === v`. */
    readonly LUA_TNUMINT: 19;
    readonly LUA_TSHRSTR: 4;
    /** fengari tags every string it creates as a long string. */
    readonly LUA_TLNGSTR: 20;
    readonly LUA_TLCL: 6;
    readonly LUA_TLCF: 22;
    readonly LUA_TCCL: 38;
  };
}

declare module "fengari/src/lstring.js" {
  import type { lua_State } from "fengari";
  /** An immutable Lua string: its bytes and a lazily computed table-key hash. */
  export class TString {
    private constructor();
    readonly realstring: Uint8Array;
    hash: string | null;
  }
  /** Wraps `bytes` as a Lua string without copying; the caller gives up the right to mutate them. */
  export function luaS_bless(L: lua_State, bytes: Uint8Array): TString;
  /** The string's table-key hash, computed on first use and cached in `ts.hash`. */
  export function luaS_hashlongstr(ts: TString): string;
}

declare module "fengari/src/lobject.js" {
  import type { lua_State } from "fengari";
  /** A tagged Lua value; `type` is one of `constant_types`. */
  export class TValue {
    constructor(type: number, value: unknown);
    type: number;
    value: unknown;
  }
  /** Pushes a copy of `tv` onto the stack (no stack check). */
  export function pushobj2s(L: lua_State, tv: TValue): void;
  /** Pushes a string value onto the stack (no stack check). */
  export function pushsvalue2s(L: lua_State, ts: import("fengari/src/lstring.js").TString): void;
}

declare module "fengari/src/ltable.js" {
  import type { lua_State } from "fengari";
  import type { TValue } from "fengari/src/lobject.js";
  /** One live slot of a table, in the insertion-ordered list `Table.f` → `entry.n`. */
  export interface TableEntry {
    readonly key: TValue;
    readonly value: TValue;
    readonly n: TableEntry | undefined;
  }
  /**
   * A Lua table: `strong` maps a key hash (the number itself for numeric keys) to its entry.
   * Removed entries are unlinked from the list and from `strong`.
   */
  export class Table {
    private constructor();
    readonly strong: ReadonlyMap<unknown, TableEntry>;
    readonly f: TableEntry | undefined;
  }
  export function luaH_new(L: lua_State): Table;
  /** Sets `t[key] = value` for an integer key; copies `value`. */
  export function luaH_setint(t: Table, key: number, value: TValue): void;
  /**
   * Sets `t[key] = value`, raw; copies both. A nil or NaN key raises a Lua error, which
   * outside a protected call aborts the state: callers must rule those out.
   */
  export function luaH_setfrom(L: lua_State, t: Table, key: TValue, value: TValue): void;
  /** Forgets the table's cache of absent metamethods (needed after adding keys like "__index"). */
  export function invalidateTMcache(t: Table): void;
}
