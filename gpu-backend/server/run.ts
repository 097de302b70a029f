/**
 * Drive one generation for an HTTP request. Everything that can refuse the request (tenant cap,
 * the engine's validation and admission, which throw synchronously) happens in `begin`, before a
 * response exists, so refusals are plain JSON errors with the right status. Then the tokens are
 * streamed (SSE here, msgpack frames in internal.ts) or collected for a JSON answer. The client
 * leaving aborts the generation; stream writes wait for the socket to drain (backpressure), so a
 * client that stops reading holds at most its own max_tokens of events in memory.
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { SSE_DONE } from "../../src/sse.js";
import type { Engine, GenerationResult, SamplingParams, TokenEvent } from "../engine/types.js";
import type { ServerEnv } from "./context.js";
import { toApiError } from "./errors.js";
import type { Endpoint, RequestObserver, ServerMetrics } from "./metrics.js";
import type { TenantInflight } from "./tenant-limits.js";

export const KEEPALIVE_MS = 10_000;

/** Generations in flight (reported by /health; lets operators and tests see aborts take effect). */
export class ActiveCounter {
  value = 0;
}

/** What the handlers share for one server. */
export interface RunContext {
  engine: Engine;
  metrics: ServerMetrics;
  tenants: TenantInflight;
  active: ActiveCounter;
  keepAliveMs: number;
  /** Split thinking templates' `<think>` part into reasoning_content (ServerOptions.reasoningParser). */
  reasoningParser?: boolean;
}

/** Who the request is for and under which cap (from the signed request). */
export interface RequestScope {
  endpoint: Endpoint;
  tenant: string;
  maxInflight: number | null;
}

type Gen = AsyncGenerator<TokenEvent, GenerationResult>;

/** Close a generator that may have been left suspended (client gone mid-write), running its cleanup. */
async function closeGen(gen: Gen): Promise<void> {
  await gen.return(undefined as unknown as GenerationResult).catch(() => {});
}

/** An admitted generation: its events, its abort switch and its bookkeeping (released once). */
export interface Generation {
  gen: Gen;
  abort: AbortController;
  observer: RequestObserver;
  /** Release the tenant slot and the active count, record the outcome. Idempotent. */
  done(outcome: "ok" | "aborted" | "error", status: number, result?: GenerationResult): Promise<void>;
}

/**
 * Admit a generation or throw (429 tenant cap, 4xx invalid input, 503 engine at capacity).
 * Must be called before the response starts.
 */
export function begin(
  c: Context<ServerEnv>,
  ctx: RunContext,
  scope: RequestScope,
  promptIds: number[],
  params: SamplingParams,
): Generation {
  const release = ctx.tenants.acquire(scope.tenant, scope.maxInflight);
  const ac = new AbortController();
  const sig = c.req.raw.signal;
  if (sig.aborted) ac.abort();
  else sig.addEventListener("abort", () => ac.abort(), { once: true });
  let gen: Gen;
  try {
    gen = ctx.engine.generate(promptIds, params, ac.signal, { tenant: scope.tenant });
  } catch (err) {
    release();
    throw err;
  }
  ctx.active.value++;
  const observer = ctx.metrics.request(scope.endpoint);
  let finished = false;
  return {
    gen,
    abort: ac,
    observer,
    async done(outcome, status, result) {
      if (finished) return;
      finished = true;
      ctx.active.value--;
      release();
      observer.end(outcome, status, result);
      await closeGen(gen);
    },
  };
}

/**
 * Admit the n choices of one request (n > 1: each its own sequence, seeded seed + i when the
 * request set a seed; only the first scores the prompt). All or none: a refusal of one ends the
 * ones already admitted.
 */
export function beginChoices(
  c: Context<ServerEnv>,
  ctx: RunContext,
  scope: RequestScope,
  promptIds: number[],
  params: SamplingParams,
  n: number,
): Generation[] {
  const gens: Generation[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const p: SamplingParams = i === 0 ? params : { ...params, promptLogprobs: undefined };
      if (i > 0 && params.seed !== undefined) p.seed = params.seed + i;
      gens.push(begin(c, ctx, scope, promptIds, p));
    }
  } catch (err) {
    for (const g of gens) {
      g.abort.abort();
      void g.done("aborted", 499);
    }
    throw err;
  }
  return gens;
}

/** Every choice collected; one failing ends the others and rethrows. */
export async function collectChoices(gens: Generation[]): Promise<Awaited<ReturnType<typeof collect>>[]> {
  try {
    return await Promise.all(gens.map(collect));
  } catch (err) {
    for (const g of gens) g.abort.abort();
    throw err;
  }
}

export async function collect(
  g: Generation,
): Promise<{ events: TokenEvent[]; text: string; result: GenerationResult }> {
  const events: TokenEvent[] = [];
  let text = "";
  try {
    for (;;) {
      const r = await g.gen.next();
      if (r.done) {
        await g.done(g.abort.signal.aborted ? "aborted" : "ok", 200, r.value);
        return { events, text, result: r.value };
      }
      g.observer.token();
      events.push(r.value);
      text += r.value.text;
    }
  } catch (err) {
    await g.done(g.abort.signal.aborted ? "aborted" : "error", toApiError(err).status);
    throw err;
  } finally {
    await g.done("aborted", 499);
  }
}

/**
 * Writes that wait for the consumer (hono's stream writer resolves once the chunk is taken),
 * plus keep-alives that are skipped while a write is still pending, so a stalled client never
 * makes them pile up.
 */
export class PacedWriter {
  private pending = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly write: (chunk: string | Uint8Array) => Promise<unknown>) {}

  async send(chunk: string | Uint8Array): Promise<void> {
    this.pending++;
    try {
      await this.write(chunk);
    } finally {
      this.pending--;
    }
  }

  keepAlive(everyMs: number, chunk: () => string | Uint8Array): void {
    this.timer = setInterval(() => {
      if (this.pending === 0) void this.send(chunk()).catch(() => {});
    }, everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * Runs the choices of one request in turn, one event each (they decode in the same batch steps
 * anyway), so the order of what is sent depends only on the generations. Returns the results,
 * or null when the client left.
 */
export async function driveChoices(
  gens: Generation[],
  onToken: (i: number, ev: TokenEvent) => Promise<void>,
  onFinish: (i: number, result: GenerationResult) => Promise<void>,
): Promise<GenerationResult[] | null> {
  const results: GenerationResult[] = [];
  const active = gens.map((_, i) => i);
  while (active.length > 0) {
    for (const i of [...active]) {
      const g = gens[i];
      const r = await g.gen.next();
      if (r.done) {
        if (gens.some((x) => x.abort.signal.aborted)) return null;
        results[i] = r.value;
        active.splice(active.indexOf(i), 1);
        await onFinish(i, r.value);
        await g.done("ok", 200, r.value);
        continue;
      }
      g.observer.token();
      await onToken(i, r.value);
    }
  }
  return results;
}

export interface StreamHandlers {
  /** Objects to send before the first token (e.g. the role chunk of each choice). */
  start(): unknown[];
  /** Object for one token of choice i, or null to send nothing (e.g. empty held-back text). */
  token(i: number, ev: TokenEvent): unknown | null;
  /** Objects when choice i is done (its finish chunk). */
  finish(i: number, result: GenerationResult): unknown[];
  /** Objects after every choice is done (the usage chunk, if asked for). */
  end(results: GenerationResult[]): unknown[];
}

/** Streams the choices of one request as SSE (driveChoices). */
export function streamChoices(
  c: Context<ServerEnv>,
  gens: Generation[],
  h: StreamHandlers,
  keepAliveMs: number,
): Response {
  return streamSSE(c, async (stream) => {
    const abortAll = () => {
      for (const g of gens) g.abort.abort();
    };
    stream.onAbort(abortAll);
    const aborted = () => gens.some((g) => g.abort.signal.aborted);
    const out = new PacedWriter((s) => stream.write(s));
    const send = (obj: unknown) => out.send(`data: ${JSON.stringify(obj)}\n\n`);
    // Comment lines keep proxies from timing out during a long prefill; clients skip them.
    out.keepAlive(keepAliveMs, () => ": keep-alive\n\n");
    try {
      for (const obj of h.start()) await send(obj);
      const results = await driveChoices(
        gens,
        async (i, ev) => {
          const obj = h.token(i, ev);
          if (obj !== null) await send(obj);
        },
        async (i, result) => {
          for (const obj of h.finish(i, result)) await send(obj);
        },
      );
      if (!results) return; // nobody is listening
      for (const obj of h.end(results)) await send(obj);
      await out.send(`data: ${SSE_DONE}\n\n`);
    } catch (err) {
      if (aborted()) return;
      abortAll();
      const api = toApiError(err);
      if (api.status >= 500) console.error("generation failed mid-stream:", err);
      for (const g of gens) await g.done("error", api.status);
      // An error after the stream began is a final event, then the stream closes (no [DONE]).
      await out.send(`data: ${JSON.stringify(api.toBody())}\n\n`).catch(() => {});
    } finally {
      out.stop();
      for (const g of gens) await g.done("aborted", 499);
    }
  });
}
