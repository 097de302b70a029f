import { defineConfig } from "vitest/config";

// Opt-in: llama.cpp parity is slow (makes and exports models, installs node-llama-cpp on first
// use), so it is not part of `npm test`. Run: npx vitest run --config test/parity/vitest.config.ts
export default defineConfig({
  test: {
    name: "parity",
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/parity/**/*.test.ts"],
    environment: "node",
    testTimeout: 600_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
});
