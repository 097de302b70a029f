import { parseArgs } from "node:util";
import type { DeviceKind } from "../device/select.js";
import { loadEngine } from "../engine/load-engine.js";
import type { SamplingParams } from "../engine/types.js";

const HELP = `npm run generate -- --model DIR|FILE (--prompt TEXT | --prompt-ids 1,2,3) --max-tokens N [options]

Offline generation with the backend's engine.
  --model DIR|FILE        checkpoint folder (Hugging Face layout) or .gguf file
  --prompt TEXT           prompt text (tokenized with the model's tokenizer, BOS added)
  --chat                  wrap --prompt as one user message through the chat template
  --prompt-ids 1,2,3      prompt as token ids
  --max-tokens N          tokens to generate (default 32)
  --temperature T         0 = greedy (default 0)
  --top-p P --top-k K --seed N --presence-penalty X --frequency-penalty X
  --stop S                stop string (repeatable)
  --ignore-eos            keep generating past end-of-sequence tokens
  --expert-budget B       routed-expert memory budget: bytes (e.g. 512MiB) or N% of all experts
  --policy lru|lfu        expert eviction policy (lazy mode, default lfu)
  --no-prefetch           lazy mode: do not prefetch guessed experts
  --threads N             compute threads (default: all cores)
  --device auto|cpu|cuda  compute device (default auto: CUDA when a GPU is present)
  --json                  print {ids, text, finish_reason, usage, paging, timings} as JSON`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      prompt: { type: "string" },
      chat: { type: "boolean", default: false },
      "prompt-ids": { type: "string" },
      "max-tokens": { type: "string", default: "32" },
      temperature: { type: "string", default: "0" },
      "top-p": { type: "string", default: "1" },
      "top-k": { type: "string", default: "0" },
      seed: { type: "string" },
      "presence-penalty": { type: "string", default: "0" },
      "frequency-penalty": { type: "string", default: "0" },
      stop: { type: "string", multiple: true, default: [] },
      "ignore-eos": { type: "boolean", default: false },
      "expert-budget": { type: "string" },
      policy: { type: "string" },
      "no-prefetch": { type: "boolean", default: false },
      threads: { type: "string" },
      device: { type: "string", default: "auto" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || !values.model || (values.prompt === undefined && !values["prompt-ids"])) {
    console.log(HELP);
    process.exit(values.help ? 0 : 2);
  }
  const t0 = performance.now();
  const engine = await loadEngine(values.model, {
    threads: values.threads ? Number(values.threads) : undefined,
    expertBudget: values["expert-budget"],
    policy: values.policy,
    prefetch: !values["no-prefetch"],
    device: values.device as DeviceKind,
  });
  const tLoad = performance.now() - t0;
  const tok = engine.tokenizer;
  const promptIds = values["prompt-ids"]
    ? values["prompt-ids"].split(",").map((s) => Number(s.trim()))
    : values.chat
      ? tok.applyChatTemplate([{ role: "user", content: values.prompt ?? "" }])
      : tok.encode(values.prompt ?? "", true);
  const params: SamplingParams = {
    maxTokens: Number(values["max-tokens"]),
    temperature: Number(values.temperature),
    topP: Number(values["top-p"]),
    topK: Number(values["top-k"]),
    seed: values.seed !== undefined ? Number(values.seed) : undefined,
    presencePenalty: Number(values["presence-penalty"]),
    frequencyPenalty: Number(values["frequency-penalty"]),
    stop: values.stop ?? [],
    logprobs: null,
    ignoreEos: values["ignore-eos"],
  };
  const ids: number[] = [];
  let text = "";
  let tFirst = 0;
  const tGen = performance.now();
  const gen = engine.generate(promptIds, params);
  let r = await gen.next();
  while (!r.done) {
    if (ids.length === 0) tFirst = performance.now() - tGen;
    ids.push(r.value.tokenId);
    text += r.value.text;
    if (!values.json) process.stdout.write(r.value.text);
    r = await gen.next();
  }
  const total = performance.now() - tGen;
  const result = r.value;
  const decodeTps = ids.length > 1 ? (ids.length - 1) / ((total - tFirst) / 1000) : 0;
  if (values.json) {
    console.log(
      JSON.stringify({
        prompt_ids: promptIds,
        ids,
        text,
        finish_reason: result.finishReason,
        usage: { prompt_tokens: result.promptTokens, completion_tokens: result.completionTokens },
        paging: result.paging,
        timings: {
          load_ms: tLoad,
          first_token_ms: tFirst,
          total_ms: total,
          prefill_tps: promptIds.length / (tFirst / 1000),
          decode_tps: decodeTps,
        },
      }),
    );
  } else {
    console.error(
      `\n[${ids.length} tokens, ${result.finishReason}; load ${tLoad.toFixed(0)} ms, first token ${tFirst.toFixed(0)} ms, decode ${decodeTps.toFixed(1)} tok/s]`,
    );
  }
  engine.close();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
