#!/usr/bin/env node
// Runs llama.cpp (node-llama-cpp's prebuilt CPU binaries) on a GGUF from token ids: no tokenizer
// on this side, so the comparison with our engine cannot be spoiled by a tokenizer mismatch.
// Prints one JSON object on stdout; everything else (llama.cpp logs) goes to stderr.
//
//   node run-gguf.mjs --model FILE --prompt-ids 1,2,3 [--prompt-ids 4,5] --max-tokens 64
//        [--threads 2] [--repeats 1] [--logits none|first|all|prompt] [--context N] [--kv-type F16|F32]
//
// Output: {model, threads, results: [{prompt_ids, ids, first_logits?, step_logits?, prompt_logits?, timings}]}
// timings: {load_ms, prefill_ms, prefill_tps, decode_ms, decode_tps} (best of --repeats).
// Greedy = temperature 0 (llama.cpp's greedy sampler: argmax); EOS is ignored (yieldEogToken).
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    "prompt-ids": { type: "string", multiple: true, default: [] },
    "max-tokens": { type: "string", default: "64" },
    threads: { type: "string", default: String(cpus().length) },
    repeats: { type: "string", default: "1" },
    logits: { type: "string", default: "none" },
    context: { type: "string" },
    "kv-type": { type: "string", default: "F16" },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help || !values.model || values["prompt-ids"].length === 0) {
  process.stderr.write(
    "usage: node run-gguf.mjs --model FILE --prompt-ids 1,2,3 [--prompt-ids ...] --max-tokens N [--threads N] [--repeats N] [--logits none|first|all|prompt]\n",
  );
  process.exit(values.help ? 0 : 2);
}

const threads = Number(values.threads);
const maxTokens = Number(values["max-tokens"]);
const repeats = Math.max(1, Number(values.repeats));
const logitsMode = values.logits;
const prompts = values["prompt-ids"].map((s) => s.split(",").map((x) => Number(x.trim())));
const longest = Math.max(...prompts.map((p) => p.length));

const t0 = performance.now();
// maxThreads = threads: node-llama-cpp's default thread count oversubscribes small machines.
const llama = await getLlama({
  gpu: false,
  build: "never",
  maxThreads: threads,
  logLevel: LlamaLogLevel.error,
  logger: (level, message) => process.stderr.write(`[llama.cpp ${level}] ${message}`),
});
const model = await llama.loadModel({ modelPath: values.model, gpuLayers: 0 });
const context = await model.createContext({
  contextSize: Number(values.context ?? Math.max(256, longest + maxTokens + 8)),
  sequences: 1,
  threads: { ideal: threads, min: threads },
  batchSize: Math.max(512, longest),
  flashAttention: false,
  // llama.cpp caches K/V in f16 by default; parity runs ask for F32 so the cache adds no rounding.
  experimentalKvCacheKeyType: values["kv-type"],
  experimentalKvCacheValueType: values["kv-type"],
});
const loadMs = performance.now() - t0;
const sequence = context.getSequence();

function logitsArray(map) {
  if (!map) throw new Error("llama.cpp returned no logits");
  const arr = new Array(model.tokens.sizeOfVocabulary ?? map.size).fill(Number.NaN);
  for (const [tok, v] of map) arr[tok] = v;
  return arr;
}

/** Full-vocabulary logits of the next token after evaluating `tokens` (order: token id). */
async function logitsAfter(tokens) {
  const input = tokens.map((t, i) => (i === tokens.length - 1 ? [t, { generateNext: { logits: true } }] : t));
  const out = await sequence.controlledEvaluate(input);
  return logitsArray(out[tokens.length - 1]?.next.logits);
}

/** Logits after every prompt position, from one batched evaluation of the prompt. */
async function logitsAtEveryPosition(tokens) {
  const out = await sequence.controlledEvaluate(tokens.map((t) => [t, { generateNext: { logits: true } }]));
  return tokens.map((_, i) => logitsArray(out[i]?.next.logits));
}

/** Greedy generation timed the way a user would see it: prompt -> first token, then decode. */
async function generate(promptIds) {
  await sequence.clearHistory();
  const ids = [];
  const tStart = performance.now();
  let tFirst = tStart;
  for await (const token of sequence.evaluate(promptIds, { temperature: 0, yieldEogToken: true })) {
    if (ids.length === 0) tFirst = performance.now();
    ids.push(token);
    if (ids.length >= maxTokens) break;
  }
  const tEnd = performance.now();
  const prefillMs = tFirst - tStart;
  const decodeMs = tEnd - tFirst;
  return {
    ids,
    timings: {
      prefill_ms: prefillMs,
      prefill_tps: (promptIds.length / prefillMs) * 1000,
      decode_ms: decodeMs,
      decode_tps: ids.length > 1 ? ((ids.length - 1) / decodeMs) * 1000 : 0,
    },
  };
}

const results = [];
for (const promptIds of prompts) {
  let best = null;
  let ids = null;
  for (let r = 0; r < repeats; r++) {
    const g = await generate(promptIds);
    if (ids && g.ids.join() !== ids.join()) throw new Error("llama.cpp greedy generation is not repeatable");
    ids = g.ids;
    best = best
      ? {
          prefill_ms: Math.min(best.prefill_ms, g.timings.prefill_ms),
          prefill_tps: Math.max(best.prefill_tps, g.timings.prefill_tps),
          decode_ms: Math.min(best.decode_ms, g.timings.decode_ms),
          decode_tps: Math.max(best.decode_tps, g.timings.decode_tps),
        }
      : g.timings;
  }
  const result = { prompt_ids: promptIds, ids, timings: { load_ms: loadMs, ...best } };
  if (logitsMode === "prompt") {
    await sequence.clearHistory();
    result.prompt_logits = await logitsAtEveryPosition(promptIds);
  }
  if (logitsMode === "first" || logitsMode === "all") {
    await sequence.clearHistory();
    result.first_logits = await logitsAfter(promptIds);
  }
  if (logitsMode === "all") {
    // Logits at every generated position, teacher-forced on llama.cpp's own ids, so a divergence
    // can be traced to the step where the two engines' logits part.
    result.step_logits = [];
    for (let i = 0; i + 1 < ids.length; i++) result.step_logits.push(await logitsAfter([ids[i]]));
  }
  results.push(result);
}

process.stdout.write(`${JSON.stringify({ model: values.model, threads, results })}\n`);
await context.dispose();
await model.dispose();
await llama.dispose();
