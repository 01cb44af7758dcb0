/**
 * The store thread: a worker_thread running only trusted code. It holds the host's side of
 * every store of a worker-isolated host: the stores that Lua workers reach over their channels
 * (memory, SQLite `:memory:`, and Redis, see lua-worker.ts), the connections that
 * `host.store()` and `host.metrics()` use, and the periodic sweeps, which run here once rather
 * than in every worker. Policy, pools and audit are in the workers.
 *
 * ## Where it waits
 * The host thread's event loop takes tens of microseconds to wake, so store calls are served
 * here, in a loop that polls the channels. After a request it keeps polling for a while (a hot round trip then costs well under a microsecond), longer after
 * an answer that had to wake a sleeping worker: that worker needs tens of microseconds to come
 * back with its next request, and if the store thread were asleep by then, both sides would pay
 * a wake-up on every call from then on. Both budgets adapt to whether spinning pays on this
 * machine right now (see adaptive-spin.ts). Then it announces that it sleeps (Bell.SLEEPING), checks once more, and waits with
 * `Atomics.waitAsync` on the bell, which keeps its event loop free for timers (store sweeps)
 * and for promises of asynchronous backends. A busy loop yields to the event loop every
 * {@link SLICE_MS} as well. (Lua workers run at a lower thread priority, see lua-worker.ts, so
 * on a small machine this thread gets the CPU when it has work.) Control messages from the host (open, bind, close, calls) are
 * taken synchronously with `receiveMessageOnPort` whenever Bell.CONTROL moved, so a binding is
 * never stuck behind a busy loop.
 */
import { receiveMessageOnPort, workerData } from "node:worker_threads";
import { systemClock, type Clock } from "../../clock.js";
import { AdaptiveSpin } from "../threads/adaptive-spin.js";
import { sleepUntilRung } from "../threads/channel.js";
import { RemoteStoreTarget } from "./remote-store.js";
import { closeStoreSlots, createStoreSlots, storeMetrics } from "../store-slots.js";
import { StoreServer } from "./store-server.js";
import { serializeError, type StoreControl, type StoreThreadData, type StoreThreadEvent } from "../threads/thread-messages.js";

/** How long the loop polls after the last request while runs are in progress (adaptive, 2..20 µs). */
const spin = new AdaptiveSpin(0.002, 0.02);
/** How long it polls after an answer that woke a sleeping worker (adaptive, 5..100 µs). */
const spinAfterWake = new AdaptiveSpin(0.005, 0.1);
/** Longest stretch of polling before the loop lets the event loop run. */
const SLICE_MS = 2;

const data = workerData as StoreThreadData;
const port = data.port;
const bell = new Int32Array(data.bell);
const post = (event: StoreThreadEvent): void => port.postMessage(event);

/** The host clock's time, mirrored by the host into a shared cell. */
function mirroredClock(cell: SharedArrayBuffer): Clock {
  const time = new Float64Array(cell);
  return {
    now: () => time[0]!,
    sleep: () => Promise.reject(new Error("the store thread cannot sleep on the host clock")),
  };
}

let server: StoreServer;
let stopping = false;
// Nothing else keeps this thread's event loop alive while it waits on the bell.
const keepAlive = setInterval(() => {}, 1 << 30);

try {
  const clock = data.clockCell ? mirroredClock(data.clockCell) : systemClock;
  const slots = createStoreSlots(data.registry, { clock, sweepTimers: data.sweepTimers, zones: data.zones });
  const stores = new RemoteStoreTarget(slots);

  const call = async (method: string, args: unknown[]): Promise<unknown> => {
    switch (method) {
      case "metrics":
        return storeMetrics(slots);
      case "closeChannel":
        server.closeChannel(args[0] as number);
        return undefined;
      case "store":
        return stores.call(args[0] as string, args[1] as string, args[2] as unknown[]);
      case "shutdown":
        stopping = true;
        await closeStoreSlots(slots);
        clearInterval(keepAlive);
        return undefined;
    }
    throw new Error(`unknown store thread call '${method}'`);
  };

  const handle = (msg: StoreControl): void => {
    switch (msg.type) {
      case "open":
        server.openChannel(msg.channel, msg.sab, msg.port);
        return;
      case "call":
        call(msg.method, msg.args).then(
          (value) => post({ type: "reply", id: msg.id, ok: true, value }),
          (err: unknown) => post({ type: "reply", id: msg.id, ok: false, error: serializeError(err) }),
        );
        return;
    }
  };

  server = new StoreServer({
    stores: [...slots.values()].map((slot) => slot.store),
    bell: data.bell,
    drainControl: () => {
      for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) handle(m.message as StoreControl);
    },
  });
  post({ type: "ready" });
  pump();
} catch (err) {
  post({ type: "failed", error: serializeError(err) });
  clearInterval(keepAlive);
}

/** Serves until idle, then sleeps on the bell (see the file comment). */
function pump(): void {
  const sliceStart = performance.now();
  /** The spin under way (null before the first request of this pump), and when it runs out. */
  let current: AdaptiveSpin | null = null;
  let spinUntil = 0;
  for (;;) {
    if (stopping) return;
    server.wokeWorkers = 0;
    const served = server.serveOnce();
    const now = performance.now();
    if (served > 0) {
      current?.hit();
      current = server.wokeWorkers > 0 ? spinAfterWake : spin;
      spinUntil = now + current.budget();
    } else if (server.channels === 0 || server.asyncPending > 0 || now > spinUntil) {
      if (current !== null && now > spinUntil) current.miss();
      break;
    }
    if (now - sliceStart > SLICE_MS) {
      setImmediate(pump);
      return;
    }
  }
  sleep();
}

function sleep(): void {
  sleepUntilRung(bell, () => server.hasWork(), pump);
}
