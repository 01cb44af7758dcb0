/** os.date: `!` formats are UTC (fengari copied the `!` and used local time), checked against known timestamps. */
import { afterEach, describe, expect, it } from "vitest";
import { makeHost } from "../helpers.js";

const { run: runLua } = makeHost();

const savedTz = process.env.TZ;
afterEach(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

async function date(expr: string): Promise<unknown[]> {
  const r = await runLua(`return ${expr}`);
  if (!r.ok) throw new Error(`${r.error?.kind}: ${r.error?.message}`);
  return r.values;
}

describe("os.date with a ! format", () => {
  it.each([
    // 2026-12-01T21:32:32Z, a Tuesday, day 335, ISO week 49
    ['os.date("!%Y-%m-%d %H:%M:%S", 1796160752)', "2026-12-01 21:32:32"],
    ['os.date("!%F %T %a %A %b %B %j %u %w %p %I", 1796160752)', "2026-12-01 21:32:32 Tue Tuesday Dec December 335 2 2 PM 09"],
    ['os.date("!%c", 1796160752)', "Tue Dec  1 21:32:32 2026"],
    ['os.date("!%x %X %D %R %r %y %C %e %z %Z %%", 1796160752)', "12/01/26 21:32:32 12/01/26 21:32 09:32:32 PM 26 20  1 +0000 GMT %"],
    // ISO week years across a new year: 2021-01-03 is in 2020-W53, 2024-12-30 in 2025-W01
    ['os.date("!%G-W%V %g", 1609632000)', "2020-W53 20"],
    ['os.date("!%G-W%V", 1735516800)', "2025-W01"],
    ['os.date("!%U %W", 1735516800)', "52 53"],
    ['os.date("!%U %W %j", 1704067200)', "00 01 001"],
    ['os.date("!%U %W", 1704585600)', "01 01"],
    ["os.date(\"!%Y-%m-%d\", 0)", "1970-01-01"],
    // Past 2038: beyond 32-bit integers
    ['os.date("!%Y-%m-%dT%H:%M:%SZ", 4102444800)', "2100-01-01T00:00:00Z"],
  ])("%s is %s", async (expr, expected) => {
    expect(await date(expr)).toEqual([expected]);
  });

  it("is UTC whatever the local time zone, while a format without ! stays local", async () => {
    process.env.TZ = "America/New_York";
    expect(await date('os.date("!%Y-%m-%d %H", 1796160752), os.date("%Y-%m-%d %H", 1796160752)')).toEqual(["2026-12-01 21", "2026-12-01 16"]);
    expect(await date('os.date("!*t", 1796160752).hour, os.date("*t", 1796160752).hour')).toEqual([21, 16]);
  });

  it("keeps bytes that are not conversions, and refuses an unknown conversion", async () => {
    expect(await date('os.date("!\\xff[%Y]", 0)')).toEqual([new Uint8Array([0xff, ...new TextEncoder().encode("[1970]")])]);
    const r = await runLua('return os.date("!%Q", 0)');
    expect(r.error?.message).toMatch(/bad argument #1 to 'date' \(invalid conversion specifier '%Q'\)/);
    const f = await runLua('return os.date("!%Y", 1.5)');
    expect(f.error?.message).toMatch(/number has no integer representation/);
  });
});
