import { describe, expect, test } from "vitest";
import { formatDuration, formatSize, parseDuration, parseSize } from "../../src/registry/units.js";

describe("parseDuration", () => {
  test.each([
    ["250ms", 250],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["1m30s", 90_000],
    ["1h2m3s4ms", 3_723_004],
    ["0.07s", 70],
    ["1.5ms", 1.5],
    ["0s", 0],
    [2.5, 2_500],
    [0.07, 70],
    [0, 0],
  ] as const)("%j is %d ms", (input, ms) => {
    expect(parseDuration(input)).toEqual({ ok: true, value: ms });
  });

  test.each(["", "5", "5 m", " 5m", "5x", "m", "5mm", "30s1m", "1m1m", "-5s", ".5s", "1.s", "5M", "1d"])(
    "%j is refused",
    (input) => {
      expect(parseDuration(input)).toMatchObject({ ok: false, message: expect.stringContaining("duration") });
    },
  );

  test.each([-1, Number.NaN, Number.POSITIVE_INFINITY])("the number %d is refused", (input) => {
    expect(parseDuration(input).ok).toBe(false);
  });
});

describe("parseSize", () => {
  test.each([
    [0, 0],
    [2048, 2_048],
    ["512B", 512],
    ["64KiB", 65_536],
    ["1MiB", 1_048_576],
    ["1GiB", 1_073_741_824],
    ["1.5KiB", 1_536],
    ["64KB", 64_000],
    ["2MB", 2_000_000],
    ["1GB", 1_000_000_000],
  ] as const)("%j is %d bytes", (input, bytes) => {
    expect(parseSize(input)).toEqual({ ok: true, value: bytes });
  });

  test.each(["", "1024", "64 KiB", "64kib", "1Mb", "1TiB", "-1B", "0.3KiB", "99999999999GiB"])("%j is refused", (input) => {
    expect(parseSize(input).ok).toBe(false);
  });

  test.each([1.5, -1, Number.NaN, 2 ** 53])("the number %d is refused", (input) => {
    expect(parseSize(input).ok).toBe(false);
  });
});

describe("formatting for messages", () => {
  test.each([
    [250, "250ms"],
    [1_000, "1s"],
    [90_000, "1m30s"],
    [2 ** 31 - 1, "596h31m23s647ms"],
  ])("%d ms formats as %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  test.each([
    [1, "1B"],
    [1_000, "1000B"],
    [65_536, "64KiB"],
    [64 * 1024 * 1024, "64MiB"],
  ])("%d bytes formats as %s", (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });
});
