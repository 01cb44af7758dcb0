/**
 * Lists in the zone: a chunked deque (layout in ./layout.ts, `L_*` and `C_*`). Each function works
 * on one list's descriptor `desc` as part of the caller's zone operation: every word of an existing
 * block changes through `zone.w` (undo-logged), a fresh chunk is written directly, and item bytes go
 * into a chunk's free bytes, which no reader looks at until the logged offsets say so. A push or pop
 * touches one end chunk and the descriptor: O(1) per item.
 */
import {
  align8,
  C_COUNT,
  C_END,
  C_NEXT,
  C_PREV,
  C_START,
  CHUNK_BYTES,
  CHUNK_HEADER,
  D_CHAIN,
  D_COUNT,
  D_KIND,
  L_LAST,
  LIST_DESC_BYTES,
  listItemBytes,
  TAG_LIST,
} from "./layout.js";
import type { Zone } from "./zone.js";

/** Bit flags of a block header (as in zone.ts): the size is the rest. */
const BLOCK_FLAGS = 7;

/** A fresh, empty list descriptor, or 0 when there is no room. */
export function newListDescriptor(zone: Zone): number {
  const desc = zone.alloc(LIST_DESC_BYTES, 0);
  if (desc === 0) return 0;
  const i32 = zone.i32;
  const d = desc >> 2;
  // A fresh block: written without undo.
  i32[d + D_CHAIN] = 0;
  i32[d + 2] = 0;
  i32[d + D_KIND] = TAG_LIST;
  i32[d + D_COUNT] = 0;
  i32[d + L_LAST] = 0;
  return desc;
}

export function listLength(zone: Zone, desc: number): number {
  return zone.i32[(desc >> 2) + D_COUNT]!;
}

/** Bytes the blocks of a push of items of these lengths may need at most (a room request). */
export function listPushBytes(values: readonly Uint8Array[]): number {
  let bytes = LIST_DESC_BYTES + 2 * (CHUNK_HEADER + CHUNK_BYTES);
  for (const value of values) bytes += listItemBytes(value.length) + (value.length > CHUNK_BYTES / 2 ? CHUNK_HEADER + 8 : 0);
  return bytes;
}

function writeItem(zone: Zone, at: number, value: Uint8Array): void {
  const i32 = zone.i32;
  i32[at >> 2] = value.length;
  zone.u8.set(value, at + 4);
  i32[(at + listItemBytes(value.length) - 4) >> 2] = value.length;
}

/** Pushes `value` onto `left` or the right end; false when no chunk could be had (nothing changed). */
export function listPush(zone: Zone, desc: number, left: boolean, value: Uint8Array): boolean {
  const i32 = zone.i32;
  const d = desc >> 2;
  const need = listItemBytes(value.length);
  const end = left ? i32[d + D_CHAIN]! : i32[d + L_LAST]!;
  if (end !== 0) {
    const c = end >> 2;
    if (left) {
      const start = i32[c + C_START]!;
      if (start - need >= CHUNK_HEADER) {
        writeItem(zone, end + start - need, value);
        zone.w(c + C_START, start - need);
        zone.w(c + C_COUNT, i32[c + C_COUNT]! + 1);
        zone.w(d + D_COUNT, i32[d + D_COUNT]! + 1);
        return true;
      }
    } else {
      const used = i32[c + C_END]!;
      if (used + need <= (i32[c]! & ~BLOCK_FLAGS)) {
        writeItem(zone, end + used, value);
        zone.w(c + C_END, used + need);
        zone.w(c + C_COUNT, i32[c + C_COUNT]! + 1);
        zone.w(d + D_COUNT, i32[d + D_COUNT]! + 1);
        return true;
      }
    }
  }
  const chunk = zone.alloc(align8(Math.max(CHUNK_BYTES, CHUNK_HEADER + need)), 0);
  if (chunk === 0) return false;
  const k = chunk >> 2;
  const size = i32[k]! & ~BLOCK_FLAGS;
  // A fresh chunk: written without undo. A left chunk fills from its far end, so later left
  // pushes find room before its first item; a right chunk from its header.
  const start = left ? size - need : CHUNK_HEADER;
  i32[k + C_COUNT] = 1;
  i32[k + C_START] = start;
  i32[k + C_END] = start + need;
  writeItem(zone, chunk + start, value);
  if (left) {
    i32[k + C_PREV] = 0;
    i32[k + C_NEXT] = end;
    if (end !== 0) zone.w((end >> 2) + C_PREV, chunk);
    else zone.w(d + L_LAST, chunk);
    zone.w(d + D_CHAIN, chunk);
  } else {
    i32[k + C_NEXT] = 0;
    i32[k + C_PREV] = end;
    if (end !== 0) zone.w((end >> 2) + C_NEXT, chunk);
    else zone.w(d + D_CHAIN, chunk);
    zone.w(d + L_LAST, chunk);
  }
  zone.w(d + D_COUNT, i32[d + D_COUNT]! + 1);
  return true;
}

/** Unlinks chunk `chunk` (emptied, or all of its items taken) from the list and frees it at commit. */
function dropChunk(zone: Zone, desc: number, chunk: number): void {
  const i32 = zone.i32;
  const d = desc >> 2;
  const prev = i32[(chunk >> 2) + C_PREV]!;
  const next = i32[(chunk >> 2) + C_NEXT]!;
  if (prev !== 0) zone.w((prev >> 2) + C_NEXT, next);
  else zone.w(d + D_CHAIN, next);
  if (next !== 0) zone.w((next >> 2) + C_PREV, prev);
  else zone.w(d + L_LAST, prev);
  zone.free(chunk);
}

/** Removes and returns the item at `left` or the right end of a non-empty list. */
export function listPop(zone: Zone, desc: number, left: boolean): Uint8Array {
  const i32 = zone.i32;
  const d = desc >> 2;
  const chunk = left ? i32[d + D_CHAIN]! : i32[d + L_LAST]!;
  const c = chunk >> 2;
  let at: number;
  let length: number;
  if (left) {
    at = i32[c + C_START]!;
    length = i32[(chunk + at) >> 2]!;
  } else {
    const used = i32[c + C_END]!;
    length = i32[(chunk + used - 4) >> 2]!;
    at = used - listItemBytes(length);
  }
  const value = zone.u8.slice(chunk + at + 4, chunk + at + 4 + length);
  const count = i32[c + C_COUNT]!;
  if (count === 1) dropChunk(zone, desc, chunk);
  else {
    if (left) zone.w(c + C_START, at + listItemBytes(length));
    else zone.w(c + C_END, at);
    zone.w(c + C_COUNT, count - 1);
  }
  zone.w(d + D_COUNT, i32[d + D_COUNT]! - 1);
  return value;
}

/** Items `from..to` (0-based, inclusive, within the list) in order, copied out. */
export function listRange(zone: Zone, desc: number, from: number, to: number): Uint8Array[] {
  const i32 = zone.i32;
  const u8 = zone.u8;
  const d = desc >> 2;
  const out = new Array<Uint8Array>(to - from + 1);
  // Find the chunk holding `from`, from the nearer end, skipping whole chunks by their counts.
  let chunk: number;
  let first: number; // index of the chunk's first item
  const count = i32[d + D_COUNT]!;
  if (from < count >>> 1) {
    chunk = i32[d + D_CHAIN]!;
    first = 0;
    while (first + i32[(chunk >> 2) + C_COUNT]! <= from) {
      first += i32[(chunk >> 2) + C_COUNT]!;
      chunk = i32[(chunk >> 2) + C_NEXT]!;
    }
  } else {
    chunk = i32[d + L_LAST]!;
    first = count - i32[(chunk >> 2) + C_COUNT]!;
    while (first > from) {
      chunk = i32[(chunk >> 2) + C_PREV]!;
      first -= i32[(chunk >> 2) + C_COUNT]!;
    }
  }
  let at = chunk + i32[(chunk >> 2) + C_START]!;
  for (let i = first; i < from; i++) at += listItemBytes(i32[at >> 2]!);
  let end = chunk + i32[(chunk >> 2) + C_END]!;
  for (let i = from; i <= to; i++) {
    if (at === end) {
      chunk = i32[(chunk >> 2) + C_NEXT]!;
      at = chunk + i32[(chunk >> 2) + C_START]!;
      end = chunk + i32[(chunk >> 2) + C_END]!;
    }
    const length = i32[at >> 2]!;
    out[i - from] = u8.slice(at + 4, at + 4 + length);
    at += listItemBytes(length);
  }
  return out;
}

/**
 * Removes `n` items (fewer than the list holds) from `left` or the right end: whole chunks are
 * unlinked, the last one cut by moving an offset. Returns the bytes of the items removed.
 */
export function listDrop(zone: Zone, desc: number, left: boolean, n: number): number {
  const i32 = zone.i32;
  const d = desc >> 2;
  let bytes = 0;
  let remaining = n;
  while (remaining > 0) {
    const chunk = left ? i32[d + D_CHAIN]! : i32[d + L_LAST]!;
    const c = chunk >> 2;
    const count = i32[c + C_COUNT]!;
    const take = Math.min(count, remaining);
    let start = i32[c + C_START]!;
    let end = i32[c + C_END]!;
    for (let i = 0; i < take; i++) {
      if (left) {
        const length = i32[(chunk + start) >> 2]!;
        bytes += length;
        start += listItemBytes(length);
      } else {
        const length = i32[(chunk + end - 4) >> 2]!;
        bytes += length;
        end -= listItemBytes(length);
      }
    }
    if (take === count) dropChunk(zone, desc, chunk);
    else {
      if (left) zone.w(c + C_START, start);
      else zone.w(c + C_END, end);
      zone.w(c + C_COUNT, count - take);
    }
    remaining -= take;
  }
  zone.w(d + D_COUNT, i32[d + D_COUNT]! - n);
  return bytes;
}

/**
 * Problems of the list at `desc` (verify): chunk links both ways, counts, offsets, item lengths;
 * adds each chunk to `reached` and returns the items' bytes through `out.bytes`.
 */
export function verifyList(zone: Zone, desc: number, blocks: ReadonlyMap<number, number>, reached: Set<number>, problem: (text: string) => void, out: { bytes: number }): void {
  const i32 = zone.i32;
  const d = desc >> 2;
  let chunk = i32[d + D_CHAIN]!;
  let prev = 0;
  let items = 0;
  let bytes = 0;
  while (chunk !== 0) {
    const header = blocks.get(chunk);
    if (header === undefined || (header & 3) !== 0 || reached.has(chunk)) {
      problem(`list ${desc} links to ${chunk}, not a chunk of its own`);
      return;
    }
    reached.add(chunk);
    const c = chunk >> 2;
    const size = header & ~BLOCK_FLAGS;
    if (i32[c + C_PREV] !== prev) problem(`list chunk ${chunk}: prev ${i32[c + C_PREV]}, not ${prev}`);
    const start = i32[c + C_START]!;
    const end = i32[c + C_END]!;
    if (start < CHUNK_HEADER || end > size || start >= end || (start & 3) !== 0 || (end & 3) !== 0) {
      problem(`list chunk ${chunk}: items at ${start}..${end} of ${size}`);
      return;
    }
    let n = 0;
    for (let at = start; at < end; n++) {
      const length = i32[(chunk + at) >> 2]!;
      const next = at + listItemBytes(length);
      if (length < 0 || next > end || i32[(chunk + next - 4) >> 2] !== length) {
        problem(`list chunk ${chunk}: a broken item at ${at}`);
        return;
      }
      bytes += length;
      at = next;
    }
    if (n !== i32[c + C_COUNT] || n === 0) problem(`list chunk ${chunk} holds ${n} items, says ${i32[c + C_COUNT]}`);
    items += n;
    prev = chunk;
    chunk = i32[c + C_NEXT]!;
  }
  if (i32[d + L_LAST] !== prev) problem(`list ${desc}: last chunk ${i32[d + L_LAST]}, the walk ended at ${prev}`);
  if (items !== i32[d + D_COUNT]) problem(`list ${desc} holds ${items} items, says ${i32[d + D_COUNT]}`);
  if (items === 0) problem(`list ${desc} is empty but stored`);
  out.bytes = bytes;
}
