/**
 * `npm run bench -- edge`: what the edge gateway adds to time-to-first-byte.
 *
 * Paths, each measured sequentially (low load) and with 16 concurrent streams:
 *   direct       the origin called directly
 *   passthrough  a bare pass-through worker (bench/passthrough) under `wrangler dev`
 *   gateway      our edge under `wrangler dev`: auth, validation, policy, prompt-cache lookup (MISS:
 *                each prompt is unique; the fill runs after the response), quota reservation in the
 *                tenant's Durable Object (settled at the end), routing, signing, frames -> SSE
 *   cache_hit    our edge answering a repeated deterministic request from the prompt cache
 *   gateway_sampled  our edge with a sampled request (BYPASS: no cache read or fill), for comparison
 * The origin is a small Node server that sends a fixed answer at once (no model; OpenAI SSE to the
 * pass-through worker, the internal frame protocol to our edge), so
 * the numbers are the edge's own cost, not inference time. First byte = first body chunk of the
 * streamed answer, timed from just before fetch().
 *
 * Summary: added_p50_ms_over_passthrough (gateway p50 - passthrough p50, sequential),
 * added_p50_ms_over_passthrough_c16, cache_hit_first_byte_vs_passthrough (p50 ratio, sequential).
 */

import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, type Proc, startProc, waitHealthy } from "../scripts/procs.js";
import { createTenant, offlineEnv, ROOT } from "../scripts/stack.js";
import { encodeFrame } from "../src/protocol/codec.js";
import {
  FRAMES_CONTENT_TYPE,
  type Frame,
  INTERNAL_GENERATE_PATH,
  PROTOCOL_VERSION,
} from "../src/protocol/types.js";

const SEQ = Number(process.env.EDGE_BENCH_SEQ ?? 300);
const CONC = 16;
const CONC_TOTAL = Number(process.env.EDGE_BENCH_CONC_TOTAL ?? 480);
const WARMUP = 30;
const MODEL = "bench-model";
const ADMIN = "bench-admin-token";
const WORDS = ["Experts ", "are ", "sparse ", "layers."];

function sseBody(): string {
  const base = { id: "chatcmpl-b", object: "chat.completion.chunk", created: 1, model: MODEL };
  const ev: unknown[] = [
    {
      ...base,
      choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }],
    },
  ];
  for (const w of WORDS) {
    ev.push({ ...base, choices: [{ index: 0, delta: { content: w }, logprobs: null, finish_reason: null }] });
  }
  ev.push({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }] });
  ev.push({ ...base, choices: [], usage: { prompt_tokens: 12, completion_tokens: 4, total_tokens: 16 } });
  return `${ev.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("")}data: [DONE]\n\n`;
}

/** The same answer in the internal frame protocol, as our edge asks the backend for it. */
function framesBody(): Buffer {
  const frames: Frame[] = [
    { t: "start", v: PROTOCOL_VERSION, model: MODEL, prompt_tokens: 12 },
    ...WORDS.map((text, i): Frame => ({ t: "token", id: i + 1, text })),
    { t: "end", finish_reason: "stop", usage: { prompt_tokens: 12, completion_tokens: 4, cached_tokens: 0 } },
  ];
  return Buffer.concat(frames.map(encodeFrame));
}

function startOrigin(port: number): Promise<Server> {
  const body = sseBody();
  const frames = framesBody();
  const srv = createServer((req, res) => {
    if (req.url === "/health") {
      res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
      return;
    }
    req.resume();
    req.on("end", () => {
      // Our edge speaks the frame protocol; the pass-through worker forwards OpenAI SSE.
      const internal = req.url === INTERNAL_GENERATE_PATH;
      res.writeHead(200, {
        "content-type": internal ? FRAMES_CONTENT_TYPE : "text/event-stream",
        "cache-control": "no-cache",
      });
      res.flushHeaders();
      res.end(internal ? frames : body);
    });
  });
  srv.keepAliveTimeout = 60_000;
  return new Promise((resolve) => srv.listen(port, "127.0.0.1", () => resolve(srv)));
}

function wrangler(
  name: string,
  config: string,
  port: number,
  inspectorPort: number,
  stateDir: string,
  vars: Record<string, string>,
  envFile?: string,
): Proc {
  const args = ["dev", "--config", config, "--ip", "127.0.0.1", "--port", String(port)];
  args.push("--inspector-port", String(inspectorPort), "--persist-to", join(stateDir, name));
  args.push("--show-interactive-dev-session=false", "--log-level", "warn");
  if (envFile) args.push("--env-file", envFile);
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  return startProc(name, join(ROOT, "node_modules", ".bin", "wrangler"), args, {
    cwd: ROOT,
    env: offlineEnv(stateDir),
    echo: false,
  });
}

interface Sample {
  timing: Record<string, number>;
  firstByteMs: number;
  totalMs: number;
  cache: string | null;
}

async function once(url: string, body: unknown, headers: Record<string, string>): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  if (res.status !== 200 || !res.body) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  const reader = res.body.getReader();
  await reader.read();
  const firstByteMs = performance.now() - t0;
  while (!(await reader.read()).done) {}
  const timing: Record<string, number> = {};
  for (const m of (res.headers.get("server-timing") ?? "").matchAll(/(\w+);dur=([\d.]+)/g))
    timing[m[1]] = Number(m[2]);
  return { firstByteMs, totalMs: performance.now() - t0, cache: res.headers.get("x-prompt-cache"), timing };
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

let unique = 0;
type Make = () => unknown;
const fresh: Make = () => ({
  model: MODEL,
  messages: [{ role: "user", content: `Explain sparse experts, take ${unique++}.` }],
  max_tokens: 16,
  temperature: 0,
  stream: true,
});
const sampled: Make = () => ({
  model: MODEL,
  messages: [{ role: "user", content: `Explain sparse experts, take ${unique++}.` }],
  max_tokens: 16,
  temperature: 0.7,
  stream: true,
});
const repeated: Make = () => ({
  model: MODEL,
  messages: [{ role: "user", content: "Explain sparse experts." }],
  max_tokens: 16,
  temperature: 0,
  stream: true,
});

/** Run `n` requests with `conc` in flight; returns the samples and the wall time. */
async function collect(url: string, make: Make, headers: Record<string, string>, n: number, conc: number) {
  const samples: Sample[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < n) {
        next++;
        samples.push(await once(url, make(), headers));
      }
    }),
  );
  return { samples, wallMs: performance.now() - t0 };
}

function summarize(samples: Sample[], wallMs: number) {
  const fb = samples.map((s) => s.firstByteMs);
  return {
    p50: pct(fb, 50),
    p90: pct(fb, 90),
    p99: pct(fb, 99),
    total_p50: pct(
      samples.map((s) => s.totalMs),
      50,
    ),
    rps: samples.length / (wallMs / 1000),
    cache: [...new Set(samples.map((s) => s.cache ?? "-"))].join("/"),
    // p50 of each gateway stage's Server-Timing (the waits on KV, the Durable Object, the origin).
    stages: [...new Set(samples.flatMap((s) => Object.keys(s.timing)))]
      .map(
        (k) =>
          `${k}=${pct(
            samples.map((s) => s.timing[k] ?? 0),
            50,
          ).toFixed(2)}`,
      )
      .join(" "),
  };
}

/** Paths alternate in rounds, so slow drifts of a shared machine's load hit every path alike. */
const ROUNDS = Number(process.env.EDGE_BENCH_ROUNDS ?? 6);

export async function run() {
  const work = mkdtempSync(join(tmpdir(), "moe-edge-bench-"));
  // Every port from the OS (an inspector at port + 1 could be the next server's port).
  const [originPort, ptPort, gwPort, ptInspector, gwInspector] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const origin = await startOrigin(originPort);
  const originUrl = `http://127.0.0.1:${originPort}`;
  const envFile = join(work, "worker.env");
  writeFileSync(envFile, `ADMIN_TOKEN=${ADMIN}\nBACKEND_SECRET=bench-secret\n`, { mode: 0o600 });
  const pt = wrangler(
    "passthrough",
    join(ROOT, "bench/passthrough/wrangler.toml"),
    ptPort,
    ptInspector,
    work,
    {
      ORIGIN_URL: originUrl,
    },
  );
  const gw = wrangler(
    "gateway",
    join(ROOT, "wrangler.toml"),
    gwPort,
    gwInspector,
    work,
    {
      BACKEND_URL: originUrl,
      MODELS: MODEL,
      MODEL_CATALOG: JSON.stringify([
        { id: MODEL, family: "unspecified", multimodal: false, ownedBy: "bench" },
      ]),
    },
    envFile,
  );
  try {
    await waitHealthy(`http://127.0.0.1:${ptPort}/health`, pt, 60_000);
    await waitHealthy(`http://127.0.0.1:${gwPort}/health`, gw, 60_000);
    const gwUrl = `http://127.0.0.1:${gwPort}`;
    const { tenantId, apiKey } = await createTenant(gwUrl, ADMIN, "bench");
    // Limits high enough never to refuse, so the quota path runs in full on every request.
    const patch = await fetch(`${gwUrl}/admin/tenants/${tenantId}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({
        quota: {
          requests_per_minute: 1e9,
          tokens_per_minute: 1e12,
          tokens_per_month: 1e15,
          max_concurrent_streams: 1000,
        },
      }),
    });
    if (patch.status !== 200) throw new Error(`patch tenant: ${patch.status}`);
    const auth = { authorization: `Bearer ${apiKey}` };
    const paths: Array<[string, string, Make, Record<string, string>]> = [
      ["direct", `${originUrl}/v1/chat/completions`, fresh, {}],
      ["passthrough", `http://127.0.0.1:${ptPort}/v1/chat/completions`, fresh, {}],
      ["gateway", `${gwUrl}/v1/chat/completions`, fresh, auth],
      ["cache_hit", `${gwUrl}/v1/chat/completions`, repeated, auth],
      // Sampled (not cacheable): the same stages without the prompt-cache KV read and fill.
      ["gateway_sampled", `${gwUrl}/v1/chat/completions`, sampled, auth],
    ];
    const rows: Record<string, unknown>[] = [];
    const get = (path: string, load: string) =>
      rows.find((r) => r.path === path && r.load === load) as { p50: number };
    for (const [, url, make, headers] of paths) {
      for (let i = 0; i < WARMUP; i++) await once(url, make(), headers);
    }
    for (const [load, n, conc] of [
      ["sequential", SEQ, 1],
      ["c16", CONC_TOTAL, CONC],
    ] as const) {
      const acc = new Map<string, { samples: Sample[]; wallMs: number }>();
      for (let round = 0; round < ROUNDS; round++) {
        for (const [path, url, make, headers] of paths) {
          const got = await collect(url, make, headers, Math.ceil(n / ROUNDS), conc);
          const a = acc.get(path) ?? { samples: [], wallMs: 0 };
          a.samples.push(...got.samples);
          a.wallMs += got.wallMs;
          acc.set(path, a);
        }
      }
      for (const [path] of paths) {
        const a = acc.get(path)!;
        const m = summarize(a.samples, a.wallMs);
        rows.push({
          path,
          load,
          n: a.samples.length,
          p50: +m.p50.toFixed(3),
          p90: +m.p90.toFixed(3),
          p99: +m.p99.toFixed(3),
          total_p50: +m.total_p50.toFixed(3),
          rps: +m.rps.toFixed(1),
          cache: m.cache,
          stages_p50_ms: m.stages,
        });
      }
    }
    const summary = {
      added_p50_ms_over_passthrough: +(
        get("gateway", "sequential").p50 - get("passthrough", "sequential").p50
      ).toFixed(3),
      added_p50_ms_over_passthrough_c16: +(get("gateway", "c16").p50 - get("passthrough", "c16").p50).toFixed(
        3,
      ),
      cache_hit_first_byte_vs_passthrough: +(
        get("cache_hit", "sequential").p50 / get("passthrough", "sequential").p50
      ).toFixed(3),
      cache_hit_first_byte_vs_passthrough_c16: +(
        get("cache_hit", "c16").p50 / get("passthrough", "c16").p50
      ).toFixed(3),
      passthrough_added_p50_ms_over_direct: +(
        get("passthrough", "sequential").p50 - get("direct", "sequential").p50
      ).toFixed(3),
    };
    return { name: "edge", rows, summary };
  } finally {
    await Promise.all([pt.stop(), gw.stop()]);
    origin.close();
    rmSync(work, { recursive: true, force: true });
  }
}
