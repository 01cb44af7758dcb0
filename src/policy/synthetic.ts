/**
 * Synthetic policy sets for benchmarks: many policies that cannot match the benchmark's
 * requests (other actions, other resources, wildcard actions that miss) plus a few that do.
 * Comparing n = 10 with n = 10 000 shows whether a check grows with unrelated policies.
 */
import type { Actor, PolicyDocument, PolicyRule, RequestMeta } from "./types.js";

/** The actor the synthetic requests run as. */
export const SYNTHETIC_ACTOR: Actor = Object.freeze({ id: "tenant:t1", meta: Object.freeze({ tenant: "t1" }) });

/** Requests against {@link makeSyntheticPolicies} with their expected outcome. */
export const SYNTHETIC_REQUESTS: readonly {
  action: string;
  resource: string;
  meta?: RequestMeta;
  allowed: boolean;
}[] = [
  { action: "store.key.get", resource: "app:cache", meta: { key: "t1:user:42" }, allowed: true },
  { action: "store.key.set", resource: "app:cache", meta: { key: "t2:user:42" }, allowed: false },
  { action: "store.key.get", resource: "app:cache", meta: { key: "t1:secret:token" }, allowed: false },
  { action: "store.key.list", resource: "app:cache", meta: { prefix: "t1:" }, allowed: true },
  { action: "store.get", resource: "app:cache", allowed: true },
];

/** The policies the synthetic requests are decided by. */
const RELEVANT: PolicyRule[] = [
  {
    id: "tenant-keys",
    effect: "allow",
    actors: ["tenant:*"],
    actions: ["store.key.*"],
    resources: ["app:cache"],
    conditions: [{ field: "meta.key", operator: "starts_with", value: "${actor.meta.tenant}:" }],
  },
  {
    id: "tenant-list",
    effect: "allow",
    actors: ["tenant:*"],
    actions: ["store.key.list"],
    resources: ["app:cache"],
    conditions: [{ field: "meta.prefix", operator: "starts_with", value: "${actor.meta.tenant}:" }],
  },
  { id: "store-read", effect: "allow", actions: ["store.get", "store.info"], resources: ["app:*"] },
  {
    id: "no-secrets",
    effect: "deny",
    actions: ["store.key.*"],
    resources: ["app:cache"],
    conditions: [{ field: "meta.key", operator: "contains", value: ":secret:" }],
  },
];

/** One policy that cannot match any synthetic request; the kinds rotate. */
function unrelated(i: number): PolicyRule {
  const id = `synthetic-${i}`;
  switch (i % 4) {
    case 0: // same action, other resource
      return { id, effect: "allow", actions: ["store.key.get"], resources: [`bench:${i}`] };
    case 1: // other action, same resource
      return { id, effect: "deny", actions: [`other.action.${i}`], resources: ["app:cache"] };
    case 2: // wildcard action that matches no store action
      return {
        id,
        effect: "allow",
        actors: ["tenant:*"],
        actions: [`other.${i}.*`],
        resources: ["app:cache"],
        conditions: [{ field: "meta.key", operator: "starts_with", value: "${actor.meta.tenant}:" }],
      };
    default: // other action, wildcard resource
      return { id, effect: "allow", actions: [`other.key.${i}`], resources: [`bench:${i}:*`] };
  }
}

/** `n` unrelated policies plus the few relevant ones, as one document. */
export function makeSyntheticPolicies(n: number): PolicyDocument {
  const policies: PolicyRule[] = [];
  for (let i = 0; i < n; i++) policies.push(unrelated(i));
  policies.push(...RELEVANT);
  return { version: "1.0", policies };
}
