/**
 * Loads registry.yaml (or documents built in code) into a validated `RegistryConfig`. Every problem
 * of every document is collected with its file:line:column; any problem refuses the registry whole.
 */
import { dirname, resolve } from "node:path";
import { isAlias, isMap, isNode, isScalar, isSeq, type Document } from "yaml";
import { RegistryError } from "../errors.js";
import { DEFAULT_MAX_CONFIG_BYTES, readConfigFile } from "../config/read-file.js";
import {
  nodeToJS,
  parseYamlSource,
  problemAtOffset,
  problemWithoutPosition,
  type YamlSource,
} from "../config/yaml-source.js";
import type { RegistryConfig, RegistryDocument } from "./types.js";
import { validateDocument, type Locator, type Path, type ValidationState } from "./validate.js";

export interface LoadRegistryOptions {
  /**
   * Directory that relative paths in the registry resolve against.
   * @default the registry file's directory, or `process.cwd()` for documents given as objects
   */
  baseDir?: string;
  /**
   * Largest registry file read, in bytes; a larger one is refused with its size, unread.
   * @default DEFAULT_MAX_CONFIG_BYTES (4 MiB)
   */
  maxFileBytes?: number;
}

/** The file name problems carry when the registry was given as objects. */
const OBJECT_SOURCE = "<registry>";

/**
 * Loads a registry from a YAML file path, or validates documents given as objects.
 * Only a regular file (or a link to one) of valid UTF-8 within `maxFileBytes` is read.
 * @throws RegistryError with every problem found, including an unreadable file (at line 0)
 */
export function loadRegistry(
  input: string | RegistryDocument | readonly RegistryDocument[],
  options: LoadRegistryOptions = {},
): RegistryConfig {
  if (typeof input !== "string") {
    return validateObjects(input, options.baseDir ?? process.cwd());
  }
  const read = readConfigFile(input, "registry file", options.maxFileBytes ?? DEFAULT_MAX_CONFIG_BYTES);
  if ("problem" in read) throw new RegistryError([read.problem]);
  return parseRegistry(read.text, input, options.baseDir ?? dirname(resolve(input)));
}

/**
 * Validates registry YAML text; `file` is the name problems carry.
 * @throws RegistryError with every problem found
 */
export function parseRegistry(text: string, file: string, baseDir: string = dirname(resolve(file))): RegistryConfig {
  const { source, problems } = parseYamlSource(text, file);
  const state: ValidationState = { problems, entries: [], firstDeclared: new Map() };
  // Like kubectl, skip documents with no content at all (a stray or trailing `---`): they declare nothing.
  const documents = source.documents.filter((doc) => !isNullPlaceholder(doc.contents));
  if (documents.length === 0 && problems.length === 0) {
    problems.push(problemAtOffset(source, 0, "registry is empty: expected version, namespace and entries"));
  }
  for (const doc of documents) {
    // A duplicate key leaves the document's structure intact, so its other problems are still worth
    // reporting; after any other syntax error the structure is a guess and would report noise.
    if (doc.errors.some((error) => error.code !== "DUPLICATE_KEY")) continue;
    // Aliases resolve from the shape walk's table; expansion and depth are already bounded.
    const raw = nodeToJS(source, doc.contents);
    validateDocument(raw, yamlLocator(source, doc), state);
  }
  // Array.prototype.sort is stable: problems at one position keep the order they were found in.
  problems.sort((a, b) => a.line - b.line || a.column - b.column);
  if (problems.length > 0) throw new RegistryError(problems);
  return { entries: state.entries, baseDir };
}

function validateObjects(input: RegistryDocument | readonly RegistryDocument[], baseDir: string): RegistryConfig {
  const state: ValidationState = { problems: [], entries: [], firstDeclared: new Map() };
  if (isDocumentList(input)) {
    if (input.length === 0) state.problems.push(problemWithoutPosition(OBJECT_SOURCE, "registry is empty: no documents"));
    input.forEach((document: unknown, index) => validateDocument(document, objectLocator(`documents[${index}]`), state));
  } else {
    validateDocument(input, objectLocator(""), state);
  }
  if (state.problems.length > 0) throw new RegistryError(state.problems);
  return { entries: state.entries, baseDir };
}

// Array.isArray does not narrow a readonly array out of a union; this does.
function isDocumentList(input: RegistryDocument | readonly RegistryDocument[]): input is readonly RegistryDocument[] {
  return Array.isArray(input);
}

/** Objects have no positions: problems are at line 0 and their messages name the path. */
function objectLocator(documentLabel: string): Locator {
  const label = (path: Path): string => {
    const inner = formatPath(path);
    if (documentLabel === "") return inner;
    return inner === "" ? documentLabel : `${documentLabel}${inner.startsWith("[") ? "" : "."}${inner}`;
  };
  return {
    problem: (_path, message) => problemWithoutPosition(OBJECT_SOURCE, message),
    label,
    describe: label,
    position: () => ({ file: OBJECT_SOURCE, line: 0, column: 0 }),
  };
}

/** Resolves paths to nodes of one parsed YAML document. */
function yamlLocator(source: YamlSource, doc: Document.Parsed): Locator {
  const positionAt = (path: Path) => {
    const { line, column } = source.lines.position(offsetOf(source, doc, path, "value"));
    return { file: source.file, line, column };
  };
  return {
    problem: (path, message, at = "value") => problemAtOffset(source, offsetOf(source, doc, path, at), message),
    // Within an entry the position says which entry, so a field is named as written there.
    label: (path) =>
      formatPath(path.length > 2 && path[0] === "entries" && typeof path[1] === "number" ? path.slice(2) : path),
    describe: (path) => {
      const { file, line, column } = positionAt(path);
      return `${file}:${line}:${column}`;
    },
    position: positionAt,
  };
}

/** The offset of the node at `path` (or its key), or of its nearest ancestor present in the document. */
function offsetOf(source: YamlSource, doc: Document.Parsed, path: Path, at: "key" | "value"): number {
  let node: unknown = doc.contents;
  let offset = startOf(node) ?? doc.range[0];
  for (const [index, segment] of path.entries()) {
    if (isAlias(node)) node = source.aliasTargets.get(node);
    if (typeof segment === "string" && isMap(node)) {
      // toJS keeps the last of duplicate keys, so point at the last one too.
      const pair = node.items.findLast((item) => isScalar(item.key) && String(item.key.value) === segment);
      if (pair === undefined) break;
      const keyOffset = startOf(pair.key) ?? offset;
      const wantsKey = at === "key" && index === path.length - 1;
      // `max_size:` with nothing after it has a zero-width null value; the key is the better place.
      offset = wantsKey || isNullPlaceholder(pair.value) ? keyOffset : (startOf(pair.value) ?? keyOffset);
      node = pair.value;
    } else if (typeof segment === "number" && isSeq(node)) {
      const item: unknown = node.items[segment];
      if (item === undefined) break;
      offset = startOf(item) ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}

function startOf(node: unknown): number | undefined {
  return isNode(node) && node.range ? node.range[0] : undefined;
}

function isNullPlaceholder(node: unknown): boolean {
  return node == null || (isScalar(node) && node.value === null && node.range?.[0] === node.range?.[1]);
}

/** `["entries", 0, "pool", "max"]` → `entries[0].pool.max`. */
function formatPath(path: Path): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else text += text === "" ? segment : `.${segment}`;
  }
  return text;
}
