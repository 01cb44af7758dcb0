import { lua } from "fengari";
import { describe, expect, it } from "vitest";
import { CodecError } from "../../src/codec/codec-error.js";
import { encodeFromLua, pushMsgpack } from "../../src/codec/lua-msgpack.js";
import { decodeValue, encodeValue } from "../../src/codec/msgpack.js";
import { checkInLua, encodeLua, hex, newState, runLua } from "./lua-state.js";

function codecError(fn: () => unknown): CodecError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CodecError) return e;
    throw e;
  }
  throw new Error("expected a CodecError");
}

describe("host values round-trip", () => {
  it("scalars", () => {
    for (const v of ["", "héllo ✓ 😀", "\0", 0, -1, 127, 128, -33, 2147483647, -2147483648, 1.5, -0, 2 ** 40, 1e300, Infinity, -Infinity, true, false]) {
      expect(Object.is(decodeValue(encodeValue(v)), v), String(v)).toBe(true);
    }
    expect(decodeValue(encodeValue(NaN))).toBeNaN();
  });

  it("integral numbers in int32 range are ints, others float64", () => {
    expect(hex(encodeValue(1))).toBe("01");
    expect(hex(encodeValue(1.0))).toBe("01");
    expect(hex(encodeValue(-2147483648))).toBe("d280000000");
    expect(encodeValue(2147483648)[0]).toBe(0xcb);
    expect(encodeValue(-0)[0]).toBe(0xcb);
    expect(encodeValue(0.5)[0]).toBe(0xcb);
  });

  it("containers", () => {
    const v = { name: "alice", tags: ["a", "b"], nested: { deep: [1, [2, [3]]] }, empty: [], none: {} };
    expect(decodeValue(encodeValue(v))).toEqual(v);
    const m = new Map<unknown, unknown>([[1, "int"], ["1", "str"], [1.5, "float"]]);
    expect(decodeValue(encodeValue(m))).toEqual(m);
  });

  it("Uint8Array is bin and comes back as a copy", () => {
    const bytes = Uint8Array.of(0xff, 0x00, 0x61);
    const encoded = encodeValue(bytes);
    expect(hex(encoded)).toBe("c403ff0061");
    const decoded = decodeValue(encoded) as Uint8Array;
    expect(decoded).toEqual(bytes);
    decoded[0] = 1;
    expect(encoded[2]).toBe(0xff);
    expect(hex(encodeValue(Buffer.from("ab")))).toBe("c4026162");
  });

  it("str that is not UTF-8 decodes to bytes; a BOM is kept", () => {
    expect(decodeValue(Uint8Array.of(0xa2, 0xff, 0xfe))).toEqual(Uint8Array.of(0xff, 0xfe));
    expect(decodeValue(encodeValue("\ufeffx"))).toBe("\ufeffx");
    expect(decodeValue(encodeValue("x".repeat(100) + "é"))).toBe("x".repeat(100) + "é");
  });

  it("lone surrogates become U+FFFD", () => {
    expect(decodeValue(encodeValue("a\ud800b"))).toBe("a\ufffdb");
    expect(decodeValue(encodeValue("\udc00"))).toBe("\ufffd");
  });

  it("a map with a non-string key decodes to a Map; __proto__ stays a plain key", () => {
    const decoded = decodeValue(encodeLua(`{ [1] = "a", b = 2 }`));
    expect(decoded).toEqual(new Map<unknown, unknown>([[1, "a"], ["b", 2]]));
    const obj = decodeValue(Uint8Array.of(0x81, 0xa9, ...Buffer.from("__proto__"), 0x81, 0xa1, 0x78, 0x01)) as Record<string, unknown>;
    expect(Object.getPrototypeOf(obj)).toBe(Object.prototype);
    expect(Object.keys(obj)).toEqual(["__proto__"]);
    expect(Object.getOwnPropertyDescriptor(obj, "__proto__")?.value).toEqual({ x: 1 });
  });
});

describe("host refusals name the path", () => {
  it.each([
    [null, "value: null cannot be stored"],
    [undefined, "value: undefined cannot be stored"],
    [{ a: { cb: () => 1 } }, "value.a.cb: functions cannot be stored"],
    [{ tags: ["a", undefined] }, "value.tags[1]: undefined cannot be stored"],
    [{ "not id": 1n }, `value["not id"]: bigints cannot be stored`],
    [{ when: new Date(0) }, "value.when: Date objects cannot be stored"],
    [new Map([[true, 1]]), "value: boolean keys cannot be stored"],
    [new Map([[NaN, 1]]), "value: NaN keys cannot be stored"],
    [new Int32Array(2), "value: Int32Array objects cannot be stored"],
  ])("%o", (v, message) => {
    expect(codecError(() => encodeValue(v)).message).toBe(message);
  });

  it("cycles", () => {
    const v: Record<string, unknown> = { a: {} };
    (v["a"] as Record<string, unknown>)["b"] = v;
    expect(codecError(() => encodeValue(v)).message).toBe("value.a.b: cyclic value");
    const shared = [1];
    expect(decodeValue(encodeValue({ x: shared, y: shared }))).toEqual({ x: [1], y: [1] });
  });

  it("nesting: 32 deep is stored, 33 is refused", () => {
    const nest = (n: number): unknown => (n === 1 ? [] : [nest(n - 1)]);
    expect(() => encodeValue(nest(32))).not.toThrow();
    expect(codecError(() => encodeValue(nest(33))).message).toBe(`value${"[0]".repeat(32)}: containers nested deeper than 32`);
  });

  it("maxBytes", () => {
    expect(codecError(() => encodeValue("x".repeat(100), 50)).message).toBe("value: encoded size 102 exceeds max_value_size 50");
    expect(encodeValue("x".repeat(100), 102).length).toBe(102);
  });

  it("malformed bytes and trailing bytes", () => {
    expect(codecError(() => decodeValue(Uint8Array.of(0xc1))).reason).toBe("malformed MessagePack: unknown type byte 0xc1 at byte 0");
    expect(codecError(() => decodeValue(Uint8Array.of(0x92, 0x01))).reason).toMatch(/truncated input/);
    expect(codecError(() => decodeValue(Uint8Array.of(0x01, 0x02))).reason).toBe("malformed MessagePack: 1 trailing bytes at byte 1");
    expect(codecError(() => decodeValue(new Uint8Array(100_000).fill(0x91))).reason).toMatch(/nested deeper than 32/);
    expect(codecError(() => decodeValue(Uint8Array.of(0x82, 0xa1, 0x61, 0x01, 0xa1, 0x61, 0x02))).reason).toMatch(/duplicate map key "a"/);
    expect(codecError(() => decodeValue(Uint8Array.of(0x82, 0x01, 0x01, 0x01, 0x02))).reason).toMatch(/duplicate map key/);
  });
});

describe("host and Lua read each other's bytes", () => {
  it("JS encode → Lua decode", () => {
    const bytes = encodeValue({ name: "alice", n: 1, f: 1.5, whole: 2 ** 40, tags: ["a", "b"], raw: Uint8Array.of(0xff, 0), ok: true });
    checkInLua(bytes, String.raw`
      assert(v.name == "alice" and math.type(v.n) == "integer" and v.n == 1)
      assert(math.type(v.f) == "float" and v.f == 1.5 and math.type(v.whole) == "float" and v.whole == 2^40)
      assert(#v.tags == 2 and v.tags[2] == "b")
      assert(v.raw == "\xff\0" and v.ok == true)`);
  });

  it("Lua encode → JS decode", () => {
    expect(decodeValue(encodeLua(String.raw`{ name = "alice", score = 1.5, n = 3, list = { 1, "two", { x = true } }, raw = "\xff" }`))).toEqual({
      name: "alice", score: 1.5, n: 3, list: [1, "two", { x: true }], raw: Uint8Array.of(0xff),
    });
    expect(decodeValue(encodeLua(`{}`))).toEqual({});
  });

  it("the same record gives the same bytes from JS and from Lua", () => {
    const fromLua = encodeLua(`{ id = 1, name = "alice", active = true, score = 1.5, tags = "x" }`);
    expect(hex(encodeValue({ id: 1, name: "alice", active: true, score: 1.5, tags: "x" }))).toBe(hex(fromLua));
  });

  it("JS → Lua → JS keeps the value", () => {
    const v = { id: 7, items: [{ sku: "a", qty: 2 }, { sku: "b", qty: 1 }], meta: new Map<unknown, unknown>([[1, "x"], [2.5, "y"]]) };
    const L = newState();
    pushMsgpack(L, encodeValue(v));
    lua.lua_setglobal(L, "v");
    runLua(L, `v.items[1].qty = v.items[1].qty + 1; return v`, 1);
    expect(decodeValue(encodeFromLua(L, -1, 1000))).toEqual({ ...v, items: [{ sku: "a", qty: 3 }, { sku: "b", qty: 1 }] });
  });
});
