/**
 * Lua strings as table keys, fixed in this thread's fengari (0.1.5).
 *
 * fengari keys a string in a table by a JS string built from its bytes (`luaS_hash`):
 * `"|" + byte.toString(16)` for each byte, unpadded, so two different strings can share a key
 * (`"\1\17"` and `"\17\1"` both give `"|111"`: `t["\1\17"]` and `t["\17\1"]` were one entry),
 * and it builds that key with one concatenation per byte, a rope of about 55 bytes of heap per
 * byte of the string (a 10 MB string literal took 550 MB to compile).
 *
 * The key is cached in `TString#hash`, assigned null by the constructor and computed by
 * `luaS_hashlongstr` when it is null. An accessor on the prototype (so it applies whatever was
 * loaded first) computes it instead as `"|"` + two lowercase hex digits per byte, natively: no
 * collisions, one flat string, and the same key as fengari's for every string whose bytes are
 * all >= 0x10, which includes the reserved words its lexer looks up in a table built with the
 * old function at load time.
 */
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";

interface TStringFields {
  realstring: Uint8Array;
  luastoreHash: string | null;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/** fengari's key format with every byte as two hex digits. */
export function stringKey(bytes: Uint8Array): string {
  if (bytes.length <= 16) {
    let s = "|";
    for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!]!;
    return s;
  }
  return `|${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex")}`;
}

let installed = false;

/** Installs the key accessor on fengari's TString. Idempotent. */
export function installStringHash(): void {
  if (installed) return;
  installed = true;
  const require = createRequire(import.meta.url);
  const { TString } = require("fengari/src/lstring.js") as { TString: { prototype: TStringFields } };
  Object.defineProperty(TString.prototype, "hash", {
    configurable: true,
    get(this: TStringFields) {
      return (this.luastoreHash ??= stringKey(this.realstring));
    },
    set(this: TStringFields, hash: string | null) {
      this.luastoreHash = hash;
    },
  });
}
