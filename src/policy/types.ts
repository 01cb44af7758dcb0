/**
 * Policy engine contract. All strings that reach `decide` (actor id and meta values, action,
 * resource, key, prefix) are byte strings (see src/bytes.ts); policy literals are converted
 * to byte strings when compiled, so comparisons are byte-exact.
 */
export type MetaValue = string | number | boolean;

/** Who runs a script: an id and free-form metadata (tenant, role, ...). */
export interface Actor {
  id: string;
  meta: Readonly<Record<string, MetaValue>>;
}

/** Request attributes beyond actor/action/resource, seen by policies as `meta.<name>`. */
export interface RequestMeta {
  key?: string;
  prefix?: string;
}

export interface Decision {
  allowed: boolean;
  /**
   * IDs of the policies that decided: every matching deny when denied by policy, every
   * matching allow when allowed, empty for the default deny.
   */
  policyIds: readonly string[];
}

/** One policy's verdict on a request, for `explain`. */
export interface PolicyTrace {
  id: string;
  effect: "allow" | "deny";
  matched: boolean;
  /** Why it did not match (first failing part), when it did not. */
  reason?: string;
}

export interface Explanation extends Decision {
  /** The policies indexed under the action, in file order, with their verdicts. */
  considered: PolicyTrace[];
}

/** Policies specialized for one actor: templates over actor fields are already evaluated. */
export interface ActorPolicy {
  readonly actor: Actor;
  decide(action: string, resource: string, meta?: RequestMeta): Decision;
  /**
   * The decision for (action, resource) when it is the same for every request meta (no
   * condition left that reads the key, prefix or attributes), else null: what a caller may
   * keep instead of asking per key.
   */
  constantDecision?(action: string, resource: string): Decision | null;
}

export interface PolicyEngine {
  /** Number of policies loaded. */
  readonly size: number;
  decide(actor: Actor, action: string, resource: string, meta?: RequestMeta): Decision;
  /** Binds an actor once per run so each check skips template evaluation. */
  bind(actor: Actor): ActorPolicy;
  explain(actor: Actor, action: string, resource: string, meta?: RequestMeta): Explanation;
}

/** What a policy does when it matches. */
export type Effect = "allow" | "deny";

/**
 * A policy file as parsed YAML (or as an object handed to `loadPolicies`/`compilePolicies`).
 * Strings here are ordinary text; they are UTF-8 encoded to byte strings when compiled.
 */
export interface PolicyDocument {
  version: "1.0";
  policies: PolicyRule[];
}

/** One policy as written in a policy file. */
export interface PolicyRule {
  /** Unique across every loaded file. */
  id: string;
  description?: string;
  effect: Effect;
  /** Actor-id patterns; absent means every actor. */
  actors?: string[];
  /** Action patterns (`*` matches any run of characters), e.g. `store.key.*`. */
  actions: string[];
  /** Resource (store ID) patterns, e.g. `app:cache` or `app:*`. */
  resources: string[];
  /** All must hold; absent means always. */
  conditions?: PolicyCondition[];
}

/** One condition of a policy: `field operator value` (or `value_from` another field). */
export interface PolicyCondition {
  /** `actor.id`, `actor.meta.<name>`, `action`, `resource`, `meta.key` or `meta.prefix`. */
  field: string;
  operator: string;
  /** A literal, a list (`in`/`nin`), or a string with `${actor.id}` / `${actor.meta.<name>}` templates. */
  value?: MetaValue | MetaValue[];
  /** Compare against another field instead of `value`. */
  value_from?: string;
}
