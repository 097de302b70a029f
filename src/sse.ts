/** Server-sent events framing, shared by the backend (writer) and the edge (rewriter). */

export const SSE_HEADERS: Record<string, string> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  connection: "keep-alive",
  // Stops proxies (nginx and friends) from buffering the stream.
  "x-accel-buffering": "no",
};

export const SSE_DONE = "[DONE]";

/** One `data:` event. JSON never contains raw newlines, so one data line is enough. */
export function sseData(data: string): string {
  return `data: ${data}\n\n`;
}

export function sseComment(text: string): string {
  return `: ${text}\n\n`;
}
