/**
 * `luastore store get|list|dump|restore|flush|info ID ...`: the operator's look into a store of the
 * configured registry. It bypasses policy, as `host.store(id)` does: it is the operator's tool,
 * run with the registry's own credentials.
 *
 * `dump` writes one JSON line per live key: `key` (its text when the bytes are UTF-8, else
 * `key_b64`), `value` (the stored MessagePack bytes, base64: every value round-trips exactly,
 * integers and floats kept apart), `expires_at` (seconds since the epoch, absent when the key does
 * not expire), `version` (the backend's, for the record: a restore gets fresh versions) and
 * `metadata` (MessagePack, base64). `restore` reads the same lines.
 */
import { readFileSync } from "node:fs";
import { systemClock } from "../clock.js";
import { decodeValue } from "../codec/msgpack.js";
import { closestName } from "../config/suggest.js";
import { LuastoreError } from "../errors.js";
import { loadRegistry } from "../registry/index.js";
import type { StoreConfig } from "../registry/types.js";
import { createStore } from "../store/create-store.js";
import { LIST_MAX_LIMIT, type Store } from "../store/store.js";
import { parseArgs, UsageError, type FlagSpec } from "./args.js";
import { CONFIG_FLAGS, configPaths, jsonSafe, readStdin, reportConfigError, type CliIO } from "./common.js";

export const FLAGS: Record<string, FlagSpec> = {
  registry: CONFIG_FLAGS.registry!,
  prefix: { kind: "string" },
  limit: { kind: "number", integer: true, min: 1 },
};

export const STORE_USAGE = "usage: luastore store get|list|dump|restore|flush|info ID [ARG] [flags] (luastore store --help for more)";
const SUBCOMMANDS = ["get", "list", "dump", "restore", "flush", "info"] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];
/** `restore` and `dump` report progress on stderr past this many keys, every this many. */
export const PROGRESS_EVERY = 10_000;

/** One line of a dump. */
interface DumpLine {
  key?: string;
  key_b64?: string;
  value: string;
  expires_at?: number;
  version?: string;
  metadata?: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function keyField(key: string): Pick<DumpLine, "key" | "key_b64"> {
  const bytes = Buffer.from(key, "latin1");
  try {
    return { key: utf8.decode(bytes) };
  } catch {
    return { key_b64: bytes.toString("base64") };
  }
}

export async function storeCommand(argv: readonly string[], io: CliIO): Promise<number> {
  let sub: Subcommand;
  let config: StoreConfig;
  let baseDir: string;
  let rest: string[];
  let prefix: string;
  let limit: number | undefined;
  try {
    const args = parseArgs(argv, FLAGS);
    const [name, id, ...more] = args.positionals;
    if (name === undefined) throw new UsageError(`store needs a subcommand\n${STORE_USAGE}`);
    if (!(SUBCOMMANDS as readonly string[]).includes(name)) {
      const guess = closestName(name, SUBCOMMANDS, 2);
      throw new UsageError(`unknown store subcommand '${name}'${guess ? ` (did you mean '${guess}'?)` : ""}\n${STORE_USAGE}`);
    }
    sub = name as Subcommand;
    if (id === undefined) throw new UsageError(`store ${sub} needs a store ID\n${STORE_USAGE}`);
    rest = more;
    const wanted = sub === "get" ? 1 : sub === "restore" ? (rest.length === 0 ? 0 : 1) : 0;
    if (rest.length !== wanted) throw new UsageError(`store ${sub} takes ${sub === "get" ? "ID KEY" : sub === "restore" ? "ID [FILE|-]" : "ID"}\n${STORE_USAGE}`);
    const registry = loadRegistry(configPaths(args).registry);
    baseDir = registry.baseDir;
    const found = registry.entries.find((e) => e.id === id);
    if (found === undefined) {
      const guess = closestName(id, registry.entries.map((e) => e.id), 3);
      throw new UsageError(`no store '${id}' in the registry${guess ? ` (did you mean '${guess}'?)` : ""}`);
    }
    config = found;
    prefix = (args.flags.get("prefix") as string | undefined) ?? "";
    limit = args.flags.get("limit") as number | undefined;
  } catch (err) {
    return reportConfigError(err, io);
  }
  const store = createStore(config, { clock: systemClock, sweepTimers: false, baseDir });
  const mutates = sub === "flush" || sub === "restore";
  try {
    return await run(sub, store, rest, prefix, limit, io);
  } catch (err) {
    if (err instanceof LuastoreError) {
      io.stderr(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    // A memory store writes its snapshot when it closes: only when this command changed it.
    if (mutates || config.kind !== "store.memory") await store.close();
  }
}

async function run(sub: Subcommand, store: Store, rest: string[], prefix: string, limit: number | undefined, io: CliIO): Promise<number> {
  switch (sub) {
    case "get": {
      const value = await store.get(Buffer.from(rest[0]!, "utf8").toString("latin1"));
      if (value === undefined) {
        io.stderr(`no key '${rest[0]!}' in ${store.id}\n`);
        return 1;
      }
      io.stdout(`${JSON.stringify(decodeValue(value), jsonSafe)}\n`);
      return 0;
    }
    case "list": {
      let n = 0;
      for await (const key of keys(store, Buffer.from(prefix, "utf8").toString("latin1"))) {
        if (limit !== undefined && n === limit) break;
        const field = keyField(key);
        io.stdout(`${field.key ?? `base64:${field.key_b64!}`}\n`);
        n++;
      }
      return 0;
    }
    case "dump": {
      let n = 0;
      for await (const key of keys(store, Buffer.from(prefix, "utf8").toString("latin1"))) {
        const e = await store.entry(key);
        if (e === undefined) continue; // deleted or expired during the walk
        const line: DumpLine = { ...keyField(key), value: Buffer.from(e.value).toString("base64"), version: e.version };
        if (e.expiresAt !== 0) line.expires_at = e.expiresAt / 1000;
        if (e.metadata !== undefined) line.metadata = Buffer.from(e.metadata).toString("base64");
        io.stdout(`${JSON.stringify(line)}\n`);
        if (++n % PROGRESS_EVERY === 0) io.stderr(`dump ${store.id}: ${n} keys\n`);
      }
      if (n >= PROGRESS_EVERY) io.stderr(`dump ${store.id}: ${n} keys, done\n`);
      return 0;
    }
    case "restore": {
      const file = rest[0] ?? "-";
      const text = file === "-" ? Buffer.from(await (io.stdin ?? readStdin)()).toString("utf8") : readFileSync(file, "utf8");
      const name = file === "-" ? "<stdin>" : file;
      const lines = text.split("\n");
      // Every line is read and checked before anything is written: a bad line fails the restore whole.
      const entries = lines.flatMap((line, i) => (line.trim() === "" ? [] : [parseLine(line, name, i + 1)]));
      let written = 0;
      let expired = 0;
      for (const e of entries) {
        // The clock read at each key: writes take time (a synced commit each on SQLite).
        const ttlMs = e.expiresAt === 0 ? 0 : Math.ceil(e.expiresAt - systemClock.now());
        if (e.expiresAt !== 0 && ttlMs <= 0) {
          expired++;
          continue;
        }
        await store.put(e.key, e.value, { ttlMs, onlyIfAbsent: false, ...(e.metadata ? { metadata: e.metadata } : {}) });
        if (++written % PROGRESS_EVERY === 0) io.stderr(`restore ${store.id}: ${written} of ${entries.length} keys\n`);
      }
      io.stderr(`restore ${store.id}: ${written} keys written${expired > 0 ? `, ${expired} already expired and left out` : ""}\n`);
      return 0;
    }
    case "flush":
      io.stdout(`${await store.flush()}\n`);
      return 0;
    case "info": {
      const [info, stats] = await Promise.all([store.info(), store.stats()]);
      io.stdout(`${JSON.stringify({ id: store.id, kind: store.kind, ...info, stats }, jsonSafe)}\n`);
      return 0;
    }
  }
}

/** Every live key with `prefix`, page by page. */
async function* keys(store: Store, prefix: string): AsyncGenerator<string> {
  let after: string | undefined;
  for (;;) {
    const page = await store.list(after === undefined ? { prefix, limit: LIST_MAX_LIMIT } : { prefix, after, limit: LIST_MAX_LIMIT });
    for (const { key } of page.keys) yield key;
    if (!page.hasMore) return;
    after = page.cursor;
  }
}

interface RestoreEntry {
  key: string;
  value: Uint8Array;
  expiresAt: number;
  metadata?: Uint8Array;
}

/** One dump line, or a UsageError naming `file:line`. */
function parseLine(line: string, file: string, n: number): RestoreEntry {
  const bad = (why: string) => new LuastoreError("OPTIONS_INVALID", `${file}:${n}: ${why}`);
  let doc: DumpLine;
  try {
    doc = JSON.parse(line) as DumpLine;
  } catch (err) {
    throw bad(`not JSON (${(err as Error).message})`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw bad("not a JSON object");
  const b64 = (field: string, v: unknown): Uint8Array => {
    if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw bad(`${field} must be base64`);
    return Buffer.from(v, "base64");
  };
  let key: string;
  if (typeof doc.key === "string") key = Buffer.from(doc.key, "utf8").toString("latin1");
  else if (doc.key_b64 !== undefined) key = Buffer.from(b64("key_b64", doc.key_b64)).toString("latin1");
  else throw bad("needs key or key_b64");
  if (key.length === 0) throw bad("an empty key");
  const value = b64("value", doc.value);
  if (doc.expires_at !== undefined && (typeof doc.expires_at !== "number" || !Number.isFinite(doc.expires_at) || doc.expires_at <= 0)) {
    throw bad("expires_at must be a positive number of seconds since the epoch");
  }
  const entry: RestoreEntry = { key, value, expiresAt: doc.expires_at === undefined ? 0 : doc.expires_at * 1000 };
  if (doc.metadata !== undefined) entry.metadata = b64("metadata", doc.metadata);
  return entry;
}
