/**
 * The test-only fault hook: when set, a zone calls it at every numbered step of a mutating
 * operation (before each logged word changes, and at the commit), so a test can stop a worker
 * (process.exit, a throw, or a terminate from the host) at exactly that step. Unset, it costs one
 * `if` per step.
 */

/** Step `step` of the current operation (0, 1, 2, ... from the lock being taken) is about to run. */
export type ZoneFault = (step: number) => void;

/** The hook, read by the zone at each step; undefined outside fault tests. */
export let zoneFault: ZoneFault | undefined;

/** Installs (or, with undefined, removes) the fault hook for every zone in this thread. */
export function setZoneFault(hook: ZoneFault | undefined): void {
  zoneFault = hook;
}
