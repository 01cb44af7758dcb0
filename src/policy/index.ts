/** Policy engine: load, compile, decide, explain. */
export { compilePolicies, loadPolicies, parsePolicies, type LoadPoliciesOptions, type PolicySource } from "./load.js";
export { DEFAULT_DENY } from "./engine.js";
export { REQUEST_META_FIELDS } from "./fields.js";
export { makeSyntheticPolicies, SYNTHETIC_ACTOR, SYNTHETIC_REQUESTS } from "./synthetic.js";
export type {
  Actor,
  ActorPolicy,
  Decision,
  Effect,
  Explanation,
  MetaValue,
  PolicyCondition,
  PolicyDocument,
  PolicyEngine,
  PolicyRule,
  PolicyTrace,
  RequestMeta,
} from "./types.js";
