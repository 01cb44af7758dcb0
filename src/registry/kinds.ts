/**
 * The fields of every store kind. A new kind is its config type in types.ts (joined to `StoreConfig`,
 * its entry document type joined to `RegistryEntryDocument`) plus one row in `KIND_FIELDS`; the
 * compiler refuses a kind without a row, or a row missing a property or parsing to the wrong type.
 */
import type { CommonStoreConfig, StoreConfig, StoreKind } from "./types.js";
import { duration, integer, oneOf, size, type FieldTable } from "./fields.js";

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
};

/** The accepted kinds, in declaration order. */
export const STORE_KINDS = Object.keys(KIND_FIELDS) as StoreKind[];

/** True when `kind` is a store kind the registry accepts. */
export function isStoreKind(kind: string): kind is StoreKind {
  return Object.hasOwn(KIND_FIELDS, kind);
}
