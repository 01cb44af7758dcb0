import { describe, expect, it } from "vitest";
import { encodeValue } from "../../src/codec/msgpack.js";
import { ErrorKind, StoreError } from "../../src/errors.js";
import { addNumbers, decodeNumber, encodeNumber, incrementBytes } from "../../src/store/numbers.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const int = (value: number) => ({ value, float: false });
const float = (value: number) => ({ value, float: true });

describe("store numbers", () => {
  it("decodeNumber reads every int and float form", () => {
    const cases: [string, { value: number; float: boolean }][] = [
      ["00", int(0)],
      ["7f", int(127)],
      ["e0", int(-32)],
      ["cc80", int(128)],
      ["cd0100", int(256)],
      ["ce00010000", int(65536)],
      ["ce80000000", float(2147483648)],
      ["d080", int(-128)],
      ["d18000", int(-32768)],
      ["d280000000", int(-2147483648)],
      ["d3ffffffffffffffff", int(-1)],
      ["d3ffffffff7fffffff", float(-2147483649)],
      ["cf0000000000000005", int(5)],
      ["cf0000000100000000", float(4294967296)],
      ["ca3fc00000", float(1.5)],
      ["cb3ff0000000000000", float(1)],
    ];
    for (const [bytes, expected] of cases) expect(decodeNumber(Buffer.from(bytes, "hex")), bytes).toEqual(expected);
  });

  it("decodeNumber refuses other types, truncated numbers and trailing bytes", () => {
    for (const bytes of ["", "c0", "c3", "a131", "90", "80", "cc", "cd01", "cb3ff0", "0101", "cc0101", "cb3ff000000000000000"]) {
      expect(decodeNumber(Buffer.from(bytes, "hex")), bytes).toBeUndefined();
    }
  });

  it("encodeNumber writes ints in their smallest form and floats as float64", () => {
    for (const n of [0, 1, 127, 128, -1, -33, 65535, 2147483647, -2147483648]) expect(hex(encodeNumber(int(n)))).toBe(hex(encodeValue(n)));
    expect(hex(encodeNumber(float(1)))).toBe("cb3ff0000000000000");
    expect(hex(encodeNumber(float(-0)))).toBe("cb8000000000000000");
    expect(hex(encodeNumber(int(2147483648)))).toBe("cb41e0000000000000"); // not an int32: a float
  });

  it("addNumbers gives a float for a float operand or an integer sum outside 32 bits", () => {
    expect(addNumbers(int(1), int(2))).toEqual(int(3));
    expect(addNumbers(int(1), float(2))).toEqual(float(3));
    expect(addNumbers(float(1), int(2))).toEqual(float(3));
    expect(addNumbers(int(2147483647), int(1))).toEqual(float(2147483648));
    expect(addNumbers(int(-2147483648), int(-1))).toEqual(float(-2147483649));
    expect(addNumbers(int(-2147483648), int(0))).toEqual(int(-2147483648));
    expect(addNumbers(float(Infinity), int(1))).toEqual(float(Infinity));
  });

  it("incrementBytes starts from init when nothing is stored and refuses non-numbers as Invalid", () => {
    expect(hex(incrementBytes("k", undefined, int(2), int(40)))).toBe("2a");
    expect(hex(incrementBytes("k", encodeValue(1), float(0.5), int(0)))).toBe(hex(encodeNumber(float(1.5))));
    let caught: unknown;
    try {
      incrementBytes("k\xff", encodeValue("1"), int(1), int(0));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(StoreError);
    expect(caught).toMatchObject({ code: "STORE_ERROR", kind: ErrorKind.INVALID, retryable: false });
  });
});
