/**
 * The host thread's handle on the store thread: starts it, posts control messages (each
 * followed by a bump of Bell.CONTROL and, when it sleeps, a wake-up), and makes calls that
 * resolve with its reply.
 */
import { MessageChannel, Worker, type MessagePort, type Transferable } from "node:worker_threads";
import { Bell } from "../threads/channel.js";
import {
  deserializeError,
  type StoreControl,
  type StoreThreadData,
  type StoreThreadEvent,
  type StoreThreadMethod,
} from "../threads/thread-messages.js";
import { runtimeEntry } from "../threads/worker-files.js";

interface PendingCall {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export class StoreThreadClient {
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #bell: Int32Array;
  readonly #calls = new Map<number, PendingCall>();
  #callIds = 0;
  /** Why the store thread is unusable (failed to start, or exited), once it is. */
  #failure: Error | null = null;
  /** Resolves when the stores are open; rejects with the error that prevented it. */
  readonly ready: Promise<void>;

  constructor(data: Omit<StoreThreadData, "port">) {
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#bell = new Int32Array(data.bell);
    let markReady!: () => void;
    let markFailed!: (err: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      markFailed = reject;
    });
    // A failure surfaces through every later call; an unobserved `ready` must not crash the process.
    this.ready.catch(() => {});
    this.#worker = new Worker(runtimeEntry("store-thread"), {
      workerData: { ...data, port: port2 } satisfies StoreThreadData,
      transferList: [port2],
    });
    port1.on("message", (event: StoreThreadEvent) => {
      switch (event.type) {
        case "ready":
          markReady();
          return;
        case "failed":
          this.#fail(deserializeError(event.error));
          markFailed(this.#failure!);
          return;
        case "reply": {
          const call = this.#calls.get(event.id);
          this.#calls.delete(event.id);
          if (event.ok) call?.resolve(event.value);
          else call?.reject(deserializeError(event.error));
          return;
        }
      }
    });
    this.#worker.on("error", (err) => {
      this.#fail(err);
      markFailed(err);
    });
    this.#worker.on("exit", () => {
      this.#fail(new Error("the store thread exited"));
      markFailed(this.#failure!);
    });
  }

  #fail(err: Error): void {
    if (this.#failure === null) this.#failure = err;
    for (const call of this.#calls.values()) call.reject(this.#failure);
    this.#calls.clear();
  }

  /** Posts a control message (transferring `transfer`) and makes sure the store thread looks at it. */
  send(message: StoreControl, transfer: readonly Transferable[] = []): void {
    this.#port.postMessage(message, transfer);
    Atomics.add(this.#bell, Bell.CONTROL, 1);
    if (Atomics.load(this.#bell, Bell.SLEEPING) !== 0) {
      Atomics.add(this.#bell, Bell.RING, 1);
      Atomics.notify(this.#bell, Bell.RING);
    }
  }

  /** Calls a store-thread method; resolves with its reply. */
  call<T>(method: StoreThreadMethod, args: unknown[] = []): Promise<T> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    const id = ++this.#callIds;
    return new Promise<T>((resolve, reject) => {
      this.#calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.send({ type: "call", id, method, args });
    });
  }

  /** Closes the stores (when the thread is alive) and ends the thread. */
  async close(): Promise<void> {
    if (this.#failure === null) {
      try {
        await this.call("shutdown");
      } catch {
        // Already gone: nothing left to close.
      }
    }
    this.#port.close();
    await this.#worker.terminate();
  }
}
