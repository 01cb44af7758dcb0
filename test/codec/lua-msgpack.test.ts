import { lua, to_luastring } from "fengari";
import { describe, expect, it } from "vitest";
import { CodecError } from "../../src/codec/codec-error.js";
import { encodeFromLua, encodeShortString, pushMsgpack, pushShortString } from "../../src/codec/lua-msgpack.js";
import { checkInLua, encodeLua, encodeLuaChunk, hex, newState, roundTrip, runLua } from "./lua-state.js";

/** The CodecError that `fn` throws (fails the test when it throws nothing or something else). */
function codecError(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CodecError) return e;
    throw e;
  }
  throw new Error("expected a CodecError");
}

describe("scalars round-trip with their Lua type", () => {
  it("booleans", () => {
    expect(hex(roundTrip("true", "assert(v == true)"))).toBe("c3");
    expect(hex(roundTrip("false", "assert(v == false)"))).toBe("c2");
  });

  it("strings keep every byte, including NUL and invalid UTF-8", () => {
    expect(hex(roundTrip(String.raw`"a\0b"`, String.raw`assert(v == "a\0b" and #v == 3)`))).toBe("a3610062");
    expect(hex(roundTrip(String.raw`"\xff\xfe"`, String.raw`assert(v == "\xff\xfe")`))).toBe("a2fffe");
    expect(hex(roundTrip(`""`, `assert(v == "")`))).toBe("a0");
  });

  it("strings use the smallest str header (fixstr, str8, str16, str32)", () => {
    for (const [n, header] of [[31, "bf"], [32, "d920"], [255, "d9ff"], [256, "da0100"], [70000, "db00011170"]] as const) {
      const bytes = roundTrip(`string.rep("x", ${n})`, `assert(v == string.rep("x", ${n}))`);
      expect(hex(bytes.subarray(0, header.length / 2))).toBe(header);
      expect(bytes.length).toBe(header.length / 2 + n);
    }
  });

  it("integers stay integers, in their smallest form", () => {
    const cases: [string, string][] = [
      ["0", "00"], ["-1", "ff"], ["127", "7f"], ["128", "cc80"], ["255", "ccff"], ["256", "cd0100"],
      ["65536", "ce00010000"], ["-32", "e0"], ["-33", "d0df"], ["-129", "d1ff7f"], ["-32769", "d2ffff7fff"],
      ["2147483647", "ce7fffffff"], ["math.mininteger", "d280000000"],
    ];
    for (const [lit, expected] of cases) {
      const bytes = roundTrip(lit, `assert(math.type(v) == "integer" and v == ${lit}, tostring(v))`);
      expect(hex(bytes), lit).toBe(expected);
    }
  });

  it("floats stay floats, always as float64", () => {
    const cases: [string, string][] = [
      ["1.0", `math.type(v) == "float" and v == 1`],
      ["-0.0", `math.type(v) == "float" and v == 0 and 1/v == -math.huge`],
      ["1e300", `v == 1e300`],
      ["1.5", `v == 1.5`],
      ["math.huge", `v == math.huge`],
      ["-math.huge", `v == -math.huge`],
      ["0/0", `math.type(v) == "float" and v ~= v`],
    ];
    for (const [lit, check] of cases) {
      const bytes = roundTrip(lit, `assert(math.type(v) == "float" and ${check})`);
      expect(bytes.length, lit).toBe(9);
      expect(bytes[0]).toBe(0xcb);
    }
  });
});

describe("tables", () => {
  it("nested tables round-trip", () => {
    roundTrip(`{ a = { b = { c = "deep" } }, list = { 1, 2, { x = 1.5 } }, ok = true }`, `
      assert(v.a.b.c == "deep")
      assert(#v.list == 3 and v.list[1] == 1 and v.list[3].x == 1.5)
      assert(v.ok == true)`);
  });

  it("a table with keys exactly 1..n is an array, anything else a map", () => {
    expect(hex(encodeLua(`{ "a", "b", "c" }`))).toBe("93a161a162a163");
    expect(hex(encodeLua(`{ a = 1 }`))).toBe("81a16101");
    expect(encodeLua(`{ [1] = 1, [3] = 3 }`)[0]).toBe(0x82);
    expect(encodeLua(`{ 1, 2, x = 3 }`)[0]).toBe(0x83);
    expect(encodeLua(`{ [0] = 0, 1 }`)[0]).toBe(0x82);
  });

  it("an array filled out of order is still an array, in index order", () => {
    const bytes = encodeLuaChunk(`v = {}; v[3] = "c"; v[1] = "a"; v[2] = "b"`);
    expect(hex(bytes)).toBe("93a161a162a163");
  });

  it("removed keys are not encoded", () => {
    expect(hex(encodeLuaChunk(`v = { 1, 2, 3 }; v[3] = nil`))).toBe("920102");
    expect(hex(encodeLuaChunk(`v = { a = 1, b = 2 }; v.a = nil`))).toBe("81a16202");
    expect(hex(encodeLuaChunk(`v = { a = 1 }; v.a = nil; v.a = 3`))).toBe("81a16103");
  });

  it("an array with more than 15 elements uses array16", () => {
    const bytes = roundTrip(`{ ${Array.from({ length: 20 }, (_, i) => i).join(", ")} }`, `
      assert(#v == 20) for i = 1, 20 do assert(v[i] == i - 1) end`);
    expect(hex(bytes.subarray(0, 3))).toBe("dc0014");
  });

  it("sparse arrays become maps and keep their holes", () => {
    roundTrip(`{ 1, nil, 3 }`, `
      assert(v[1] == 1 and v[2] == nil and v[3] == 3)
      for k in pairs(v) do assert(math.type(k) == "integer") end`);
    roundTrip(`{ [1] = 1, [3] = 3 }`, `assert(v[1] == 1 and v[2] == nil and v[3] == 3)`);
  });

  it("number and string keys keep their types", () => {
    roundTrip(`{ [1] = "int", ["1"] = "str", [1.5] = "float", [-7] = "neg", [math.huge] = "inf" }`, `
      assert(v[1] == "int" and v["1"] == "str" and v[1.5] == "float" and v[-7] == "neg" and v[math.huge] == "inf")
      local n = 0
      for k, val in pairs(v) do
        n = n + 1
        if val == "int" or val == "neg" then assert(math.type(k) == "integer") end
        if val == "float" or val == "inf" then assert(math.type(k) == "float") end
        if val == "str" then assert(type(k) == "string") end
      end
      assert(n == 5)`);
  });

  it("an empty table encodes as an empty map and decodes to an empty table", () => {
    expect(hex(roundTrip(`{}`, `assert(type(v) == "table" and next(v) == nil)`))).toBe("80");
    checkInLua(Uint8Array.of(0x90), `assert(type(v) == "table" and next(v) == nil)`);
  });

  it("a shared (acyclic) table is encoded at each place and decodes to separate tables", () => {
    const bytes = encodeLuaChunk(`local s = { 1 }; v = { a = s, b = s }`);
    checkInLua(bytes, `assert(v.a[1] == 1 and v.b[1] == 1 and v.a ~= v.b)`);
  });

  it("the stored value is a snapshot and every decode makes fresh tables", () => {
    const L = newState();
    runLua(L, `t = { n = 1, inner = { 1 } }; return t`, 1);
    const bytes = encodeFromLua(L, -1, 1000);
    lua.lua_pop(L, 1);
    runLua(L, `t.n = 2; t.inner[1] = 99`);
    pushMsgpack(L, bytes);
    lua.lua_setglobal(L, "a");
    pushMsgpack(L, bytes);
    lua.lua_setglobal(L, "b");
    runLua(L, `
      assert(a.n == 1 and a.inner[1] == 1, "decoded value is what was encoded")
      assert(a ~= b and a.inner ~= b.inner and a ~= t)
      a.n = 5; a.inner[1] = 5
      assert(b.n == 1 and b.inner[1] == 1, "decodes do not share tables")`);
  });
});

describe("metatables are ignored", () => {
  it("a table with __index, __pairs and __len proxies encodes its raw contents", () => {
    roundTrip(`setmetatable({ a = 1 }, {
        __index = function() return "fake" end,
        __pairs = function() error("__pairs ran") end,
        __len = function() error("__len ran") end,
        __newindex = function() error("__newindex ran") end,
      })`, `
      assert(v.a == 1 and v.b == nil and getmetatable(v) == nil)
      local n = 0 for _ in pairs(v) do n = n + 1 end
      assert(n == 1)`);
    roundTrip(`setmetatable({}, { __index = { secret = 1 } })`, `assert(next(v) == nil)`);
  });

  it("a decoded table works as a metatable (its metamethod cache starts empty)", () => {
    roundTrip(`{ __index = { x = 5 } }`, `assert(setmetatable({}, v).x == 5)`);
  });
});

describe("refusals name the path", () => {
  function refusal(chunk: string, maxBytes = 1 << 20): string {
    return codecError(() => encodeLuaChunk(chunk, maxBytes)).message;
  }

  it("nil at the top level", () => {
    const L = newState();
    lua.lua_pushnil(L);
    const err = codecError(() => encodeFromLua(L, -1, 100));
    expect(err.message).toBe("value: nil cannot be stored");
    expect(err.path).toBe("value");
    expect(err.reason).toBe("nil cannot be stored");
    expect(codecError(() => encodeFromLua(L, 5, 100)).message).toBe("value: nil cannot be stored");
  });

  it("functions, with the caller's root name", () => {
    expect(refusal(`v = { profile = { cb = print } }`)).toBe("value.profile.cb: functions cannot be stored");
    expect(refusal(`v = function() end`)).toBe("value: functions cannot be stored");
    const L = newState();
    runLua(L, `return { f = function() end }`, 1);
    expect(codecError(() => encodeFromLua(L, -1, 100, "args[2]")).message).toBe("args[2].f: functions cannot be stored");
  });

  it("threads (coroutines) and userdata", () => {
    expect(refusal(`v = { co = coroutine.create(print) }`)).toBe("value.co: threads cannot be stored");
    expect(refusal(`v = { out = io.stdout }`)).toBe("value.out: userdata cannot be stored");
    const L = newState();
    lua.lua_createtable(L, 0, 2);
    lua.lua_newuserdata(L, 4);
    lua.lua_setfield(L, -2, "u");
    expect(codecError(() => encodeFromLua(L, -1, 100)).message).toBe("value.u: userdata cannot be stored");
    lua.lua_pushnil(L);
    lua.lua_setfield(L, -2, "u");
    lua.lua_pushlightuserdata(L, {});
    lua.lua_setfield(L, -2, "p");
    expect(codecError(() => encodeFromLua(L, -1, 100)).message).toBe("value.p: light userdata cannot be stored");
  });

  it("cyclic tables", () => {
    expect(refusal(`v = { a = {} }; v.a.b = v`)).toBe("value.a.b: cyclic table");
    expect(refusal(`v = {}; v.self = v`)).toBe("value.self: cyclic table");
    expect(refusal(`v = { {} }; v[1][1] = v[1]`)).toBe("value[1][1]: cyclic table");
  });

  it("nesting: 32 tables deep is stored, 33 is refused", () => {
    const nest = (n: number): string => `v = {}; local t = v; for i = 2, ${n} do t.a = {}; t = t.a end`;
    checkInLua(encodeLuaChunk(nest(32)), `
      local d, t = 1, v
      while t.a do d = d + 1; t = t.a end
      assert(d == 32)`);
    expect(refusal(nest(33))).toBe(`value${".a".repeat(32)}: tables nested deeper than 32`);
  });

  it("keys other than strings and numbers", () => {
    expect(refusal(`v = { [true] = 1 }`)).toBe("value: boolean keys cannot be stored");
    expect(refusal(`v = { t = { [{}] = 1 } }`)).toBe("value.t: table keys cannot be stored");
    expect(refusal(`v = { [print] = 1 }`)).toBe("value: function keys cannot be stored");
    expect(refusal(`v = { [coroutine.create(print)] = 1 }`)).toBe("value: thread keys cannot be stored");
  });

  it("path segments quote non-identifiers and escape non-printable bytes", () => {
    expect(refusal(`v = { ["not an id"] = { 1, 2, { x = print } } }`)).toBe(`value["not an id"][3].x: functions cannot be stored`);
    expect(refusal(`v = { ["end"] = { [1.5] = print } }`)).toBe(`value["end"][1.5]: functions cannot be stored`);
    expect(refusal(String.raw`v = { ["a\1\"b"] = print }`)).toBe(String.raw`value["a\x01\"b"]: functions cannot be stored`);
    expect(refusal(String.raw`v = { ["\xff"] = print }`)).toBe(String.raw`value["\xff"]: functions cannot be stored`);
    expect(refusal(`v = { ["café"] = print }`)).toBe(`value["café"]: functions cannot be stored`);
  });

  it("a value over maxBytes, with its encoded size", () => {
    expect(refusal(`v = string.rep("x", 100)`, 50)).toBe("value: encoded size 102 exceeds max_value_size 50");
    expect(encodeLuaChunk(`v = string.rep("x", 100)`, 102).length).toBe(102);
    expect(refusal(`v = { s = string.rep("x", 100) }`, 102)).toBe("value: encoded size 105 exceeds max_value_size 102");
    expect(encodeLuaChunk(`v = 1.5`, 9).length).toBe(9);
    expect(refusal(`v = 1.5`, 8)).toBe("value: encoded size 9 exceeds max_value_size 8");
  });

  it("encoding a huge table stops as soon as the limit is crossed", () => {
    // A function at the end would be refused if the encoder got that far.
    const err = codecError(() =>
      encodeLuaChunk(`v = {}; for i = 1, 50000 do v[i] = "item" .. i end; v[50001] = print`, 1000));
    expect(err.path).toBe("value");
    const size = Number(/encoded size (\d+) exceeds max_value_size 1000/.exec(err.reason)?.[1]);
    expect(size).toBeGreaterThan(1000);
    expect(size).toBeLessThan(1020);
  });

  it("a refused value leaves the stack as it was", () => {
    const L = newState();
    runLua(L, `return { a = { b = print } }`, 1);
    codecError(() => encodeFromLua(L, -1, 100));
    expect(lua.lua_gettop(L)).toBe(1);
    expect(lua.lua_type(L, -1)).toBe(lua.LUA_TTABLE);
  });
});

describe("pushShortString", () => {
  it("pushes every fixstr exactly as pushMsgpack does, any bytes, lengths 0 to 31", () => {
    const L = newState();
    for (let n = 0; n <= 31; n++) {
      const raw = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      const bytes = encodeShortString(raw);
      expect(pushShortString(L, bytes)).toBe(true);
      pushMsgpack(L, bytes);
      expect(lua.lua_gettop(L)).toBe(2);
      expect(lua.lua_type(L, 1)).toBe(lua.LUA_TSTRING);
      expect(lua.lua_tolstring(L, 1)).toEqual(raw);
      expect(Boolean(lua.lua_rawequal(L, 1, 2))).toBe(true);
      // A copy, never a view of the stored bytes.
      expect(lua.lua_tolstring(L, 1)!.buffer).not.toBe(bytes.buffer);
      lua.lua_settop(L, 0);
    }
  });

  it("refuses, pushing nothing, every value that is not one whole fixstr", () => {
    const L = newState();
    const fixstr = encodeShortString(to_luastring("abc"));
    for (const bytes of [
      encodeLua(`1`),
      encodeLua(`true`),
      encodeLua(`{ 1 }`),
      encodeLua(`string.rep("x", 32)`), // str8
      Uint8Array.of(0xa3, 0x61), // a fixstr of 3 with 1 byte: truncated
      Uint8Array.of(...fixstr, 0x01), // a trailing byte
      new Uint8Array(0),
      Buffer.from(fixstr), // a Buffer: the long way, so no Lua string is a Buffer
    ]) {
      expect(pushShortString(L, bytes)).toBe(false);
      expect(lua.lua_gettop(L)).toBe(0);
    }
  });

  it("pushes each of arrays taken in turn, more than it remembers, as its own bytes, again and again", () => {
    // A stored array pushed again is remembered (its bytes never change); others never get its string.
    const L = newState();
    const arrays = Array.from({ length: 6 }, (_, n) => encodeShortString(to_luastring(`value ${n}`)));
    const twin = encodeShortString(to_luastring("value 0"));
    for (let round = 0; round < 3; round++) {
      for (const bytes of [...arrays, twin, arrays[0]!, arrays[0]!]) {
        expect(pushShortString(L, bytes)).toBe(true);
        expect(lua.lua_tolstring(L, -1)).toEqual(bytes.subarray(1));
        lua.lua_settop(L, 0);
      }
    }
  });
});

describe("pushMsgpack", () => {
  function malformed(bytes: number[]): CodecError {
    const L = newState();
    const err = codecError(() => pushMsgpack(L, Uint8Array.from(bytes)));
    expect(lua.lua_gettop(L), "nothing is pushed").toBe(0);
    return err;
  }

  it("returns the offset after the value, so values can be read in sequence", () => {
    const L = newState();
    const bytes = Uint8Array.of(...encodeLua(`{ a = 1 }`), ...encodeLua(`"x"`));
    const mid = pushMsgpack(L, bytes);
    expect(mid).toBe(4);
    expect(pushMsgpack(L, bytes, mid)).toBe(bytes.length);
    expect(lua.lua_gettop(L)).toBe(2);
    expect(lua.lua_tojsstring(L, -1)).toBe("x");
  });

  it("long decoded strings are views of the input (zero copy), short ones copies", () => {
    const L = newState();
    const bytes = encodeLua(`{ long = string.rep("x", 65), short = string.rep("y", 64) }`);
    pushMsgpack(L, bytes);
    lua.lua_getfield(L, -1, "long");
    const long = lua.lua_tolstring(L, -1)!;
    expect(long.length).toBe(65);
    expect(long.buffer).toBe(bytes.buffer);
    lua.lua_getfield(L, -2, "short");
    expect(lua.lua_tolstring(L, -1)!.buffer).not.toBe(bytes.buffer);
  });

  it("short strings, keys and values alike, are shared between decodes and never views of the input", () => {
    const L = newState();
    const bytes = encodeLua(`{ name = "alice", [string.rep("k", 32)] = string.rep("v", 32) }`);
    const strings = (): Uint8Array[] => {
      pushMsgpack(L, bytes);
      lua.lua_getfield(L, -1, "name");
      lua.lua_getfield(L, -2, "k".repeat(32));
      const out = [lua.lua_tolstring(L, -2)!, lua.lua_tolstring(L, -1)!];
      lua.lua_settop(L, 0);
      return out;
    };
    const [name1, long1] = strings();
    const [name2, long2] = strings();
    expect(name1).toBe(name2);
    expect(long1).toBe(long2);
    expect(name1!.buffer).not.toBe(bytes.buffer);
    expect(long1!.buffer).not.toBe(bytes.buffer);
    expect(new TextDecoder().decode(name1)).toBe("alice");
  });

  it("interned string values stay correct when many distinct strings share cache slots", () => {
    const bytes = encodeLuaChunk(`v = {} for i = 1, 3000 do v[i] = "s" .. i end`);
    for (let round = 0; round < 2; round++) {
      checkInLua(bytes, `for i = 1, 3000 do assert(v[i] == "s" .. i) end`);
    }
  });

  it("decoded tables behave as Lua-built ones when changed: remove, re-add, iterate, length", () => {
    checkInLua(encodeLua(`{ a = 1, b = 2, c = 3, list = { 10, 20, 30 } }`), `
      v.b = nil
      local keys = {} for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      assert(table.concat(keys, ",") == "a,c,list")
      for k in pairs(v) do v[k] = nil end
      assert(next(v) == nil)
      v.b = 5
      assert(v.b == 5 and next(v) == "b" and next(v, "b") == nil)
      v.list = nil
      assert(v.list == nil)`);
    checkInLua(encodeLua(`{ 10, 20, 30 }`), `
      assert(#v == 3)
      table.remove(v, 1)
      assert(#v == 2 and v[1] == 20 and v[2] == 30)
      table.insert(v, 1, 5)
      v[#v + 1] = 40
      assert(table.concat(v, ",") == "5,20,30,40")
      v[2] = nil
      local n = 0 for _ in pairs(v) do n = n + 1 end
      assert(n == 3)`);
  });

  it("accepts a Buffer", () => {
    checkInLua(Buffer.from(encodeLua(`{ s = "x" }`)), `assert(v.s == "x")`);
  });

  it("malformed bytes throw a CodecError", () => {
    expect(malformed([]).reason).toBe("malformed MessagePack: truncated input at byte 0");
    expect(malformed([0x92, 0x01]).reason).toMatch(/truncated input/);
    expect(malformed([0xa5, 0x61]).reason).toMatch(/truncated input/);
    expect(malformed([0xcb, 0, 0]).reason).toMatch(/truncated input/);
    expect(malformed([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]).reason).toMatch(/truncated input/);
    expect(malformed([0xc1]).reason).toBe("malformed MessagePack: unknown type byte 0xc1 at byte 0");
    expect(malformed([0x91, 0xc1]).reason).toBe("malformed MessagePack: unknown type byte 0xc1 at byte 1");
    expect(malformed([0xd4, 0x01, 0x00]).reason).toMatch(/extension type byte 0xd4 is not supported/);
    const truncatedTable = encodeLua(`{ name = "alice", tags = { "a", "b" } }`);
    for (let n = 0; n < truncatedTable.length; n++) {
      expect(malformed([...truncatedTable.subarray(0, n)]).reason).toMatch(/truncated input/);
    }
  });

  it("huge claimed lengths fail at once instead of looping", () => {
    expect(malformed([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]).reason).toMatch(/truncated input/);
    expect(malformed([0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01]).reason).toMatch(/truncated input/);
  });

  it("refuses nesting deeper than 32 without exhausting the JS stack", () => {
    expect(malformed(new Array<number>(100_000).fill(0x91)).reason).toMatch(/tables nested deeper than 32/);
    checkInLua(Uint8Array.from([...new Array<number>(32).fill(0x91), 0x01]), `
      local t = v for i = 1, 31 do t = t[1] end
      assert(t[1] == 1)`);
    expect(malformed([...new Array<number>(33).fill(0x91), 0x01]).reason).toMatch(/tables nested deeper than 32/);
  });

  it("refuses map keys that Lua cannot hold or the encoder never writes", () => {
    expect(malformed([0x81, 0xc0, 0x01]).reason).toMatch(/map keys must be strings or numbers at byte 1/);
    expect(malformed([0x81, 0xc3, 0x01]).reason).toMatch(/map keys must be strings or numbers/);
    expect(malformed([0x81, 0x80, 0x01]).reason).toMatch(/map keys must be strings or numbers/);
    expect(malformed([0x81, 0x90, 0x01]).reason).toMatch(/map keys must be strings or numbers/);
    expect(malformed([0x81, 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0, 0x01]).reason).toMatch(/map key is NaN/);
  });

  it("reads what other producers may write", () => {
    const cases: [number[], string][] = [
      [[0xd3, 0, 0, 0, 0, 0, 0, 0, 5], `math.type(v) == "integer" and v == 5`],
      [[0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe], `math.type(v) == "integer" and v == -2`],
      [[0xd3, 0, 0, 0, 1, 0, 0, 0, 0], `math.type(v) == "float" and v == 2^32`],
      [[0xd3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], `math.type(v) == "float" and v == -2^32`],
      [[0xcf, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff], `math.type(v) == "integer" and v == math.maxinteger`],
      [[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], `math.type(v) == "float" and v == 2^64`],
      [[0xce, 0xff, 0xff, 0xff, 0xff], `math.type(v) == "float" and v == 2^32 - 1`],
      [[0xca, 0x3f, 0xc0, 0, 0], `math.type(v) == "float" and v == 1.5`],
      [[0xca, 0x3f, 0x80, 0, 0], `math.type(v) == "float" and v == 1`],
      [[0xc4, 2, 0xff, 0x00], String.raw`v == "\xff\0"`],
      [[0xc0], `v == nil`],
      [[0x93, 0x01, 0xc0, 0x03], `v[1] == 1 and v[2] == nil and v[3] == 3`],
      [[0x82, 0xa1, 0x61, 0xc0, 0xa1, 0x62, 0x02], `v.a == nil and v.b == 2 and next(v, "b") == nil`],
      [[0x81, 0xcb, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x01], `v[2] == 1 and math.type(next(v)) == "integer"`],
    ];
    for (const [bytes, check] of cases) checkInLua(Uint8Array.from(bytes), `assert(${check})`);
  });

  it("refuses a map with a repeated key rather than dropping an entry", () => {
    expect(malformed([0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02]).reason).toBe("malformed MessagePack: duplicate map key at byte 4");
    expect(malformed([0x82, 0x01, 0x01, 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x02]).reason).toMatch(/duplicate map key/);
    // fengari's string hash makes "\1\17" and "\17\1" the same table key.
    expect(malformed([0x82, 0xa2, 0x01, 0x11, 0x01, 0xa2, 0x11, 0x01, 0x02]).reason).toMatch(/duplicate map key/);
  });

  it("interned keys stay correct when many distinct keys share cache slots", () => {
    const chunk = `v = {} for i = 1, 3000 do v["k" .. i] = i end`;
    const bytes = encodeLuaChunk(chunk);
    for (let round = 0; round < 2; round++) {
      checkInLua(bytes, `
        local n = 0 for k, x in pairs(v) do n = n + 1; assert(k == "k" .. x) end
        assert(n == 3000)`);
    }
  });

  it("a string key and an integer key with the same digits stay apart", () => {
    checkInLua(Uint8Array.of(0x82, 0xa1, 0x31, 0xa1, 0x73, 0x01, 0xa1, 0x69), `assert(v["1"] == "s" and v[1] == "i")`);
  });

  it("a large value decodes with exact contents", () => {
    const bytes = roundTrip(`(function() local t = {} for i = 1, 5000 do t[i] = { id = i, name = "n" .. i } end return t end)()`, `
      assert(#v == 5000)
      for i = 1, 5000 do assert(v[i].id == i and v[i].name == "n" .. i) end`);
    expect(bytes[0]).toBe(0xdc);
  });

  it("a decoded value is usable by ordinary Lua code", () => {
    const L = newState();
    pushMsgpack(L, encodeLua(`{ b = 2, a = 1, list = { 3, 1, 2 } }`));
    lua.lua_setglobal(L, "v");
    runLua(L, `
      table.sort(v.list)
      assert(table.concat(v.list, ",") == "1,2,3")
      v.c = 3
      local s = 0 for _, x in pairs(v) do if type(x) == "number" then s = s + x end end
      assert(s == 6)`);
    lua.lua_getglobal(L, "v");
    lua.lua_getfield(L, -1, to_luastring("a"));
    expect(lua.lua_tointeger(L, -1)).toBe(1);
  });
});
