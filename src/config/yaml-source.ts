/**
 * Positioned problems for YAML inputs (registry and policy files): parse with `yaml`'s
 * parseDocument + LineCounter, and turn node ranges into file:line:column plus an excerpt
 * of the line with a caret, the way yaml's prettifyError does.
 */
import { LineCounter, parseAllDocuments, isNode, type Document, type Node } from "yaml";
import type { Problem } from "../errors.js";

/** A parsed YAML file and what is needed to point into it. */
export interface YamlSource {
  file: string;
  text: string;
  lineCounter: LineCounter;
  documents: Document.Parsed[];
}

/** Parses every document of a YAML file; syntax errors come back as problems, not throws. */
export function parseYamlSource(text: string, file: string): { source: YamlSource; problems: Problem[] } {
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const documents: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const source: YamlSource = { file, text, lineCounter, documents };
  const problems: Problem[] = [];
  if (!Array.isArray(parsed)) {
    // An empty stream (only comments or nothing at all) parses as an EmptyStream.
    return { source, problems };
  }
  for (const doc of documents) {
    for (const err of [...doc.errors, ...doc.warnings]) {
      problems.push(problemAtOffset(source, err.pos[0], err.message.split("\n")[0] ?? err.message));
    }
  }
  return { source, problems };
}

/** Builds the excerpt for a 1-based line/column: the source line and a caret under the column. */
export function excerptAt(text: string, line: number, column: number): string {
  const lines = text.split(/\r?\n/);
  const src = lines[line - 1];
  if (src === undefined) return "";
  const width = String(line).length;
  const shown = src.length > 120 ? `${src.slice(0, 117)}...` : src;
  const caretCol = Math.min(Math.max(column, 1), shown.length + 1);
  return `${String(line).padStart(width)} | ${shown}\n${" ".repeat(width)} | ${" ".repeat(caretCol - 1)}^`;
}

/** A problem at a character offset of the source. */
export function problemAtOffset(source: YamlSource, offset: number, message: string): Problem {
  const { line, col } = source.lineCounter.linePos(Math.max(0, Math.min(offset, source.text.length)));
  return { file: source.file, line, column: col, message, excerpt: excerptAt(source.text, line, col) };
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
