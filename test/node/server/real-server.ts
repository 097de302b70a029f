/**
 * A real backend for serving tests: the tiny generated llama4 model behind the HTTP server on a
 * random port. One checkpoint per test file (made in a temp folder, removed by cleanup()).
 */
import { mkdtempSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ServerType, serve } from "@hono/node-server";
import type { MoeEngine } from "../../../gpu-backend/engine/engine.js";
import { type LoadEngineOptions, loadEngine } from "../../../gpu-backend/engine/load-engine.js";
import { createServerApp, type ServerOptions } from "../../../gpu-backend/server/app.js";
import { makeModel } from "../../../gpu-backend/tools/make-model.js";

export function makeTinyModel(): { dir: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), "moe-serving-"));
  const dir = join(root, "tiny");
  makeModel({ family: "llama4", preset: "tiny", out: dir, seed: 5 });
  return { dir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export interface RealServer {
  engine: MoeEngine;
  url: string;
  close(): Promise<void>;
}

export async function startServer(
  modelDir: string,
  load: LoadEngineOptions = {},
  server: ServerOptions = { allowUnsigned: true },
): Promise<RealServer> {
  const engine = await loadEngine(modelDir, { threads: 1, device: "cpu", modelId: "tiny", ...load });
  const app = createServerApp(engine, server);
  let srv: ServerType | null = null;
  const port = await new Promise<number>((resolve) => {
    srv = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info: AddressInfo) =>
      resolve(info.port),
    );
  });
  return {
    engine,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        const s = srv as unknown as { close(cb: () => void): void; closeAllConnections?: () => void };
        s.closeAllConnections?.();
        s.close(() => resolve());
        engine.close();
      }),
  };
}

/** Poll until `cond` holds (or fail after `ms`). */
export async function until(cond: () => boolean, ms = 3000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The scheduler and KV are back to idle: nothing running, nothing queued, no KV held. */
export function idle(engine: MoeEngine): boolean {
  const s = engine.scheduler.stats();
  return s.running === 0 && s.queued === 0 && s.kvBytes === 0;
}

/** Read a whole response body as text. */
export async function readAll(res: Response): Promise<string> {
  return await res.text();
}

/** One metric sample from Prometheus text (first line whose name and labels match). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number | null {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return null;
}
