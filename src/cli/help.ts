/** The help of every command: `luastore COMMAND --help`, and what the README's CLI section lists. */

export const CONFIG_HELP = `  --registry PATH        the registry (default ./registry.yaml)
  --policies DIR         a policy directory or file (default ./policies)`;

export const ACTOR_HELP = `  --actor ID             the actor policies decide for (default service:cli)
  --meta KEY=VALUE       an actor meta field (repeatable)`;

export const RUN_HELP = `usage: luastore run FILE|- [flags]

Runs a Lua script (- reads it from stdin) against the registry and policies; print goes to stdout.

${CONFIG_HELP}
${ACTOR_HELP}
  --arg VALUE            a string passed to the chunk's ... (repeatable, in order)
  --args JSON            a JSON array whose elements are the chunk's ... (not with --arg)
  --isolation MODE       worker (default) or inline
  --timeout SECONDS      wall-clock limit (default 5)
  --max-instructions N   VM instruction limit (default 50000000)
  --max-memory MIB       worker heap limit (default 256)
  --max-string BYTES     largest single string (default 16 MiB)
  --max-store-ops N      store operations (default 1000000)
  --max-output BYTES     printed output (default 1 MiB)
  --max-call-bytes BYTES bytes one store call carries (default 32 MiB; in a worker at most max-memory / 8)
  --max-handles N        store handles held at once (default 8)
  --stats                run statistics, pools and store metrics on stderr (JSON)
  --audit FILE           append every policy decision to FILE as a JSON line
  --json                 print one JSON document {ok, values, output, error, stats} instead
  -h, --help             this help

Exit: 0 finished, 1 the script failed, 2 bad flags, registry or policies.
`;

export const CHECK_HELP = `usage: luastore check [flags]

Validates the registry and the policies, cross-checks them (actions no method uses, resource
patterns that match no store: warnings) and reports what would fail when a store opens.

${CONFIG_HELP}
  --strict               warnings are errors
  --connect              also connect to every Redis store (PING)
  --json                 print one JSON document {ok, stores, policies, problems}
  -h, --help             this help

Exit: 0 valid (warnings allowed), 2 errors (or warnings with --strict).
`;

export const EXPLAIN_HELP = `usage: luastore explain --actor ID --action ACTION --resource ID [flags]

Shows how the policies decide one request, and which policies decided it.

  --policies DIR         a policy directory or file (default ./policies)
  --actor ID             the actor policies decide for (required)
  --meta KEY=VALUE       an actor meta field (repeatable)
  --action ACTION        store.get, store.key.{get,set,has,delete,list}, store.info or store.flush
  --resource ID          a store ID (namespace:name)
  --key KEY              the key (meta.key)
  --prefix P             the list prefix (meta.prefix)
  --json                 print one JSON document {allowed, policyIds, considered, knownAction}
  -h, --help             this help

Exit: 0 allow, 1 deny, 2 bad flags or policies.
`;

export const TEST_HELP = `usage: luastore test [PATH...] [flags]

Runs *_test.lua files (directories are searched; default lua/) with the test module.

${CONFIG_HELP}
${ACTOR_HELP}
  --filter PATTERN       only tests whose "file > describe > test" name matches the regex
  --bail                 stop at the first failure
  --real-stores          run on the registry's backends and the real clock, not in-memory stand-ins
  --reporter NAME        pretty (default), tap, junit or json
  --output FILE          write the report to FILE; the terminal shows the pretty one
  --json                 the same as --reporter json
  --timeout SECONDS      limit for each file's run (default 60)
  --max-instructions N   limit for each file's run (default 1000000000)
  --isolation inline     the only mode for tests so far
  --watch                run, then re-run the files a change touches (a test file, a module it
                         requires, the registry or policies) until Ctrl-C
  --coverage             line coverage of the test files and the modules they require: a table,
                         and coverage/lcov.info
  --coverage-dir DIR     where lcov.info goes (default coverage)
  -h, --help             this help

Exit: 0 all passed, 1 a test failed, 2 bad flags, config or a file that does not compile
(--watch: 0 when stopped by Ctrl-C).
`;

export const REPL_HELP = `usage: luastore repl [flags]

A Lua prompt on the sandbox with store, errors and time, against the registry and policies.
Each input is a run of its own with the run's limits; the stores and the globals whose values
are data persist between inputs, functions do not. .exit or Ctrl-D leaves.

${CONFIG_HELP}
${ACTOR_HELP}
  --timeout SECONDS      wall-clock limit of each input (default 5)
  --max-instructions N   VM instruction limit of each input (default 50000000)
  --max-string BYTES     largest single string (default 16 MiB)
  --max-store-ops N      store operations of each input (default 1000000)
  --max-output BYTES     printed output of each input (default 1 MiB)
  --max-call-bytes BYTES bytes one store call carries (default 32 MiB)
  --max-handles N        store handles held at once (default 8)
  -h, --help             this help

Exit: 0 at the end of the input, 2 bad flags, registry or policies.
`;

export const STORE_HELP = `usage: luastore store SUBCOMMAND ID [ARG] [flags]

Looks into a store of the registry, bypassing policy (the operator's tool, as host.store(id) is).

  get ID KEY             print the value at KEY as JSON (exit 1 when it is missing)
  list ID                print the live keys in byte order, one a line (base64:... when not UTF-8)
  dump ID                print every live key as a JSON line: key (or key_b64), value (MessagePack,
                         base64), expires_at (seconds since the epoch), version, metadata (base64)
  restore ID [FILE|-]    write the keys of a dump (default: stdin); keys already expired are left out
  flush ID               remove every key; print how many were live
  info ID                print size, bytes, limits and counters as JSON

  --registry PATH        the registry (default ./registry.yaml)
  --prefix P             list, dump: only keys starting with P
  --limit N              list: at most N keys
  -h, --help             this help

Progress goes to stderr every 10 000 keys. Restored keys get fresh versions.
Exit: 0 done, 1 a missing key or a store error, 2 bad flags, registry or arguments.
`;

export const MAIN_HELP = `luastore: run sandboxed Lua scripts against policy-checked stores

usage: luastore COMMAND [flags]

  run FILE|-             run a script
  check                  validate the registry and the policies
  explain                show how the policies decide a request
  test [PATH...]         run *_test.lua files
  repl                   a Lua prompt on the stores
  store SUBCOMMAND ID    get, list, dump, restore, flush or info of a store (no policy)
  help [COMMAND]         this help, or a command's

  -h, --help             this help; luastore COMMAND --help for a command's
  -v, --version          the version

Defaults: --registry ./registry.yaml, --policies ./policies, --actor service:cli.
`;
