/**
 * The fields of every store kind. A new kind is its config type in types.ts (joined to `StoreConfig`,
 * its entry document type joined to `RegistryEntryDocument`) plus one row in `KIND_FIELDS`; the
 * compiler refuses a kind without a row, or a row missing a property or parsing to the wrong type.
 * A kind whose fields constrain each other (store.redis: url or url_env) adds a row to `KIND_RULES`.
 */
import type { CommonStoreConfig, StoreConfig, StoreKind } from "./types.js";
import { actorField, boolean, describeValue, duration, integer, oneOf, size, text, type FieldTable, type Parsed } from "./fields.js";

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
  staleForMs: { key: "stale_for", parse: duration({ maxMs: MAX_TIMER_MS }), default: undefined },
  quota: {
    key: "quota",
    optional: true,
    fields: {
      by: { key: "by", parse: actorField() },
      maxKeys: { key: "max_keys", parse: integer({ min: 1 }) },
      maxBytes: { key: "max_bytes", parse: size({ min: 1, max: Number.MAX_SAFE_INTEGER }), default: undefined },
    },
  },
};

/**
 * Rules across the shared fields, checked once every field of the entry parsed. Each share
 * reserves max_keys of max_size, so a quota larger than the store could never be honoured.
 */
export function commonRules(settings: CommonSettings): RuleProblem[] {
  const { quota, maxSize } = settings;
  if (quota !== undefined && quota.maxKeys > maxSize) {
    return [{ key: "quota.max_keys", message: `must be at most max_size (${maxSize}): each share reserves max_keys of the store, got ${quota.maxKeys}` }];
  }
  return [];
}

/** Fields only one kind accepts, by kind. The kinds listed here are the kinds the registry accepts. */
export const KIND_FIELDS: { readonly [K in StoreKind]: FieldTable<KindSettings<K>> } = {
  "store.memory": {
    eviction: { key: "eviction", parse: oneOf(["none", "lru"]), default: "none" },
    // The zone's SharedArrayBuffer; offsets in it are 31-bit, hence at most 1 GiB.
    maxMemory: { key: "max_memory", parse: size({ min: MiB, max: 1024 * MiB }), default: 64 * MiB },
    snapshot: {
      key: "snapshot",
      optional: true,
      fields: {
        path: { key: "path", parse: filePath },
        everyMs: { key: "every", parse: duration({ maxMs: MAX_TIMER_MS }), default: undefined },
      },
    },
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
    urlEnv: { key: "url_env", parse: envName, default: undefined },
    nodes: { key: "nodes", parse: redisUrlList, default: undefined },
    sentinels: { key: "sentinels", parse: hostPortList, default: undefined },
    sentinelName: {
      key: "sentinel_name",
      parse: text({ pattern: /^[^\s]{1,256}$/, expected: "the primary's name as the sentinels know it (no spaces)" }),
      default: undefined,
    },
    username: { key: "username", parse: secretText, default: undefined },
    usernameEnv: { key: "username_env", parse: envName, default: undefined },
    password: { key: "password", parse: secretText, default: undefined },
    passwordEnv: { key: "password_env", parse: envName, default: undefined },
    tls: {
      key: "tls",
      fields: {
        caFile: { key: "ca_file", parse: filePath, default: undefined },
        certFile: { key: "cert_file", parse: filePath, default: undefined },
        keyFile: { key: "key_file", parse: filePath, default: undefined },
      },
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
    minReplicas: { key: "min_replicas", parse: integer({ min: 0, max: 100 }), default: 0 },
    replicaTimeoutMs: { key: "replica_timeout", parse: duration({ maxMs: MAX_TIMER_MS }), default: undefined },
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
  "store.redis": (settings) => {
    const { url, urlEnv, nodes, sentinels, sentinelName, cluster, tls } = settings;
    const given = (["url", "url_env", "nodes", "sentinels"] as const).filter(
      (key) => ({ url, url_env: urlEnv, nodes, sentinels })[key] !== undefined,
    );
    if (given.length === 0) return [{ key: "url", message: "required field is missing (or give url_env, nodes or sentinels)" }];
    const problems: RuleProblem[] = [];
    if (given.length > 1) problems.push({ key: given[1]!, message: `give one of url, url_env, nodes and sentinels, not ${given.join(" and ")}` });
    if (cluster && sentinels !== undefined) problems.push({ key: "cluster", message: "a Sentinel setup is not a Cluster: drop cluster or sentinels" });
    if (cluster && url !== undefined && databaseOf(url) !== 0) {
      problems.push({ key: "url", message: `a Redis Cluster has only database 0: drop the /${databaseOf(url)} path` });
    }
    const withDb = nodes?.find((node) => databaseOf(node) !== 0);
    if (withDb !== undefined) {
      problems.push({ key: "nodes", message: `a Redis Cluster has only database 0: drop the /${databaseOf(withDb)} path of every node` });
    }
    if (sentinels !== undefined && sentinelName === undefined) {
      problems.push({ key: "sentinels", message: "sentinel_name is missing: the name the sentinels monitor the primary by" });
    }
    if (sentinels === undefined && sentinelName !== undefined) problems.push({ key: "sentinel_name", message: "only with sentinels" });
    for (const [literal, env, name] of [
      [settings.username, settings.usernameEnv, "username"],
      [settings.password, settings.passwordEnv, "password"],
    ] as const) {
      if (literal !== undefined && env !== undefined) problems.push({ key: `${name}_env`, message: `give ${name} or ${name}_env, not both` });
    }
    if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
      problems.push({ key: "tls", message: "give cert_file and key_file together (a client certificate and its key)" });
    }
    const { minReplicas, replicaTimeoutMs, commandTimeoutMs } = settings;
    if (replicaTimeoutMs !== undefined && minReplicas === 0) problems.push({ key: "replica_timeout", message: "only with min_replicas (1 or more)" });
    if (minReplicas > 0 && (replicaTimeoutMs ?? defaultReplicaTimeout(commandTimeoutMs)) >= commandTimeoutMs) {
      problems.push({
        key: replicaTimeoutMs === undefined ? "min_replicas" : "replica_timeout",
        message: `replica_timeout must be shorter than command_timeout (${commandTimeoutMs} ms), so that a write the replicas did not confirm is told apart from one that timed out`,
      });
    }
    const plain = [url, ...(nodes ?? [])].find((u) => u !== undefined && u.startsWith("redis:"));
    if (plain !== undefined && Object.values(tls).some((file) => file !== undefined)) {
      problems.push({ key: "tls", message: "TLS files need rediss:// URLs, not redis://" });
    }
    return problems;
  },
};

/** replica_timeout when min_replicas is set without it: half of command_timeout, leaving the other half to the write itself. */
export function defaultReplicaTimeout(commandTimeoutMs: number): number {
  return Math.max(1, Math.floor(commandTimeoutMs / 2));
}

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

/** The database number of a redis:// URL the parser accepted (0 when it has no path). */
function databaseOf(url: string): number {
  const path = new URL(url).pathname;
  return path === "" || path === "/" ? 0 : Number(path.slice(1));
}

function envName(raw: unknown): Parsed<string> {
  return ENV_NAME(raw);
}
const ENV_NAME = text({ pattern: /^[A-Za-z_][A-Za-z0-9_]*$/, expected: "an environment variable name" });

/** A user name or password: never echoed in a message. */
function secretText(raw: unknown): Parsed<string> {
  if (typeof raw !== "string" || raw === "") return { ok: false, message: "must be a non-empty string" };
  return { ok: true, value: raw };
}

function filePath(raw: unknown): Parsed<string> {
  if (typeof raw !== "string" || raw === "" || raw.includes("\0")) {
    return { ok: false, message: `must be a file path, got ${describeValue(raw)}` };
  }
  return { ok: true, value: raw };
}

/** A non-empty list of Cluster seed URLs, each as `url` accepts it. */
function redisUrlList(raw: unknown): Parsed<string[]> {
  if (!Array.isArray(raw) || raw.length === 0) {
    return { ok: false, message: `must be a list of redis:// or rediss:// URLs (the Cluster's seed nodes), got ${describeValue(raw)}` };
  }
  const out: string[] = [];
  for (const [index, item] of raw.entries()) {
    const parsed = redisUrl(item);
    if (!parsed.ok) return { ok: false, message: `node ${index + 1}: ${parsed.message}` };
    out.push(parsed.value);
  }
  if (new Set(out.map((u) => new URL(u).protocol)).size > 1) {
    return { ok: false, message: "mixes redis:// and rediss:// URLs: every node of a Cluster speaks TLS or none does" };
  }
  return { ok: true, value: out };
}

/** A non-empty list of `host:port` strings (the sentinels). */
function hostPortList(raw: unknown): Parsed<{ host: string; port: number }[]> {
  const expected = 'a list of "host:port" strings, like ["10.0.0.1:26379", "10.0.0.2:26379"]';
  if (!Array.isArray(raw) || raw.length === 0) return { ok: false, message: `must be ${expected}, got ${describeValue(raw)}` };
  const out: { host: string; port: number }[] = [];
  for (const [index, item] of raw.entries()) {
    const match = typeof item === "string" ? /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(item) : null;
    const port = match === null ? NaN : Number(match[2]);
    if (match === null || port < 1 || port > 65_535) {
      return { ok: false, message: `sentinel ${index + 1}: must be "host:port", got ${describeValue(item)}` };
    }
    out.push({ host: match[1]!.replace(/^\[|\]$/g, ""), port });
  }
  return { ok: true, value: out };
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
