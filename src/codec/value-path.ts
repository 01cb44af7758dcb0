/**
 * How the codec names a place inside a value in its errors: the root name, then `.name` for
 * string keys that are Lua identifiers, `["..."]` for other strings (escaped, shortened) and
 * `[3]` / `[1.5]` for numbers. Only built on the failure path.
 */

const LUA_KEYWORDS: ReadonlySet<string> = new Set([
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
]);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Longer keys are cut in messages: a key can be as large as a value. */
const MAX_SHOWN = 64;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The path segment for a text key: `.name` or `["text"]`. */
export function textKeySegment(key: string): string {
  if (IDENTIFIER.test(key) && !LUA_KEYWORDS.has(key)) return `.${key}`;
  const shown = key.length > MAX_SHOWN ? key.slice(0, MAX_SHOWN) : key;
  let quoted = "";
  for (const ch of shown) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") quoted += `\\${ch}`;
    else if (ch === "\n") quoted += "\\n";
    else if (ch === "\t") quoted += "\\t";
    else if (ch === "\r") quoted += "\\r";
    else if (c < 0x20 || c === 0x7f) quoted += `\\x${hex2(c)}`;
    else if (c >= 0xd800 && c <= 0xdfff) quoted += `\\u{${c.toString(16)}}`; // a lone surrogate
    else quoted += ch;
  }
  return `["${quoted}"${key.length > MAX_SHOWN ? "..." : ""}]`;
}

/** The path segment for a Lua string key: shown as text when it is UTF-8, else byte-escaped. */
export function bytesKeySegment(key: Uint8Array): string {
  let text: string | undefined;
  try {
    text = utf8.decode(key);
  } catch {
    text = undefined;
  }
  if (text !== undefined) return textKeySegment(text);
  const shown = key.length > MAX_SHOWN ? key.subarray(0, MAX_SHOWN) : key;
  let quoted = "";
  for (const b of shown) {
    if (b === 0x22 || b === 0x5c) quoted += `\\${String.fromCharCode(b)}`;
    else if (b >= 0x20 && b < 0x7f) quoted += String.fromCharCode(b);
    else quoted += `\\x${hex2(b)}`;
  }
  return `["${quoted}"${key.length > MAX_SHOWN ? "..." : ""}]`;
}

/** The path segment for a number key: `[3]`, `[1.5]`, `[1/0]`. */
export function numberKeySegment(key: number): string {
  if (key === Infinity) return "[1/0]";
  if (key === -Infinity) return "[-1/0]";
  return `[${String(key)}]`;
}

function hex2(c: number): string {
  return c.toString(16).padStart(2, "0");
}
