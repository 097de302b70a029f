/**
 * `npm start`: the whole product locally. Generates the default model on first start, starts the
 * backend and the edge (wrangler dev, offline), creates a demo tenant + API key on first start and
 * prints ready-to-paste snippets. Ctrl-C stops everything.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { isFamily, isPresetName } from "../gpu-backend/model/presets.js";
import { ensureGeneratedModel } from "./model-cache.js";
import { createTenant, ROOT, type Stack, startStack } from "./stack.js";

const HELP = `npm start [-- options]

Starts the inference backend and the edge worker (wrangler dev) on this machine.
  --model DIR|FILE     serve this checkpoint (Hugging Face folder or .gguf) instead of the generated default
  --model-id NAME      model id to serve it under (default: the folder name)
  --family F           family of the generated default model: llama4 | mixtral | qwen3moe (default llama4)
  --preset P           preset of the generated default model (default "default")
  --port N             edge port (default 8787; env MOE_EDGE_PORT)
  --backend-port N     backend port (default 8788; env MOE_BACKEND_PORT)
  --host HOST          listen address of both (default 127.0.0.1)
  --state DIR          local state: KV/Durable Objects, secrets, demo key (default .state; env MOE_STATE_DIR)
  --cache DIR          generated models (default .cache/models; env MOE_CACHE_DIR)
  --threads N          backend compute threads (default: all cores)
  --expert-budget B    routed-expert memory budget: bytes (e.g. 512MiB) or N% of all experts`;

interface Secrets {
  adminToken: string;
  backendSecret: string;
  demo?: { tenantId: string; apiKey: string };
}

const abs = (p: string) => (isAbsolute(p) ? p : resolve(ROOT, p));

function loadSecrets(stateDir: string): Secrets {
  const file = join(stateDir, "secrets.json");
  if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8")) as Secrets;
  const s: Secrets = {
    adminToken: `adm_${randomBytes(24).toString("hex")}`,
    backendSecret: randomBytes(32).toString("hex"),
  };
  saveSecrets(stateDir, s);
  return s;
}

function saveSecrets(stateDir: string, s: Secrets): void {
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(join(stateDir, "secrets.json"), `${JSON.stringify(s, null, 2)}\n`, { mode: 0o600 });
}

/** The demo key from an earlier start, if the edge still accepts it; otherwise a new tenant + key. */
async function ensureDemo(
  stack: Stack,
  stateDir: string,
  s: Secrets,
): Promise<{ apiKey: string; created: boolean }> {
  if (s.demo) {
    const res = await fetch(`${stack.edgeUrl}/v1/models`, {
      headers: { authorization: `Bearer ${s.demo.apiKey}` },
    });
    await res.body?.cancel();
    if (res.status === 200) return { apiKey: s.demo.apiKey, created: false };
  }
  const demo = await createTenant(stack.edgeUrl, s.adminToken, "Demo tenant");
  s.demo = demo;
  saveSecrets(stateDir, s);
  return { apiKey: demo.apiKey, created: true };
}

function banner(
  stack: Stack,
  apiKey: string,
  created: boolean,
  adminToken: string,
  stateDir: string,
): string {
  const base = `${stack.edgeUrl}/v1`;
  return `
──────────────────────────────────────────────────────────────────────────────
 moe-edge is running
   edge (OpenAI-compatible):  ${base}
   backend (signed calls only): ${stack.backendUrl}
   model:                     ${stack.modelId}
   ${created ? "new demo API key:" : "demo API key:    "}          ${apiKey}
   admin token:               ${adminToken}   (secrets in ${join(stateDir, "secrets.json")})

 curl:
   curl -N ${base}/chat/completions \\
     -H "Authorization: Bearer ${apiKey}" -H "Content-Type: application/json" \\
     -d '{"model":"${stack.modelId}","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32,"stream":true}'

 openai (node):
   import OpenAI from "openai";
   const client = new OpenAI({ baseURL: "${base}", apiKey: "${apiKey}" });
   const stream = await client.chat.completions.create({
     model: "${stack.modelId}", messages: [{ role: "user", content: "Hello!" }], max_tokens: 32, stream: true,
   });
   for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? "");

 The default model has random weights: its text is meaningless, the plumbing is real.
 Ctrl-C stops everything.
──────────────────────────────────────────────────────────────────────────────`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      "model-id": { type: "string" },
      family: { type: "string", default: "llama4" },
      preset: { type: "string", default: "default" },
      port: { type: "string", default: process.env.MOE_EDGE_PORT ?? "8787" },
      "backend-port": { type: "string", default: process.env.MOE_BACKEND_PORT ?? "8788" },
      host: { type: "string", default: "127.0.0.1" },
      state: { type: "string", default: process.env.MOE_STATE_DIR ?? ".state" },
      cache: { type: "string", default: process.env.MOE_CACHE_DIR ?? ".cache/models" },
      threads: { type: "string" },
      "expert-budget": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const family = values.family;
  const preset = values.preset;
  if (!isFamily(family)) throw new Error(`--family must be llama4, mixtral or qwen3moe, got '${family}'`);
  if (!isPresetName(preset)) throw new Error(`unknown --preset '${preset}'`);
  const stateDir = abs(values.state);

  let modelDir: string;
  if (values.model) {
    modelDir = abs(values.model);
    if (!existsSync(modelDir)) throw new Error(`--model ${modelDir} does not exist`);
  } else {
    const m = ensureGeneratedModel(abs(values.cache), family, preset, { progress: true });
    if (!m.generated) console.log(`using the generated model in ${m.dir}`);
    modelDir = m.dir;
  }

  const secrets = loadSecrets(stateDir);
  console.log("starting the backend and the edge...");
  const stack = await startStack({
    modelDir,
    modelId: values["model-id"],
    stateDir,
    host: values.host,
    backendPort: Number(values["backend-port"]),
    edgePort: Number(values.port),
    adminToken: secrets.adminToken,
    backendSecret: secrets.backendSecret,
    threads: values.threads ? Number(values.threads) : undefined,
    expertBudget: values["expert-budget"],
    // Generated weights carry no vendor license; a real checkpoint keeps the policy its name implies.
    licenseFamily: values.model ? undefined : "unspecified",
  });

  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping...");
    await stack.stop();
    process.exit(code);
  };
  process.on("SIGINT", () => void shutdown(0));
  process.on("SIGTERM", () => void shutdown(0));
  for (const p of [stack.backend, stack.edge]) {
    void p.exited.then((code) => {
      if (stopping) return;
      console.error(`${p.name} exited unexpectedly (${code}); stopping the rest`);
      void shutdown(1);
    });
  }

  const demo = await ensureDemo(stack, stateDir, secrets);
  console.log(banner(stack, demo.apiKey, demo.created, secrets.adminToken, stateDir));
}

main().catch((err: unknown) => {
  console.error(`npm start failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
