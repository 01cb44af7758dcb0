/**
 * Entry points: policy files from disk, policy texts, or already-parsed documents. All of
 * them validate everything first and throw one PolicyError listing every problem; nothing
 * is loaded from an invalid set.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_MAX_CONFIG_BYTES, describeOsError, readConfigFile } from "../config/read-file.js";
import { PolicyError, type Problem } from "../errors.js";
import { CompiledPolicyEngine } from "./engine.js";
import { PolicyParser } from "./parse.js";
import type { PolicyDocument, PolicyEngine } from "./types.js";

/** A policy file's name (used in problems) and its text. */
export interface PolicySource {
  file: string;
  text: string;
}

const POLICY_FILE = /\.ya?ml$/;

function finish(parser: PolicyParser): PolicyEngine {
  if (parser.problems.length > 0) throw new PolicyError(parser.problems);
  return new CompiledPolicyEngine(parser.policies);
}

/** Validates and compiles policy files given as text; throws PolicyError with every problem. */
export function parsePolicies(files: readonly PolicySource[]): PolicyEngine {
  const parser = new PolicyParser();
  for (const { file, text } of files) parser.parseText(file, text);
  return finish(parser);
}

/**
 * Validates and compiles already-parsed documents. Problems name the field path (line 0):
 * file `<policies>` for one document, `<policies[i]>` for the i-th of a list.
 */
export function compilePolicies(input: PolicyDocument | readonly PolicyDocument[]): PolicyEngine {
  const parser = new PolicyParser();
  if (Array.isArray(input)) input.forEach((document, i) => parser.parseObject(`<policies[${i}]>`, document));
  else parser.parseObject("<policies>", input);
  return finish(parser);
}

export interface LoadPoliciesOptions {
  /**
   * Largest policy file read, in bytes; a larger one is refused with its size, unread.
   * @default DEFAULT_MAX_CONFIG_BYTES (4 MiB)
   */
  maxFileBytes?: number;
}

/**
 * Loads policies from a directory (every `*.yaml`/`*.yml` file in it, by name, not
 * recursive), from one file, or from already-parsed documents. Only regular files (or links
 * to them) of valid UTF-8 within `maxFileBytes` are read: a device, FIFO or socket among them
 * is refused with its path.
 */
export function loadPolicies(input: string | PolicyDocument | readonly PolicyDocument[], options: LoadPoliciesOptions = {}): PolicyEngine {
  if (typeof input !== "string") return compilePolicies(input);
  const problems: Problem[] = [];
  const sources: PolicySource[] = [];
  for (const file of policyFiles(input, problems)) {
    const read = readConfigFile(file, "policy file", options.maxFileBytes ?? DEFAULT_MAX_CONFIG_BYTES);
    if ("problem" in read) problems.push(read.problem);
    else sources.push({ file, text: read.text });
  }
  if (problems.length > 0) throw new PolicyError(problems);
  return parsePolicies(sources);
}

/**
 * The policy files `path` names: the file itself, or the YAML-named entries of a directory
 * (subdirectories skipped; anything else is read, so that a device or FIFO is refused, not ignored).
 */
function policyFiles(path: string, problems: Problem[]): string[] {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch (error) {
    problems.push({ file: path, line: 0, column: 0, message: `cannot read policies: ${describeOsError(error)}`, excerpt: "", code: "CANNOT_READ" });
    return [];
  }
  if (!isDirectory) return [path];
  return readdirSync(path)
    .filter((name) => POLICY_FILE.test(name))
    .sort()
    .map((name) => join(path, name))
    .filter((file) => statSync(file, { throwIfNoEntry: false })?.isDirectory() !== true);
}
