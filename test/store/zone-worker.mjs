// A worker thread for test/store/zone-worker.test.ts: it attaches zones that the test thread made
// and serves their Store calls over channels, with the store thread's own server (StoreServer) and
// wire format, so the zone code runs in a worker (isMainThread false: Atomics.wait for the lock,
// the worker's own liveness slot and counters) and its answers and errors cross back as the Lua
// workers' channel carries them. One worker serves a whole test file; each store the suite opens
// is one zone and one channel, attached and detached by control messages. An "aside" control
// message makes one call outside the channel, optionally stopped inside its write by the fault
// hook, so the test thread can contend for the zone's lock with the worker.
//
// Plain JavaScript against the build (dist/), as Lua workers and zone-fault-worker.mjs run.
import { receiveMessageOnPort, workerData } from "node:worker_threads";
import { attachZone, setZoneFault } from "../../dist/store/zone/index.js";
import { StoreServer } from "../../dist/runtime/store-thread/store-server.js";
import { sleepUntilRung } from "../../dist/runtime/threads/channel.js";

/** How long the loop polls after a request before it sleeps on the bell (a case's next call comes within microseconds). */
const SPIN_MS = 0.05;
/** Longest stretch of polling before the event loop runs. */
const SLICE_MS = 2;

const { port, bell: bellBuffer } = workerData;
const bell = new Int32Array(bellBuffer);
/** Attached stores, at their channel's id: a channel's requests name its store by that index. */
const stores = [];
let stopping = false;
// Nothing else keeps the event loop alive while the loop waits on the bell.
const keepAlive = setInterval(() => {}, 1 << 30);

/** The test thread's clock (a ManualClock), mirrored into a shared cell. */
function mirroredClock(cell) {
  const time = new Float64Array(cell);
  return {
    now: () => time[0],
    sleep: () => Promise.reject(new Error("a zone worker cannot sleep on the test's clock")),
  };
}

function control(msg) {
  switch (msg.type) {
    case "attach": {
      // A store index per channel, and the index never reused: a late request of a detached
      // store finds no store rather than another case's.
      stores[msg.channel] = attachZone(msg.buffer, msg.config, { clock: mirroredClock(msg.clockCell) });
      server.openChannel(msg.channel, msg.sab, msg.port);
      port.postMessage({ type: "attached", channel: msg.channel });
      return;
    }
    case "detach":
      server.closeChannel(msg.channel);
      stores[msg.channel]?.close();
      stores[msg.channel] = undefined;
      port.postMessage({ type: "detached", channel: msg.channel });
      return;
    case "aside": {
      // One call beside the channel, made here and now (the test thread does not wait for it).
      const store = stores[msg.channel];
      if (msg.gate !== undefined) {
        const gate = new Int32Array(msg.gate);
        setZoneFault((step) => {
          if (step !== 0) return;
          setZoneFault(undefined);
          port.postMessage({ type: "paused", channel: msg.channel });
          while (Atomics.load(gate, 0) === 0) Atomics.wait(gate, 0, 0);
        });
      }
      if (msg.announce !== undefined) {
        const announce = new Int32Array(msg.announce);
        Atomics.store(announce, 0, 1);
        Atomics.notify(announce, 0);
      }
      let reply;
      try {
        reply = { type: "ran", channel: msg.channel, value: store[msg.method](...msg.args) };
      } catch (err) {
        reply = { type: "ran", channel: msg.channel, error: { kind: err?.kind, message: String(err?.message ?? err) } };
      } finally {
        setZoneFault(undefined);
      }
      port.postMessage(reply);
      return;
    }
    case "stop":
      stopping = true;
      clearInterval(keepAlive);
      port.close();
      return;
  }
}

const server = new StoreServer({
  stores,
  bell: bellBuffer,
  drainControl: () => {
    for (let m = receiveMessageOnPort(port); m !== undefined && !stopping; m = receiveMessageOnPort(port)) control(m.message);
  },
});
pump();

/** Serves until idle, then sleeps on the bell. */
function pump() {
  const sliceStart = performance.now();
  let spinUntil = 0;
  for (;;) {
    if (stopping) return;
    const served = server.serveOnce();
    const now = performance.now();
    if (served > 0) spinUntil = now + SPIN_MS;
    else if (server.asyncPending > 0 || now > spinUntil) break;
    if (now - sliceStart > SLICE_MS) {
      setImmediate(pump);
      return;
    }
  }
  sleep();
}

function sleep() {
  sleepUntilRung(bell, () => server.hasWork(), pump);
}
