/** SortedSet (store.memory's skip list with spans) against a naive sorted array, by fast-check. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SortedSet } from "../../src/store/sorted-set.js";
import { indexRange, type ZsetEntry } from "../../src/store/store.js";

/** The model: every entry, sorted by score then member bytes. */
class NaiveSet {
  readonly scores = new Map<string, number>();
  sorted(): ZsetEntry[] {
    return [...this.scores]
      .map(([member, score]) => ({ member, score }))
      .sort((a, b) => (a.score !== b.score ? a.score - b.score : a.member < b.member ? -1 : a.member > b.member ? 1 : 0));
  }
}

type Command =
  | { op: "add"; member: string; score: number }
  | { op: "remove"; member: string }
  | { op: "rank"; member: string; reverse: boolean }
  | { op: "byRank"; start: number; stop: number; reverse: boolean; limit: number | undefined }
  | { op: "byScore"; min: number; max: number; reverse: boolean; limit: number | undefined };

// Few distinct members and scores, so that ties, updates and removals of present members are common.
const member = fc.constantFrom("", "a", "b", "ab", "b\x00", "\xff", "\x00", "zz", "m1", "m2", "m3", "m4");
const score = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom(-Infinity, Infinity, 0.5, -0.5));
const limit = fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined });
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("add" as const), member, score }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("remove" as const), member }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("rank" as const), member, reverse: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("byRank" as const),
      start: fc.integer({ min: -15, max: 15 }),
      stop: fc.integer({ min: -15, max: 15 }),
      reverse: fc.boolean(),
      limit,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("byScore" as const), min: score, max: score, reverse: fc.boolean(), limit }) },
);

describe("SortedSet", () => {
  it("answers like a sorted array under any sequence of adds, removes, ranks and ranges", () => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 200 }), (commands) => {
        const set = new SortedSet();
        const model = new NaiveSet();
        for (const c of commands) {
          const sorted = model.sorted();
          switch (c.op) {
            case "add":
              expect(set.add(c.member, c.score)).toBe(!model.scores.has(c.member));
              model.scores.set(c.member, c.score);
              break;
            case "remove":
              expect(set.remove(c.member)).toBe(model.scores.delete(c.member));
              break;
            case "rank": {
              const i = sorted.findIndex((e) => e.member === c.member);
              expect(set.rank(c.member, c.reverse)).toBe(i === -1 ? undefined : c.reverse ? sorted.length - 1 - i : i);
              break;
            }
            case "byRank": {
              const ordered = c.reverse ? [...sorted].reverse() : sorted;
              const range = indexRange(c.start, c.stop, ordered.length);
              const expected = range === null ? [] : ordered.slice(range[0], range[1] + 1).slice(0, c.limit ?? Infinity);
              expect(range === null ? [] : set.rangeByRank(range[0], range[1], c.reverse, c.limit)).toEqual(expected);
              break;
            }
            case "byScore": {
              const inRange = sorted.filter((e) => e.score >= c.min && e.score <= c.max);
              const expected = (c.reverse ? inRange.reverse() : inRange).slice(0, c.limit ?? Infinity);
              expect(set.rangeByScore(c.min, c.max, c.reverse, c.limit)).toEqual(expected);
              break;
            }
          }
          expect(set.size).toBe(model.scores.size);
        }
        expect([...set.entries()]).toEqual(model.sorted());
      }),
      { numRuns: 300, seed: 20261202 },
    );
  });

  it("finds ranks and ranges in a set of 100 000 members", () => {
    const set = new SortedSet();
    for (let i = 0; i < 100_000; i++) set.add(`m${i}`, i % 1000);
    expect(set.size).toBe(100_000);
    // Score 7 holds m7, m1007, ..., m99007 (100 members), in member byte order.
    const sevens = set.rangeByScore(7, 7, false);
    expect(sevens.length).toBe(100);
    expect(sevens.map((e) => e.member)).toEqual([...sevens.map((e) => e.member)].sort());
    expect(set.rank(sevens[0]!.member)).toBe(700);
    expect(set.rangeByRank(700, 709, false).map((e) => e.member)).toEqual(sevens.slice(0, 10).map((e) => e.member));
    expect(set.rangeByRank(0, 0, true)[0]!.score).toBe(999);
    // Removing every even i empties the even scores and keeps the odd ones whole.
    for (let i = 0; i < 100_000; i += 2) set.remove(`m${i}`);
    expect(set.size).toBe(50_000);
    expect(set.rangeByScore(7, 7, false).length).toBe(100);
    expect(set.rangeByScore(8, 8, false).length).toBe(0);
    expect(set.rank("m1")).toBe(0);
    expect(set.rank(sevens[0]!.member)).toBe(300);
  });
});
