/**
 * Every error the host raises or reports. One base class with a string-literal `code`;
 * tests and callers match on `code`, never on message text.
 */

/** Error kinds shared by the Lua `errors` module and the host API (values as Lua sees them). */
export const ErrorKind = {
  INVALID: "Invalid",
  NOT_FOUND: "NotFound",
  PERMISSION_DENIED: "PermissionDenied",
  UNAVAILABLE: "Unavailable",
  INTERNAL: "Internal",
  ALREADY_EXISTS: "AlreadyExists",
  CONFLICT: "Conflict",
  TIMEOUT: "Timeout",
  RATE_LIMITED: "RateLimited",
  CANCELED: "Canceled",
  /** A Lua runtime error raised by the script (`error("x")`, a bad argument, ...). */
  RUNTIME: "RuntimeError",
  /** The script does not compile. */
  SYNTAX: "SyntaxError",
  /** The run spent its instruction budget. */
  INSTRUCTION_LIMIT: "InstructionLimit",
  /** The run's heap went past its memory limit. */
  MEMORY_LIMIT: "MemoryLimit",
  /** The script tried to build a string longer than the largest allowed. */
  STRING_LIMIT: "StringLimit",
  /** The run made more store operations than allowed. */
  STORE_OPS_LIMIT: "StoreOpsLimit",
  /** The run printed more output than allowed. */
  OUTPUT_LIMIT: "OutputLimit",
} as const;
export type ErrorKind = (typeof ErrorKind)[keyof typeof ErrorKind];

const KINDS: ReadonlySet<string> = new Set(Object.values(ErrorKind));
/** True when `value` is one of the known error kinds. */
export function isErrorKind(value: unknown): value is ErrorKind {
  return typeof value === "string" && KINDS.has(value);
}

/**
 * Kinds only the host gives a run's outcome: the limit kinds, Timeout, Canceled, Internal and
 * SyntaxError. A script may make error values of these kinds with `errors.new` (a library may
 * well report its own timeout), but a run that ends with one is reported as RuntimeError with
 * the script's kind in `details`, so no script can pass its error off as a host verdict.
 */
export const HOST_VERDICT_KINDS: ReadonlySet<ErrorKind> = new Set([
  ErrorKind.INSTRUCTION_LIMIT,
  ErrorKind.MEMORY_LIMIT,
  ErrorKind.STRING_LIMIT,
  ErrorKind.STORE_OPS_LIMIT,
  ErrorKind.OUTPUT_LIMIT,
  ErrorKind.TIMEOUT,
  ErrorKind.CANCELED,
  ErrorKind.INTERNAL,
  ErrorKind.SYNTAX,
]);

/** True when `kind` is reserved for the host's verdicts (see {@link HOST_VERDICT_KINDS}). */
export function isHostVerdictKind(kind: string): boolean {
  return HOST_VERDICT_KINDS.has(kind as ErrorKind);
}

/** A position in an input file, 1-based line and column. */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

/**
 * What refused a config file as a whole or one of its nodes, for problems a caller may want to
 * tell apart without reading messages: the file could not be read, is not a regular file, is
 * over the size limit, is not UTF-8; a node nests too deep, an alias expands too far or names
 * its own ancestor, an integer is beyond 2^53. Other problems (a field's value) have no code.
 */
export type ProblemCode =
  | "CANNOT_READ"
  | "NOT_A_FILE"
  | "FILE_TOO_LARGE"
  | "INVALID_UTF8"
  | "TOO_DEEP"
  | "ALIAS_EXPANSION"
  | "ALIAS_CYCLE"
  | "UNSAFE_INTEGER";

/** One problem found in a registry or policy file. Line and column are 0 when it is about the file as a whole, or the input had no positions. */
export interface Problem extends SourcePosition {
  message: string;
  /** The offending source line followed by a caret line under the column. */
  excerpt: string;
  code?: ProblemCode;
}

export type ErrorCode =
  | "REGISTRY_INVALID"
  | "POLICY_INVALID"
  | "OPTIONS_INVALID"
  | "STORE_ERROR"
  | "SCRIPT_ERROR"
  | "HOST_CLOSED";

/** Base class of every error the host throws to TypeScript callers. */
export class LuastoreError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "LuastoreError";
  }
}

/**
 * Formats problems as `file:line:column: message` followed by the excerpt, one block each; a
 * problem without a position (line 0) as `file: message`.
 */
export function formatProblems(problems: readonly Problem[]): string {
  return problems
    .map((p) => `${p.line === 0 ? p.file : `${p.file}:${p.line}:${p.column}`}: ${p.message}${p.excerpt ? `\n${p.excerpt}` : ""}`)
    .join("\n");
}

abstract class ProblemsError extends LuastoreError {
  readonly problems: readonly Problem[];
  constructor(code: ErrorCode, what: string, problems: readonly Problem[]) {
    const n = problems.length;
    super(code, `${what}: ${n} problem${n === 1 ? "" : "s"}\n${formatProblems(problems)}`);
    this.problems = problems;
  }
}

/** The registry has one or more problems; it is refused whole. */
export class RegistryError extends ProblemsError {
  constructor(problems: readonly Problem[]) {
    super("REGISTRY_INVALID", "invalid registry", problems);
    this.name = "RegistryError";
  }
}

/** The policy files have one or more problems; they are refused whole. */
export class PolicyError extends ProblemsError {
  constructor(problems: readonly Problem[]) {
    super("POLICY_INVALID", "invalid policies", problems);
    this.name = "PolicyError";
  }
}

/** A host or run option is out of range or of the wrong type. */
export class OptionsError extends LuastoreError {
  constructor(message: string) {
    super("OPTIONS_INVALID", message);
    this.name = "OptionsError";
  }
}

/** The host was closed; no more runs or store calls are accepted. */
export class HostClosedError extends LuastoreError {
  constructor() {
    super("HOST_CLOSED", "host is closed");
    this.name = "HostClosedError";
  }
}

/**
 * A store operation failed in an expected way (store full, backend down, bad value).
 * Lua sees it as `nil, err` with the same kind, message and retryable flag.
 */
export class StoreError extends LuastoreError {
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  constructor(kind: ErrorKind, message: string, options?: { retryable?: boolean; cause?: unknown }) {
    super("STORE_ERROR", message, options);
    this.name = "StoreError";
    this.kind = kind;
    this.retryable = options?.retryable ?? false;
  }
}

/** How a failed run is reported: the error kind, its message and the Lua traceback. */
export interface RunFailure {
  kind: ErrorKind;
  message: string;
  traceback: string;
  retryable: boolean;
  /**
   * Set when the script raised an `errors.new` value of a kind reserved for host verdicts:
   * `kind` is then RuntimeError and `details.kind` the kind the script gave it.
   */
  details?: { kind: string };
}
