/**
 * Durations and sizes as registry files write them ("30s", "1m30s", "64KiB") and the numbers the host
 * uses (milliseconds, bytes). Store kinds and the CLI share these so every option reads the same way.
 */

/** A parsed value, or why the input is not one; the message suits "<field>: <message>". */
export type UnitResult = { ok: true; value: number } | { ok: false; message: string };

const MS_PER_UNIT = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type DurationUnit = keyof typeof MS_PER_UNIT;
const DURATION_UNIT_ORDER: readonly DurationUnit[] = ["h", "m", "s", "ms"];
// `ms` must come before `m` so that "5ms" is not read as 5m followed by garbage.
const DURATION_PART = /(\d+)(?:\.(\d+))?(ms|h|m|s)/y;
const DURATION_EXAMPLES = `a number of seconds or a string like "250ms", "30s", "5m", "1h" or "1m30s"`;

/**
 * Parses a duration into milliseconds: a number of seconds (may be fractional) or a string of one or
 * more `<decimal><unit>` parts with units `h`, `m`, `s`, `ms` from largest to smallest ("1m30s").
 * Negative durations are refused; the result is rounded to the microsecond.
 */
export function parseDuration(input: string | number): UnitResult {
  if (typeof input === "number") {
    if (!Number.isFinite(input)) return fail(`expected a duration (${DURATION_EXAMPLES}), got ${input}`);
    if (input < 0) return fail(`a duration must not be negative, got ${input}`);
    return ok(toMicrosecondPrecision(input * 1_000));
  }
  const invalid = fail(`invalid duration ${JSON.stringify(input)}: expected ${DURATION_EXAMPLES}`);
  if (input.length === 0) return invalid;
  let totalMs = 0;
  let previousRank = -1;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < input.length) {
    const match = DURATION_PART.exec(input);
    if (match === null) return invalid;
    const [, whole = "", fraction = "", unit] = match;
    const rank = DURATION_UNIT_ORDER.indexOf(unit as DurationUnit);
    if (rank <= previousRank) {
      return fail(`invalid duration ${JSON.stringify(input)}: give each unit once, largest first (like "1h30m")`);
    }
    previousRank = rank;
    // Scale as integers so that "0.07s" is exactly 70, not 70.00000000000001.
    totalMs += (Number(whole + fraction) * MS_PER_UNIT[unit as DurationUnit]) / 10 ** fraction.length;
  }
  return ok(toMicrosecondPrecision(totalMs));
}

const BYTES_PER_UNIT = {
  B: 1n,
  KB: 1_000n,
  MB: 1_000_000n,
  GB: 1_000_000_000n,
  KiB: 1n << 10n,
  MiB: 1n << 20n,
  GiB: 1n << 30n,
} as const;
type SizeUnit = keyof typeof BYTES_PER_UNIT;
const SIZE_TEXT = /^(\d+)(?:\.(\d+))?(B|KB|MB|GB|KiB|MiB|GiB)$/;
const SIZE_EXAMPLES =
  `a whole number of bytes or a string like "512B", "64KiB", "1MiB", "1GiB" (KB, MB, GB are 1000-based)`;

/**
 * Parses a size into bytes: a whole number of bytes, or `<decimal><unit>` with units `B`, `KiB`,
 * `MiB`, `GiB` (1024-based) or `KB`, `MB`, `GB` (1000-based). Units are case-sensitive because
 * "Mb" (megabit) and "MB" differ; the result must be a whole, safe number of bytes.
 */
export function parseSize(input: string | number): UnitResult {
  if (typeof input === "number") {
    if (!Number.isSafeInteger(input) || input < 0) return fail(`expected ${SIZE_EXAMPLES}, got ${input}`);
    return ok(input);
  }
  const match = SIZE_TEXT.exec(input);
  if (match === null) return fail(`invalid size ${JSON.stringify(input)}: expected ${SIZE_EXAMPLES}`);
  const [, whole = "", fraction = "", unit] = match;
  // BigInt keeps "1.5MiB" exact and lets us tell a whole number of bytes from "0.3KiB".
  const scaled = BigInt(whole + fraction) * BYTES_PER_UNIT[unit as SizeUnit];
  const divisor = 10n ** BigInt(fraction.length);
  if (scaled % divisor !== 0n) return fail(`size ${JSON.stringify(input)} is not a whole number of bytes`);
  const bytes = scaled / divisor;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) return fail(`size ${JSON.stringify(input)} is too large`);
  return ok(Number(bytes));
}

/** Formats milliseconds the way registry files write them: "250ms", "30s", "5m", "1h30m". */
export function formatDuration(ms: number): string {
  if (ms < 1_000 || !Number.isInteger(ms)) return `${ms}ms`;
  let rest = ms;
  let text = "";
  for (const unit of DURATION_UNIT_ORDER) {
    const count = Math.floor(rest / MS_PER_UNIT[unit]);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * MS_PER_UNIT[unit];
  }
  return text;
}

/** Formats bytes with the largest binary unit that divides them: "64KiB", "1MiB", "1000B". */
export function formatSize(bytes: number): string {
  for (const unit of ["GiB", "MiB", "KiB"] as const) {
    const per = Number(BYTES_PER_UNIT[unit]);
    if (bytes >= per && bytes % per === 0) return `${bytes / per}${unit}`;
  }
  return `${bytes}B`;
}

function toMicrosecondPrecision(ms: number): number {
  return Math.round(ms * 1_000) / 1_000;
}

function ok(value: number): UnitResult {
  return { ok: true, value };
}

function fail(message: string): UnitResult {
  return { ok: false, message };
}
