/**
 * Reasoning split (thinking models such as Qwen3): a reply that opens with `<think>` reasons until
 * `</think>`; that part is `reasoning_content` (as DeepSeek's API and vLLM's reasoning parsers
 * answer) and the rest is the content, which is what tool calls are parsed from. A reply that does
 * not open with `<think>` is all content. Text that might be the start of a tag is held back.
 */
import { partialTagAt } from "./held-text.js";

const OPEN = "<think>";
const CLOSE = "</think>";

export interface ReasoningOutput {
  reasoning: string;
  content: string;
}

export class ReasoningSplitter {
  private phase: "start" | "reasoning" | "content" = "start";
  private buf = "";
  /** After `</think>`: the blank lines that follow it are not content. */
  private afterClose = false;

  /** The next text delta; `last`: nothing follows, so what was held back is emitted. */
  take(text: string, last: boolean): ReasoningOutput {
    const out: ReasoningOutput = { reasoning: "", content: "" };
    this.buf += text;
    if (this.phase === "start") {
      const lead = this.buf.length - this.buf.trimStart().length;
      const rest = this.buf.slice(lead);
      if (rest.startsWith(OPEN)) {
        this.phase = "reasoning";
        this.buf = rest.slice(OPEN.length);
      } else if (!last && OPEN.startsWith(rest)) {
        return out; // (maybe the start of the tag)
      } else this.phase = "content";
    }
    if (this.phase === "reasoning") {
      const at = this.buf.indexOf(CLOSE);
      if (at < 0) {
        const hold = last ? 0 : partialTagAt(this.buf, CLOSE);
        out.reasoning = this.buf.slice(0, this.buf.length - hold);
        this.buf = this.buf.slice(this.buf.length - hold);
        return out;
      }
      out.reasoning = this.buf.slice(0, at);
      this.buf = this.buf.slice(at + CLOSE.length);
      this.phase = "content";
      this.afterClose = true;
    }
    if (this.afterClose) {
      const trimmed = this.buf.replace(/^\s+/, "");
      if (trimmed === "" && !last) return out;
      this.buf = trimmed;
      this.afterClose = false;
    }
    out.content = this.buf;
    this.buf = "";
    return out;
  }
}

/** The chat template renders thinking (so replies may open with `<think>`). */
export function templateThinks(template: string | null | undefined): boolean {
  return !!template?.includes(OPEN);
}
