/**
 * The MessagePack byte writer shared by the Lua-side and the host-side encoders: a growable
 * scratch buffer reused across calls, with the size limit checked on every write so that an
 * oversized value is refused as soon as it crosses `maxBytes`, before a huge buffer is built.
 * The format choices (smallest int form, float64 only, strings as str) are the callers'.
 */
import { CodecError } from "./codec-error.js";

/** Scratch buffers above this size are dropped after use rather than kept for the next value. */
const RETAINED_BYTES = 1 << 20;
const INITIAL_BYTES = 256;
/** Up to this length a byte loop beats `Uint8Array.prototype.set` (measured on Node 20). */
const SHORT_COPY = 16;

/** Appends MessagePack items to a reusable buffer; `begin` a value, write it, `finish` to copy it out. */
export class MsgpackWriter {
  private bytes: Uint8Array = new Uint8Array(INITIAL_BYTES);
  private view: DataView = new DataView(this.bytes.buffer);
  private pos = 0;
  /** `min(bytes.length, maxBytes)`: a write that stays below it needs no other check. */
  private limit = 0;
  private maxBytes = 0;
  private rootName = "value";

  /** Starts a new value of at most `maxBytes` bytes; `rootName` names it in the size error. */
  begin(maxBytes: number, rootName: string): void {
    if (!(maxBytes >= 0)) throw new RangeError(`maxBytes must be a number >= 0, got ${maxBytes}`);
    this.pos = 0;
    this.maxBytes = maxBytes;
    this.rootName = rootName;
    this.limit = Math.min(this.bytes.length, maxBytes);
  }

  /** Returns a fresh exact-size copy of the value written since `begin`. */
  finish(): Uint8Array {
    const out = this.bytes.slice(0, this.pos);
    if (this.bytes.length > RETAINED_BYTES) this.replaceBuffer(new Uint8Array(INITIAL_BYTES));
    return out;
  }

  writeBoolean(b: boolean): void {
    if (this.pos + 1 > this.limit) this.grow(1);
    this.bytes[this.pos++] = b ? 0xc3 : 0xc2;
  }

  /** Writes an integer in `[-2^31, 2^31)` in its smallest MessagePack form. */
  writeInt(v: number): void {
    const bytes = this.bytes;
    if (v >= 0) {
      if (v < 0x80) {
        if (this.pos + 1 > this.limit) return this.growThen(1, v);
        bytes[this.pos++] = v;
      } else if (v < 0x100) {
        if (this.pos + 2 > this.limit) return this.growThen(2, v);
        bytes[this.pos] = 0xcc;
        bytes[this.pos + 1] = v;
        this.pos += 2;
      } else if (v < 0x10000) {
        if (this.pos + 3 > this.limit) return this.growThen(3, v);
        bytes[this.pos] = 0xcd;
        bytes[this.pos + 1] = v >>> 8;
        bytes[this.pos + 2] = v;
        this.pos += 3;
      } else {
        if (this.pos + 5 > this.limit) return this.growThen(5, v);
        bytes[this.pos] = 0xce;
        this.put32(this.pos + 1, v);
        this.pos += 5;
      }
    } else if (v >= -0x20) {
      if (this.pos + 1 > this.limit) return this.growThen(1, v);
      bytes[this.pos++] = v & 0xff;
    } else if (v >= -0x80) {
      if (this.pos + 2 > this.limit) return this.growThen(2, v);
      bytes[this.pos] = 0xd0;
      bytes[this.pos + 1] = v;
      this.pos += 2;
    } else if (v >= -0x8000) {
      if (this.pos + 3 > this.limit) return this.growThen(3, v);
      bytes[this.pos] = 0xd1;
      bytes[this.pos + 1] = v >> 8;
      bytes[this.pos + 2] = v;
      this.pos += 3;
    } else {
      if (this.pos + 5 > this.limit) return this.growThen(5, v);
      bytes[this.pos] = 0xd2;
      this.put32(this.pos + 1, v);
      this.pos += 5;
    }
  }

  /** Writes a float64 (always 9 bytes, so integral floats, -0, inf and NaN keep their identity). */
  writeFloat(x: number): void {
    if (this.pos + 9 > this.limit) this.grow(9);
    this.bytes[this.pos] = 0xcb;
    this.view.setFloat64(this.pos + 1, x);
    this.pos += 9;
  }

  /** Writes `data` as a str item (raw bytes, whether or not they are UTF-8). */
  writeStr(data: Uint8Array): void {
    this.writeBytesItem(data, 0xa0, 0xd9);
  }

  /** Writes `data` as a bin item. */
  writeBin(data: Uint8Array): void {
    this.writeBytesItem(data, -1, 0xc4);
  }

  /** Writes a JS string as a str item of its UTF-8 bytes (lone surrogates become U+FFFD, as TextEncoder does). */
  writeText(s: string): void {
    const n = utf8Length(s);
    this.writeLengthHeader(n, 0xa0, 0xd9);
    if (this.pos + n > this.limit) this.grow(n);
    if (n === s.length) {
      const bytes = this.bytes;
      let p = this.pos;
      for (let i = 0; i < n; i++) bytes[p++] = s.charCodeAt(i);
    } else {
      textEncoder.encodeInto(s, this.bytes.subarray(this.pos, this.pos + n));
    }
    this.pos += n;
  }

  writeArrayHeader(n: number): void {
    if (n < 16) {
      if (this.pos + 1 > this.limit) this.grow(1);
      this.bytes[this.pos++] = 0x90 | n;
    } else this.writeWideHeader(n, 0xdc);
  }

  writeMapHeader(n: number): void {
    if (n < 16) {
      if (this.pos + 1 > this.limit) this.grow(1);
      this.bytes[this.pos++] = 0x80 | n;
    } else this.writeWideHeader(n, 0xde);
  }

  /** `fix` is the fixstr tag or -1 when the family has none (bin); `wide8` the 8-bit length tag. */
  private writeBytesItem(data: Uint8Array, fix: number, wide8: number): void {
    const n = data.length;
    this.writeLengthHeader(n, fix, wide8);
    if (this.pos + n > this.limit) this.grow(n);
    if (n <= SHORT_COPY) {
      const bytes = this.bytes;
      let p = this.pos;
      for (let i = 0; i < n; i++) bytes[p++] = data[i]!;
    } else {
      this.bytes.set(data, this.pos);
    }
    this.pos += n;
  }

  /** str and bin headers: tags `wide8`, `wide8 + 1`, `wide8 + 2` carry 8, 16 and 32-bit lengths. */
  private writeLengthHeader(n: number, fix: number, wide8: number): void {
    if (n < 32 && fix >= 0) {
      if (this.pos + 1 > this.limit) this.grow(1);
      this.bytes[this.pos++] = fix | n;
    } else if (n < 0x100) {
      if (this.pos + 2 > this.limit) this.grow(2);
      this.bytes[this.pos] = wide8;
      this.bytes[this.pos + 1] = n;
      this.pos += 2;
    } else if (n < 0x10000) {
      if (this.pos + 3 > this.limit) this.grow(3);
      this.bytes[this.pos] = wide8 + 1;
      this.bytes[this.pos + 1] = n >>> 8;
      this.bytes[this.pos + 2] = n;
      this.pos += 3;
    } else {
      if (this.pos + 5 > this.limit) this.grow(5);
      this.bytes[this.pos] = wide8 + 2;
      this.put32(this.pos + 1, n);
      this.pos += 5;
    }
  }

  /** array16/32 (`tag` 0xdc) and map16/32 (`tag` 0xde) headers. */
  private writeWideHeader(n: number, tag: number): void {
    if (n < 0x10000) {
      if (this.pos + 3 > this.limit) this.grow(3);
      this.bytes[this.pos] = tag;
      this.bytes[this.pos + 1] = n >>> 8;
      this.bytes[this.pos + 2] = n;
      this.pos += 3;
    } else {
      if (this.pos + 5 > this.limit) this.grow(5);
      this.bytes[this.pos] = tag + 1;
      this.put32(this.pos + 1, n);
      this.pos += 5;
    }
  }

  private put32(p: number, v: number): void {
    const bytes = this.bytes;
    bytes[p] = v >>> 24;
    bytes[p + 1] = v >>> 16;
    bytes[p + 2] = v >>> 8;
    bytes[p + 3] = v;
  }

  /** Kept out of line so that `writeInt`'s fast path stays small. */
  private growThen(n: number, v: number): void {
    this.grow(n);
    this.writeInt(v);
  }

  /** Makes room for `n` more bytes, or refuses the value if it would exceed `maxBytes`. */
  private grow(n: number): void {
    const needed = this.pos + n;
    if (needed > this.maxBytes) {
      // The size when encoding stopped: exact for a single string, a lower bound for a table.
      throw new CodecError(this.rootName, `encoded size ${needed} exceeds max_value_size ${this.maxBytes}`);
    }
    const size = Math.max(needed, Math.min(this.bytes.length * 2, this.maxBytes));
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.pos));
    this.replaceBuffer(next);
  }

  private replaceBuffer(next: Uint8Array): void {
    this.bytes = next;
    this.view = new DataView(next.buffer);
    this.limit = Math.min(next.length, this.maxBytes);
  }
}

const textEncoder = new TextEncoder();

/** UTF-8 length of a JS string, counting a lone surrogate as the 3 bytes of U+FFFD. */
function utf8Length(s: string): number {
  const n = s.length;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 2; // 2 UTF-16 units → 4 bytes
        i++;
      } else bytes += 2;
    } else bytes += 2;
  }
  return bytes;
}
