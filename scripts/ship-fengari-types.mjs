#!/usr/bin/env node
/**
 * After `tsc -p tsconfig.build.json`: fengari ships no types, and luastore's own (src/lua/fengari.d.ts)
 * is an ambient declaration that tsc does not emit. A consumer compiling with skipLibCheck: false
 * would then fail on every dist .d.ts that imports "fengari" (TS7016). This copies the declaration
 * to dist/lua/fengari.d.ts and points each such .d.ts at it with a reference directive.
 */
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const declaration = join(dist, "lua", "fengari.d.ts");
copyFileSync(join(root, "src", "lua", "fengari.d.ts"), declaration);

const IMPORTS_FENGARI = /from "fengari";$/m;
let pointed = 0;
for (const entry of readdirSync(dist, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !entry.name.endsWith(".d.ts")) continue;
  const file = join(entry.parentPath, entry.name);
  if (file === declaration) continue;
  const text = readFileSync(file, "utf8");
  if (!IMPORTS_FENGARI.test(text)) continue;
  let path = relative(dirname(file), declaration).split(sep).join("/");
  if (!path.startsWith(".")) path = `./${path}`;
  const directive = `/// <reference path="${path}" />\n`;
  if (!text.startsWith(directive)) writeFileSync(file, directive + text);
  pointed++;
}
if (pointed === 0) throw new Error("ship-fengari-types: no dist .d.ts imports fengari; is this script still needed?");
