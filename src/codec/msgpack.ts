/**
 * MessagePack ⇄ JS values, for TypeScript callers of the store: the same bytes that
 * src/codec/lua-msgpack.ts writes from and reads onto the Lua stack.
 *
 * ## JS model
 * | JS value                         | encoded as                        | a Lua script sees    |
 * |----------------------------------|-----------------------------------|----------------------|
 * | string                           | str, UTF-8                        | string               |
 * | Uint8Array (and Buffer)          | bin                               | string (raw bytes)   |
 * | number, integer in int32 range   | smallest int form                 | integer              |
 * | any other number (1.5, 2^40, -0, NaN, ±Infinity) | float64           | float                |
 * | boolean                          | true / false                      | boolean              |
 * | array                            | array                             | table 1..n           |
 * | plain object, Map                | map                               | table                |
 *
 * - JS cannot tell `1.0` from `1`: integral numbers in int32 range become Lua integers.
 * - Object keys are strings, so `{ 1: "a" }` is `t["1"]` in Lua; use a `Map` for number keys.
 *   Map keys may be strings, numbers (not NaN) and Uint8Arrays.
 * - Lone UTF-16 surrogates in strings become U+FFFD (as with TextEncoder).
 * - Refused with a {@link CodecError} naming the path (JS style, arrays from 0:
 *   `value.tags[0]`): null, undefined, functions, symbols, bigints, class instances other than
 *   Map and Uint8Array, cycles, containers nested deeper than 32, and values over `maxBytes`.
 *
 * Decoding: str → string when it is valid UTF-8, else Uint8Array (Lua strings are bytes);
 * bin → Uint8Array (a copy); int and float → number (int64 beyond 2^53 loses precision);
 * nil → null (dropped from maps, as Lua drops it); array → array; map → plain object when
 * every key is a string, else Map. Every decode builds new objects.
 */
import { CodecError } from "./codec-error.js";
import { MsgpackWriter } from "./msgpack-writer.js";
import { bytesKeySegment, numberKeySegment, textKeySegment } from "./value-path.js";

/** Containers may nest this deep; one more is refused (as on the Lua side). */
const MAX_DEPTH = 32;
const ROOT = "value";

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

type PathKey = string | number | Uint8Array;

/** Per-call state; reused unless a getter re-enters `encodeValue`, which then gets its own. */
class JsEncoder {
  readonly writer = new MsgpackWriter();
  busy = false;
  private readonly ancestors: object[] = [];
  private readonly pathKeys: PathKey[] = [];

  run(v: unknown, maxBytes: number): Uint8Array {
    this.busy = true;
    try {
      this.writer.begin(maxBytes, ROOT);
      this.value(v, 0);
      return this.writer.finish();
    } finally {
      this.ancestors.length = 0;
      this.pathKeys.length = 0;
      this.busy = false;
    }
  }

  private value(v: unknown, depth: number): void {
    switch (typeof v) {
      case "string":
        return this.writer.writeText(v);
      case "number":
        return this.number(v);
      case "boolean":
        return this.writer.writeBoolean(v);
      case "object":
        if (v === null) return this.refuse(depth, "null cannot be stored");
        if (v instanceof Uint8Array) return this.writer.writeBin(v);
        return this.container(v, depth);
      case "undefined":
        return this.refuse(depth, "undefined cannot be stored");
      case "function":
        return this.refuse(depth, "functions cannot be stored");
      case "bigint":
        return this.refuse(depth, "bigints cannot be stored");
      case "symbol":
        return this.refuse(depth, "symbols cannot be stored");
    }
  }

  private number(v: number): void {
    if ((v | 0) === v && !Object.is(v, -0)) this.writer.writeInt(v);
    else this.writer.writeFloat(v);
  }

  private container(v: object, depth: number): void {
    if (depth >= MAX_DEPTH) this.refuse(depth, `containers nested deeper than ${MAX_DEPTH}`);
    if (this.ancestors.includes(v)) this.refuse(depth, "cyclic value");
    this.ancestors[depth] = v;
    if (Array.isArray(v)) {
      this.writer.writeArrayHeader(v.length);
      for (let i = 0; i < v.length; i++) {
        this.pathKeys[depth] = i;
        this.value(v[i], depth + 1);
      }
    } else if (v instanceof Map) {
      this.writer.writeMapHeader(v.size);
      for (const [key, item] of v) {
        this.key(key, depth);
        this.pathKeys[depth] = key as PathKey;
        this.value(item, depth + 1);
      }
    } else if (isPlainObject(v)) {
      const keys = Object.keys(v);
      this.writer.writeMapHeader(keys.length);
      for (const key of keys) {
        this.writer.writeText(key);
        this.pathKeys[depth] = key;
        this.value((v as Record<string, unknown>)[key], depth + 1);
      }
    } else {
      this.refuse(depth, `${v.constructor?.name ?? "exotic"} objects cannot be stored`);
    }
    this.ancestors.length = depth;
  }

  private key(key: unknown, depth: number): void {
    if (typeof key === "string") this.writer.writeText(key);
    else if (typeof key === "number") {
      if (Number.isNaN(key)) this.refuse(depth, "NaN keys cannot be stored");
      this.number(key);
    } else if (key instanceof Uint8Array) this.writer.writeBin(key);
    else this.refuse(depth, `${key === null ? "null" : typeof key} keys cannot be stored`);
  }

  private refuse(depth: number, reason: string): never {
    let path = ROOT;
    for (let d = 0; d < depth; d++) {
      const key = this.pathKeys[d]!;
      path +=
        typeof key === "string" ? textKeySegment(key)
        : typeof key === "number" ? numberKeySegment(key)
        : bytesKeySegment(key);
    }
    throw new CodecError(path, reason);
  }
}

function isPlainObject(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

const sharedEncoder = new JsEncoder();

/**
 * Encodes a JS value as MessagePack (see the module doc for the model), refusing it with a
 * {@link CodecError} if it cannot be stored or would take more than `maxBytes` bytes.
 */
export function encodeValue(v: unknown, maxBytes = Infinity): Uint8Array {
  return (sharedEncoder.busy ? new JsEncoder() : sharedEncoder).run(v, maxBytes);
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const floatScratch = new DataView(new ArrayBuffer(8));
/** Strings up to this length are decoded by hand when ASCII; TextDecoder's call costs more. */
const SHORT_TEXT = 32;
// Decoding runs no caller code and cannot re-enter itself.
let input: Uint8Array = EMPTY;
let pos = 0;

/** Decodes bytes holding exactly one MessagePack value into a JS value (see the module doc). */
export function decodeValue(bytes: Uint8Array): unknown {
  // Buffer#slice does not copy; normalizing to a plain view makes every `slice` below a copy.
  input = bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pos = 0;
  const value = read(0);
  if (pos !== input.length) malformed(`${input.length - pos} trailing bytes`);
  input = EMPTY;
  return value;
}

function read(depth: number): unknown {
  if (pos >= input.length) malformed("truncated input");
  const b = input[pos++]!;
  if (b < 0x80) return b;
  if (b >= 0xe0) return b - 0x100;
  if (b >= 0xa0 && b < 0xc0) return text(b & 0x1f);
  if (b < 0x90) return map(b & 0x0f, depth);
  if (b < 0xa0) return array(b & 0x0f, depth);
  switch (b) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return bin(readUint(1));
    case 0xc5: return bin(readUint(2));
    case 0xc6: return bin(readUint(4));
    case 0xca: return readFloat(4);
    case 0xcb: return readFloat(8);
    case 0xcc: return readUint(1);
    case 0xcd: return readUint(2);
    case 0xce: return readUint(4);
    case 0xcf: return readUint(4) * 0x1_0000_0000 + readUint(4);
    case 0xd0: return (readUint(1) << 24) >> 24;
    case 0xd1: return (readUint(2) << 16) >> 16;
    case 0xd2: return readUint(4) | 0;
    case 0xd3: return (readUint(4) | 0) * 0x1_0000_0000 + readUint(4);
    case 0xd9: return text(readUint(1));
    case 0xda: return text(readUint(2));
    case 0xdb: return text(readUint(4));
    case 0xdc: return array(readUint(2), depth);
    case 0xdd: return array(readUint(4), depth);
    case 0xde: return map(readUint(2), depth);
    case 0xdf: return map(readUint(4), depth);
    case 0xc1: return malformed("unknown type byte 0xc1", pos - 1);
    default: return malformed(`extension type byte 0x${b.toString(16)} is not supported`, pos - 1);
  }
}

/** A str item: a JS string when its bytes are UTF-8, else the bytes (Lua strings are bytes). */
function text(length: number): string | Uint8Array {
  if (length > input.length - pos) malformed("truncated input");
  const start = pos;
  pos += length;
  if (length <= SHORT_TEXT) {
    let s = "";
    let i = start;
    for (; i < pos; i++) {
      const c = input[i]!;
      if (c >= 0x80) break;
      s += String.fromCharCode(c);
    }
    if (i === pos) return s;
  }
  const bytes = input.subarray(start, pos);
  try {
    return utf8.decode(bytes);
  } catch {
    return bytes.slice();
  }
}

function bin(length: number): Uint8Array {
  if (length > input.length - pos) malformed("truncated input");
  pos += length;
  return input.slice(pos - length, pos);
}

function array(n: number, depth: number): unknown[] {
  if (depth >= MAX_DEPTH) malformed(`containers nested deeper than ${MAX_DEPTH}`);
  if (n > input.length - pos) malformed("truncated input"); // every element takes a byte
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) out.push(read(depth + 1));
  return out;
}

function map(n: number, depth: number): Record<string, unknown> | Map<unknown, unknown> {
  if (depth >= MAX_DEPTH) malformed(`containers nested deeper than ${MAX_DEPTH}`);
  if (n > (input.length - pos) / 2) malformed("truncated input"); // every entry takes two bytes
  const keys: unknown[] = [];
  const values: unknown[] = [];
  let allText = true;
  for (let i = 0; i < n; i++) {
    const keyAt = pos;
    const tag = input[pos]!;
    if (tag >= 0x80 && tag < 0xa0 || tag >= 0xdc && tag <= 0xdf) malformed("map keys must be strings or numbers", keyAt);
    const key = read(depth + 1);
    if (key === null || typeof key === "boolean") malformed("map keys must be strings or numbers", keyAt);
    if (typeof key === "number" && Number.isNaN(key)) malformed("map key is NaN", keyAt);
    const value = read(depth + 1);
    if (value === null) continue; // as in Lua: a nil value is no entry
    if (typeof key !== "string") allText = false;
    keys.push(key);
    values.push(value);
  }
  if (!allText) {
    const out = new Map<unknown, unknown>();
    for (let i = 0; i < keys.length; i++) out.set(keys[i], values[i]);
    // Uint8Array keys are compared by identity, so repeated bin keys are not caught here.
    if (out.size !== keys.length) malformed("duplicate map key");
    return out;
  }
  const out: Record<string, unknown> = {};
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (Object.hasOwn(out, key)) malformed(`duplicate map key ${JSON.stringify(key)}`);
    // Plain assignment of "__proto__" would replace the prototype instead of adding a key.
    if (key === "__proto__") {
      Object.defineProperty(out, key, { value: values[i], enumerable: true, writable: true, configurable: true });
    } else out[key] = values[i];
  }
  return out;
}

function readUint(size: 1 | 2 | 4): number {
  if (size > input.length - pos) malformed("truncated input");
  const p = pos;
  pos += size;
  if (size === 1) return input[p]!;
  if (size === 2) return (input[p]! << 8) | input[p + 1]!;
  return ((input[p]! << 24) | (input[p + 1]! << 16) | (input[p + 2]! << 8) | input[p + 3]!) >>> 0;
}

function readFloat(size: 4 | 8): number {
  if (size > input.length - pos) malformed("truncated input");
  for (let i = 0; i < size; i++) floatScratch.setUint8(i, input[pos + i]!);
  pos += size;
  return size === 4 ? floatScratch.getFloat32(0) : floatScratch.getFloat64(0);
}

function malformed(what: string, at = pos): never {
  input = EMPTY;
  throw new CodecError(ROOT, `malformed MessagePack: ${what} at byte ${at}`);
}
