/**
 * The policy engine: an index of compiled policies by action and resource, and actor
 * bindings that specialize it.
 *
 * How a check runs:
 * 1. The action selects a bucket: the policies naming it exactly (a Map) plus the policies
 *    whose wildcard action patterns match it (tested once per distinct action, then cached).
 * 2. Inside the bucket the resource selects the policies naming it exactly (a Map) plus the
 *    bucket's wildcard-resource policies. Policies for other actions or resources are never
 *    looked at, so a check does not slow down as unrelated policies are added.
 * 3. A bound actor keeps, per (action, resource), the candidates whose actor patterns match
 *    it, with templates and actor fields already resolved. When none of them has a condition
 *    left that reads the request, the Decision itself is cached.
 * 4. Any matching deny wins, else any matching allow allows, else the default deny. The
 *    common outcomes return preallocated frozen Decisions; only several matches allocate.
 */
import { quoteByteString } from "../bytes.js";
import { bindCondition, holds, leftValueOf, type BoundCondition } from "./condition.js";
import { isMetaValue } from "./fields.js";
import type { PolicyDefinition } from "./parse.js";
import { matchesAny, type Pattern } from "./pattern.js";
import type { Actor, ActorPolicy, Decision, Explanation, MetaValue, PolicyEngine, PolicyTrace, RequestMeta } from "./types.js";

/** A policy with its position in load order and its preallocated single-match Decision. */
interface IndexedPolicy extends PolicyDefinition {
  readonly index: number;
  readonly decision: Decision;
}

/** The policies indexed under one action. */
interface ActionBucket {
  /** Every policy for the action, in load order (what `explain` reports). */
  readonly all: readonly IndexedPolicy[];
  /** Policies whose resource patterns are all exact, by resource. */
  readonly byResource: ReadonlyMap<string, readonly IndexedPolicy[]>;
  /** Policies with at least one wildcard resource pattern. */
  readonly anyResource: readonly IndexedPolicy[];
}

/** A candidate policy specialized to an actor: the conditions still to check per request. */
interface BoundRule {
  readonly policy: IndexedPolicy;
  readonly conditions: readonly BoundCondition[];
}

/** What a bound actor checks for one (action, resource): a fixed Decision, or rules to evaluate. */
interface Check {
  readonly decision: Decision | null;
  readonly rules: readonly BoundRule[];
}

/** The decision when no policy matches. */
export const DEFAULT_DENY: Decision = Object.freeze({ allowed: false, policyIds: Object.freeze([]) });

/**
 * Caches keyed by request strings are bounded: actions and resources can come from an
 * untrusted script, and one that invents names must not grow host memory without limit.
 */
const MAX_CACHED_ACTIONS = 1024;
const MAX_CACHED_CHECKS_PER_ACTOR = 1024;

const EMPTY_BUCKET: ActionBucket = { all: [], byResource: new Map(), anyResource: [] };

function frozenDecision(allowed: boolean, policyIds: string[]): Decision {
  return Object.freeze({ allowed, policyIds: Object.freeze(policyIds) });
}

/** The decision for a set of matching policies (in load order). */
function decisionFor(matched: readonly IndexedPolicy[]): Decision {
  const denies = matched.filter((p) => p.effect === "deny");
  const deciding = denies.length > 0 ? denies : matched;
  if (deciding.length === 0) return DEFAULT_DENY;
  if (deciding.length === 1) return deciding[0]!.decision;
  return frozenDecision(denies.length === 0, deciding.map((p) => p.id));
}

/** Merges two lists sorted by load order. */
function mergeByIndex(a: readonly IndexedPolicy[], b: readonly IndexedPolicy[]): IndexedPolicy[] {
  const merged: IndexedPolicy[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) merged.push(a[i]!.index < b[j]!.index ? a[i++]! : b[j++]!);
  while (i < a.length) merged.push(a[i++]!);
  while (j < b.length) merged.push(b[j++]!);
  return merged;
}

const allExact = (patterns: readonly Pattern[]): boolean => patterns.every((p) => p.exact);

/**
 * A copy of the actor taken at bind time: templates are resolved lazily, and a caller that
 * later mutates its actor object must not change what an existing binding decides. Meta is
 * a null-prototype object so a name like `__proto__` is an ordinary entry.
 */
function snapshotActor(actor: Actor): Actor {
  const meta = Object.create(null) as Record<string, MetaValue>;
  for (const name of Object.keys(actor.meta)) {
    const value: unknown = actor.meta[name];
    if (isMetaValue(value)) meta[name] = value;
  }
  return Object.freeze({ id: actor.id, meta: Object.freeze(meta) });
}

/** Compiled, indexed policies; see the module comment for the algorithm. */
export class CompiledPolicyEngine implements PolicyEngine {
  readonly size: number;
  /** The policies as read, in order (for cross-checks such as `luastore check`). */
  readonly definitions: readonly PolicyDefinition[];
  /** Policies whose action patterns are all exact, by action. */
  private readonly byAction = new Map<string, IndexedPolicy[]>();
  /** Policies with at least one wildcard action pattern. */
  private readonly anyAction: IndexedPolicy[] = [];
  private readonly buckets = new Map<string, ActionBucket>();

  constructor(definitions: readonly PolicyDefinition[]) {
    this.size = definitions.length;
    this.definitions = definitions;
    definitions.forEach((definition, index) => {
      const policy: IndexedPolicy = {
        ...definition,
        index,
        decision: frozenDecision(definition.effect === "allow", [definition.id]),
      };
      if (!allExact(policy.actions)) {
        this.anyAction.push(policy);
        return;
      }
      for (const action of new Set(policy.actions.map((p) => p.source))) {
        let list = this.byAction.get(action);
        if (list === undefined) this.byAction.set(action, (list = []));
        list.push(policy);
      }
    });
  }

  decide(actor: Actor, action: string, resource: string, meta?: RequestMeta): Decision {
    return this.bind(actor).decide(action, resource, meta);
  }

  bind(actor: Actor): ActorPolicy {
    return new BoundActorPolicy(this, snapshotActor(actor));
  }

  explain(actor: Actor, action: string, resource: string, meta?: RequestMeta): Explanation {
    const bound = snapshotActor(actor);
    const matched: IndexedPolicy[] = [];
    const considered = this.bucketFor(action).all.map((policy): PolicyTrace => {
      const reason = mismatch(policy, bound, action, resource, meta);
      if (reason !== undefined) return { id: policy.id, effect: policy.effect, matched: false, reason };
      matched.push(policy);
      return { id: policy.id, effect: policy.effect, matched: true };
    });
    const { allowed, policyIds } = decisionFor(matched);
    return { allowed, policyIds, considered };
  }

  /** The policies indexed under `action`, built on first use. */
  bucketFor(action: string): ActionBucket {
    const cached = this.buckets.get(action);
    if (cached !== undefined) return cached;
    const exact = this.byAction.get(action) ?? [];
    const wildcard = this.anyAction.filter((p) => matchesAny(p.actions, action));
    const bucket = exact.length + wildcard.length === 0 ? EMPTY_BUCKET : buildBucket(mergeByIndex(exact, wildcard));
    if (this.buckets.size < MAX_CACHED_ACTIONS) this.buckets.set(action, bucket);
    return bucket;
  }
}

function buildBucket(all: IndexedPolicy[]): ActionBucket {
  const byResource = new Map<string, IndexedPolicy[]>();
  const anyResource: IndexedPolicy[] = [];
  for (const policy of all) {
    if (!allExact(policy.resources)) {
      anyResource.push(policy);
      continue;
    }
    for (const resource of new Set(policy.resources.map((p) => p.source))) {
      let list = byResource.get(resource);
      if (list === undefined) byResource.set(resource, (list = []));
      list.push(policy);
    }
  }
  return { all, byResource, anyResource };
}

/** Policies of the bucket whose resource patterns match `resource`, in load order. */
function candidates(bucket: ActionBucket, resource: string): IndexedPolicy[] {
  const exact = bucket.byResource.get(resource) ?? [];
  const wildcard = bucket.anyResource.filter((p) => matchesAny(p.resources, resource));
  return mergeByIndex(exact, wildcard);
}

/** An engine specialized to one actor; what the host keeps for a run. */
class BoundActorPolicy implements ActorPolicy {
  private readonly checks = new Map<string, Map<string, Check>>();
  private cachedChecks = 0;

  constructor(
    private readonly engine: CompiledPolicyEngine,
    readonly actor: Actor,
  ) {}

  decide(action: string, resource: string, meta?: RequestMeta): Decision {
    const check = this.checks.get(action)?.get(resource) ?? this.prepare(action, resource);
    return check.decision ?? evaluate(check.rules, action, resource, meta);
  }

  constantDecision(action: string, resource: string): Decision | null {
    return (this.checks.get(action)?.get(resource) ?? this.prepare(action, resource)).decision;
  }

  /** Specializes the candidates for (action, resource) to this actor and caches the result. */
  private prepare(action: string, resource: string): Check {
    const rules: BoundRule[] = [];
    for (const policy of candidates(this.engine.bucketFor(action), resource)) {
      const rule = bindRule(policy, this.actor);
      if (rule !== undefined) rules.push(rule);
    }
    const constant = rules.every((rule) => rule.conditions.length === 0);
    const check: Check = { decision: constant ? decisionFor(rules.map((rule) => rule.policy)) : null, rules };
    if (this.cachedChecks < MAX_CACHED_CHECKS_PER_ACTOR) {
      let byResource = this.checks.get(action);
      if (byResource === undefined) this.checks.set(action, (byResource = new Map()));
      byResource.set(resource, check);
      this.cachedChecks += 1;
    }
    return check;
  }
}

/** A policy specialized to an actor, or undefined when it can never match that actor. */
function bindRule(policy: IndexedPolicy, actor: Actor): BoundRule | undefined {
  if (policy.actors !== null && !matchesAny(policy.actors, actor.id)) return undefined;
  const conditions: BoundCondition[] = [];
  for (const condition of policy.conditions) {
    const bound = bindCondition(condition, actor);
    if (bound === false) return undefined;
    if (bound !== true) conditions.push(bound);
  }
  return { policy, conditions };
}

/** Evaluates bound rules (hot path): allocates only when several policies decide. */
function evaluate(rules: readonly BoundRule[], action: string, resource: string, meta: RequestMeta | undefined): Decision {
  let deny: IndexedPolicy | undefined;
  let denyIds: string[] | undefined;
  let allow: IndexedPolicy | undefined;
  let allowIds: string[] | undefined;
  for (let i = 0; i < rules.length; i++) {
    const { policy, conditions } = rules[i]!;
    // Once a deny matched, allows cannot change the outcome.
    if (policy.effect === "allow" && deny !== undefined) continue;
    if (!allHold(conditions, action, resource, meta)) continue;
    if (policy.effect === "deny") {
      if (deny === undefined) deny = policy;
      else (denyIds ??= [deny.id]).push(policy.id);
    } else if (allow === undefined) {
      allow = policy;
    } else {
      (allowIds ??= [allow.id]).push(policy.id);
    }
  }
  if (deny !== undefined) return denyIds === undefined ? deny.decision : frozenDecision(false, denyIds);
  if (allow !== undefined) return allowIds === undefined ? allow.decision : frozenDecision(true, allowIds);
  return DEFAULT_DENY;
}

function allHold(conditions: readonly BoundCondition[], action: string, resource: string, meta: RequestMeta | undefined): boolean {
  for (let i = 0; i < conditions.length; i++) {
    if (!holds(conditions[i]!, action, resource, meta)) return false;
  }
  return true;
}

/** Why a policy indexed under the action does not match the request, or undefined when it does. */
function mismatch(
  policy: IndexedPolicy,
  actor: Actor,
  action: string,
  resource: string,
  meta: RequestMeta | undefined,
): string | undefined {
  if (policy.actors !== null && !matchesAny(policy.actors, actor.id)) {
    return `actor ${quoteByteString(actor.id)} matches none of ${describePatterns(policy.actors)}`;
  }
  if (!matchesAny(policy.resources, resource)) {
    return `resource ${quoteByteString(resource)} matches none of ${describePatterns(policy.resources)}`;
  }
  for (const [i, condition] of policy.conditions.entries()) {
    const bound = bindCondition(condition, actor);
    if (bound === true) continue;
    if (bound === false) return `condition ${i + 1} (${condition.text}) does not hold for this actor`;
    if (!holds(bound, action, resource, meta)) {
      const value = leftValueOf(bound, action, resource, meta);
      return `condition ${i + 1} (${condition.text}) does not hold: ${condition.field.text} is ${describeValue(value)}`;
    }
  }
  return undefined;
}

function describePatterns(patterns: readonly Pattern[]): string {
  return `[${patterns.map((p) => quoteByteString(p.source)).join(", ")}]`;
}

function describeValue(value: MetaValue | undefined): string {
  if (value === undefined) return "missing";
  return typeof value === "string" ? quoteByteString(value) : String(value);
}
