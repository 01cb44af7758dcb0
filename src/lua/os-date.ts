/**
 * `os.date` with a UTC format. fengari's os.date reads the leading `!` (UTC) for `*t` only: for
 * a format string it ignores it and formats local time with the `!` copied into the result
 * (`os.date("!%Y")` gave `!2026`). This wraps it: a format starting with `!` (other than `!*t`)
 * is formatted here from the UTC fields; everything else goes to fengari's own os.date.
 * Conversions: fengari's set (C89 plus `C D e F h k l n P r R t T u z`) and C99's `g G V`, in
 * the C locale.
 */
import { lauxlib, lua, type lua_State } from "fengari";

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const PERCENT = 0x25;
const BANG = 0x21;

const pad = (n: number, width: number, fill = "0"): string => String(n).padStart(width, fill);

/** Day of the year, 0-based. */
function yearDay(d: Date): number {
  return Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000);
}

/** ISO 8601 week-based year and week number. */
function isoWeek(d: Date): { year: number; week: number } {
  const day = (d.getUTCDay() + 6) % 7; // Monday = 0
  const thursday = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3));
  const year = thursday.getUTCFullYear();
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * 86_400_000));
  return { year, week };
}

/** One conversion of a UTC time, or undefined when `c` is not a conversion. */
function convert(c: string, d: Date): string | undefined {
  const hour12 = d.getUTCHours() % 12 === 0 ? 12 : d.getUTCHours() % 12;
  switch (c) {
    case "a": return DAYS[d.getUTCDay()]!.slice(0, 3);
    case "A": return DAYS[d.getUTCDay()]!;
    case "b": case "h": return MONTHS[d.getUTCMonth()]!.slice(0, 3);
    case "B": return MONTHS[d.getUTCMonth()]!;
    case "c": return `${convert("a", d)} ${convert("b", d)} ${convert("e", d)} ${convert("T", d)} ${d.getUTCFullYear()}`;
    case "C": return pad(Math.floor(d.getUTCFullYear() / 100), 2);
    case "d": return pad(d.getUTCDate(), 2);
    case "D": return `${convert("m", d)}/${convert("d", d)}/${convert("y", d)}`;
    case "e": return pad(d.getUTCDate(), 2, " ");
    case "F": return `${d.getUTCFullYear()}-${convert("m", d)}-${convert("d", d)}`;
    case "g": return pad(isoWeek(d).year % 100, 2);
    case "G": return String(isoWeek(d).year);
    case "H": return pad(d.getUTCHours(), 2);
    case "I": return pad(hour12, 2);
    case "j": return pad(yearDay(d) + 1, 3);
    case "k": return pad(d.getUTCHours(), 2, " ");
    case "l": return pad(hour12, 2, " ");
    case "m": return pad(d.getUTCMonth() + 1, 2);
    case "M": return pad(d.getUTCMinutes(), 2);
    case "n": return "\n";
    case "p": return d.getUTCHours() < 12 ? "AM" : "PM";
    case "P": return d.getUTCHours() < 12 ? "am" : "pm";
    case "r": return `${convert("I", d)}:${convert("M", d)}:${convert("S", d)} ${convert("p", d)}`;
    case "R": return `${convert("H", d)}:${convert("M", d)}`;
    case "S": return pad(d.getUTCSeconds(), 2);
    case "t": return "\t";
    case "T": return `${convert("H", d)}:${convert("M", d)}:${convert("S", d)}`;
    case "u": return String(d.getUTCDay() === 0 ? 7 : d.getUTCDay());
    case "U": return pad(Math.floor((yearDay(d) + 7 - d.getUTCDay()) / 7), 2);
    case "V": return pad(isoWeek(d).week, 2);
    case "w": return String(d.getUTCDay());
    case "W": return pad(Math.floor((yearDay(d) + 7 - ((d.getUTCDay() + 6) % 7)) / 7), 2);
    case "x": return convert("D", d);
    case "X": return convert("T", d);
    case "y": return pad(d.getUTCFullYear() % 100, 2);
    case "Y": return String(d.getUTCFullYear());
    case "z": return "+0000";
    case "Z": return "GMT";
    case "%": return "%";
    default: return undefined;
  }
}

/** Formats `format` (bytes, without its `!`) for the UTC time `d`; throws the bad conversion. */
export function formatUtc(format: Uint8Array, d: Date): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < format.length; i++) {
    const byte = format[i]!;
    if (byte !== PERCENT) {
      out.push(byte);
      continue;
    }
    const c = i + 1 < format.length ? String.fromCharCode(format[++i]!) : "";
    const text = convert(c, d);
    if (text === undefined) throw new RangeError(`invalid conversion specifier '%${c}'`);
    for (let k = 0; k < text.length; k++) out.push(text.charCodeAt(k));
  }
  return Uint8Array.from(out);
}

/** Replaces `os.date` in the `os` table at the top of the stack. */
export function installUtcDate(L: lua_State): void {
  lua.lua_getfield(L, -1, "date");
  lua.lua_pushcclosure(
    L,
    (L) => {
      const format = lua.lua_isnoneornil(L, 1) ? undefined : lauxlib.luaL_checklstring(L, 1);
      if (format === undefined || format[0] !== BANG || (format[1] === 0x2a && format[2] === 0x74 && format.length === 3)) {
        // Not a UTC format (or `!*t`, which fengari gets right): fengari's own os.date.
        const n = lua.lua_gettop(L);
        lua.lua_pushvalue(L, lua.lua_upvalueindex(1));
        lua.lua_insert(L, 1);
        lua.lua_call(L, n, 1);
        return 1;
      }
      let ms = Date.now();
      if (!lua.lua_isnoneornil(L, 2)) {
        const t = lauxlib.luaL_checknumber(L, 2);
        if (!Number.isInteger(t)) return lauxlib.luaL_argerror(L, 2, "number has no integer representation");
        ms = t * 1000;
      }
      const d = new Date(ms);
      if (Number.isNaN(d.getTime())) return lauxlib.luaL_argerror(L, 2, "time out-of-bounds");
      let bytes: Uint8Array;
      try {
        bytes = formatUtc(format.subarray(1), d);
      } catch (err) {
        return lauxlib.luaL_argerror(L, 1, (err as Error).message);
      }
      lua.lua_pushlstring(L, bytes, bytes.length);
      return 1;
    },
    1,
  );
  lua.lua_setfield(L, -2, "date");
}
