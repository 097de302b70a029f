// Types `env` and `exports` from "cloudflare:workers" (used by the workers tests) from our own
// Env and main module, instead of a generated worker-configuration.d.ts.
import type { Env as WorkerEnv } from "./env.js";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
    interface GlobalProps {
      mainModule: typeof import("./index.js");
    }
  }
}
