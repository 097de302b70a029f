import { createParser } from "eventsource-parser";

/** Parse a whole SSE body into its data payloads (comments dropped). */
export function sseEvents(text: string): string[] {
  const out: string[] = [];
  const parser = createParser({ onEvent: (e) => out.push(e.data) });
  parser.feed(text);
  return out;
}

export function jsonEvents(text: string): Record<string, unknown>[] {
  return sseEvents(text)
    .filter((d) => d !== "[DONE]")
    .map((d) => JSON.parse(d) as Record<string, unknown>);
}
