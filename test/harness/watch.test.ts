/**
 * `luastore test --watch` through the real CLI in a child process: it runs everything, then re-runs
 * only the test files a change touches, keeps watching after a syntax error, and ends cleanly on
 * Ctrl-C. Every step waits for an output line, never for a time: the one bound is the test's own
 * timeout, far above what the steps take on a loaded machine.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const BIN = resolve("bin/luastore.js");
const FIXTURES = resolve("test/harness/fixtures");

interface Waiter {
  stream: "out" | "err";
  from: number;
  test: RegExp;
  done: (text: string) => void;
}

/** A child's stderr and stdout as they arrive, with a way to wait for a line. */
class Watched {
  out = "";
  err = "";
  readonly exited: Promise<number | null>;
  readonly #waiters: Waiter[] = [];

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding("utf8").on("data", (t: string) => this.#add("out", t));
    child.stderr!.setEncoding("utf8").on("data", (t: string) => this.#add("err", t));
    this.exited = new Promise((done) => child.on("exit", (code) => done(code)));
  }

  #add(stream: "out" | "err", text: string): void {
    this[stream] += text;
    for (const w of [...this.#waiters]) this.#check(w);
  }

  #check(w: Waiter): void {
    const text = this[w.stream].slice(w.from);
    if (w.test.test(text)) {
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.done(text);
    }
  }

  /** Resolves with the stream's text since `from` once it matches `test`. */
  waitFor(stream: "out" | "err", test: RegExp, from = this[stream].length): Promise<string> {
    return new Promise((done) => {
      const w = { stream, from, test, done };
      this.#waiters.push(w);
      this.#check(w);
    });
  }
}

const WATCHING = /watching \d+ test file\(s\)[^\n]*\n$/;
let dir: string;
let watched: Watched | undefined;

afterEach(async () => {
  if (watched && watched.child.exitCode === null) {
    watched.child.kill("SIGKILL");
    await watched.exited;
  }
  watched = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a file whole, as editors save: a temporary file renamed over the old one, so no reader sees it half written. */
function write(path: string, text: string): void {
  const full = join(dir, path);
  mkdirSync(dirname(full), { recursive: true });
  writeFileSync(`${full}.tmp`, text);
  renameSync(`${full}.tmp`, full);
}

const usesCart = (name: string) => `
local test = require("test")
local cart = require("lib.cart")
test.it("${name} adds", function() test.eq(cart.total({ 1, 2 }), 3) end)
`;

function start(): Watched {
  // The configuration is copied into the project, so that the test can change it.
  mkdirSync(join(dir, "config"), { recursive: true });
  copyFileSync(join(FIXTURES, "registry.yaml"), join(dir, "config", "registry.yaml"));
  copyFileSync(join(FIXTURES, "policies.yaml"), join(dir, "config", "policies.yaml"));
  const child = spawn(
    process.execPath,
    [BIN, "test", ".", "--watch", "--registry", "config/registry.yaml", "--policies", "config/policies.yaml"],
    { cwd: dir, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  return new Watched(child);
}

describe("luastore test --watch", () => {
  it(
    "re-runs only the test files that require a changed module, survives a syntax error, and ends on Ctrl-C",
    async () => {
      dir = mkdtempSync(join(tmpdir(), "luastore-watch-"));
      write("lib/cart.lua", "local M = {}\nfunction M.total(items) local s = 0 for _, v in ipairs(items) do s = s + v end return s end\nreturn M\n");
      write("lib/other.lua", "return { name = 'other' }\n");
      write("a_cart_test.lua", usesCart("a"));
      write("b_cart_test.lua", usesCart("b"));
      write("c_other_test.lua", `local test = require("test")\nlocal other = require("lib.other")\ntest.it("c names", function() test.eq(other.name, "other") end)\n`);
      watched = start();

      // The first run: every file, then the watching line.
      await watched.waitFor("err", WATCHING);
      expect(watched.out).toContain("a_cart_test.lua");
      expect(watched.out).toContain("c_other_test.lua");
      expect(watched.out).toMatch(/3 passed, 0 failed\n$/);

      // A change to lib/cart.lua re-runs the two files that require it, and not c_other_test.lua.
      let outFrom = watched.out.length;
      let status = watched.waitFor("err", WATCHING);
      write("lib/cart.lua", "local M = {}\nfunction M.total(items) return #items * 10 end\nreturn M\n");
      expect(await status).toContain("re-running: a_cart_test.lua, b_cart_test.lua\n");
      let report = watched.out.slice(outFrom);
      expect(report).toContain("a_cart_test.lua");
      expect(report).toContain("b_cart_test.lua");
      expect(report).not.toContain("c_other_test.lua");
      expect(report).toMatch(/0 passed, 2 failed\n$/);

      // A syntax error in the module is reported in each file that requires it, and the watch goes on.
      outFrom = watched.out.length;
      status = watched.waitFor("err", WATCHING);
      write("lib/cart.lua", "local M = {\nfunction M.total(items) return 3 end\nreturn M\n");
      expect(await status).toContain("re-running: a_cart_test.lua, b_cart_test.lua\n");
      report = watched.out.slice(outFrom);
      expect(report).toContain("does not compile");
      expect(report).toContain("lib/cart.lua:2");

      // Fixed again, and a change to a test file re-runs that file alone.
      status = watched.waitFor("err", WATCHING);
      write("lib/cart.lua", "local M = {}\nfunction M.total(items) return 3 end\nreturn M\n");
      expect(await status).toContain("re-running: a_cart_test.lua, b_cart_test.lua\n");
      expect(watched.out).toMatch(/2 passed, 0 failed\n$/);
      outFrom = watched.out.length;
      status = watched.waitFor("err", WATCHING);
      write("c_other_test.lua", `local test = require("test")\ntest.it("c again", function() end)\n`);
      expect(await status).toContain("re-running: c_other_test.lua\n");
      expect(watched.out.slice(outFrom)).not.toContain("a_cart_test.lua");
      expect(watched.out).toMatch(/1 passed, 0 failed\n$/);

      // A new test file runs when it appears; it requires a module that is not there yet, which
      // fails it, and it re-runs when the module appears.
      status = watched.waitFor("err", WATCHING);
      write("d_new_test.lua", `local test = require("test")\nlocal new = require("lib.new")\ntest.it("d new", function() test.eq(new.x, 1) end)\n`);
      expect(await status).toContain("re-running: d_new_test.lua\n");
      expect(watched.out).toMatch(/0 passed, 1 failed\n$/);
      status = watched.waitFor("err", WATCHING);
      write("lib/new.lua", "return { x = 1 }\n");
      expect(await status).toContain("re-running: d_new_test.lua\n");
      expect(watched.out).toMatch(/1 passed, 0 failed\n$/);

      // A change to the policies re-runs every file; one that no longer loads is reported, and the watch goes on.
      status = watched.waitFor("err", WATCHING);
      const policies = readFileSync(join(dir, "config/policies.yaml"), "utf8");
      write("config/policies.yaml", `${policies}\n# changed\n`);
      expect(await status).toContain("re-running: a_cart_test.lua, b_cart_test.lua, c_other_test.lua, d_new_test.lua\n");
      expect(watched.out).toMatch(/4 passed, 0 failed\n$/);
      status = watched.waitFor("err", WATCHING);
      write("config/policies.yaml", "version: 1.0\npolicies: []\n");
      expect(await status).toMatch(/policies: \d+ problem\(s\)/);
      status = watched.waitFor("err", WATCHING);
      write("config/policies.yaml", policies);
      await status;
      expect(watched.out).toMatch(/4 passed, 0 failed\n$/);

      // Ctrl-C: a clean end, status 0.
      watched.child.kill("SIGINT");
      expect(await watched.exited).toBe(0);
      expect(watched.err).toMatch(/stopped watching\n$/);
    },
    120_000,
  );
});
