/**
 * JUnit XML, as CI servers read it: a <testsuite> per file, a <testcase> per test named
 * `describe > test` with the file as classname. Assertion failures are <failure>, other errors
 * (and a file that fails outside any test) <error>; printed text goes to <system-out>.
 */
import { summaryLine, type FileResult, type RunSummary, type TestResult } from "../results.js";
import { fileErrorTitle, type Reporter } from "./reporter.js";

/** Text for XML content and attributes; characters XML 1.0 cannot carry are dropped. */
function xml(text: string): string {
  return text
    // eslint-disable-next-line no-control-regex
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

function firstLine(text: string): string {
  const i = text.indexOf("\n");
  return i === -1 ? text : text.slice(0, i);
}

function failureText(f: { message: string; location?: { file: string; line: number } | undefined; traceback?: string | undefined }): string {
  let text = f.message;
  if (f.location) text += `\nat ${f.location.file}:${f.location.line}`;
  if (f.traceback) text += `\n${f.traceback}`;
  return text;
}

function testcase(t: TestResult): string {
  const open = `    <testcase name="${xml(t.path.join(" > "))}" classname="${xml(t.file)}" time="${seconds(t.durationMs)}"`;
  const body: string[] = [];
  if (t.status === "skipped") body.push(t.skipReason ? `      <skipped message="${xml(t.skipReason)}"/>` : "      <skipped/>");
  else if (t.status === "failed" && t.failure) {
    const f = t.failure;
    const tag = f.assertion ? "failure" : "error";
    const type = f.assertion ? "AssertionError" : "RuntimeError";
    const message = f.hook ? `${f.hook} hook failed: ${firstLine(f.message)}` : firstLine(f.message);
    body.push(`      <${tag} message="${xml(message)}" type="${type}">${xml(failureText(f))}</${tag}>`);
  }
  if (t.output !== "") body.push(`      <system-out>${xml(t.output)}</system-out>`);
  return body.length === 0 ? `${open}/>` : `${open}>\n${body.join("\n")}\n    </testcase>`;
}

function testsuite(file: FileResult): string {
  let failures = 0;
  let errors = 0;
  let skipped = 0;
  const cases = file.tests.map((t) => {
    if (t.status === "skipped") skipped++;
    else if (t.status === "failed") {
      if (t.failure?.assertion) failures++;
      else errors++;
    }
    return testcase(t);
  });
  if (file.error) {
    errors++;
    const e = file.error;
    const type = e.kind === "compile" ? "SyntaxError" : "RuntimeError";
    cases.push(
      `    <testcase name="(file)" classname="${xml(file.file)}" time="0.000">\n` +
        `      <error message="${xml(`${fileErrorTitle(e.kind)}: ${firstLine(e.message)}`)}" type="${type}">${xml(failureText(e))}</error>\n` +
        `    </testcase>`,
    );
  }
  const tests = file.tests.length + (file.error ? 1 : 0);
  const lines = [
    `  <testsuite name="${xml(file.file)}" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${seconds(file.durationMs)}">`,
    ...cases,
  ];
  if (file.output !== "") lines.push(`    <system-out>${xml(file.output)}</system-out>`);
  lines.push("  </testsuite>");
  return lines.join("\n");
}

/** The whole report as one XML document. */
export function junitXml(summary: RunSummary): string {
  const suites = summary.files.map(testsuite);
  let failures = 0;
  let errors = 0;
  for (const file of summary.files) {
    for (const t of file.tests) {
      if (t.status !== "failed") continue;
      if (t.failure?.assertion) failures++;
      else errors++;
    }
    if (file.error) errors++;
  }
  const tests = summary.passed + summary.failed + summary.skipped;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="luastore test" tests="${tests}" failures="${failures}" errors="${errors}" skipped="${summary.skipped}" time="${seconds(summary.durationMs)}">`,
    ...suites,
    "</testsuites>",
    `<!-- ${summaryLine(summary)} -->`,
    "",
  ].join("\n");
}

/** Writes the XML once the run ends. */
export function junitReporter(options: { write: (text: string) => void }): Reporter {
  return { onRunEnd: (summary) => options.write(junitXml(summary)) };
}
