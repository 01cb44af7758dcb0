/** The `errors` module and error values. */
import { afterEach, describe, expect, it } from "vitest";
import { makeHost, type TestHost } from "../helpers.js";

let t: TestHost;
afterEach(async () => {
  await t?.host.close();
});

describe("errors module", () => {
  it("is a global and require('errors') with every kind constant", async () => {
    t = makeHost();
    const values = await t.eval(`
      return require("errors") == errors, errors.INVALID, errors.NOT_FOUND, errors.PERMISSION_DENIED,
        errors.UNAVAILABLE, errors.INTERNAL, errors.ALREADY_EXISTS, errors.CONFLICT, errors.TIMEOUT,
        errors.RATE_LIMITED, errors.CANCELED`);
    expect(values).toEqual([
      true,
      "Invalid",
      "NotFound",
      "PermissionDenied",
      "Unavailable",
      "Internal",
      "AlreadyExists",
      "Conflict",
      "Timeout",
      "RateLimited",
      "Canceled",
    ]);
  });

  it("errors.new(msg) makes an error with that message and no kind", async () => {
    t = makeHost();
    expect(await t.eval(`local e = errors.new("oops"); return e:message(), e:kind(), e:retryable(), e:details()`)).toEqual([
      "oops",
      "",
      false,
      null,
    ]);
  });

  it("errors.new{...} takes message, kind, retryable and details", async () => {
    t = makeHost();
    const values = await t.eval(`
      local e = errors.new({ message = "slow down", kind = errors.RATE_LIMITED, retryable = true, details = { wait = 3 } })
      return e:message(), e:kind(), e:retryable(), e:details().wait`);
    expect(values).toEqual(["slow down", "RateLimited", true, 3]);
  });

  it("errors.new refuses a non-string message", async () => {
    t = makeHost();
    const r = await t.run(`errors.new({ kind = "X" })`);
    expect(r.error?.message).toMatch(/message/);
  });

  it("errors.is checks the kind", async () => {
    t = makeHost();
    const values = await t.eval(`
      local e = errors.new({ message = "m", kind = errors.CONFLICT })
      return errors.is(e, errors.CONFLICT), errors.is(e, errors.INVALID), errors.is("not an error", errors.CONFLICT), errors.is(e)`);
    expect(values).toEqual([true, false, false, true]);
  });

  it("tostring contains the message and .. works on either side", async () => {
    t = makeHost();
    const values = await t.eval(`
      local e = errors.new("bad thing")
      return tostring(e), "error: " .. e, e .. "!", e .. 1`);
    expect(values).toEqual(["bad thing", "error: bad thing", "bad thing!", "bad thing1"]);
  });

  it("errors from the store carry kind, message and retryable", async () => {
    t = makeHost();
    const values = await t.eval(`
      local s, err = require("store").get("app:nope")
      return errors.is(err, errors.NOT_FOUND), type(err:message()), err:retryable()`);
    expect(values).toEqual([true, "string", false]);
  });

  it("an error value cannot be altered by a script", async () => {
    t = makeHost();
    const values = await t.eval(`
      local e = errors.new({ message = "m", kind = errors.INVALID })
      local ok = pcall(function() e.kind = function() return "Other" end end)
      return ok, e:kind(), getmetatable(e)`);
    expect(values).toEqual([false, "Invalid", false]);
  });
});

describe("time module", () => {
  it("time.now reads the host clock in seconds", async () => {
    t = makeHost();
    t.clock.set(1_700_000_000_500);
    expect(await t.eval(`return require("time").now()`)).toEqual([1_700_000_000.5]);
  });

  it("time.sleep waits on the host clock without blocking the host", async () => {
    t = makeHost();
    t.clock.autoAdvance = false;
    const pending = t.run(`local time = require("time"); local a = time.now(); time.sleep(60); return time.now() - a`);
    await new Promise((r) => setTimeout(r, 20));
    const other = await t.eval(`return "other runs go on"`);
    expect(other).toEqual(["other runs go on"]);
    t.clock.advance(60_000);
    expect((await pending).values).toEqual([60]);
  });

  it("time.sleep refuses negative and non-finite seconds", async () => {
    t = makeHost();
    expect(await t.eval(`local ok, err = require("time").sleep(-1); return ok, err:kind()`)).toEqual([null, "Invalid"]);
  });
});
