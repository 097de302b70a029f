/**
 * Workers tests run inside workerd through @cloudflare/vitest-pool-workers, against the real
 * wrangler.toml (bindings, compatibility date) with test secrets. Offline: no metrics, no cf fetch.
 */
import { fileURLToPath } from "node:url";
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineProject } from "vitest/config";

process.env.WRANGLER_SEND_METRICS = "false";
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
process.env.WRANGLER_HIDE_BANNER = "true";

const root = fileURLToPath(new URL("../..", import.meta.url));
// Wrangler writes under $XDG_CONFIG_HOME/.wrangler: keep that inside the (ignored) project folder.
process.env.XDG_CONFIG_HOME ??= `${root}.wrangler/xdg`;

export const TEST_BINDINGS = {
  ADMIN_TOKEN: "test-admin-token",
  BACKEND_SECRET: "test-backend-secret",
  BACKEND_URL: "http://backend.test",
  MODELS: "test-model,other-model",
};

export default defineProject({
  plugins: [
    cloudflareTest({
      main: `${root}workers/index.ts`,
      wrangler: { configPath: `${root}wrangler.toml` },
      miniflare: { bindings: TEST_BINDINGS },
    }),
  ],
  test: {
    name: "workers",
    include: ["**/*.test.ts"],
  },
});
