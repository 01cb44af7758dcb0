/**
 * Sorted sets in the zone: a skip list with spans (Redis's zskiplist) whose nodes are zone blocks,
 * ordered by (score, member bytes), plus a member hash table (layout in ./layout.ts, `Z_*` and
 * `N_*`). Insert, delete, rank and the start of a range cost O(log n) expected, a range of k members
 * O(log n + k), a score lookup O(1). Each function works on one set's descriptor `desc` (which is
 * also the list's head node) as part of the caller's zone operation: words of existing blocks change
 * through `zone.w` (undo-logged), a fresh node or table is written directly.
 */
import { SCORE_BYTES, type ZsetEntry } from "../store.js";
import {
  align8,
  D_CHAIN,
  D_COUNT,
  D_KIND,
  N_BACK,
  N_FWD0,
  N_HASH,
  N_INFO,
  N_SCORE,
  nodeBytes,
  nodeFwd,
  nodeMemberOffset,
  nodeSpan,
  TAG_ZSET,
  Z_HASH,
  Z_HASH_MASK,
  Z_LEVEL,
  Z_TAIL,
  ZSET_DESC_BYTES,
  ZSET_MAX_LEVEL,
  ZSET_MIN_BUCKETS,
} from "./layout.js";
import { hashKey } from "./hash-key.js";
import type { Zone } from "./zone.js";

/** Bit flags of a block header (as in zone.ts): the size is the rest. */
const BLOCK_FLAGS = 7;
/** Per search, the node before the insert or delete point at each level, and its rank. */
const update = new Int32Array(ZSET_MAX_LEVEL);
const rankAt = new Float64Array(ZSET_MAX_LEVEL);

/** A node's level: 1 + one more with probability 1/4 each (Redis's choice), at most ZSET_MAX_LEVEL. */
function randomLevel(): number {
  let level = 1;
  while (level < ZSET_MAX_LEVEL && Math.random() < 0.25) level++;
  return level;
}

function tableBytes(buckets: number): number {
  return align8(4 * (1 + buckets));
}

/** A fresh, empty sorted-set descriptor (and its member hash table), or 0 when there is no room. */
export function newZsetDescriptor(zone: Zone): number {
  const table = zone.alloc(tableBytes(ZSET_MIN_BUCKETS), 0);
  if (table === 0) return 0;
  const desc = zone.alloc(ZSET_DESC_BYTES, 0);
  if (desc === 0) return 0;
  const i32 = zone.i32;
  const d = desc >> 2;
  // Fresh blocks: written without undo.
  i32.fill(0, d + 1, d + ZSET_DESC_BYTES / 4);
  i32.fill(0, (table >> 2) + 1, (table >> 2) + 1 + ZSET_MIN_BUCKETS);
  i32[d + D_KIND] = TAG_ZSET;
  i32[d + Z_LEVEL] = 1;
  i32[d + Z_HASH] = table;
  i32[d + Z_HASH_MASK] = ZSET_MIN_BUCKETS - 1;
  return desc;
}

export function zsetCount(zone: Zone, desc: number): number {
  return zone.i32[(desc >> 2) + D_COUNT]!;
}

/** Bytes the blocks of adding `members` new members may need at most (a room request). */
export function zsetAddBytes(zone: Zone, desc: number, members: readonly string[]): number {
  const count = desc === 0 ? 0 : zsetCount(zone, desc);
  let bytes = ZSET_DESC_BYTES + tableBytes(4 * (count + members.length) + ZSET_MIN_BUCKETS);
  for (const member of members) bytes += nodeBytes(ZSET_MAX_LEVEL, member.length);
  return bytes;
}

export function scoreOf(zone: Zone, node: number): number {
  return zone.f64[(node >> 3) + (N_SCORE >> 1)]!;
}

function memberLength(zone: Zone, node: number): number {
  return zone.i32[(node >> 2) + N_INFO]! >>> 8;
}

function memberOffset(zone: Zone, node: number): number {
  return node + nodeMemberOffset(zone.i32[(node >> 2) + N_INFO]! & 0xff);
}

/** The node's member bytes minus `member`'s, by bytes (negative: the node sorts first). */
function compareMember(zone: Zone, node: number, member: string): number {
  const len = memberLength(zone, node);
  const off = memberOffset(zone, node);
  const n = len < member.length ? len : member.length;
  const u8 = zone.u8;
  for (let i = 0; i < n; i++) {
    const d = u8[off + i]! - member.charCodeAt(i);
    if (d !== 0) return d;
  }
  return len - member.length;
}

/** True when `node` sorts before (score, member). */
function before(zone: Zone, node: number, score: number, member: string): boolean {
  const s = scoreOf(zone, node);
  return s < score || (s === score && compareMember(zone, node, member) < 0);
}

export function memberOf(zone: Zone, node: number): string {
  const len = memberLength(zone, node);
  const off = memberOffset(zone, node);
  if (len <= 32) {
    let s = "";
    for (let i = 0; i < len; i++) s += String.fromCharCode(zone.u8[off + i]!);
    return s;
  }
  return Buffer.from(zone.buffer, off, len).toString("latin1");
}

/**
 * The member hash table is open addressing with linear probing (slots hold node offsets, 0 =
 * empty; at most half full), the member's hash kept in its node: growing it fills a fresh table
 * and changes no word of any node, so a set of any size grows within a small undo log.
 */
function slotOf(zone: Zone, desc: number, member: string, h: number): number {
  const i32 = zone.i32;
  const d = desc >> 2;
  const base = (i32[d + Z_HASH]! >> 2) + 1;
  const mask = i32[d + Z_HASH_MASK]!;
  for (let i = h & mask; ; i = (i + 1) & mask) {
    const node = i32[base + i]!;
    if (node === 0) return -1;
    if (i32[(node >> 2) + N_HASH] === (h | 0) && memberLength(zone, node) === member.length && compareMember(zone, node, member) === 0) return base + i;
  }
}

/** The node of `member` (hash `h`, from hashKey), or 0. */
export function zsetFind(zone: Zone, desc: number, member: string, h: number): number {
  const slot = slotOf(zone, desc, member, h);
  return slot === -1 ? 0 : zone.i32[slot]!;
}

/** Doubles the member hash table; false when there is no room for the new one. */
function growTable(zone: Zone, desc: number): boolean {
  const i32 = zone.i32;
  const d = desc >> 2;
  const slots = (i32[d + Z_HASH_MASK]! + 1) * 2;
  const table = zone.alloc(tableBytes(slots), 0);
  if (table === 0) return false;
  const base = (table >> 2) + 1;
  const mask = slots - 1;
  // A fresh table: filled without undo.
  i32.fill(0, base, base + slots);
  for (let x = i32[d + N_FWD0]!; x !== 0; x = i32[(x >> 2) + N_FWD0]!) {
    let i = i32[(x >> 2) + N_HASH]! & mask;
    while (i32[base + i] !== 0) i = (i + 1) & mask;
    i32[base + i] = x;
  }
  zone.free(i32[d + Z_HASH]!);
  zone.w(d + Z_HASH, table);
  zone.w(d + Z_HASH_MASK, mask);
  return true;
}

/** Empties the table slot `slot` (a word index), shifting back the probes that passed it (Knuth's algorithm R). */
function clearSlot(zone: Zone, desc: number, slot: number): void {
  const i32 = zone.i32;
  const d = desc >> 2;
  const base = (i32[d + Z_HASH]! >> 2) + 1;
  const mask = i32[d + Z_HASH_MASK]!;
  let hole = slot - base;
  for (let j = (hole + 1) & mask; ; j = (j + 1) & mask) {
    const node = i32[base + j]!;
    if (node === 0) break;
    const home = i32[(node >> 2) + N_HASH]! & mask;
    // The node stays when its home lies cyclically in (hole, j].
    if (hole <= j ? hole < home && home <= j : hole < home || home <= j) continue;
    zone.w(base + hole, node);
    hole = j;
  }
  zone.w(base + hole, 0);
}

/** Adds the new member `member` (hash `h`) with `score`; false when there is no room (the caller rolls back). */
export function zsetInsert(zone: Zone, desc: number, member: string, h: number, score: number): boolean {
  const i32 = zone.i32;
  const d = desc >> 2;
  const count = i32[d + D_COUNT]!;
  if (2 * (count + 1) > i32[d + Z_HASH_MASK]! + 1 && !growTable(zone, desc)) return false;
  const level = randomLevel();
  const node = zone.alloc(nodeBytes(level, member.length), 0);
  if (node === 0) return false;
  const n = node >> 2;
  // A fresh node: written without undo.
  i32[n + N_INFO] = level | (member.length << 8);
  zone.f64[(node >> 3) + (N_SCORE >> 1)] = score;
  const off = node + nodeMemberOffset(level);
  for (let i = 0; i < member.length; i++) zone.u8[off + i] = member.charCodeAt(i);
  i32[n + N_HASH] = h;
  const base = (i32[d + Z_HASH]! >> 2) + 1;
  const mask = i32[d + Z_HASH_MASK]!;
  let i = h & mask;
  while (i32[base + i] !== 0) i = (i + 1) & mask;
  zone.w(base + i, node);
  link(zone, desc, node, score, member, level, count, true);
  zone.w(d + D_COUNT, count + 1);
  return true;
}

/** Gives the member at `node` a new score: it leaves its place in the order and is linked again. */
export function zsetRescore(zone: Zone, desc: number, node: number, member: string, score: number): void {
  const old = scoreOf(zone, node);
  if (old === score) return;
  unlink(zone, desc, node, old, member);
  zone.wf64((node >> 2) + N_SCORE, score);
  link(zone, desc, node, score, member, zone.i32[(node >> 2) + N_INFO]! & 0xff, zone.i32[(desc >> 2) + D_COUNT]! - 1, false);
}

/** Removes the member at `node` (hash `h`) and frees its node at commit. */
export function zsetDelete(zone: Zone, desc: number, node: number, member: string, h: number): void {
  const i32 = zone.i32;
  const d = desc >> 2;
  clearSlot(zone, desc, slotOf(zone, desc, member, h));
  unlink(zone, desc, node, scoreOf(zone, node), member);
  zone.w(d + D_COUNT, i32[d + D_COUNT]! - 1);
  zone.free(node);
}

/**
 * Links `node` (not in the list; `others` members are) at its place for (score, member), fixing the
 * spans on the way down. A `fresh` node's own words are written without undo.
 */
function link(zone: Zone, desc: number, node: number, score: number, member: string, level: number, others: number, fresh: boolean): void {
  const i32 = zone.i32;
  const d = desc >> 2;
  const top = i32[d + Z_LEVEL]!;
  let x = desc;
  for (let i = top - 1; i >= 0; i--) {
    rankAt[i] = i === top - 1 ? 0 : rankAt[i + 1]!;
    let next: number;
    while ((next = i32[(x >> 2) + nodeFwd(i)]!) !== 0 && before(zone, next, score, member)) {
      rankAt[i] = rankAt[i]! + i32[(x >> 2) + nodeSpan(i)]!;
      x = next;
    }
    update[i] = x;
  }
  if (level > top) {
    for (let i = top; i < level; i++) {
      rankAt[i] = 0;
      update[i] = desc;
      // The head's link at a new level spans every member there is.
      zone.w(d + nodeSpan(i), others);
    }
    zone.w(d + Z_LEVEL, level);
  }
  const n = node >> 2;
  const r0 = rankAt[0]!;
  for (let i = 0; i < level; i++) {
    const u = update[i]! >> 2;
    const fwd = i32[u + nodeFwd(i)]!;
    const span = i32[u + nodeSpan(i)]! - (r0 - rankAt[i]!);
    if (fresh) {
      i32[n + nodeFwd(i)] = fwd;
      i32[n + nodeSpan(i)] = span;
    } else {
      zone.w(n + nodeFwd(i), fwd);
      zone.w(n + nodeSpan(i), span);
    }
    zone.w(u + nodeFwd(i), node);
    zone.w(u + nodeSpan(i), r0 - rankAt[i]! + 1);
  }
  for (let i = level; i < top; i++) zone.w((update[i]! >> 2) + nodeSpan(i), i32[(update[i]! >> 2) + nodeSpan(i)]! + 1);
  const back = update[0] === desc ? 0 : update[0]!;
  if (fresh) i32[n + N_BACK] = back;
  else zone.w(n + N_BACK, back);
  const after = i32[n + N_FWD0]!;
  if (after !== 0) zone.w((after >> 2) + N_BACK, node);
  else zone.w(d + Z_TAIL, node);
}

/** Takes `node`, whose place is (score, member), out of the list, fixing the spans. */
function unlink(zone: Zone, desc: number, node: number, score: number, member: string): void {
  const i32 = zone.i32;
  const d = desc >> 2;
  let top = i32[d + Z_LEVEL]!;
  let x = desc;
  for (let i = top - 1; i >= 0; i--) {
    let next: number;
    while ((next = i32[(x >> 2) + nodeFwd(i)]!) !== 0 && next !== node && before(zone, next, score, member)) x = next;
    update[i] = x;
  }
  const n = node >> 2;
  for (let i = 0; i < top; i++) {
    const u = update[i]! >> 2;
    if (i32[u + nodeFwd(i)] === node) {
      zone.w(u + nodeSpan(i), i32[u + nodeSpan(i)]! + i32[n + nodeSpan(i)]! - 1);
      zone.w(u + nodeFwd(i), i32[n + nodeFwd(i)]!);
    } else {
      zone.w(u + nodeSpan(i), i32[u + nodeSpan(i)]! - 1);
    }
  }
  const after = i32[n + N_FWD0]!;
  if (after !== 0) zone.w((after >> 2) + N_BACK, i32[n + N_BACK]!);
  else zone.w(d + Z_TAIL, i32[n + N_BACK]!);
  while (top > 1 && i32[d + nodeFwd(top - 1)] === 0) top--;
  if (top !== i32[d + Z_LEVEL]) zone.w(d + Z_LEVEL, top);
}

/** The 0-based rank of the member at `node` from the lowest (from the highest with `reverse`). */
export function zsetRank(zone: Zone, desc: number, node: number, member: string, reverse: boolean): number {
  const i32 = zone.i32;
  const score = scoreOf(zone, node);
  let rank = 0;
  let x = desc;
  for (let i = i32[(desc >> 2) + Z_LEVEL]! - 1; i >= 0; i--) {
    let next: number;
    while ((next = i32[(x >> 2) + nodeFwd(i)]!) !== 0 && (next === node || before(zone, next, score, member))) {
      rank += i32[(x >> 2) + nodeSpan(i)]!;
      x = next;
      if (x === node) return reverse ? zsetCount(zone, desc) - rank : rank - 1;
    }
  }
  throw new Error("zone: a sorted-set member is in its hash table but not in its list");
}

/** The node of 1-based `rank` (1 <= rank <= count). */
function byRank(zone: Zone, desc: number, rank: number): number {
  const i32 = zone.i32;
  let traversed = 0;
  let x = desc;
  for (let i = i32[(desc >> 2) + Z_LEVEL]! - 1; i >= 0; i--) {
    let next: number;
    while ((next = i32[(x >> 2) + nodeFwd(i)]!) !== 0 && traversed + i32[(x >> 2) + nodeSpan(i)]! <= rank) {
      traversed += i32[(x >> 2) + nodeSpan(i)]!;
      x = next;
    }
    if (traversed === rank) return x;
  }
  return 0;
}

/**
 * Members `from..to` (0-based, inclusive, 0 <= from <= to < count) in ascending order, or counted
 * from the highest with `reverse`; at most `limit`.
 */
export function zsetRangeByRank(zone: Zone, desc: number, from: number, to: number, reverse: boolean, limit = Number.POSITIVE_INFINITY): ZsetEntry[] {
  const n = Math.min(to - from + 1, limit);
  const out: ZsetEntry[] = [];
  if (n <= 0) return out;
  const i32 = zone.i32;
  let x = byRank(zone, desc, reverse ? zsetCount(zone, desc) - from : from + 1);
  while (x !== 0 && out.length < n) {
    out.push({ member: memberOf(zone, x), score: scoreOf(zone, x) });
    x = i32[(x >> 2) + (reverse ? N_BACK : N_FWD0)]!;
  }
  return out;
}

/** Members with min <= score <= max, ascending (descending with `reverse`); at most `limit`. */
export function zsetRangeByScore(zone: Zone, desc: number, min: number, max: number, reverse: boolean, limit = Number.POSITIVE_INFINITY): ZsetEntry[] {
  const out: ZsetEntry[] = [];
  if (min > max || limit <= 0) return out;
  const i32 = zone.i32;
  let x = desc;
  for (let i = i32[(desc >> 2) + Z_LEVEL]! - 1; i >= 0; i--) {
    let next: number;
    while ((next = i32[(x >> 2) + nodeFwd(i)]!) !== 0 && (reverse ? scoreOf(zone, next) <= max : scoreOf(zone, next) < min)) x = next;
  }
  if (reverse) {
    for (x = x === desc ? 0 : x; x !== 0 && scoreOf(zone, x) >= min && out.length < limit; x = i32[(x >> 2) + N_BACK]!) {
      out.push({ member: memberOf(zone, x), score: scoreOf(zone, x) });
    }
  } else {
    for (x = i32[(x >> 2) + N_FWD0]!; x !== 0 && scoreOf(zone, x) <= max && out.length < limit; x = i32[(x >> 2) + N_FWD0]!) {
      out.push({ member: memberOf(zone, x), score: scoreOf(zone, x) });
    }
  }
  return out;
}

/**
 * Problems of the sorted set at `desc` (verify): order, backward links and tail, every level a
 * sublist whose spans match the ranks, the hash table holding each member once in its bucket,
 * the count; adds its nodes and table to `reached` and returns the members' bytes through `out.bytes`.
 */
export function verifyZset(zone: Zone, desc: number, blocks: ReadonlyMap<number, number>, reached: Set<number>, problem: (text: string) => void, out: { bytes: number }): void {
  const i32 = zone.i32;
  const d = desc >> 2;
  const rank = new Map<number, number>();
  let bytes = 0;
  let prev = 0;
  for (let x = i32[d + D_CHAIN]!; x !== 0; x = i32[(x >> 2) + N_FWD0]!) {
    const header = blocks.get(x);
    if (header === undefined || (header & 3) !== 0 || reached.has(x)) {
      problem(`sorted set ${desc} links to ${x}, not a node of its own`);
      return;
    }
    reached.add(x);
    const level = i32[(x >> 2) + N_INFO]! & 0xff;
    if (level < 1 || level > ZSET_MAX_LEVEL || nodeBytes(level, memberLength(zone, x)) > (header & ~BLOCK_FLAGS)) problem(`sorted-set node ${x} of level ${level} overflows its block`);
    if (i32[(x >> 2) + N_BACK] !== prev) problem(`sorted-set node ${x}: back ${i32[(x >> 2) + N_BACK]}, not ${prev}`);
    if (prev !== 0 && !before(zone, prev, scoreOf(zone, x), memberOf(zone, x))) problem(`sorted set ${desc} out of order at ${x}`);
    if (Number.isNaN(scoreOf(zone, x))) problem(`sorted-set node ${x} has a NaN score`);
    rank.set(x, rank.size + 1);
    bytes += memberLength(zone, x) + SCORE_BYTES;
    prev = x;
  }
  const count = rank.size;
  if (count !== i32[d + D_COUNT]) problem(`sorted set ${desc} holds ${count} members, says ${i32[d + D_COUNT]}`);
  if (count === 0) problem(`sorted set ${desc} is empty but stored`);
  if (i32[d + Z_TAIL] !== prev) problem(`sorted set ${desc}: tail ${i32[d + Z_TAIL]}, the walk ended at ${prev}`);
  const top = i32[d + Z_LEVEL]!;
  if (top < 1 || top > ZSET_MAX_LEVEL || (top > 1 && i32[d + nodeFwd(top - 1)] === 0)) problem(`sorted set ${desc} has level ${top}`);
  for (let i = 0; i < ZSET_MAX_LEVEL; i++) {
    if (i >= top) {
      if (i32[d + nodeFwd(i)] !== 0) problem(`sorted set ${desc}: level ${i} above its top ${top} is not empty`);
      continue;
    }
    let x = desc;
    let at = 0;
    for (let steps = 0; ; steps++) {
      const next = i32[(x >> 2) + nodeFwd(i)]!;
      const span = i32[(x >> 2) + nodeSpan(i)]!;
      if (next === 0) {
        if (span !== count - at && !(x === desc && count === 0)) problem(`sorted set ${desc}: level ${i} ends with span ${span}, ${count - at} members after`);
        break;
      }
      const r = rank.get(next);
      if (r === undefined || steps > count) {
        problem(`sorted set ${desc}: level ${i} reaches ${next}, not one of its nodes`);
        break;
      }
      if ((i32[(next >> 2) + N_INFO]! & 0xff) <= i) problem(`sorted-set node ${next} of level ${i32[(next >> 2) + N_INFO]! & 0xff} on level ${i}`);
      if (span !== r - at) problem(`sorted set ${desc}: level ${i} span ${span} to rank ${r} from ${at}`);
      at = r;
      x = next;
    }
  }
  const table = i32[d + Z_HASH]!;
  const th = blocks.get(table);
  const mask = i32[d + Z_HASH_MASK]!;
  if (th === undefined || (th & 3) !== 0 || reached.has(table) || tableBytes(mask + 1) > (th & ~BLOCK_FLAGS) || (mask & (mask + 1)) !== 0) {
    problem(`sorted set ${desc}: hash table ${table} of mask ${mask} is not a block of its own`);
    out.bytes = bytes;
    return;
  }
  reached.add(table);
  let hashed = 0;
  const base = (table >> 2) + 1;
  for (let slot = 0; slot <= mask; slot++) {
    const x = i32[base + slot]!;
    if (x === 0) continue;
    if (!rank.has(x) || ++hashed > count) {
      problem(`sorted set ${desc}: hash slot ${slot} holds ${x}, not one of its nodes`);
      break;
    }
    const member = memberOf(zone, x);
    if (i32[(x >> 2) + N_HASH] !== (hashKey(member) | 0)) problem(`sorted-set node ${x} keeps a wrong hash`);
    else if (slotOf(zone, desc, member, hashKey(member)) !== base + slot) problem(`sorted set ${desc}: member at ${x} not found from its hash`);
  }
  if (2 * count > mask + 1) problem(`sorted set ${desc}: ${count} members in ${mask + 1} hash slots`);
  if (hashed !== count) problem(`sorted set ${desc}: ${hashed} members hashed of ${count}`);
  out.bytes = bytes;
}
