import { describe, expect, test } from "vitest";
import { compilePolicies, makeSyntheticPolicies, SYNTHETIC_ACTOR, SYNTHETIC_REQUESTS } from "../../src/policy/index.js";

describe("makeSyntheticPolicies", () => {
  test.each([0, 10, 1000])("n = %i unrelated policies do not change any synthetic decision", (n) => {
    const engine = compilePolicies(makeSyntheticPolicies(n));
    expect(engine.size).toBe(n + 4);
    const bound = engine.bind(SYNTHETIC_ACTOR);
    for (const { action, resource, meta, allowed } of SYNTHETIC_REQUESTS) {
      expect(bound.decide(action, resource, meta).allowed).toBe(allowed);
      expect(engine.explain(SYNTHETIC_ACTOR, action, resource, meta).considered.filter((t) => t.id.startsWith("synthetic-") && t.matched)).toEqual([]);
    }
  });
});
