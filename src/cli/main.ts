/** The `luastore` command: dispatches to one file per command. Returns the exit code. */
import { checkCommand } from "./check.js";
import { processIO, type CliIO } from "./common.js";
import { explainCommand, EXPLAIN_USAGE } from "./explain.js";
import { runCommand, RUN_USAGE } from "./run.js";
import { testCommand, TEST_USAGE } from "./test.js";

const USAGE = `luastore: run sandboxed Lua scripts against policy-checked stores

${RUN_USAGE}
usage: luastore check [--registry PATH] [--policies DIR]
${EXPLAIN_USAGE}
${TEST_USAGE}

Defaults: --registry ./registry.yaml, --policies ./policies, --actor service:cli.
Exit codes: 0 success (explain: allow), 1 script or test failed (explain: deny), 2 bad flags, registry, policies
or a test file that does not compile. test runs the *_test.lua files under each PATH (default: lua/).
`;

export async function main(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "run":
      return runCommand(rest, io);
    case "check":
      return checkCommand(rest, io);
    case "explain":
      return explainCommand(rest, io);
    case "test":
      return testCommand(rest, io);
    case "help":
    case "--help":
    case "-h":
      io.stdout(USAGE);
      return 0;
    case undefined:
      io.stderr(USAGE);
      return 2;
    default:
      io.stderr(`unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}
