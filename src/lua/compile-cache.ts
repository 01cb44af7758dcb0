/**
 * Compiled chunks, cached by their exact source and chunk name, so a script (or a configured
 * Lua module) is parsed once per thread and every later run only makes a closure of its
 * prototype. Parsing costs about twice as much as loading precompiled bytecode, and sharing
 * the prototype skips even that; only the host loads through this cache, a script's own `load`
 * still compiles text (see sandbox.ts).
 *
 * Looked up by chunk name, then by the source text itself: a JS Map hashes the string to find
 * it and compares it in full to match, and a caller that passes the same string object each
 * time pays neither. Bounded by the bytes of source it holds (LRU by Map order). A syntax
 * error is cached too: the same message, with its position, every time.
 */
import { lua, lauxlib, type lua_State } from "fengari";
import { pushChunkClosure, takeCompiledChunk, type CompiledChunk } from "./internals.js";
import { pushJsString } from "./strings.js";

/** Bytes of source text a compile cache holds by default (per thread: the host's, each worker's). */
export const DEFAULT_COMPILE_CACHE_BYTES = 16 << 20;

type Entry = { chunk: CompiledChunk; error?: undefined; bytes: number } | { chunk?: undefined; error: string; bytes: number };

const latin1 = new TextDecoder("latin1");
const textEncoder = new TextEncoder();

export interface CompileCacheStats {
  entries: number;
  bytes: number;
  maxBytes: number;
  hits: number;
  misses: number;
}

export class CompileCache {
  readonly maxBytes: number;
  /** chunk name → source → entry; the outer map's order is not used, the LRU order is `order`'s. */
  private readonly byName = new Map<string, Map<string, Entry>>();
  /** Every entry once, least recently used first, with the keys to remove it. */
  private readonly order = new Map<Entry, [name: string, source: string]>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(maxBytes = DEFAULT_COMPILE_CACHE_BYTES) {
    this.maxBytes = maxBytes;
  }

  /**
   * Pushes the compiled chunk as a new closure in `L` and returns LUA_OK, or pushes the syntax
   * error message and returns LUA_ERRSYNTAX, as luaL_loadbufferx would.
   */
  load(L: lua_State, source: string | Uint8Array, chunkName: string): number {
    const key = typeof source === "string" ? source : latin1.decode(source);
    const forName = this.byName.get(chunkName);
    const hit = forName?.get(key);
    if (hit !== undefined) {
      this.hits++;
      this.order.delete(hit);
      this.order.set(hit, [chunkName, key]);
      if (hit.chunk !== undefined) {
        pushChunkClosure(L, hit.chunk);
        return lua.LUA_OK;
      }
      pushJsString(L, hit.error);
      return lua.LUA_ERRSYNTAX;
    }
    this.misses++;
    // TextEncoder, not fengari's to_luastring, which goes through a JS array (8 bytes per source byte).
    const bytes = typeof source === "string" ? textEncoder.encode(source) : source;
    const status = lauxlib.luaL_loadbufferx(L, bytes, bytes.length, chunkName, "t");
    let entry: Entry;
    if (status === lua.LUA_OK) entry = { chunk: takeCompiledChunk(L), bytes: key.length + chunkName.length };
    else if (status === lua.LUA_ERRSYNTAX) {
      const message = lua.lua_tojsstring(L, -1);
      entry = { error: message, bytes: key.length + chunkName.length };
    } else return status; // out of memory and the like: not a property of the source
    this.remember(chunkName, key, entry);
    return status;
  }

  /** Entries, bytes held and hit counts. */
  stats(): CompileCacheStats {
    return { entries: this.order.size, bytes: this.bytes, maxBytes: this.maxBytes, hits: this.hits, misses: this.misses };
  }

  private remember(name: string, source: string, entry: Entry): void {
    if (entry.bytes > this.maxBytes) return;
    let forName = this.byName.get(name);
    if (forName === undefined) {
      forName = new Map();
      this.byName.set(name, forName);
    }
    forName.set(source, entry);
    this.order.set(entry, [name, source]);
    this.bytes += entry.bytes;
    for (const [old, [oldName, oldSource]] of this.order) {
      if (this.bytes <= this.maxBytes) break;
      this.order.delete(old);
      const m = this.byName.get(oldName)!;
      m.delete(oldSource);
      if (m.size === 0) this.byName.delete(oldName);
      this.bytes -= old.bytes;
    }
  }
}
