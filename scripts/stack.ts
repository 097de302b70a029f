/**
 * The whole product on one machine: the inference backend (Node) and the edge worker under
 * `wrangler dev`, wired together (signed calls, shared secret) and kept offline. Used by
 * `npm start` (scripts/start.ts) and by the end-to-end tests.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, type Proc, startProc, waitHealthy } from "./procs.js";

export const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const BIN = join(ROOT, "node_modules", ".bin");

export interface StackOptions {
  modelDir: string;
  /** Id the backend reports (default: the folder name). */
  modelId?: string;
  /** Where wrangler keeps KV/DO/D1 state and its config (persist across runs). */
  stateDir: string;
  host?: string;
  backendPort?: number;
  edgePort?: number;
  adminToken: string;
  backendSecret: string;
  threads?: number;
  expertBudget?: string;
  /**
   * Declare the served model's license family for the edge's policy (MODEL_CATALOG). Generated
   * models are random weights, not Meta's/Mistral's/Qwen's, so their terms are "unspecified".
   */
  licenseFamily?: string;
  /** Extra worker vars. */
  vars?: Record<string, string>;
  echo?: boolean;
  readyTimeoutMs?: number;
}

export interface Stack {
  edgeUrl: string;
  backendUrl: string;
  modelId: string;
  contextLength: number;
  backend: Proc;
  edge: Proc;
  stop(): Promise<void>;
}

/** Environment for wrangler/workerd that keeps them off the network and inside the state folder. */
export function offlineEnv(stateDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_HIDE_BANNER: "true",
    XDG_CONFIG_HOME: join(stateDir, "config"),
    NO_COLOR: "1",
  };
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const host = o.host ?? "127.0.0.1";
  const backendPort = o.backendPort || (await freePort());
  const edgePort = o.edgePort || (await freePort());
  const inspectorPort = await freePort();
  const timeout = o.readyTimeoutMs ?? 120_000;
  mkdirSync(o.stateDir, { recursive: true });

  const backendArgs = [
    "gpu-backend/server/main.ts",
    "--model",
    o.modelDir,
    "--host",
    host,
    "--port",
    String(backendPort),
  ];
  if (o.modelId) backendArgs.push("--model-id", o.modelId);
  if (o.threads) backendArgs.push("--threads", String(o.threads));
  if (o.expertBudget) backendArgs.push("--expert-budget", o.expertBudget);
  // The secret goes through the environment, not argv (argv is visible to every local user).
  const backend = startProc("backend", join(BIN, "tsx"), backendArgs, {
    cwd: ROOT,
    env: { ...process.env, MOE_BACKEND_SECRET: o.backendSecret },
    echo: o.echo,
  });
  const procs: Proc[] = [backend];
  const stopAll = async () => {
    await Promise.all(procs.map((p) => p.stop()));
  };
  try {
    const backendUrl = `http://${host}:${backendPort}`;
    const health = (await waitHealthy(`${backendUrl}/health`, backend, timeout)) as {
      model: string;
      context_length: number;
    };

    // Secrets go to wrangler in an env file inside the state folder (never in wrangler.toml).
    const envFile = join(o.stateDir, "worker.env");
    writeFileSync(envFile, `ADMIN_TOKEN=${o.adminToken}\nBACKEND_SECRET=${o.backendSecret}\n`, {
      mode: 0o600,
    });
    const vars: Record<string, string> = { BACKEND_URL: backendUrl, MODELS: health.model, ...o.vars };
    if (o.licenseFamily) {
      vars.MODEL_CATALOG = JSON.stringify([
        { id: health.model, family: o.licenseFamily, multimodal: false, ownedBy: "moe-edge" },
      ]);
    }
    const edgeArgs = [
      "dev",
      "--config",
      join(ROOT, "wrangler.toml"),
      "--ip",
      host,
      "--port",
      String(edgePort),
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      join(o.stateDir, "wrangler"),
      "--env-file",
      envFile,
      "--show-interactive-dev-session=false",
      "--log-level",
      "warn",
    ];
    for (const [k, v] of Object.entries(vars)) edgeArgs.push("--var", `${k}:${v}`);
    const edge = startProc("edge", join(BIN, "wrangler"), edgeArgs, {
      cwd: ROOT,
      env: offlineEnv(o.stateDir),
      echo: o.echo,
    });
    procs.push(edge);
    const edgeUrl = `http://${host}:${edgePort}`;
    await waitHealthy(`${edgeUrl}/health`, edge, timeout);
    return {
      edgeUrl,
      backendUrl,
      modelId: health.model,
      contextLength: health.context_length,
      backend,
      edge,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Create a tenant and its first API key through the edge's admin API. */
export async function createTenant(
  edgeUrl: string,
  adminToken: string,
  name: string,
  id?: string,
): Promise<{ tenantId: string; apiKey: string }> {
  const res = await fetch(`${edgeUrl}/admin/tenants`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify(id ? { name, id } : { name }),
  });
  if (res.status !== 201)
    throw new Error(`creating tenant '${name}' failed: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as { tenant: { id: string }; api_key: string };
  return { tenantId: body.tenant.id, apiKey: body.api_key };
}
