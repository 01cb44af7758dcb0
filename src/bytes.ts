/**
 * Byte strings: a JS string whose every char code is one byte (0..255), i.e. latin1.
 *
 * Lua strings are arbitrary bytes (invalid UTF-8, NUL). Keys, actor IDs and policy literals
 * are compared as byte strings so that two different Lua keys can never collapse into one
 * JS string (lossy UTF-8 decoding would make "\xff" and "\xfe" equal), which matters for
 * policy checks. TypeScript callers pass ordinary strings; they are UTF-8 encoded at the
 * edge with {@link byteStringFromText}.
 */
import { Buffer } from "node:buffer";

/** Converts ordinary text to its UTF-8 bytes as a byte string. ASCII returns unchanged. */
export function byteStringFromText(text: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return text;
  return Buffer.from(text, "utf8").toString("latin1");
}

/** Decodes a byte string as UTF-8 text (invalid sequences become U+FFFD): for display only. */
export function textFromByteString(bytes: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(bytes)) return bytes;
  return Buffer.from(bytes, "latin1").toString("utf8");
}

/** Converts bytes to a byte string. Short inputs avoid Buffer's call overhead. */
export function byteStringFromBytes(u8: Uint8Array, start = 0, end = u8.length): string {
  const n = end - start;
  if (n <= 24) {
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(u8[i]!);
    return s;
  }
  return Buffer.from(u8.buffer, u8.byteOffset + start, n).toString("latin1");
}

/** Converts a byte string to a fresh Uint8Array. */
export function bytesFromByteString(s: string): Uint8Array {
  const n = s.length;
  if (n <= 24) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  return new Uint8Array(Buffer.from(s, "latin1"));
}

/** A printable form of a byte string for messages: UTF-8 text with control bytes escaped. */
export function quoteByteString(bytes: string, max = 64): string {
  const text = textFromByteString(bytes.length > max ? bytes.slice(0, max) : bytes);
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/[\x00-\x1f\x7f\ufffd]/g, (c) =>
    c === "\ufffd" ? "\\x??" : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return JSON.stringify(escaped).replace(/\\\\x/g, "\\x") + (bytes.length > max ? "…" : "");
}
