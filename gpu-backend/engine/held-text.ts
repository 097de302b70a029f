/**
 * Text held back while it might still become a tag (the tool-call and reasoning parsers stream
 * text and must not emit the first characters of `<tool_call>` or `</think>` as content).
 */

/** Length of the longest suffix of `s` that is a proper prefix of `tag`. */
export function partialTagAt(s: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, s.length); n > 0; n--) if (s.endsWith(tag.slice(0, n))) return n;
  return 0;
}
