/**
 * Validates policy documents and compiles each policy's patterns, conditions, templates and
 * regexes. YAML files and already-parsed objects go through the same walk over yaml nodes
 * (objects are turned into nodes without source ranges), so both are checked by one set of
 * rules; problems are positioned (file:line:column) when the input came from text.
 */
import { closestName } from "../config/suggest.js";
import { Document, isAlias, isMap, isNode, isScalar, isSeq, type Node, type Pair, type YAMLMap } from "yaml";
import { byteStringFromText } from "../bytes.js";
import { problemAtNode, problemAtOffset, problemWithoutPosition, parseYamlSource, resolveNode, type YamlSource } from "../config/yaml-source.js";
import type { Problem, SourcePosition } from "../errors.js";
import type { CompiledCondition, CompiledOperand, ListItem } from "./condition.js";
import { isMetaValue, parseField, type Field } from "./fields.js";
import { OPERATORS, type Operator } from "./operators.js";
import { compilePattern, type Pattern } from "./pattern.js";
import { compilePolicyRegex, isPolicyRegex } from "./regex-safety.js";
import { parseTemplate } from "./template.js";
import type { Effect } from "./types.js";

/** A validated policy, compiled, in the order it was read. */
export interface PolicyDefinition {
  readonly id: string;
  readonly description: string | undefined;
  readonly effect: Effect;
  /** Null when the policy names no actors (it applies to every actor). */
  readonly actors: readonly Pattern[] | null;
  readonly actions: readonly Pattern[];
  readonly resources: readonly Pattern[];
  readonly conditions: readonly CompiledCondition[];
  /** Where the policy was declared (line 0 when it came from an object). */
  readonly source: SourcePosition;
}

const DOCUMENT_FIELDS = ["version", "policies"];
const POLICY_FIELDS = ["id", "description", "effect", "actors", "actions", "resources", "conditions"];
const CONDITION_FIELDS = ["field", "operator", "value", "value_from"];
const OPERATOR_NAMES = [...OPERATORS.keys()].join(", ");

/** Key and value nodes of one mapping entry. */
interface Entry {
  readonly key: unknown;
  readonly value: unknown;
}

/**
 * Reads policy documents one after another, collecting every problem; `policies` holds only
 * policies without problems, and callers refuse the whole set when `problems` is non-empty.
 */
export class PolicyParser {
  readonly policies: PolicyDefinition[] = [];
  readonly problems: Problem[] = [];
  /** Policy id -> where it was first declared, for duplicate reports across files. */
  private readonly firstDeclared = new Map<string, string>();

  /** Parses and validates one YAML policy file. */
  parseText(file: string, text: string): void {
    const { source, problems } = parseYamlSource(text, file);
    if (problems.length > 0) {
      // A file that does not parse is refused; its half-built nodes would only add noise.
      for (const problem of problems) this.problems.push(problem);
      return;
    }
    const [document, ...extra] = source.documents;
    if (document === undefined || document.contents === null) {
      this.problems.push(problemAtOffset(source, 0, 'empty policy file: expected a mapping with "version" and "policies"'));
      return;
    }
    const first = this.problems.length;
    for (const other of extra) {
      this.problems.push(problemAtOffset(source, other.range[0], "a policy file holds one YAML document"));
    }
    new DocumentReader(this, file, source, document).read();
    // Report a file's problems top to bottom, whatever order the checks found them in.
    const found = this.problems.splice(first).sort((a, b) => a.line - b.line || a.column - b.column);
    for (const problem of found) this.problems.push(problem);
  }

  /** Validates one already-parsed document; `file` names it in problems (line 0). */
  parseObject(file: string, value: unknown): void {
    const document = new Document(value, { aliasDuplicateObjects: false });
    new DocumentReader(this, file, null, document).read();
  }

  /** Records a policy id; returns where it was first declared when it is a duplicate. */
  declare(id: string, where: string): string | undefined {
    const first = this.firstDeclared.get(id);
    if (first === undefined) this.firstDeclared.set(id, where);
    return first;
  }
}

/** Walks one document, reporting problems at nodes (or at field paths for objects). */
class DocumentReader {
  constructor(
    private readonly parser: PolicyParser,
    private readonly file: string,
    private readonly source: YamlSource | null,
    private readonly document: Document,
  ) {}

  read(): void {
    const root = this.mapping(this.document.contents, "", "a policy file");
    if (root === undefined) return;
    this.unknownFields(root, "", DOCUMENT_FIELDS);
    const version = this.required(root, "version", this.document.contents, "");
    if (version !== undefined) {
      const value = this.scalar(version);
      if (value !== "1.0") {
        const hint = typeof value === "number" ? ' (quote it: version: "1.0")' : "";
        this.report(version, "version", `must be "1.0"${hint}`);
      }
    }
    const policies = this.required(root, "policies", this.document.contents, "");
    if (policies === undefined) return;
    const items = this.sequence(policies, "policies", "a list of policies", true);
    items?.forEach((item, i) => this.policy(item, `policies[${i}]`));
  }

  private policy(node: unknown, path: string): void {
    const fields = this.mapping(node, path, "a policy");
    if (fields === undefined) return;
    const problemsBefore = this.parser.problems.length;
    this.unknownFields(fields, path, POLICY_FIELDS);

    const idNode = this.required(fields, "id", node, path);
    const id = idNode === undefined ? undefined : this.text(idNode, `${path}.id`);
    if (id !== undefined && idNode !== undefined) {
      const first = this.parser.declare(id, this.describeLocation(idNode, `${path}.id`));
      if (first !== undefined) this.report(idNode, `${path}.id`, `duplicate policy id ${JSON.stringify(id)} (first declared at ${first})`);
    }

    const descriptionNode = fields.get("description")?.value;
    const description = descriptionNode === undefined ? undefined : this.text(descriptionNode, `${path}.description`, true);

    const effectNode = this.required(fields, "effect", node, path);
    let effect: Effect | undefined;
    if (effectNode !== undefined) {
      const value = this.scalar(effectNode);
      if (value === "allow" || value === "deny") effect = value;
      else this.report(effectNode, `${path}.effect`, 'must be "allow" or "deny"');
    }

    const actorsNode = fields.get("actors")?.value;
    const actors = actorsNode === undefined ? null : this.patterns(actorsNode, `${path}.actors`, "omit it to match every actor");
    const actionsNode = this.required(fields, "actions", node, path);
    const actions = actionsNode === undefined ? undefined : this.patterns(actionsNode, `${path}.actions`);
    const resourcesNode = this.required(fields, "resources", node, path);
    const resources = resourcesNode === undefined ? undefined : this.patterns(resourcesNode, `${path}.resources`);

    const conditionsNode = fields.get("conditions")?.value;
    const conditions: CompiledCondition[] = [];
    if (conditionsNode !== undefined) {
      const items = this.sequence(conditionsNode, `${path}.conditions`, "a list of conditions", true);
      items?.forEach((item, i) => {
        const condition = this.condition(item, `${path}.conditions[${i}]`);
        if (condition !== undefined) conditions.push(condition);
      });
    }

    if (this.parser.problems.length !== problemsBefore) return;
    if (id === undefined || effect === undefined || actors === undefined || actions === undefined || resources === undefined) {
      return;
    }
    this.parser.policies.push({ id, description, effect, actors, actions, resources, conditions, source: this.position(node) });
  }

  private condition(node: unknown, path: string): CompiledCondition | undefined {
    const fields = this.mapping(node, path, "a condition");
    if (fields === undefined) return undefined;
    this.unknownFields(fields, path, CONDITION_FIELDS);
    const fieldNode = this.required(fields, "field", node, path);
    const operatorNode = this.required(fields, "operator", node, path);
    const value = fields.get("value");
    const valueFrom = fields.get("value_from");

    const field = fieldNode === undefined ? undefined : this.field(fieldNode, `${path}.field`);
    let operator: Operator | undefined;
    const operatorName = operatorNode === undefined ? undefined : this.text(operatorNode, `${path}.operator`);
    if (operatorName !== undefined) {
      operator = OPERATORS.get(operatorName);
      if (operator === undefined) {
        this.report(operatorNode, `${path}.operator`, `unknown operator ${JSON.stringify(operatorName)}${didYouMean(operatorName, [...OPERATORS.keys()])} (expected one of ${OPERATOR_NAMES})`);
      }
    }
    if (value !== undefined && valueFrom !== undefined) {
      this.report(valueFrom.key, `${path}.value_from`, "use either value or value_from, not both");
      return undefined;
    }
    if (operator === undefined) return undefined;

    if (operator.actorMetaOnly && field !== undefined && !(field.scope === "actor" && field.kind === "meta")) {
      this.report(fieldNode, `${path}.field`, `operator ${operator.name} compares numbers; only actor.meta.<name> fields hold numbers`);
    }
    let operand: CompiledOperand | undefined;
    let operandText = "";
    if (operator.operand === "none") {
      const given = value ?? valueFrom;
      if (given !== undefined) {
        this.report(given.key, `${path}.${value !== undefined ? "value" : "value_from"}`, `operator ${operator.name} takes no value`);
      }
      operand = { kind: "none" };
    } else if (valueFrom !== undefined) {
      if (!operator.valueFrom) {
        this.report(valueFrom.key, `${path}.value_from`, `operator ${operator.name} needs a literal value, not value_from`);
      } else {
        const other = this.field(valueFrom.value, `${path}.value_from`);
        if (other !== undefined && operator.actorMetaOnly && !(other.scope === "actor" && other.kind === "meta")) {
          this.report(valueFrom.value, `${path}.value_from`, `operator ${operator.name} compares numbers; only actor.meta.<name> fields hold numbers`);
        } else if (other !== undefined) {
          operand = { kind: "field", field: other };
          operandText = `value_from ${other.text}`;
        }
      }
    } else if (value === undefined) {
      this.report(node, path, `operator ${operator.name} needs a value${operator.valueFrom ? " or value_from" : ""}`);
    } else {
      operand = this.operand(operator, value.value, `${path}.value`);
      if (operand !== undefined) operandText = JSON.stringify(toJS(this.resolve(value.value)));
    }
    if (field === undefined || operand === undefined) return undefined;
    const text = `${field.text} ${operator.name}${operandText === "" ? "" : ` ${operandText}`}`;
    return { field, operator, operand, text };
  }

  /** Checks and compiles `value` for an operator. */
  private operand(operator: Operator, node: unknown, path: string): CompiledOperand | undefined {
    switch (operator.operand) {
      case "none":
        return { kind: "none" };
      case "scalar":
      case "string": {
        const value = this.scalar(node);
        const wanted = operator.operand === "string" ? "a string" : "a string, number or boolean";
        if (!isMetaValue(value) || (operator.operand === "string" && typeof value !== "string")) {
          this.report(node, path, `operator ${operator.name} needs ${wanted} value`);
          return undefined;
        }
        if (typeof value === "string") return this.templateOperand(value, node, path);
        if (typeof value === "number" && !Number.isFinite(value)) {
          this.report(node, path, "numbers must be finite");
          return undefined;
        }
        return { kind: "literal", value };
      }
      case "number": {
        const value = this.scalar(node);
        if (typeof value !== "number" || !Number.isFinite(value)) {
          this.report(node, path, `operator ${operator.name} needs a number value`);
          return undefined;
        }
        return { kind: "literal", value };
      }
      case "list": {
        const items = this.sequence(node, path, `a non-empty list of strings, numbers or booleans (operator ${operator.name})`);
        if (items === undefined) return undefined;
        const values: ListItem[] = [];
        let valid = true;
        items.forEach((item, i) => {
          const value = this.scalar(item);
          if (!isMetaValue(value) || (typeof value === "number" && !Number.isFinite(value))) {
            this.report(item, `${path}[${i}]`, "list items must be strings, finite numbers or booleans");
            valid = false;
            return;
          }
          if (typeof value !== "string") {
            values.push(value);
            return;
          }
          const template = parseTemplate(value);
          if (typeof template === "object" && "error" in template) {
            this.report(item, `${path}[${i}]`, template.error);
            valid = false;
          } else {
            values.push(template);
          }
        });
        return valid ? { kind: "list", items: values } : undefined;
      }
      case "regex": {
        const value = this.scalar(node);
        if (typeof value !== "string") {
          this.report(node, path, `operator ${operator.name} needs a regular expression string`);
          return undefined;
        }
        const regex = compilePolicyRegex(value, byteStringFromText(value));
        if (!isPolicyRegex(regex)) {
          this.reportInScalar(node, path, regex.index, `regular expression ${JSON.stringify(value)} refused: ${regex.reason}`);
          return undefined;
        }
        return { kind: "literal", value: regex };
      }
    }
  }

  private templateOperand(text: string, node: unknown, path: string): CompiledOperand | undefined {
    const parsed = parseTemplate(text);
    if (typeof parsed === "string") return { kind: "literal", value: parsed };
    if ("error" in parsed) {
      this.report(node, path, parsed.error);
      return undefined;
    }
    return { kind: "template", template: parsed };
  }

  private field(node: unknown, path: string): Field | undefined {
    const text = this.text(node, path);
    if (text === undefined) return undefined;
    const field = parseField(text);
    if (typeof field === "string") {
      this.report(node, path, field);
      return undefined;
    }
    return field;
  }

  /** A non-empty list of non-empty pattern strings, compiled. */
  private patterns(node: unknown, path: string, hint?: string): Pattern[] | undefined {
    const items = this.sequence(node, path, `a non-empty list of patterns${hint === undefined ? "" : ` (${hint})`}`);
    if (items === undefined) return undefined;
    const patterns: Pattern[] = [];
    items.forEach((item, i) => {
      const text = this.text(item, `${path}[${i}]`);
      if (text !== undefined) patterns.push(compilePattern(byteStringFromText(text)));
    });
    return patterns.length === items.length ? patterns : undefined;
  }

  // ---- node helpers -------------------------------------------------------------------

  private resolve(node: unknown): unknown {
    if (!isAlias(node)) return node;
    // From the shape walk's table: yaml's Alias.resolve walks the whole document per call.
    return this.source !== null ? resolveNode(this.source, node) : node.resolve(this.document);
  }

  /** The plain value of a scalar node; undefined for maps, lists and missing nodes. */
  private scalar(node: unknown): unknown {
    const resolved = this.resolve(node);
    return isScalar(resolved) ? resolved.value : undefined;
  }

  /** A non-empty string (or any string when `allowEmpty`), else a reported problem. */
  private text(node: unknown, path: string, allowEmpty = false): string | undefined {
    const value = this.scalar(node);
    if (typeof value === "string" && (allowEmpty || value !== "")) return value;
    this.report(node, path, allowEmpty ? "must be a string" : "must be a non-empty string");
    return undefined;
  }

  private mapping(node: unknown, path: string, what: string): Map<string, Entry> | undefined {
    const resolved = this.resolve(node);
    if (!isMap(resolved)) {
      this.report(node, path, `expected ${what} (a mapping)`);
      return undefined;
    }
    const entries = new Map<string, Entry>();
    for (const pair of (resolved as YAMLMap<unknown, unknown>).items as Pair<unknown, unknown>[]) {
      const key = this.scalar(pair.key);
      if (typeof key !== "string") {
        this.report(pair.key, path, "field names must be strings");
        continue;
      }
      entries.set(key, { key: pair.key, value: pair.value });
    }
    return entries;
  }

  /** Items of a list; reports when the node is not a list or (unless `allowEmpty`) is empty. */
  private sequence(node: unknown, path: string, what: string, allowEmpty = false): unknown[] | undefined {
    const resolved = this.resolve(node);
    if (!isSeq(resolved) || (!allowEmpty && resolved.items.length === 0)) {
      this.report(node, path, `expected ${what}`);
      return undefined;
    }
    return resolved.items;
  }

  private required(fields: Map<string, Entry>, name: string, parent: unknown, path: string): unknown {
    const entry = fields.get(name);
    if (entry === undefined || entry.value === null) {
      this.report(entry?.key ?? parent, path, `missing required field "${name}"`);
      return undefined;
    }
    return entry.value;
  }

  private unknownFields(fields: Map<string, Entry>, path: string, known: readonly string[]): void {
    for (const [name, entry] of fields) {
      if (!known.includes(name)) {
        const field = path === "" ? name : `${path}.${name}`;
        this.report(entry.key, field, `unknown field "${name}"${didYouMean(name, known)} (expected one of ${known.join(", ")})`);
      }
    }
  }

  /**
   * A problem at character `index` of a string scalar's value, when the value is written
   * verbatim in the source (plain or quoted without escapes); else at the scalar.
   */
  private reportInScalar(node: unknown, path: string, index: number | undefined, message: string): void {
    const text = path === "" ? message : `${path}: ${message}`;
    const value = this.scalar(node);
    if (index !== undefined && this.source !== null && isScalar(node) && node.range != null && typeof value === "string") {
      const [start, end] = node.range;
      const written = this.source.text.slice(start, end);
      const quote = written[0] === '"' || written[0] === "'" ? 1 : 0;
      if (written.slice(quote, written.length - quote) === value) {
        this.parser.problems.push(problemAtOffset(this.source, start + quote + index, text));
        return;
      }
    }
    this.report(node, path, message);
  }

  private report(node: unknown, path: string, message: string): void {
    const text = path === "" ? message : `${path}: ${message}`;
    this.parser.problems.push(
      this.source === null ? problemWithoutPosition(this.file, text) : problemAtNode(this.source, node as Node, text),
    );
  }

  private position(node: unknown): SourcePosition {
    if (this.source === null || !isNode(node) || node.range == null) return { file: this.file, line: 0, column: 0 };
    const { line, column } = this.source.lines.position(node.range[0]);
    return { file: this.file, line, column };
  }

  /** `file:line` for YAML input, `file path` for objects: how a duplicate names the first. */
  private describeLocation(node: unknown, path: string): string {
    if (this.source === null) return `${this.file} ${path}`;
    const { line } = this.position(node);
    return `${this.file}:${line}`;
  }
}

/** The plain JS value of a node, for condition text in explanations. */
function toJS(node: unknown): unknown {
  if (isScalar(node)) return node.value;
  if (isSeq(node)) return node.items.map(toJS);
  return null;
}


/** ` (did you mean "x"?)` for the known name within two edits of `name`, else "". */
function didYouMean(name: string, known: readonly string[]): string {
  const best = closestName(name, known, 2);
  return best === undefined ? "" : ` (did you mean "${best}"?)`;
}
