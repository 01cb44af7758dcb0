#!/usr/bin/env node
import { endQuietlyOnBrokenPipe, main } from "../dist/cli/main.js";

endQuietlyOnBrokenPipe();
process.exitCode = await main(process.argv.slice(2));
