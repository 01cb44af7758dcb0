/** Reports are safe for a terminal (names cannot carry escape sequences), and say why unreached tests were skipped. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { safeBlock, safeLine } from "../../src/harness/reporters/terminal-text.js";

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const dir = mkdtempSync(join(tmpdir(), "luastore-safe-"));
// ESC [2J clears the screen, ESC ]0; sets the window title, \r rewrites the line, \x9b is a C1 CSI.
const HOSTILE = `local test = require("test")
test.describe("suite\\27[2J", function()
  test.it("name\\27]0;pwned\\7 with\\rcarriage\\194\\155", function() print("out\\27[31mred") test.eq(1, "\\27[1m") end)
end)
test.it("spins", function() while true do end end)
test.it("after", function() end)
`;

describe("terminal text", () => {
  it("escapes control characters; blocks keep newlines and tabs", () => {
    expect(safeLine("a\x1b[2Jb\nc\td\x7f\x9b")).toBe("a\\x1b[2Jb\\x0ac\\x09d\\x7f\\x9b");
    expect(safeBlock("a\x1b[2J\nb\tc\r")).toBe("a\\x1b[2J\nb\tc\\x0d");
    expect(safeLine("plain ✓ text")).toBe("plain ✓ text");
  });
});

describe("luastore test reports", () => {
  const file = join(dir, "hostile_test.lua");
  writeFileSync(file, HOSTILE);
  const args = [file, "--max-instructions", "200000"];

  it("pretty: no control character from the test file reaches the terminal, and unreached tests say why", async () => {
    const r = await cli("test", ...args);
    expect(r.code).toBe(1);
    // NO_COLOR-free output without colours (not a TTY): any ESC, BEL, CR or C1 came from the file.
    expect(r.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(r.stdout).toContain("suite\\x1b[2J");
    expect(r.stdout).toContain("name\\x1b]0;pwned\\x07 with\\x0dcarriage\\x9b");
    expect(r.stdout).toContain("out\\x1b[31mred");
    expect(r.stdout).toContain("- after (skipped: not run: the file's run was stopped by InstructionLimit)");
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("0 passed, 2 failed, 1 skipped");
  });

  it("tap and junit carry the reason too, and tap names are escaped", async () => {
    const tap = await cli("test", ...args, "--reporter", "tap");
    expect(tap.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(tap.stdout).toMatch(/^ok 3 - .* > after # SKIP not run: the file's run was stopped by InstructionLimit$/m);
    const junit = await cli("test", ...args, "--reporter", "junit");
    expect(junit.stdout).toContain(`<skipped message="not run: the file's run was stopped by InstructionLimit"/>`);
    const json = JSON.parse((await cli("test", ...args, "--json")).stdout) as { files: { tests: { status: string; skipReason?: string }[] }[] };
    expect(json.files[0]!.tests.at(-1)).toMatchObject({ status: "skipped", skipReason: "not run: the file's run was stopped by InstructionLimit" });
  });
});
