/**
 * ES2024 shared-memory APIs that Node 20 has but this project's `lib` (ES2023) does not
 * declare: growable SharedArrayBuffers (channel.ts) and Atomics.waitAsync (store-thread.ts).
 */
interface SharedArrayBufferConstructor {
  new (byteLength: number, options?: { maxByteLength?: number }): SharedArrayBuffer;
}

interface SharedArrayBuffer {
  readonly growable: boolean;
  readonly maxByteLength: number;
  grow(newByteLength: number): void;
}

interface Atomics {
  waitAsync(
    typedArray: Int32Array,
    index: number,
    value: number,
    timeout?: number,
  ): { async: false; value: "not-equal" | "timed-out" } | { async: true; value: Promise<"ok" | "timed-out"> };
}
