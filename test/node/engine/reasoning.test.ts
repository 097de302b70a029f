/** The reasoning split of thinking templates' replies (`<think>...</think>` -> reasoning_content). */
import { describe, expect, it } from "vitest";
import { ReasoningSplitter, templateThinks } from "../../../gpu-backend/engine/reasoning.js";
import { TOKENIZER_SPECS } from "../../../gpu-backend/tokenizer/families.js";

/** Feed `reply` in pieces of `step` characters. */
function split(reply: string, step: number) {
  const s = new ReasoningSplitter();
  let reasoning = "";
  let content = "";
  for (let i = 0; i < reply.length; i += step) {
    const out = s.take(reply.slice(i, i + step), i + step >= reply.length);
    reasoning += out.reasoning;
    content += out.content;
  }
  return { reasoning, content };
}

describe("reasoning split", () => {
  it("a reply opening with <think> reasons until </think>; the blank lines after it are dropped", () => {
    const reply = "<think>\nThe user wants the weather. </thi are not tags\n</think>\n\nIt is sunny.";
    for (const step of [1, 2, 3, 7, reply.length])
      expect(split(reply, step)).toEqual({
        reasoning: "\nThe user wants the weather. </thi are not tags\n",
        content: "It is sunny.",
      });
  });

  it("a reply without it is all content, held back only while it might still open the tag", () => {
    for (const reply of ["It is sunny.", "<th", "  <b>bold</b>", "", "\n\n<think"])
      for (const step of [1, 4]) expect(split(reply, step)).toEqual({ reasoning: "", content: reply });
    // Unclosed at the end: all reasoning.
    expect(split("<think>still thinking", 3)).toEqual({ reasoning: "still thinking", content: "" });
  });

  it("applies to thinking templates only (Qwen3's, not Llama 4's or Mixtral's)", () => {
    expect(templateThinks(TOKENIZER_SPECS.qwen3moe.chatTemplate)).toBe(true);
    expect(templateThinks(TOKENIZER_SPECS.llama4.chatTemplate)).toBe(false);
    expect(templateThinks(TOKENIZER_SPECS.mixtral.chatTemplate)).toBe(false);
  });
});
