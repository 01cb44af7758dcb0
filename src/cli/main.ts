/** The `luastore` command: dispatches to one file per command. Returns the exit code. */
import { readFileSync } from "node:fs";
import { closestName } from "../config/suggest.js";
import { processIO, type CliIO } from "./common.js";
import { CHECK_HELP, EXPLAIN_HELP, MAIN_HELP, REPL_HELP, RUN_HELP, STORE_HELP, TEST_HELP } from "./help.js";

interface Command {
  help: string;
  run: (argv: readonly string[], io: CliIO) => Promise<number>;
}

/**
 * Each command's module is imported when it runs: `run` and `test` pull in fengari, the stores and
 * their drivers (a third of a second of loading), which `check`, `explain` and `--help` never use.
 */
export const COMMANDS: Readonly<Record<string, Command>> = {
  run: { help: RUN_HELP, run: async (argv, io) => (await import("./run.js")).runCommand(argv, io) },
  check: { help: CHECK_HELP, run: async (argv, io) => (await import("./check.js")).checkCommand(argv, io) },
  explain: { help: EXPLAIN_HELP, run: async (argv, io) => (await import("./explain.js")).explainCommand(argv, io) },
  test: { help: TEST_HELP, run: async (argv, io) => (await import("./test.js")).testCommand(argv, io) },
  repl: { help: REPL_HELP, run: async (argv, io) => (await import("./repl.js")).replCommand(argv, io) },
  store: { help: STORE_HELP, run: async (argv, io) => (await import("./store.js")).storeCommand(argv, io) },
};

/** luastore's version, from its package.json (two levels above src/cli and dist/cli). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** True when the flags (before any `--`) ask for help. */
function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === "--help" || a === "-h");
}

export async function main(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr(MAIN_HELP);
    return 2;
  }
  if (name === "--help" || name === "-h") {
    io.stdout(MAIN_HELP);
    return 0;
  }
  if (name === "--version" || name === "-v" || name === "version") {
    io.stdout(`${version()}\n`);
    return 0;
  }
  if (name === "help") {
    const topic = rest[0];
    if (topic === undefined) {
      io.stdout(MAIN_HELP);
      return 0;
    }
    const command = COMMANDS[topic];
    if (command === undefined) return unknownCommand(topic, io);
    io.stdout(command.help);
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) return unknownCommand(name, io);
  if (wantsHelp(rest)) {
    io.stdout(command.help);
    return 0;
  }
  return command.run(rest, io);
}

function unknownCommand(name: string, io: CliIO): number {
  const guess = closestName(name, [...Object.keys(COMMANDS), "help", "version"], 2);
  io.stderr(`unknown command '${name}'${guess ? ` (did you mean '${guess}'?)` : ""}\n\n${MAIN_HELP}`);
  return 2;
}

/**
 * A reader that went away (`luastore run x.lua | head -1`) ends the command quietly: EPIPE on
 * stdout or stderr exits at once with status 0 instead of an unhandled 'error' event. Node
 * ignores SIGPIPE itself, so the broken pipe always arrives as EPIPE.
 */
export function endQuietlyOnBrokenPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EPIPE") process.exit(0);
      throw err;
    });
  }
}
