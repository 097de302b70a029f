/**
 * Drive one generation for an HTTP request: stop it when the client leaves, stream it as SSE
 * (keep-alive comments while the engine is busy, an error event if the engine fails mid-stream,
 * `[DONE]` at the end) or collect it for a plain JSON answer.
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { SSE_DONE } from "../../src/sse.js";
import type { Engine, GenerationResult, SamplingParams, TokenEvent } from "../engine/types.js";
import type { ServerEnv } from "./context.js";
import { toApiError } from "./errors.js";

export const KEEPALIVE_MS = 10_000;

/** Generations in flight (reported by /health; lets operators and tests see aborts take effect). */
export class ActiveCounter {
  value = 0;
}

/** Close a generator that may have been left suspended (client gone mid-write), running its cleanup. */
async function closeGen(gen: AsyncGenerator<TokenEvent, GenerationResult> | null): Promise<void> {
  await gen?.return(undefined as unknown as GenerationResult).catch(() => {});
}

/** Abort controller tied to the client connection. */
function clientAbort(c: Context<ServerEnv>): AbortController {
  const ac = new AbortController();
  const sig = c.req.raw.signal;
  if (sig.aborted) ac.abort();
  else sig.addEventListener("abort", () => ac.abort(), { once: true });
  return ac;
}

export async function collect(
  c: Context<ServerEnv>,
  engine: Engine,
  promptIds: number[],
  params: SamplingParams,
  active: ActiveCounter,
): Promise<{ events: TokenEvent[]; text: string; result: GenerationResult }> {
  const ac = clientAbort(c);
  const gen = engine.generate(promptIds, params, ac.signal);
  const events: TokenEvent[] = [];
  let text = "";
  active.value++;
  try {
    for (;;) {
      const r = await gen.next();
      if (r.done) return { events, text, result: r.value };
      events.push(r.value);
      text += r.value.text;
    }
  } finally {
    active.value--;
    await closeGen(gen);
  }
}

export interface StreamHandlers {
  /** Objects to send before the first token (e.g. the role chunk). */
  start(): unknown[];
  /** Object for one token, or null to send nothing (e.g. empty held-back text). */
  token(ev: TokenEvent): unknown | null;
  /** Objects after the last token: the finish chunk, then the usage chunk if asked for. */
  finish(result: GenerationResult): unknown[];
}

export function streamGeneration(
  c: Context<ServerEnv>,
  engine: Engine,
  promptIds: number[],
  params: SamplingParams,
  h: StreamHandlers,
  active: ActiveCounter,
): Response {
  return streamSSE(c, async (stream) => {
    const ac = clientAbort(c);
    stream.onAbort(() => ac.abort());
    const send = (obj: unknown) => stream.writeSSE({ data: JSON.stringify(obj) });
    // Comment lines keep proxies from timing out during a long prefill; clients skip them.
    const keepAlive = setInterval(() => void stream.write(": keep-alive\n\n").catch(() => {}), KEEPALIVE_MS);
    let gen: AsyncGenerator<TokenEvent, GenerationResult> | null = null;
    active.value++;
    try {
      for (const obj of h.start()) await send(obj);
      gen = engine.generate(promptIds, params, ac.signal);
      for (;;) {
        const r = await gen.next();
        if (r.done) {
          if (ac.signal.aborted) return; // nobody is listening
          for (const obj of h.finish(r.value)) await send(obj);
          await stream.writeSSE({ data: SSE_DONE });
          return;
        }
        const obj = h.token(r.value);
        if (obj !== null) await send(obj);
      }
    } catch (err) {
      if (ac.signal.aborted) return;
      const api = toApiError(err);
      if (api.status >= 500) console.error("generation failed mid-stream:", err);
      // An error after the stream began is a final event, then the stream closes (no [DONE]).
      await stream.writeSSE({ data: JSON.stringify(api.toBody()) }).catch(() => {});
    } finally {
      clearInterval(keepAlive);
      active.value--;
      await closeGen(gen);
    }
  });
}
