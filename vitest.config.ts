import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/setup/global.ts"],
    // Hang guards, not speed bounds: a busy 2-core machine runs some cases for many seconds.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Memory tests collect garbage before they read RSS (test/hostile/memory.test.ts).
    execArgv: ["--expose-gc"],
  },
});
