/**
 * Fair shares of one memory store: which share owns each key, each share's keys and bytes,
 * and the admission rule every write passes before anything is written.
 *
 * - A key belongs to the share of its last writer (the writer pays); a host-side write (no
 *   share) keeps the key's owner, and a key the host created belongs to no share.
 * - Each share that holds keys reserves `max_keys` of the store's `max_size`. A share is
 *   refused a key past its own quota (RateLimited), and a share that holds no key yet is
 *   admitted only while `unowned + (shares + 1) × max_keys <= max_size` (Unavailable, retryable,
 *   otherwise). So the store never fills while a share is below its quota: nobody else's write
 *   can block or evict it.
 * - Under `eviction: lru` a write past its share's quota evicts the share's own least recently
 *   used keys instead of failing, and a host-side write past the room no share reserved evicts
 *   unowned keys only.
 */
import { ErrorKind, StoreError } from "../errors.js";
import type { QuotaConfig } from "../registry/types.js";
import type { ShareUsage } from "./store.js";


interface ShareState extends ShareUsage {
  readonly name: string;
  /** The share's keys, least recently used first (kept under LRU only). */
  readonly order: Set<string>;
}

/** One key a write is about to store: its current slot (-1 when new) and its new entry bytes. */
export interface PlannedWrite {
  key: string;
  slot: number;
  bytes: number;
}

/** What the ledger reads from its store. */
export interface LedgerStore {
  /** The current entry bytes (key, value, metadata) of `key`, live at `slot`. */
  entryBytes(key: string, slot: number): number;
  /** The slot of a live key. */
  slotOf(key: string): number;
  /** Every key, least recently used first. */
  keysOldestFirst(): Iterable<string>;
}

export class ShareLedger {
  readonly #storeId: string;
  readonly #quota: QuotaConfig;
  readonly #maxSize: number;
  readonly #lru: boolean;
  readonly #shares = new Map<string, ShareState>();
  /** The owning share of each slot (undefined: no share). */
  readonly #owners: (ShareState | undefined)[] = [];
  /** Keys that belong to no share (written from the host). */
  #unowned = 0;

  constructor(storeId: string, quota: QuotaConfig, maxSize: number, lru: boolean) {
    this.#storeId = storeId;
    this.#quota = quota;
    this.#maxSize = maxSize;
    this.#lru = lru;
  }

  /** The usage of `share` (zero when it holds nothing). */
  usage(share: string): ShareUsage {
    const s = this.#shares.get(share);
    return { keys: s?.keys ?? 0, bytes: s?.bytes ?? 0 };
  }

  /** Every share holding keys, by name. */
  all(): Record<string, ShareUsage> {
    const out: Record<string, ShareUsage> = {};
    for (const s of this.#shares.values()) out[s.name] = { keys: s.keys, bytes: s.bytes };
    return out;
  }

  /**
   * Checks that `writes` by `share` (undefined: the host) fit, and returns the keys that must be
   * evicted first (LRU only). Throws StoreError RateLimited past the share's own quota and
   * Unavailable when the store's room is reserved by other shares. Writes nothing.
   */
  admit(writes: readonly PlannedWrite[], share: string | undefined, store: LedgerStore): string[] {
    const batch = writes.length === 1 ? null : new Set(writes.map((w) => w.key));
    const inBatch = (key: string): boolean => (batch === null ? key === writes[0]!.key : batch.has(key));
    if (share === undefined) return this.#admitHost(writes, inBatch, store);
    const s = this.#shares.get(share);
    let keys = s?.keys ?? 0;
    let bytes = s?.bytes ?? 0;
    for (const w of writes) {
      const owner = w.slot === -1 ? undefined : this.#owners[w.slot];
      if (w.slot !== -1 && owner !== undefined && owner === s) bytes -= store.entryBytes(w.key, w.slot);
      else keys++;
      bytes += w.bytes;
    }
    const { maxKeys, maxBytes = Infinity } = this.#quota;
    const victims: string[] = [];
    if (keys > maxKeys || bytes > maxBytes) {
      if (this.#lru && s !== undefined) {
        for (const key of s.order) {
          if (keys <= maxKeys && bytes <= maxBytes) break;
          if (inBatch(key)) continue;
          victims.push(key);
          keys--;
          bytes -= store.entryBytes(key, store.slotOf(key));
        }
      }
      if (keys > maxKeys || bytes > maxBytes) throw this.#overQuota(share, keys, bytes);
    }
    if ((s === undefined || s.keys === 0) && this.#unowned + (this.#shares.size + 1) * maxKeys > this.#maxSize) {
      throw new StoreError(
        ErrorKind.UNAVAILABLE,
        `store ${this.#storeId} is full: its max_size ${this.#maxSize} is reserved by ${this.#shares.size} shares of max_keys ${maxKeys}`,
        { retryable: true },
      );
    }
    return victims;
  }

  #admitHost(writes: readonly PlannedWrite[], inBatch: (key: string) => boolean, store: LedgerStore): string[] {
    const newKeys = writes.filter((w) => w.slot === -1).length;
    const room = this.#maxSize - this.#shares.size * this.#quota.maxKeys;
    let excess = this.#unowned + newKeys - room;
    if (excess <= 0) return [];
    const victims: string[] = [];
    if (this.#lru) {
      for (const key of store.keysOldestFirst()) {
        if (excess === 0) break;
        if (inBatch(key) || !this.isUnowned(store.slotOf(key))) continue;
        victims.push(key);
        excess--;
      }
    }
    if (excess > 0) {
      throw new StoreError(
        ErrorKind.UNAVAILABLE,
        `store ${this.#storeId} is full (max_size ${this.#maxSize}, ${this.#shares.size * this.#quota.maxKeys} reserved by shares)`,
        { retryable: true },
      );
    }
    return victims;
  }

  #overQuota(share: string, keys: number, bytes: number): StoreError {
    const { maxKeys, maxBytes } = this.#quota;
    const what = keys > maxKeys ? `${keys} keys, over max_keys ${maxKeys}` : `${bytes} bytes, over max_bytes ${maxBytes ?? 0}`;
    return new StoreError(ErrorKind.RATE_LIMITED, `store ${this.#storeId}: share ${JSON.stringify(share)} of ${this.#quota.by} would hold ${what}`);
  }

  /** A new key at `slot` with `bytes` entry bytes, written by `share`. */
  added(key: string, slot: number, bytes: number, share: string | undefined): void {
    if (share === undefined) {
      this.#owners[slot] = undefined;
      this.#unowned++;
      return;
    }
    const s = this.#share(share);
    this.#owners[slot] = s;
    s.keys++;
    s.bytes += bytes;
    if (this.#lru) s.order.add(key);
  }

  /** An existing key rewritten: its entry went from `oldBytes` to `newBytes`; `share` wrote it. */
  rewritten(key: string, slot: number, oldBytes: number, newBytes: number, share: string | undefined): void {
    const owner = this.#owners[slot];
    if (share === undefined || owner?.name === share) {
      if (owner !== undefined) owner.bytes += newBytes - oldBytes;
      if (owner !== undefined && this.#lru) this.touched(key, slot);
      return;
    }
    this.removed(key, slot, oldBytes);
    this.added(key, slot, newBytes, share);
  }

  /** The key at `slot` (of `bytes` entry bytes) is gone: deleted, expired or evicted. */
  removed(key: string, slot: number, bytes: number): void {
    const owner = this.#owners[slot];
    this.#owners[slot] = undefined;
    if (owner === undefined) {
      this.#unowned--;
      return;
    }
    owner.keys--;
    owner.bytes -= bytes;
    owner.order.delete(key);
    if (owner.keys === 0) this.#shares.delete(owner.name);
  }

  /** A read or write made the key the most recently used of its share (LRU). */
  touched(key: string, slot: number): void {
    const owner = this.#owners[slot];
    if (owner === undefined) return;
    owner.order.delete(key);
    owner.order.add(key);
  }

  /** True when the key at `slot` belongs to no share. */
  isUnowned(slot: number): boolean {
    return this.#owners[slot] === undefined;
  }

  clear(): void {
    this.#shares.clear();
    this.#owners.length = 0;
    this.#unowned = 0;
  }

  #share(name: string): ShareState {
    let s = this.#shares.get(name);
    if (s === undefined) {
      s = { name, keys: 0, bytes: 0, order: new Set() };
      this.#shares.set(name, s);
    }
    return s;
  }
}
