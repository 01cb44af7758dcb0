/** `luastore explain`: how the policies decide one request, and which policies decided it. */
import { byteStringFromText } from "../bytes.js";
import { isStoreAction, STORE_ACTIONS } from "../config/actions.js";
import { closestName } from "../config/suggest.js";
import { loadPolicies } from "../policy/index.js";
import type { Actor, RequestMeta } from "../policy/types.js";
import { parseArgs, UsageError, type FlagSpec } from "./args.js";
import { ACTOR_FLAGS, actorFrom, configPaths, jsonSafe, reportConfigError, type CliIO } from "./common.js";

export const FLAGS: Record<string, FlagSpec> = {
  policies: { kind: "string" },
  ...ACTOR_FLAGS,
  action: { kind: "string" },
  resource: { kind: "string" },
  key: { kind: "string" },
  prefix: { kind: "string" },
  json: { kind: "boolean" },
};

export const EXPLAIN_USAGE = "usage: luastore explain --actor ID --action ACTION --resource ID [flags] (luastore explain --help for the flags)";

export async function explainCommand(argv: readonly string[], io: CliIO): Promise<number> {
  let engine;
  let actor: Actor;
  let action: string;
  let resource: string;
  let json = false;
  const meta: RequestMeta = {};
  try {
    const args = parseArgs(argv, FLAGS);
    if (args.positionals.length > 0) throw new UsageError(`explain takes no arguments\n${EXPLAIN_USAGE}`);
    if (!args.flags.has("actor")) throw new UsageError(`explain needs --actor\n${EXPLAIN_USAGE}`);
    action = args.flags.get("action") as string;
    resource = args.flags.get("resource") as string;
    if (action === undefined || resource === undefined) throw new UsageError(`explain needs --action and --resource\n${EXPLAIN_USAGE}`);
    const given = actorFrom(args);
    const metaBytes: Record<string, string> = {};
    for (const [k, v] of Object.entries(given.meta)) metaBytes[k] = byteStringFromText(String(v));
    actor = { id: byteStringFromText(given.id), meta: metaBytes };
    const key = args.flags.get("key") as string | undefined;
    if (key !== undefined) meta.key = byteStringFromText(key);
    const prefix = args.flags.get("prefix") as string | undefined;
    if (prefix !== undefined) meta.prefix = byteStringFromText(prefix);
    json = args.flags.get("json") === true;
    engine = loadPolicies(configPaths(args).policies);
  } catch (err) {
    return reportConfigError(err, io);
  }
  const explanation = engine.explain(actor, byteStringFromText(action), byteStringFromText(resource), meta);
  const knownAction = isStoreAction(action);
  const guess = knownAction ? undefined : closestName(action, STORE_ACTIONS, 3);
  if (json) {
    const doc = {
      allowed: explanation.allowed,
      policyIds: explanation.policyIds,
      considered: explanation.considered,
      knownAction,
      ...(guess ? { didYouMean: guess } : {}),
    };
    io.stdout(`${JSON.stringify(doc, jsonSafe)}\n`);
    return explanation.allowed ? 0 : 1;
  }
  const verdict = explanation.allowed ? "allow" : "deny";
  const by =
    explanation.policyIds.length > 0
      ? `decided by: ${explanation.policyIds.join(", ")}`
      : "no policy matched: default deny";
  io.stdout(`${verdict} (${by})\n`);
  if (!knownAction) {
    io.stdout(
      `  note: no store method checks the action "${action}"${guess ? ` (did you mean "${guess}"?)` : ""}; known: ${STORE_ACTIONS.join(", ")}\n`,
    );
  }
  for (const t of explanation.considered) {
    io.stdout(`  ${t.matched ? "matched" : "skipped"} ${t.effect} ${t.id}${t.reason ? `: ${t.reason}` : ""}\n`);
  }
  return explanation.allowed ? 0 : 1;
}
