/**
 * The number rules of `incr`, shared by every store backend so that they all agree on the
 * bytes: which stored values count as numbers, when a result is an integer or a float, and how
 * the result is encoded. Values read the way src/codec/lua-msgpack.ts reads them, and are
 * written the way it writes them (smallest int form, floats always float64), so a Lua script
 * sees the same `math.type` whichever store it talks to.
 */
import { quoteByteString } from "../bytes.js";
import { MsgpackWriter } from "../codec/msgpack-writer.js";
import { ErrorKind, StoreError } from "../errors.js";
import type { LuaNumber } from "./store.js";

const INT_MIN = -0x8000_0000;
const INT_MAX = 0x7fff_ffff;

const writer = new MsgpackWriter();
const floatScratch = new DataView(new ArrayBuffer(8));

/**
 * The number held by `bytes` when they are exactly one MessagePack int or float, else undefined.
 * Ints outside fengari's 32-bit range (uint32, int64, uint64 from other producers) are floats,
 * as the Lua decoder reads them.
 */
export function decodeNumber(bytes: Uint8Array): LuaNumber | undefined {
  const n = bytes.length;
  if (n === 0) return undefined;
  const b = bytes[0]!;
  if (b < 0x80) return n === 1 ? { value: b, float: false } : undefined;
  if (b >= 0xe0) return n === 1 ? { value: b - 0x100, float: false } : undefined;
  switch (b) {
    case 0xcc: return n === 2 ? { value: bytes[1]!, float: false } : undefined;
    case 0xcd: return n === 3 ? { value: uint(bytes, 1, 2), float: false } : undefined;
    case 0xce: return n === 5 ? integral(uint(bytes, 1, 4)) : undefined;
    case 0xcf: return n === 9 ? integral(uint(bytes, 1, 4) * 0x1_0000_0000 + uint(bytes, 5, 4)) : undefined;
    case 0xd0: return n === 2 ? { value: (bytes[1]! << 24) >> 24, float: false } : undefined;
    case 0xd1: return n === 3 ? { value: (uint(bytes, 1, 2) << 16) >> 16, float: false } : undefined;
    case 0xd2: return n === 5 ? { value: uint(bytes, 1, 4) | 0, float: false } : undefined;
    case 0xd3: return n === 9 ? integral((uint(bytes, 1, 4) | 0) * 0x1_0000_0000 + uint(bytes, 5, 4)) : undefined;
    case 0xca: return n === 5 ? { value: float(bytes, 4), float: true } : undefined;
    case 0xcb: return n === 9 ? { value: float(bytes, 8), float: true } : undefined;
    default: return undefined;
  }
}

/** Encodes a number as the Lua codec would: an int in its smallest form, a float as float64. */
export function encodeNumber(n: LuaNumber): Uint8Array {
  writer.begin(Infinity, "value");
  if (!n.float && isInt32(n.value)) writer.writeInt(n.value);
  else writer.writeFloat(n.value);
  return writer.finish();
}

/**
 * `current + by`: a float when either operand is a float or when an integer sum leaves the
 * 32-bit range (fengari integers are 32-bit; the sum is never wrapped), else an integer.
 */
export function addNumbers(current: LuaNumber, by: LuaNumber): LuaNumber {
  const value = current.value + by.value;
  const float = current.float || by.float || !isInt32(value);
  return { value, float };
}

/**
 * The whole of `incr` on one key's bytes: `stored` (undefined when the key is missing or
 * expired, which starts from `init`) plus `by`, as the MessagePack bytes to store and return.
 * A stored value that is not a number fails with StoreError INVALID naming `key`.
 */
export function incrementBytes(key: string, stored: Uint8Array | undefined, by: LuaNumber, init: LuaNumber): Uint8Array {
  let current = init;
  if (stored !== undefined) {
    const decoded = decodeNumber(stored);
    if (decoded === undefined) {
      throw new StoreError(ErrorKind.INVALID, `value at key ${quoteByteString(key)} is not a number`);
    }
    current = decoded;
  }
  return encodeNumber(addNumbers(current, by));
}

function isInt32(v: number): boolean {
  return Number.isInteger(v) && v >= INT_MIN && v <= INT_MAX && !Object.is(v, -0);
}

/** A decoded wide int: an integer when it fits 32 bits, else a float (as the Lua decoder does). */
function integral(v: number): LuaNumber {
  return { value: v, float: !isInt32(v) };
}

function uint(bytes: Uint8Array, at: number, size: 2 | 4): number {
  if (size === 2) return (bytes[at]! << 8) | bytes[at + 1]!;
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

function float(bytes: Uint8Array, size: 4 | 8): number {
  for (let i = 0; i < size; i++) floatScratch.setUint8(i, bytes[1 + i]!);
  return size === 4 ? floatScratch.getFloat32(0) : floatScratch.getFloat64(0);
}
