import type { Context } from "hono";

/** Set headers on the final response, copying it first when its headers are immutable (a fetch() response). */
export function setResponseHeaders(c: Context, headers: Record<string, string>): void {
  const entries = Object.entries(headers);
  if (entries.length === 0) return;
  try {
    for (const [k, v] of entries) c.res.headers.set(k, v);
  } catch {
    const copy = new Response(c.res.body, c.res);
    for (const [k, v] of entries) copy.headers.set(k, v);
    c.res = copy;
  }
}
