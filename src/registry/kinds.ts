/**
 * The fields of every store kind. A new kind is its config type in types.ts (joined to `StoreConfig`,
 * its entry document type joined to `RegistryEntryDocument`) plus one row in `KIND_FIELDS`; the
 * compiler refuses a kind without a row, or a row missing a property or parsing to the wrong type.
 * A kind whose fields constrain each other (store.redis: url or url_env) adds a row to `KIND_RULES`.
 */
import type { CommonStoreConfig, StoreConfig, StoreKind } from "./types.js";
import { boolean, describeValue, duration, integer, oneOf, size, text, type FieldTable, type Parsed } from "./fields.js";

const KiB = 1024;
const MiB = 1024 * KiB;
/** Node timers overflow above 2^31-1 ms (and then fire after 1 ms), so no period may exceed it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Properties the loader fills from the entry itself rather than from a field table. */
type IdentityProperty = "id" | "namespace" | "name" | "source" | "kind";

/** The normalized properties that come from fields every kind shares. */
export type CommonSettings = Omit<CommonStoreConfig, IdentityProperty>;
/** The normalized properties that only kind `K` has. */
export type KindSettings<K extends StoreKind> = Omit<
  Extract<StoreConfig, { kind: K }>,
  keyof CommonStoreConfig | IdentityProperty
>;

/** Keys every entry has besides its fields: how it is named and which kind it is. */
export const IDENTITY_KEYS = ["name", "kind"] as const;

/** Fields every store kind accepts; they mean the same on every kind. */
export const COMMON_FIELDS: FieldTable<CommonSettings> = {
  maxSize: { key: "max_size", parse: integer({ min: 1 }), default: 10_000 },
  cleanupIntervalMs: { key: "cleanup_interval", parse: duration({ maxMs: MAX_TIMER_MS }), default: 5 * 60_000 },
  maxKeyLength: { key: "max_key_length", parse: integer({ min: 1, max: 65_535 }), default: 1024 },
  maxValueSize: { key: "max_value_size", parse: size({ min: 1, max: 64 * MiB }), default: MiB },
  pool: { key: "pool", fields: { max: { key: "max", parse: integer({ min: 1 }), default: 64 } } },
};

/** Fields only one kind accepts, by kind. The kinds listed here are the kinds the registry accepts. */
export const KIND_FIELDS: { readonly [K in StoreKind]: FieldTable<KindSettings<K>> } = {
  "store.memory": {
    eviction: { key: "eviction", parse: oneOf(["none", "lru"]), default: "none" },
  },
  "store.sql": {
    path: { key: "path", parse: sqlitePath },
    tableName: {
      key: "table_name",
      // Quoted in every statement anyway; the pattern keeps names portable and out of sqlite_'s reserved space.
      parse: text({ pattern: /^(?!sqlite_)[A-Za-z_][A-Za-z0-9_]{0,62}$/i, expected: "an SQL identifier (letters, digits, '_'; not sqlite_...)" }),
      default: "kv",
    },
    busyTimeoutMs: { key: "busy_timeout", parse: duration({ maxMs: MAX_TIMER_MS }), default: 5_000 },
    eviction: { key: "eviction", parse: oneOf(["none", "lru"]), default: "none" },
  },
  "store.redis": {
    url: { key: "url", parse: redisUrl, default: undefined },
    urlEnv: {
      key: "url_env",
      parse: text({ pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, expected: "an environment variable name" }),
      default: undefined,
    },
    keyPrefix: {
      key: "key_prefix",
      // A brace would move the Redis Cluster hash tag away from the store id.
      parse: text({ pattern: /^[^{}]{0,256}$/, expected: "a string of at most 256 characters without '{' or '}'" }),
      default: "luastore:",
    },
    connectTimeoutMs: { key: "connect_timeout", parse: duration({ maxMs: MAX_TIMER_MS }), default: 2_000 },
    commandTimeoutMs: { key: "command_timeout", parse: duration({ maxMs: MAX_TIMER_MS }), default: 1_000 },
    cluster: { key: "cluster", parse: boolean(), default: false },
    eviction: { key: "eviction", parse: redisEviction, default: "none" },
  },
};

/** A problem found across several fields of one entry: at the YAML `key` of the entry, or at the entry. */
export interface RuleProblem {
  key?: string;
  message: string;
}

/** Rules across fields of one kind, checked once every field of the entry parsed. */
export const KIND_RULES: { readonly [K in StoreKind]?: (settings: KindSettings<K>) => RuleProblem[] } = {
  "store.redis": ({ url, urlEnv }) => {
    if (url !== undefined && urlEnv !== undefined) return [{ key: "url_env", message: "give url or url_env, not both" }];
    if (url === undefined && urlEnv === undefined) return [{ key: "url", message: "required field is missing (or give url_env)" }];
    return [];
  },
};

function sqlitePath(raw: unknown): Parsed<string> {
  if (typeof raw !== "string" || raw === "" || raw.includes("\0")) {
    return { ok: false, message: `must be a file path or ":memory:", got ${describeValue(raw)}` };
  }
  return { ok: true, value: raw };
}

function redisUrl(raw: unknown): Parsed<string> {
  const expected = "a redis:// or rediss:// URL like redis://127.0.0.1:6379/0";
  if (typeof raw !== "string") return { ok: false, message: `must be ${expected}, got ${describeValue(raw)}` };
  // The URL may carry a password: messages show only its scheme.
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, message: `must be ${expected}` };
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    return { ok: false, message: `must be ${expected}, got a ${url.protocol} URL` };
  }
  if (url.hostname === "") return { ok: false, message: `must be ${expected}: the host is missing` };
  if (url.pathname !== "" && url.pathname !== "/" && !/^\/\d+$/.test(url.pathname)) {
    return { ok: false, message: `must be ${expected}: the path must be a database number` };
  }
  return { ok: true, value: raw };
}

function redisEviction(raw: unknown): Parsed<"none"> {
  if (raw === "none") return { ok: true, value: "none" };
  const hint = raw === "lru" ? " (store.redis never evicts; use store.memory or store.sql for an LRU cache)" : "";
  return { ok: false, message: `must be none, got ${describeValue(raw)}${hint}` };
}

/** The accepted kinds, in declaration order. */
export const STORE_KINDS = Object.keys(KIND_FIELDS) as StoreKind[];

/** True when `kind` is a store kind the registry accepts. */
export function isStoreKind(kind: string): kind is StoreKind {
  return Object.hasOwn(KIND_FIELDS, kind);
}
