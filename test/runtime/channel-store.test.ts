/**
 * The store conformance suite on the path a Lua worker takes to a store it does not open
 * itself: a ChannelStore on this thread, whose every call is a synchronous request over a real
 * channel to a real store thread holding the store. (Stores a worker opens itself, SQLite
 * files, are the SqlStore the suite already covers, with its counters in shared memory.)
 */
import { MessageChannel } from "node:worker_threads";
import { type Clock } from "../../src/clock.js";
import type { MemoryStoreConfig, SqlStoreConfig, StoreConfig } from "../../src/registry/types.js";
import { createBell, createChannelBuffer } from "../../src/runtime/threads/channel.js";
import { ChannelClient, ChannelStore } from "../../src/runtime/worker/channel-store.js";
import { StoreThreadClient } from "../../src/runtime/store-thread/store-thread-client.js";
import { commonStoreConfig, storeSuite, type SuiteStoreConfig } from "../store/store-suite.js";

/** A ChannelStore whose close also ends its store thread. */
class ThreadStore extends ChannelStore {
  constructor(
    client: ChannelClient,
    config: StoreConfig,
    readonly thread: StoreThreadClient,
    readonly stopWatching: () => void,
  ) {
    super(client, config, 0);
  }
  override async close(): Promise<void> {
    this.stopWatching();
    await this.thread.close();
  }
}

/** A store thread holding one store made from `config`, and this thread's channel to it. */
async function overChannel(config: StoreConfig, clock: Clock): Promise<ThreadStore> {
  // The store thread reads the case's clock from a shared cell, as it reads the host's.
  const cell = new SharedArrayBuffer(8);
  const time = new Float64Array(cell);
  time[0] = clock.now();
  const stopWatching = clock.watch?.((now) => (time[0] = now)) ?? (() => {});
  const bell = createBell();
  const thread = new StoreThreadClient({ registry: { entries: [config], baseDir: process.cwd() }, bell, clockCell: cell, sweepTimers: false, zones: [null] });
  await thread.ready;
  const sab = createChannelBuffer();
  const { port1, port2 } = new MessageChannel();
  thread.send({ type: "open", channel: 1, sab, port: port2 }, [port2]);
  return new ThreadStore(new ChannelClient(sab, bell, port1), config, thread, stopWatching);
}

function memoryConfig(config: SuiteStoreConfig): MemoryStoreConfig {
  return { ...commonStoreConfig(config), kind: "store.memory", eviction: config.eviction ?? "none" };
}

function sqlConfig(config: SuiteStoreConfig): SqlStoreConfig {
  return {
    ...commonStoreConfig(config),
    kind: "store.sql",
    eviction: config.eviction ?? "none",
    path: ":memory:",
    tableName: "kv",
    busyTimeoutMs: 5000,
  };
}

storeSuite("store.memory over a worker's channel", ({ clock, config }) => overChannel(memoryConfig(config), clock));
storeSuite("store.sql (:memory:) over a worker's channel", ({ clock, config }) => overChannel(sqlConfig(config), clock));
