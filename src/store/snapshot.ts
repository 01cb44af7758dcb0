/**
 * Snapshots of a memory store (registry field `snapshot: { path, every }`): one file holding
 * every live entry, written atomically and read back when the host starts.
 *
 * Layout (little-endian): the 8 bytes `LUASNAP1`, then one record per entry — u32 key length,
 * key bytes, u32 value length, value bytes, f64 expiry (clock ms since the epoch, 0 = never:
 * TTLs survive as absolute times), u32 metadata length + 1 (0 = none), metadata bytes — then
 * the trailer: `END!`, u32 entry count, u32 CRC-32 of every byte before the CRC.
 *
 * A write goes to a temporary file next to the snapshot, is fsynced, renamed over it, and the
 * directory is fsynced: a crash at any moment leaves either the previous snapshot or the new one,
 * whole. A file that is not a snapshot, is cut short or fails its checksum is refused with
 * {@link SnapshotError} (its path and the byte offset), never overwritten: the store does not
 * open rather than start empty and lose the data at its next write.
 */
import { Buffer } from "node:buffer";
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { dirname, basename, join } from "node:path";
import { crc32 } from "node:zlib";
import { ErrorKind, StoreError } from "../errors.js";

const MAGIC = Buffer.from("LUASNAP1", "latin1");
const END = Buffer.from("END!", "latin1");
const TRAILER_BYTES = 12;
/** Bytes gathered before they are handed to the file as one chunk. */
const CHUNK_BYTES = 1 << 20;

/** One entry as a snapshot holds it. */
export interface SnapshotEntry {
  key: string;
  value: Uint8Array;
  /** Clock ms since the epoch; 0 = never. */
  expiresAt: number;
  metadata?: Uint8Array | undefined;
}

/** A snapshot file that cannot be read: `path` and, when the problem is at one place, `offset`. */
export class SnapshotError extends StoreError {
  readonly path: string;
  readonly offset: number | undefined;
  constructor(path: string, message: string, offset?: number, cause?: unknown) {
    super(ErrorKind.INVALID, `snapshot ${path}${offset === undefined ? "" : ` at byte ${offset}`}: ${message}`, { cause });
    this.name = "SnapshotError";
    this.path = path;
    this.offset = offset;
  }
}

/** The snapshot's bytes as chunks of about 1 MiB: a copy of every entry, taken at once. */
export function encodeSnapshot(entries: Iterable<SnapshotEntry>): Buffer[] {
  const chunks: Buffer[] = [];
  let chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let at = 0;
  let count = 0;
  let crc = 0;
  const finish = (next: number) => {
    const done = chunk.subarray(0, at);
    crc = crc32(done, crc);
    chunks.push(done);
    chunk = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, next));
    at = 0;
  };
  MAGIC.copy(chunk, 0);
  at = MAGIC.length;
  for (const e of entries) {
    const meta = e.metadata;
    const size = 4 + e.key.length + 4 + e.value.length + 12 + (meta?.length ?? 0);
    if (at + size > chunk.length) finish(size);
    chunk.writeUInt32LE(e.key.length, at);
    at += 4;
    at += chunk.write(e.key, at, "latin1");
    chunk.writeUInt32LE(e.value.length, at);
    at += 4;
    chunk.set(e.value, at);
    at += e.value.length;
    chunk.writeDoubleLE(e.expiresAt, at);
    chunk.writeUInt32LE(meta === undefined ? 0 : meta.length + 1, at + 8);
    at += 12;
    if (meta !== undefined) {
      chunk.set(meta, at);
      at += meta.length;
    }
    count++;
  }
  if (at + TRAILER_BYTES > chunk.length) finish(TRAILER_BYTES);
  END.copy(chunk, at);
  chunk.writeUInt32LE(count >>> 0, at + 4);
  at += 8;
  const body = chunk.subarray(0, at);
  crc = crc32(body, crc);
  chunk.writeUInt32LE(crc >>> 0, at);
  chunks.push(chunk.subarray(0, at + 4));
  return chunks;
}

/** Reads a snapshot file; undefined when there is none. @throws SnapshotError for a bad file */
export function readSnapshot(path: string): SnapshotEntry[] | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new SnapshotError(path, `cannot be read: ${(error as Error).message}`, undefined, error);
  }
  return decodeSnapshot(path, bytes);
}

/** The entries of a snapshot's bytes. @throws SnapshotError naming `path` and the offset */
export function decodeSnapshot(path: string, bytes: Buffer): SnapshotEntry[] {
  if (bytes.length < MAGIC.length || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new SnapshotError(path, "not a luastore snapshot (it does not start with LUASNAP1)", 0);
  }
  if (bytes.length < MAGIC.length + TRAILER_BYTES) throw new SnapshotError(path, "cut short: no trailer", bytes.length);
  const end = bytes.length - TRAILER_BYTES;
  if (!bytes.subarray(end, end + 4).equals(END)) throw new SnapshotError(path, "cut short or damaged: no END! trailer", end);
  const stored = bytes.readUInt32LE(bytes.length - 4);
  const actual = crc32(bytes.subarray(0, bytes.length - 4)) >>> 0;
  if (stored !== actual) throw new SnapshotError(path, `checksum mismatch (stored ${stored}, computed ${actual})`, bytes.length - 4);
  const expected = bytes.readUInt32LE(end + 4);
  const entries: SnapshotEntry[] = [];
  let at = MAGIC.length;
  const need = (n: number, what: string) => {
    if (at + n > end) throw new SnapshotError(path, `${what} runs past the last record`, at);
  };
  while (at < end) {
    const recordAt = at;
    need(4, "a key length");
    const keyLength = bytes.readUInt32LE(at);
    at += 4;
    need(keyLength, "a key");
    if (keyLength === 0) throw new SnapshotError(path, "an empty key", recordAt);
    const key = bytes.toString("latin1", at, at + keyLength);
    at += keyLength;
    need(4, "a value length");
    const valueLength = bytes.readUInt32LE(at);
    at += 4;
    need(valueLength + 12, "a value");
    // Copies: a view would keep the whole file's buffer alive.
    const value = Uint8Array.prototype.slice.call(bytes, at, at + valueLength);
    at += valueLength;
    const expiresAt = bytes.readDoubleLE(at);
    if (!Number.isFinite(expiresAt) || expiresAt < 0) throw new SnapshotError(path, `a bad expiry ${expiresAt}`, at);
    const metaField = bytes.readUInt32LE(at + 8);
    at += 12;
    let metadata: Uint8Array | undefined;
    if (metaField > 0) {
      need(metaField - 1, "metadata");
      metadata = Uint8Array.prototype.slice.call(bytes, at, at + metaField - 1);
      at += metaField - 1;
    }
    entries.push(metadata === undefined ? { key, value, expiresAt } : { key, value, expiresAt, metadata });
  }
  if (entries.length !== expected) throw new SnapshotError(path, `holds ${entries.length} entries, its trailer says ${expected}`, end);
  return entries;
}

function temporaryPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
}

/** Writes `chunks` to `path` atomically (temporary file, fsync, rename, fsync of the directory). */
export async function writeSnapshot(path: string, chunks: readonly Buffer[]): Promise<void> {
  const tmp = temporaryPath(path);
  const file = await open(tmp, "w", 0o600);
  try {
    for (const chunk of chunks) await file.write(chunk);
    await file.sync();
  } catch (error) {
    await file.close().catch(() => {});
    await rm(tmp, { force: true });
    throw error;
  }
  await file.close();
  await rename(tmp, path);
  await syncDirectory(dirname(path));
}

/** writeSnapshot, synchronously (for a store closing when nothing may wait). */
export function writeSnapshotSync(path: string, chunks: readonly Buffer[]): void {
  const tmp = temporaryPath(path);
  const fd = openSync(tmp, "w", 0o600);
  try {
    for (const chunk of chunks) writeSync(fd, chunk);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(tmp, path);
  const dir = openSync(dirname(path), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
