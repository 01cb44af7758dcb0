/**
 * Reading registry and policy files so that no path can stall or fool the loader: only regular
 * files (a device, FIFO or socket, directly or through a symbolic link, is refused with its path
 * before a byte is read), at most `maxBytes` bytes (checked on the size and again while reading,
 * for files that grow or report no size), and valid UTF-8 (the first invalid byte is refused at
 * its line and column rather than decoded as U+FFFD, so a rule compares the bytes written).
 */
import { Buffer, isUtf8 } from "node:buffer";
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync, statSync, type Stats } from "node:fs";
import type { Problem } from "../errors.js";
import { excerptOfLine } from "./yaml-source.js";

/** Largest registry or policy file read, in bytes, unless the caller says otherwise. */
export const DEFAULT_MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** The text of a config file, or the one problem that refuses it. */
export type ConfigFileRead = { text: string } | { problem: Problem };

/**
 * Reads a config file. `what` names it in messages ("registry file", "policy file").
 * Problems about the file as a whole are at line 0 (printed as `path: message`).
 */
export function readConfigFile(path: string, what: string, maxBytes = DEFAULT_MAX_CONFIG_BYTES): ConfigFileRead {
  const refuse = (code: Problem["code"], message: string): ConfigFileRead => ({
    problem: { file: path, line: 0, column: 0, message, excerpt: "", ...(code !== undefined ? { code } : {}) },
  });
  // Refuse a device, FIFO or socket before opening it: opening some devices has effects of its own.
  try {
    const stats = statSync(path);
    if (!stats.isFile()) return refuse("NOT_A_FILE", `cannot read ${what}: ${linkNote(path)}${fileType(stats)}, not a regular file`);
  } catch (error) {
    return refuse("CANNOT_READ", `cannot read ${what}: ${describeOsError(error)}`);
  }
  let fd: number;
  try {
    // Checked again on the open file (the path may have changed since). O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    return refuse("CANNOT_READ", `cannot read ${what}: ${describeOsError(error)}`);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      return refuse("NOT_A_FILE", `cannot read ${what}: ${linkNote(path)}${fileType(stats)}, not a regular file`);
    }
    if (stats.size > maxBytes) {
      return refuse("FILE_TOO_LARGE", `${what} is ${stats.size} bytes, larger than the limit of ${maxBytes} bytes`);
    }
    const bytes = readUpTo(fd, maxBytes + 1);
    if (bytes.length > maxBytes) {
      return refuse("FILE_TOO_LARGE", `${what} is larger than the limit of ${maxBytes} bytes (it grew while being read)`);
    }
    const invalid = firstInvalidUtf8(bytes);
    if (invalid >= 0) return { problem: invalidUtf8Problem(path, what, bytes, invalid) };
    return { text: bytes.toString("utf8") };
  } catch (error) {
    return refuse("CANNOT_READ", `cannot read ${what}: ${describeOsError(error)}`);
  } finally {
    closeSync(fd);
  }
}

/** Reads at most `limit` bytes from `fd`. */
function readUpTo(fd: number, limit: number): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < limit) {
    const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, limit - total));
    const n = readSync(fd, chunk, 0, chunk.length, null);
    if (n === 0) break;
    chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    total += n;
  }
  return Buffer.concat(chunks, total);
}

function fileType(stats: Stats): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  if (stats.isFIFO()) return "a FIFO (named pipe)";
  if (stats.isSocket()) return "a socket";
  return "not a regular file";
}

/** "a symbolic link to X, which is " when `path` is a link, else "it is ". */
function linkNote(path: string): string {
  try {
    if (lstatSync(path).isSymbolicLink()) return `it is a symbolic link to ${readlinkSync(path)}, which is `;
  } catch {
    // The file was opened; if the link cannot be read now, say what the file is without it.
  }
  return "it is ";
}

/** An OS error as "permission denied (EACCES)". */
export function describeOsError(error: unknown): string {
  const e = error as NodeJS.ErrnoException | undefined;
  const reasons: Record<string, string> = {
    ENOENT: "no such file or directory",
    EISDIR: "it is a directory",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    ELOOP: "too many levels of symbolic links",
    ENOTDIR: "a component of the path is not a directory",
    ENAMETOOLONG: "the path is too long",
    EMFILE: "too many open files",
  };
  if (e?.code !== undefined) return `${reasons[e.code] ?? e.message} (${e.code})`;
  return error instanceof Error ? error.message : String(error);
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence, or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  if (isUtf8(bytes)) return -1;
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined) return i;
      if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** The problem for an invalid byte at `offset`: its line, and its column in characters of that line. */
function invalidUtf8Problem(file: string, what: string, bytes: Buffer, offset: number): Problem {
  let line = 1;
  let lineStart = 0;
  for (let i = bytes.indexOf(0x0a); i >= 0 && i < offset; i = bytes.indexOf(0x0a, i + 1)) {
    line++;
    lineStart = i + 1;
  }
  // Everything before `offset` is valid, so its decoded length is the column.
  const column = bytes.toString("utf8", lineStart, offset).length + 1;
  let lineEnd = bytes.indexOf(0x0a, offset);
  if (lineEnd < 0) lineEnd = bytes.length;
  const shown = bytes.toString("utf8", lineStart, lineEnd).replace(/\r$/, "");
  const hex = bytes[offset]!.toString(16).padStart(2, "0");
  return {
    file,
    line,
    column,
    message: `invalid UTF-8 in ${what} (byte 0x${hex}); config files must be UTF-8 text`,
    excerpt: excerptOfLine(shown, line, column),
    code: "INVALID_UTF8",
  };
}
