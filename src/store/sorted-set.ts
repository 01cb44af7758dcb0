/**
 * The sorted set of store.memory: members (byte strings) with float scores, ordered by score and
 * then by member bytes, as Redis orders a ZSET.
 *
 * A skip list whose links carry spans (how many members each link jumps over), as Redis's zskiplist
 * does: insert, delete, rank and the start of a range cost O(log n) expected, and a range of k
 * members O(log n + k). A Map from member to score answers `score` in O(1) and tells the list where a
 * member is. Members are JS strings of byte values 0..255 (src/bytes.ts), so `<` on them is byte order.
 */
import type { ZsetEntry } from "./store.js";

/** Enough levels for 4^32 members: far more than a key may hold. */
const MAX_LEVEL = 32;
/** Each level holds a quarter of the one below (Redis's choice: fewer pointers than 1/2, same cost). */
const LEVEL_P = 0.25;

class SkipNode {
  readonly member: string;
  readonly score: number;
  readonly next: (SkipNode | null)[];
  /** span[i]: how many members next[i] moves forward (0 for a null link at the end). */
  readonly span: number[];
  prev: SkipNode | null = null;
  constructor(member: string, score: number, level: number) {
    this.member = member;
    this.score = score;
    this.next = new Array<SkipNode | null>(level).fill(null);
    this.span = new Array<number>(level).fill(0);
  }
}

/** True when (score, member) of `node` sorts before (score, member). */
function before(node: SkipNode, score: number, member: string): boolean {
  return node.score < score || (node.score === score && node.member < member);
}

function randomLevel(): number {
  let level = 1;
  while (level < MAX_LEVEL && Math.random() < LEVEL_P) level++;
  return level;
}

export class SortedSet {
  readonly #scores = new Map<string, number>();
  readonly #head = new SkipNode("", Number.NEGATIVE_INFINITY, MAX_LEVEL);
  #level = 1;
  /** Kept for the update and rank arrays of insert, so that an insert allocates only its node. */
  readonly #update = new Array<SkipNode>(MAX_LEVEL);
  readonly #rank = new Array<number>(MAX_LEVEL).fill(0);

  get size(): number {
    return this.#scores.size;
  }

  score(member: string): number | undefined {
    return this.#scores.get(member);
  }

  /** Sets the member's score; true when the member is new. */
  add(member: string, score: number): boolean {
    const old = this.#scores.get(member);
    if (old !== undefined) {
      if (old === score) return false;
      this.#unlink(member, old);
      this.#scores.set(member, score);
      this.#insert(member, score);
      return false;
    }
    this.#scores.set(member, score);
    this.#insert(member, score);
    return true;
  }

  /** True when the member was there. */
  remove(member: string): boolean {
    const score = this.#scores.get(member);
    if (score === undefined) return false;
    this.#scores.delete(member);
    this.#unlink(member, score);
    return true;
  }

  /** The member's 0-based rank from the lowest (or, with `reverse`, from the highest), or undefined. */
  rank(member: string, reverse = false): number | undefined {
    const score = this.#scores.get(member);
    if (score === undefined) return undefined;
    let rank = 0;
    let x = this.#head;
    for (let i = this.#level - 1; i >= 0; i--) {
      for (let next = x.next[i]!; next !== null && (before(next, score, member) || next.member === member); next = x.next[i]!) {
        rank += x.span[i]!;
        x = next;
      }
      if (x !== this.#head && x.member === member) return reverse ? this.size - rank : rank - 1;
    }
    return undefined;
  }

  /**
   * Members `from..to` (0-based, inclusive, 0 <= from <= to < size) in ascending order, or counted
   * from the highest with `reverse`; at most `limit`.
   */
  rangeByRank(from: number, to: number, reverse: boolean, limit = Number.POSITIVE_INFINITY): ZsetEntry[] {
    const n = Math.min(to - from + 1, limit);
    const out: ZsetEntry[] = [];
    if (n <= 0) return out;
    let x = this.#byRank(reverse ? this.size - from : from + 1);
    while (x !== null && out.length < n) {
      out.push({ member: x.member, score: x.score });
      x = reverse ? x.prev : x.next[0]!;
    }
    return out;
  }

  /** Members with min <= score <= max, ascending (descending with `reverse`); at most `limit`. */
  rangeByScore(min: number, max: number, reverse: boolean, limit = Number.POSITIVE_INFINITY): ZsetEntry[] {
    const out: ZsetEntry[] = [];
    if (min > max || limit <= 0) return out;
    let x: SkipNode | null;
    if (reverse) {
      x = this.#lastAtMost(max);
      while (x !== null && x.score >= min && out.length < limit) {
        out.push({ member: x.member, score: x.score });
        x = x.prev;
      }
    } else {
      x = this.#firstAtLeast(min);
      while (x !== null && x.score <= max && out.length < limit) {
        out.push({ member: x.member, score: x.score });
        x = x.next[0]!;
      }
    }
    return out;
  }

  /** Every member in order (tests and snapshots). */
  *entries(): IterableIterator<ZsetEntry> {
    for (let x = this.#head.next[0]!; x !== null; x = x.next[0]!) yield { member: x.member, score: x.score };
  }

  #insert(member: string, score: number): void {
    const update = this.#update;
    const rank = this.#rank;
    let x = this.#head;
    for (let i = this.#level - 1; i >= 0; i--) {
      rank[i] = i === this.#level - 1 ? 0 : rank[i + 1]!;
      for (let next = x.next[i]!; next !== null && before(next, score, member); next = x.next[i]!) {
        rank[i] = rank[i]! + x.span[i]!;
        x = next;
      }
      update[i] = x;
    }
    const level = randomLevel();
    if (level > this.#level) {
      for (let i = this.#level; i < level; i++) {
        rank[i] = 0;
        update[i] = this.#head;
        // The head's link at a new level spans every member there is (before this insert).
        this.#head.span[i] = this.size - 1;
      }
      this.#level = level;
    }
    const node = new SkipNode(member, score, level);
    for (let i = 0; i < level; i++) {
      const u = update[i]!;
      node.next[i] = u.next[i]!;
      u.next[i] = node;
      node.span[i] = u.span[i]! - (rank[0]! - rank[i]!);
      u.span[i] = rank[0]! - rank[i]! + 1;
    }
    for (let i = level; i < this.#level; i++) update[i]!.span[i] = update[i]!.span[i]! + 1;
    node.prev = update[0] === this.#head ? null : update[0]!;
    const after = node.next[0]!;
    if (after !== null) after.prev = node;
  }

  #unlink(member: string, score: number): void {
    const update = this.#update;
    let x = this.#head;
    for (let i = this.#level - 1; i >= 0; i--) {
      for (let next = x.next[i]!; next !== null && before(next, score, member); next = x.next[i]!) x = next;
      update[i] = x;
    }
    const node = x.next[0]!;
    for (let i = 0; i < this.#level; i++) {
      const u = update[i]!;
      if (u.next[i] === node) {
        u.span[i] = u.span[i]! + node.span[i]! - 1;
        u.next[i] = node.next[i]!;
      } else {
        u.span[i] = u.span[i]! - 1;
      }
    }
    const after = node.next[0]!;
    if (after !== null) after.prev = node.prev;
    while (this.#level > 1 && this.#head.next[this.#level - 1] === null) this.#level--;
  }

  /** The node of 1-based rank `rank` (1 <= rank <= size). */
  #byRank(rank: number): SkipNode | null {
    let traversed = 0;
    let x = this.#head;
    for (let i = this.#level - 1; i >= 0; i--) {
      while (x.next[i] !== null && traversed + x.span[i]! <= rank) {
        traversed += x.span[i]!;
        x = x.next[i]!;
      }
      if (traversed === rank) return x;
    }
    return null;
  }

  #firstAtLeast(min: number): SkipNode | null {
    let x = this.#head;
    for (let i = this.#level - 1; i >= 0; i--) {
      while (x.next[i] !== null && x.next[i]!.score < min) x = x.next[i]!;
    }
    return x.next[0]!;
  }

  #lastAtMost(max: number): SkipNode | null {
    let x = this.#head;
    for (let i = this.#level - 1; i >= 0; i--) {
      while (x.next[i] !== null && x.next[i]!.score <= max) x = x.next[i]!;
    }
    return x === this.#head ? null : x;
  }
}
