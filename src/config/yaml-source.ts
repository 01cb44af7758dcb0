/**
 * Positioned problems for YAML inputs (registry and policy files): parse with `yaml`'s lexer,
 * parser and composer (one pass over the text), check each document's shape where the parser leaves a config loader exposed
 * (nesting depth, alias expansion and cycles, integers a double cannot hold), and turn offsets
 * into file:line:column plus an excerpt of the line with a caret, from one line index per file.
 */
import { Composer, isAlias, isCollection, isMap, isNode, isPair, isScalar, isSeq, Lexer, Parser, type Document, type Node } from "yaml";
import type { Problem } from "../errors.js";

/** Deepest nesting of mappings and lists (aliases followed) a config document may have. */
export const MAX_CONFIG_DEPTH = 64;
/** Most nodes that alias expansion may add to one config document. */
export const MAX_ALIAS_EXPANSION = 10_000;
/**
 * Most nesting the text may allow before it is parsed at all: yaml's parser and composer recurse
 * once per level, and a stack overflow inside them can take the process down, not just throw.
 * Well within what they survive, and far beyond any real config's indentation (about 128 columns).
 */
const MAX_LEXICAL_NESTING = 4 * MAX_CONFIG_DEPTH;
/** Most anchors in one config document (each alias lookup is a scan of the anchors before it). */
export const MAX_ANCHORS = 1000;

/**
 * Line starts of one text, built once: every position and excerpt of a file's problems comes
 * from here, so 20 000 problems cost 20 000 binary searches, not 20 000 splits of the file.
 */
export class LineIndex {
  /** How many indexes were built, process-wide (tests check that a file builds one). */
  static builds = 0;
  readonly #text: string;
  readonly #starts: number[] = [0];

  constructor(text: string) {
    LineIndex.builds++;
    this.#text = text;
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) this.#starts.push(i + 1);
  }

  /** 1-based line and column of a character offset (clamped to the text). */
  position(offset: number): { line: number; column: number } {
    const at = Math.max(0, Math.min(offset, this.#text.length));
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: at - this.#starts[lo]! + 1 };
  }

  /** The text of a 1-based line, without its line break; undefined past the end. */
  lineText(line: number): string | undefined {
    const start = this.#starts[line - 1];
    if (start === undefined) return undefined;
    const next = this.#starts[line];
    const end = next === undefined ? this.#text.length : next - 1;
    const text = this.#text.slice(start, end);
    return text.endsWith("\r") ? text.slice(0, -1) : text;
  }
}

/** A parsed YAML file and what is needed to point into it. */
export interface YamlSource {
  file: string;
  text: string;
  lines: LineIndex;
  /** The documents that passed the shape checks; a refused one is reported and left out. */
  documents: Document.Parsed[];
  /** The node each alias of `documents` names (yaml's own lookup walks the whole document per alias). */
  aliasTargets: Map<Node, Node>;
}

/** The node `node` stands for: itself, or the target of an alias. */
export function resolveNode(source: YamlSource | null, node: unknown): unknown {
  return isAlias(node) ? source?.aliasTargets.get(node) : node;
}

/**
 * The plain JS value of a checked node (mappings as objects, keys as strings, the last of
 * duplicate keys winning, like yaml's toJS), resolving aliases from `source` instead of
 * yaml's per-alias scan. Depth and expansion are bounded by the shape checks.
 */
export function nodeToJS(source: YamlSource, node: unknown): unknown {
  const target = resolveNode(source, node);
  if (isScalar(target)) return target.value;
  if (isSeq(target)) {
    // `[a: b]` holds a pair: one single-key mapping, as yaml's toJS reads it.
    return target.items.map((item) => (isPair(item) ? pairsToJS(source, [item]) : nodeToJS(source, item)));
  }
  if (isMap(target)) return pairsToJS(source, target.items);
  return null;
}

function pairsToJS(source: YamlSource, pairs: readonly { key: unknown; value: unknown }[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const key = nodeToJS(source, pair.key);
    const name = key === null || key === undefined ? "" : String(key);
    const value = nodeToJS(source, pair.value);
    // defineProperty: a key named __proto__ is an own field like any other, never the prototype.
    if (name === "__proto__") Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
    else out[name] = value;
  }
  return out;
}

/** Parses every document of a YAML file; syntax errors and shape problems come back as problems, not throws. */
export function parseYamlSource(text: string, file: string): { source: YamlSource; problems: Problem[] } {
  const source: YamlSource = { file, text, lines: new LineIndex(text), documents: [], aliasTargets: new Map() };
  // yaml's own duplicate-key check compares every key with every earlier one (quadratic in a
  // mapping's size); the shape walk below finds duplicates with a set instead.
  const composer = new Composer({ prettyErrors: false, uniqueKeys: false });
  const depth = new LexicalDepth(source);
  const parser = new Parser();
  const all: Document.Parsed[] = [];
  // yaml's parser looks its token-logging switch up in the environment for every lexeme, and
  // each read of Node's process.env is a call into C++ (about 0.2 µs: a tenth of the time of a
  // 1 MB registry). The pass is synchronous: nothing else can see a plain copy stand in meanwhile.
  const env = process.env;
  process.env = { ...env };
  try {
    // One lexer pass: each lexeme goes through the depth check before the parser sees it, and a
    // document reaches the composer (which recurses per level) only once it is complete.
    for (const lexeme of new Lexer().lex(text)) {
      const tooDeep = depth.step(lexeme);
      if (tooDeep !== undefined) return { source, problems: [tooDeep] };
      for (const token of parser.next(lexeme)) for (const doc of composer.next(token)) all.push(doc as Document.Parsed);
    }
    for (const token of parser.end()) for (const doc of composer.next(token)) all.push(doc as Document.Parsed);
    for (const doc of composer.end()) all.push(doc as Document.Parsed);
  } finally {
    process.env = env;
  }
  const problems: Problem[] = [];
  // An empty stream (only comments or nothing at all) parses as an EmptyStream: no documents.
  for (const doc of all) {
    const shape = checkShape(source, doc);
    if (shape.fatal !== undefined) {
      // The parser's own "Maximum call stack size exceeded" (where the stack ran out) says less
      // than the depth problem, which is at the node that went past the limit.
      problems.push(shape.fatal);
      for (const err of doc.errors) if (err.code !== "RESOURCE_EXHAUSTION") problems.push(yamlErrorProblem(source, err));
      continue;
    }
    for (const err of [...doc.errors, ...doc.warnings]) problems.push(yamlErrorProblem(source, err));
    // A loop, not push(...): a file of a million duplicate keys would overflow the argument stack.
    for (const problem of shape.duplicates) problems.push(problem);
    for (const [alias, target] of shape.aliasTargets) source.aliasTargets.set(alias, target);
    source.documents.push(doc);
  }
  return { source, problems };
}

function yamlErrorProblem(source: YamlSource, err: { pos: [number, number]; message: string }): Problem {
  return problemAtOffset(source, err.pos[0], err.message.split("\n")[0] ?? err.message);
}

/** The excerpt for a line of text: the line and a caret under the column. */
export function excerptOfLine(src: string, line: number, column: number): string {
  const width = String(line).length;
  const shown = src.length > 120 ? `${src.slice(0, 117)}...` : src;
  const caretCol = Math.min(Math.max(column, 1), shown.length + 1);
  return `${String(line).padStart(width)} | ${shown}\n${" ".repeat(width)} | ${" ".repeat(caretCol - 1)}^`;
}

/** A problem at a character offset of the source. */
export function problemAtOffset(source: YamlSource, offset: number, message: string, code?: Problem["code"]): Problem {
  const { line, column } = source.lines.position(offset);
  const text = source.lines.lineText(line);
  return {
    file: source.file,
    line,
    column,
    message,
    excerpt: text === undefined ? "" : excerptOfLine(text, line, column),
    ...(code !== undefined ? { code } : {}),
  };
}

/** A problem pointing at a YAML node (its start), or at `fallbackOffset` when the node has no range. */
export function problemAtNode(
  source: YamlSource,
  node: Node | null | undefined | unknown,
  message: string,
  fallbackOffset = 0,
): Problem {
  const offset = isNode(node) && node.range ? node.range[0] : fallbackOffset;
  return problemAtOffset(source, offset, message);
}

/**
 * A problem for inputs given as already-parsed objects, which have no positions:
 * line and column are 0 and the message names the field path instead.
 */
export function problemWithoutPosition(file: string, message: string): Problem {
  return { file, line: 0, column: 0, message, excerpt: "" };
}

/**
 * Nesting checked on the token stream (yaml's lexer does not recurse), before the parser sees it.
 * Brackets and block indicators (`-`, `?`) on one line each open a level, so more than
 * MAX_CONFIG_DEPTH of them is refused at the one that went past. Indentation can nest too, up to
 * two levels per column; a line whose indentation allows more than MAX_LEXICAL_NESTING levels is
 * refused at its first token. Anything less is parsed and then checked exactly, node by node.
 */
class LexicalDepth {
  #offset = 0;
  #flow = 0;
  #indicators = 0;
  #indent = 0;
  #lineStart = true;

  constructor(private readonly source: YamlSource) {}

  /** Takes the next lexeme; a problem when it nests too deep. */
  step(token: string): Problem | undefined {
    const at = this.#offset;
    const c = token[0];
    // Control tokens (document start, scalar start, flow end) are not in the source.
    if (token.length === 1 && c !== undefined && c < " " && c !== "\t" && c !== "\n") {
      if (c === "\x02") this.#flow = 0;
      return undefined;
    }
    this.#offset += token.length;
    if (c === "\n" || c === "\r") {
      this.#lineStart = true;
      this.#indicators = 0;
      return undefined;
    }
    if (c === " " || c === "\t") {
      // Indentation counts only where it is structure, outside brackets.
      if (this.#lineStart && this.#flow === 0) this.#indent = token.length;
      return undefined;
    }
    if (c === "#") return undefined;
    if (this.#lineStart && this.#flow === 0 && at > 0 && this.source.text[at - 1] === "\n") this.#indent = 0;
    this.#lineStart = false;
    if (token === "[" || token === "{") this.#flow++;
    else if (token === "]" || token === "}") this.#flow = Math.max(0, this.#flow - 1);
    else if ((token === "-" || token === "?") && this.#flow === 0) this.#indicators++;
    if (this.#flow + this.#indicators > MAX_CONFIG_DEPTH) {
      return problemAtOffset(this.source, at, `nested more than ${MAX_CONFIG_DEPTH} levels deep`, "TOO_DEEP");
    }
    if (2 * (this.#indent + 1) + 2 * this.#indicators + this.#flow > MAX_LEXICAL_NESTING) {
      return problemAtOffset(this.source, at, `indented too deeply: this could nest more than ${MAX_CONFIG_DEPTH} levels`, "TOO_DEEP");
    }
    return undefined;
  }
}

/** Duplicate scalar keys of one mapping (the second and later ones), found with a set. */
function findDuplicateKeys(source: YamlSource, items: readonly { key: unknown }[], duplicates: Problem[]): void {
  if (items.length < 2) return;
  const seen = new Set<unknown>();
  for (const { key } of items) {
    if (!isScalar(key)) continue;
    // Like yaml's check: equal scalar values, so 1 and "1" are different keys.
    if (seen.has(key.value)) {
      duplicates.push(problemAtOffset(source, key.range?.[0] ?? 0, "Map keys must be unique", undefined));
    } else seen.add(key.value);
  }
}

/** One node on the walk: its nesting depth, and the size and height of what it expands to. */
interface Frame {
  node: unknown;
  depth: number;
  children: unknown[];
  next: number;
  size: number;
  height: number;
}

/**
 * The first shape problem of a document, walked without recursion (a 10 000-deep document must
 * not overflow the checker either): nesting past MAX_CONFIG_DEPTH (aliases followed), an alias
 * inside the node it names, alias expansion past MAX_ALIAS_EXPANSION nodes, or an integer beyond
 * 2^53, which a double would silently round (9007199254740993 would read as ...992).
 */
function checkShape(
  source: YamlSource,
  doc: Document.Parsed,
): { fatal?: Problem; duplicates: Problem[]; aliasTargets: Map<Node, Node> } {
  const duplicates: Problem[] = [];
  const aliasTargets = new Map<Node, Node>();
  const fatal = walkShape(source, doc, duplicates, aliasTargets);
  return { ...(fatal !== undefined ? { fatal } : {}), duplicates, aliasTargets };
}

function walkShape(source: YamlSource, doc: Document.Parsed, duplicates: Problem[], aliasTargets: Map<Node, Node>): Problem | undefined {
  const at = (node: unknown, message: string, code: Problem["code"]): Problem =>
    problemAtOffset(source, isNode(node) && node.range ? node.range[0] : doc.range[0], message, code);
  let anchorCount = 0;
  const declare = (node: Node & { anchor?: string }): Problem | undefined => {
    if (!node.anchor) return undefined;
    if (++anchorCount > MAX_ANCHORS) return at(node, `more than ${MAX_ANCHORS} anchors in one document`, "ALIAS_EXPANSION");
    anchors.set(node.anchor, node);
    return undefined;
  };
  // Aliases name the latest anchor declared before them; a collection's anchor is declared
  // when the collection opens, so an alias inside it names an ancestor (a cycle).
  const anchors = new Map<string, Node>();
  const expanded = new Map<Node, { size: number; height: number }>();
  const open = new Set<Node>();
  let aliasNodes = 0;
  const stack: Frame[] = [];
  const enter = (node: unknown, depth: number): Problem | undefined => {
    if (depth > MAX_CONFIG_DEPTH) {
      return at(node, `nested more than ${MAX_CONFIG_DEPTH} levels deep`, "TOO_DEEP");
    }
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      // An unknown anchor is already a YAML error of its own.
      const info = target === undefined ? undefined : expanded.get(target);
      if (target !== undefined && open.has(target)) {
        return at(node, `alias *${node.source} is inside the node it names (a cycle)`, "ALIAS_CYCLE");
      }
      if (target !== undefined) aliasTargets.set(node, target);
      const size = info?.size ?? 1;
      const height = info?.height ?? 1;
      if (depth + height - 1 > MAX_CONFIG_DEPTH) {
        return at(node, `alias *${node.source} nests the document more than ${MAX_CONFIG_DEPTH} levels deep`, "TOO_DEEP");
      }
      aliasNodes += size;
      if (aliasNodes > MAX_ALIAS_EXPANSION) {
        return at(node, `alias *${node.source} expands the document past ${MAX_ALIAS_EXPANSION} nodes (an alias bomb?)`, "ALIAS_EXPANSION");
      }
      addToParent(size, height);
      return undefined;
    }
    if (isScalar(node)) {
      if (typeof node.value === "number" && Number.isInteger(node.value) && !Number.isSafeInteger(node.value)) {
        const written = node.source ?? String(node.value);
        if (/^[-+]?(?:0x[0-9a-f]+|0o[0-7]+|[0-9]+)$/i.test(written)) {
          return at(node, `integer ${written} is beyond 2^53 and cannot be held exactly (quote it if it is not a number)`, "UNSAFE_INTEGER");
        }
      }
      const tooMany = declare(node);
      if (tooMany !== undefined) return tooMany;
      if (node.anchor) expanded.set(node, { size: 1, height: 1 });
      addToParent(1, 1);
      return undefined;
    }
    if (isCollection(node)) {
      const tooMany = declare(node);
      if (tooMany !== undefined) return tooMany;
      if (node.anchor) open.add(node);
      if (isMap(node)) findDuplicateKeys(source, node.items, duplicates);
      const children: unknown[] = [];
      for (const item of node.items as unknown[]) {
        if (isPair(item)) {
          if (isNode(item.key)) children.push(item.key);
          if (isNode(item.value)) children.push(item.value);
        } else if (isNode(item)) children.push(item);
      }
      stack.push({ node, depth, children, next: 0, size: 1, height: 1 });
      return undefined;
    }
    return undefined;
  };
  const addToParent = (size: number, height: number): void => {
    const parent = stack[stack.length - 1];
    if (parent === undefined) return;
    parent.size += size;
    parent.height = Math.max(parent.height, height + 1);
  };

  if (!isNode(doc.contents)) return undefined;
  const first = enter(doc.contents, 1);
  if (first !== undefined) return first;
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next < frame.children.length) {
      const child = frame.children[frame.next++];
      const problem = enter(child, frame.depth + 1);
      if (problem !== undefined) return problem;
      continue;
    }
    stack.pop();
    const node = frame.node as Node;
    if (open.delete(node)) expanded.set(node, { size: frame.size, height: frame.height });
    addToParent(frame.size, frame.height);
  }
  return undefined;
}
