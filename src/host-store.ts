/**
 * Host-side access to a store for the platform itself: JS values in and out, no policy
 * (the platform is trusted), same key, value and TTL rules as scripts. Every method returns
 * a promise so callers need not care whether the backend is synchronous.
 */
import { byteStringFromText } from "./bytes.js";
import { CodecError } from "./codec/codec-error.js";
import { decodeValue, encodeValue } from "./codec/msgpack.js";
import { ErrorKind, StoreError } from "./errors.js";
import type { Store } from "./store/store.js";

export interface SetOptions {
  /** Seconds until the key expires (millisecond precision); 0 or absent = never. */
  ttl?: number;
}

export class HostStore {
  readonly id: string;
  readonly #store: Store;

  constructor(store: Store) {
    this.id = store.id;
    this.#store = store;
  }

  #key(key: string): string {
    if (typeof key !== "string") throw new StoreError(ErrorKind.INVALID, `key must be a string, got ${typeof key}`);
    const bytes = byteStringFromText(key);
    if (bytes.length === 0) throw new StoreError(ErrorKind.INVALID, "key must not be empty");
    const max = this.#store.config.maxKeyLength;
    if (bytes.length > max) {
      throw new StoreError(ErrorKind.INVALID, `key is ${bytes.length} bytes, longer than max_key_length ${max}`);
    }
    return bytes;
  }

  /** The decoded value, or undefined when missing or expired. */
  async get(key: string): Promise<unknown> {
    const bytes = await this.#store.get(this.#key(key));
    return bytes === undefined ? undefined : decodeValue(bytes);
  }

  async set(key: string, value: unknown, options: SetOptions = {}): Promise<void> {
    const k = this.#key(key);
    const ttl = options.ttl ?? 0;
    if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl < 0) {
      throw new StoreError(ErrorKind.INVALID, `ttl must be a finite number >= 0, got ${String(ttl)}`);
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeValue(value, this.#store.config.maxValueSize);
    } catch (err) {
      if (err instanceof CodecError) throw new StoreError(ErrorKind.INVALID, err.message, { cause: err });
      throw err;
    }
    await this.#store.set(k, bytes, ttl === 0 ? 0 : Math.max(1, Math.round(ttl * 1000)));
  }

  async has(key: string): Promise<boolean> {
    return this.#store.has(this.#key(key));
  }

  async delete(key: string): Promise<boolean> {
    return this.#store.delete(this.#key(key));
  }

  /** Live entries. */
  async size(): Promise<number> {
    return this.#store.size();
  }

  /** Runs active expiry now; returns how many keys it removed. */
  async sweep(): Promise<number> {
    return this.#store.sweep();
  }

  async clear(): Promise<void> {
    await this.#store.clear();
  }

  /** The store's snapshot writer, or a StoreError INVALID for a store without a snapshot. */
  #snapshotStore(): Required<Pick<Store, "commit" | "destroy">> {
    const { config } = this.#store;
    const store = this.#store;
    if (config.kind !== "store.memory" || config.snapshot === undefined || store.commit === undefined || store.destroy === undefined) {
      throw new StoreError(ErrorKind.INVALID, `store ${this.id} has no snapshot (registry field snapshot, store.memory only)`);
    }
    return { commit: store.commit.bind(store), destroy: store.destroy.bind(store) };
  }

  /** Writes the store's snapshot now, atomically; resolves once it is on disk. */
  async commit(): Promise<void> {
    await this.#snapshotStore().commit();
  }

  /** Deletes the store's snapshot file; the store writes no more snapshots until the host restarts. */
  async destroy(): Promise<void> {
    await this.#snapshotStore().destroy();
  }

  /** Removes every key (no policy: the host is trusted); returns how many live keys it removed. */
  async flush(): Promise<number> {
    return this.#store.flush();
  }
}
