/** `luastore check`: validates the registry and the policies, printing every problem. */
import { formatProblems, PolicyError, RegistryError, type Problem } from "../errors.js";
import { loadPolicies } from "../policy/index.js";
import { loadRegistry } from "../registry/index.js";
import { parseArgs, UsageError } from "./args.js";
import { CONFIG_FLAGS, configPaths, reportConfigError, type CliIO } from "./common.js";

export async function checkCommand(argv: readonly string[], io: CliIO): Promise<number> {
  let paths;
  try {
    const args = parseArgs(argv, CONFIG_FLAGS);
    if (args.positionals.length > 0) throw new UsageError(`check takes no arguments, got '${args.positionals[0]}'`);
    paths = configPaths(args);
  } catch (err) {
    return reportConfigError(err, io);
  }
  const problems: Problem[] = [];
  let entries = 0;
  let policies = 0;
  try {
    entries = loadRegistry(paths.registry).entries.length;
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    problems.push(...err.problems);
  }
  try {
    policies = loadPolicies(paths.policies).size;
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    problems.push(...err.problems);
  }
  if (problems.length > 0) {
    io.stderr(`${formatProblems(problems)}\n${problems.length} problem(s)\n`);
    return 2;
  }
  io.stdout(`ok: ${entries} store(s) in ${paths.registry}, ${policies} polic${policies === 1 ? "y" : "ies"} in ${paths.policies}\n`);
  return 0;
}
