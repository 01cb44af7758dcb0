/**
 * Generated hostile scripts: a payload that must hit one limit, wrapped in random nestings of
 * every construct that catches, defers or re-enters (pcall, xpcall with handlers that error or
 * loop, caught and rethrown errors of every value type, coroutines alive, dead and errored,
 * metamethods, table.sort comparators, gsub callbacks, loaded text chunks, vararg tail calls),
 * with errors caught before the payload. After every point where a script could regain control,
 * the script tries to finish normally ("escaped"): a kill that did not stick shows up as a run
 * that ends ok, or ends with another kind than its payload's limit.
 */
import fc from "fast-check";
import type { RunLimits } from "../../src/lua/limits.js";

export type PayloadKind = "endless" | "long" | "store" | "print" | "string" | "endless-timeout";

export interface Payload {
  kind: PayloadKind;
  /** Lua statements that never finish normally: they run until their limit stops them. */
  code: string;
  /** The error kind the run must end with. */
  expect: string;
  /** Limits for the run: the one that must fire small, every other far out of reach. */
  limits: Partial<RunLimits>;
}

/** The wall clock for cases that must not end by Timeout: far beyond any instruction budget here. */
const FAR_WALL_MS = 60_000;
/** A budget no case here can reach: for Timeout cases only. */
const UNREACHABLE_INSTRUCTIONS = 1e12;

export const PAYLOADS: Record<PayloadKind, Payload> = {
  endless: {
    kind: "endless",
    code: `while true do end`,
    expect: "InstructionLimit",
    limits: { maxInstructions: 100_000, timeoutMs: FAR_WALL_MS },
  },
  long: {
    kind: "long",
    code: `local n = 0 for i = 1, 1e9 do n = n + i end`,
    expect: "InstructionLimit",
    limits: { maxInstructions: 150_000, timeoutMs: FAR_WALL_MS },
  },
  store: {
    kind: "store",
    code: `local s = require("store").get("app:cache") while true do s:set("fuzz", 1) s:get("fuzz") end`,
    expect: "StoreOpsLimit",
    limits: { maxStoreOps: 40, maxInstructions: 50_000_000, timeoutMs: FAR_WALL_MS },
  },
  print: {
    kind: "print",
    code: `while true do print("fuzz output line") end`,
    expect: "OutputLimit",
    limits: { maxOutputBytes: 2048, maxInstructions: 50_000_000, timeoutMs: FAR_WALL_MS },
  },
  string: {
    kind: "string",
    code: `local s = "xy" while true do s = s .. s end`,
    expect: "StringLimit",
    limits: { maxStringBytes: 64 * 1024, maxInstructions: 50_000_000, timeoutMs: FAR_WALL_MS },
  },
  "endless-timeout": {
    kind: "endless-timeout",
    code: `while true do end`,
    expect: "Timeout",
    limits: { maxInstructions: UNREACHABLE_INSTRUCTIONS, timeoutMs: 40 },
  },
};

/** Code that would let the script finish normally if the kill had not stuck. */
const ESCAPE = `do return "escaped" end`;

/**
 * A wrapper turns a block `S` into a block that runs `S`. `depth` keeps long-bracket levels
 * and local names apart between nesting levels.
 */
type Wrapper = (S: string, depth: number) => string;

const ERROR_VALUES = [`"a string"`, `{ code = 7 }`, `errors.new({ kind = "Invalid", message = "m" })`, `42`, `nil`];

export const WRAPPERS: Record<string, Wrapper> = {
  pcall: (S) => `pcall(function() ${S} end) ${ESCAPE}`,
  "pcall-rethrow": (S, d) => `local ok${d}, e${d} = pcall(function() ${S} end) if not ok${d} then error(e${d}, 0) end ${ESCAPE}`,
  "rethrow-table": (S, d) => `local ok${d}, e${d} = pcall(function() ${S} end) error({ caught = e${d} })`,
  "rethrow-error-value": (S, d) =>
    `local ok${d}, e${d} = pcall(function() ${S} end) error(errors.new({ kind = "Invalid", message = tostring(e${d}) }))`,
  "xpcall-returns": (S) => `xpcall(function() ${S} end, function(m) return m end) ${ESCAPE}`,
  "xpcall-errors": (S) => `xpcall(function() ${S} end, function(m) error("handler failed") end) ${ESCAPE}`,
  "xpcall-loops": (S) => `xpcall(function() ${S} end, function(m) while true do end end) ${ESCAPE}`,
  "xpcall-retries": (S) => `xpcall(function() ${S} end, function(m) for i = 1, 3 do pcall(error, m) end return m end) ${ESCAPE}`,
  "coroutine.wrap": (S) => `coroutine.wrap(function() ${S} end)() ${ESCAPE}`,
  "coroutine.resume": (S, d) =>
    `local co${d} = coroutine.create(function() coroutine.yield(1) ${S} end) coroutine.resume(co${d}) ` +
    `local ok${d}, e${d} = coroutine.resume(co${d}) coroutine.resume(co${d}) ${ESCAPE}`,
  "resume-after-death": (S, d) =>
    `local co${d} = coroutine.create(function() ${S} end) coroutine.resume(co${d}) coroutine.resume(co${d}) ` +
    `print(coroutine.status(co${d})) ${ESCAPE}`,
  __index: (S) => `local _ = setmetatable({}, { __index = function() ${S} end }).missing ${ESCAPE}`,
  __newindex: (S) => `setmetatable({}, { __newindex = function() ${S} end }).x = 1 ${ESCAPE}`,
  __call: (S) => `setmetatable({}, { __call = function() ${S} end })() ${ESCAPE}`,
  __tostring: (S) => `tostring(setmetatable({}, { __tostring = function() ${S} end })) ${ESCAPE}`,
  __concat: (S) => `local _ = setmetatable({}, { __concat = function() ${S} end }) .. "x" ${ESCAPE}`,
  __eq: (S, d) =>
    `local mt${d} = { __eq = function() ${S} end } local _ = setmetatable({}, mt${d}) == setmetatable({}, mt${d}) ${ESCAPE}`,
  __lt: (S, d) => `local mt${d} = { __lt = function() ${S} end } local _ = setmetatable({}, mt${d}) < setmetatable({}, mt${d}) ${ESCAPE}`,
  __le: (S, d) => `local mt${d} = { __le = function() ${S} end } local _ = setmetatable({}, mt${d}) <= setmetatable({}, mt${d}) ${ESCAPE}`,
  __len: (S) => `local _ = #setmetatable({}, { __len = function() ${S} end }) ${ESCAPE}`,
  __add: (S) => `local _ = setmetatable({}, { __add = function() ${S} end }) + 1 ${ESCAPE}`,
  __unm: (S) => `local _ = -setmetatable({}, { __unm = function() ${S} end }) ${ESCAPE}`,
  "table.sort": (S) => `table.sort({ 3, 1, 2 }, function(a, b) ${S} end) ${ESCAPE}`,
  "string.gsub": (S) => `string.gsub("abc", "%w", function(c) ${S} end) ${ESCAPE}`,
  load: (S, d) => {
    const eq = "=".repeat(d + 1);
    return `load([${eq}[ ${S} ]${eq}])() ${ESCAPE}`;
  },
  "pcall(load)": (S, d) => {
    const eq = "=".repeat(d + 1);
    return `pcall(load([${eq}[ ${S} ]${eq}])) ${ESCAPE}`;
  },
  "vararg tail call": (S, d) =>
    `local function g${d}(...) ${S} end local function f${d}(...) return g${d}(select(2, ...)) end f${d}(1, 2, 3) ${ESCAPE}`,
  "error caught then": (S, d) => `local ok${d}, e${d} = pcall(error, ${ERROR_VALUES[d % ERROR_VALUES.length]}) ${S}`,
};

/** Errors a script catches (or outlives) before it reaches the payload. */
export const PRELUDES: string[] = [
  `pcall(error, "x")`,
  `pcall(error, { code = 1 })`,
  `pcall(error, errors.new({ kind = "Invalid", message = "m" }))`,
  `pcall(error)`,
  `select(2, pcall(function() local t = nil return t.x end))`,
  `xpcall(error, function(m) return m end, "x")`,
  `xpcall(error, function() error("again") end, "x")`,
  `xpcall(error, function(m) for i = 1, 100 do end return m end, "x")`,
  `pcall(function() local ok, e = pcall(error, "inner") error(e, 0) end)`,
  `local dead = coroutine.create(function() end) coroutine.resume(dead) coroutine.resume(dead)`,
  `local bad = coroutine.create(function() error("x") end) coroutine.resume(bad) coroutine.resume(bad)`,
  `pcall(coroutine.wrap(function() error("x") end))`,
  `pcall(tostring, setmetatable({}, { __tostring = function() error("x") end }))`,
  `pcall(table.sort, { 3, 2, 1 }, function() error("x") end)`,
  `pcall(string.gsub, "abc", ".", function() error("x") end)`,
  `pcall(load("error('x')"))`,
  `local nope, why = load("not lua at all")`,
  `require("store").get("app:nope")`,
  `for i = 1, 50 do pcall(error, i) end`,
];

export interface GeneratedCase {
  payload: Payload;
  wrappers: string[];
  preludes: number[];
  script: string;
}

/** Builds the script of a case from its parts (innermost wrapper first). */
export function buildScript(payload: Payload, wrappers: readonly string[], preludes: readonly number[]): string {
  let body = payload.code;
  wrappers.forEach((name, depth) => {
    body = WRAPPERS[name]!(body, depth);
  });
  const before = preludes.map((i) => PRELUDES[i]!).join("\n");
  return `${before}\n${body}\n${ESCAPE}\n`;
}

/** The arbitrary for generated cases: a payload, 1 to 5 nested wrappers, 0 to 3 caught errors before. */
export function generatedCase(): fc.Arbitrary<GeneratedCase> {
  return fc
    .record({
      kind: fc.constantFrom(...(Object.keys(PAYLOADS) as PayloadKind[])),
      wrappers: fc.array(fc.constantFrom(...Object.keys(WRAPPERS)), { minLength: 1, maxLength: 5 }),
      preludes: fc.array(fc.nat({ max: PRELUDES.length - 1 }), { maxLength: 3 }),
    })
    .map(({ kind, wrappers, preludes }) => {
      const payload = PAYLOADS[kind];
      return { payload, wrappers, preludes, script: buildScript(payload, wrappers, preludes) };
    });
}
