/**
 * Server-Timing for the gateway stages (`Server-Timing: cache;dur=0.4, quota;dur=0.9, ...`), so an
 * operator can see where the edge spends a request. In workerd clocks advance only across I/O, so
 * these durations are the waits on KV and the Durable Object, which is what varies.
 */
import type { Context } from "hono";
import type { AppEnv } from "../env.js";

export function mark(c: Context<AppEnv>, name: string, start: number): void {
  const list = c.get("timings") ?? [];
  list.push(`${name};dur=${(performance.now() - start).toFixed(2)}`);
  c.set("timings", list);
}

export function timingHeader(c: Context<AppEnv>): Record<string, string> {
  const list = c.get("timings");
  return list && list.length > 0 ? { "server-timing": list.join(", ") } : {};
}
