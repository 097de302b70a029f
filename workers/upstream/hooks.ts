/**
 * Completion hooks (quota settlement, cache fill, breaker tracking) as both forward stages run
 * them: once per request, in the background (waitUntil), a failing hook logged, never thrown.
 */
import type { Context } from "hono";
import type { CompletionOutcome } from "../chat/outcome.js";
import type { AppEnv } from "../env.js";

function keepAlive(c: Context<AppEnv>, p: Promise<unknown>): void {
  try {
    c.executionCtx.waitUntil(p);
  } catch {
    // No execution context (app.request() in unit tests): the promise still runs.
  }
}

export function runHooks(c: Context<AppEnv>, outcome: CompletionOutcome): Promise<void> {
  const hooks = c.get("completionHooks") ?? [];
  if (hooks.length === 0) return Promise.resolve();
  const done = Promise.allSettled(hooks.map(async (h) => h(outcome))).then((results) => {
    for (const r of results) if (r.status === "rejected") console.error("completion hook failed:", r.reason);
  });
  keepAlive(c, done);
  return done;
}

/** The outcome of a request that failed before any answer (unreachable: upstreamStatus 0). */
export function failedOutcome(stream: boolean, upstreamStatus: number): CompletionOutcome {
  return { status: "error", stream, usage: null, finishReason: null, text: "", upstreamStatus };
}

/**
 * For streams: registers background work now, while the request is alive, and returns the function
 * that runs the hooks when the stream ends. If the client disconnects, the runtime may tear the
 * response down without cancelling its stream, but work registered before keeps running, so the
 * abort (request.signal) still reaches the hooks and settles usage.
 */
export function hooksAtStreamEnd(c: Context<AppEnv>): (outcome: CompletionOutcome) => void {
  let release!: () => void;
  keepAlive(
    c,
    new Promise<void>((resolve) => {
      release = resolve;
    }),
  );
  return (outcome) => void runHooks(c, outcome).finally(release);
}
