/**
 * Per-family tokenizer conventions: special tokens (names as in the official checkpoints), where
 * they sit in the id space, the pre-tokenizer regex, the chat template and bos/eos choices.
 *
 * Our vocabularies are small, so ids differ from the real ones (Llama 4's <|begin_of_text|> is
 * 200000 there, here it is the first id after the learned tokens), but the layout is the same:
 * Llama 4 and Qwen3 put special tokens after the regular vocabulary as `added_tokens`; Mixtral's
 * <unk>, <s>, </s> are ids 0, 1, 2 inside the model vocabulary.
 */
import type { Family } from "../model/types.js";
import { LLAMA4_CHAT_TEMPLATE, MIXTRAL_CHAT_TEMPLATE, QWEN3_CHAT_TEMPLATE } from "./templates.js";

/** The o200k-style split Llama 4 ships (letters with case runs, digits in 1-3, punctuation, spaces). */
export const LLAMA4_SPLIT_REGEX =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/** The Qwen2/Qwen3 split (single digits). */
export const QWEN_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * Mixtral's real tokenizer is SentencePiece; ours is byte-level BPE, so it borrows the Llama 3
 * split (the closest widely used GPT-style pattern) while keeping Mixtral's special tokens.
 */
export const LLAMA3_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export interface SpecialToken {
  content: string;
  /** true: control token (skipped by decode with skip_special_tokens); false: added but textual. */
  special: boolean;
}

export interface FamilyTokenizerSpec {
  family: Family;
  splitRegex: string;
  /** Tokens placed before the byte alphabet, inside model.vocab (Mixtral's <unk> <s> </s>). */
  leadingSpecials: SpecialToken[];
  /** Tokens placed after the learned vocabulary, as added tokens only. */
  trailingSpecials: SpecialToken[];
  bosToken: string | null;
  /** tokenizer_config.json eos_token. */
  eosToken: string;
  padToken: string | null;
  unkToken: string | null;
  /** Every token that ends generation (config.json / generation_config.json eos_token_id). */
  stopTokens: string[];
  addBosToken: boolean;
  chatTemplate: string;
  /** Extra generation_config.json keys (the official sampling defaults). */
  generationDefaults: Record<string, number | boolean>;
}

const special = (content: string): SpecialToken => ({ content, special: true });
const textual = (content: string): SpecialToken => ({ content, special: false });

export const TOKENIZER_SPECS: Record<Family, FamilyTokenizerSpec> = {
  llama4: {
    family: "llama4",
    splitRegex: LLAMA4_SPLIT_REGEX,
    leadingSpecials: [],
    // Same order as the official converter (ids 200000.. there).
    trailingSpecials: [
      "<|begin_of_text|>",
      "<|end_of_text|>",
      "<|fim_prefix|>",
      "<|fim_middle|>",
      "<|fim_suffix|>",
      "<|header_start|>",
      "<|header_end|>",
      "<|eom|>",
      "<|eot|>",
      "<|step|>",
      "<|python_start|>",
      "<|python_end|>",
      "<|finetune_right_pad|>",
      "<|image_start|>",
      "<|image_end|>",
      "<|image|>",
      "<|patch|>",
    ].map(special),
    bosToken: "<|begin_of_text|>",
    eosToken: "<|eot|>",
    padToken: "<|finetune_right_pad|>",
    unkToken: null,
    stopTokens: ["<|end_of_text|>", "<|eom|>", "<|eot|>"],
    addBosToken: true,
    chatTemplate: LLAMA4_CHAT_TEMPLATE,
    generationDefaults: { do_sample: true, temperature: 0.6, top_p: 0.9 },
  },
  mixtral: {
    family: "mixtral",
    splitRegex: LLAMA3_SPLIT_REGEX,
    leadingSpecials: ["<unk>", "<s>", "</s>"].map(special),
    trailingSpecials: [],
    bosToken: "<s>",
    eosToken: "</s>",
    padToken: null,
    unkToken: "<unk>",
    stopTokens: ["</s>"],
    addBosToken: true,
    chatTemplate: MIXTRAL_CHAT_TEMPLATE,
    generationDefaults: {},
  },
  qwen3moe: {
    family: "qwen3moe",
    splitRegex: QWEN_SPLIT_REGEX,
    leadingSpecials: [],
    trailingSpecials: [
      special("<|endoftext|>"),
      special("<|im_start|>"),
      special("<|im_end|>"),
      textual("<tool_call>"),
      textual("</tool_call>"),
      textual("<tool_response>"),
      textual("</tool_response>"),
      textual("<think>"),
      textual("</think>"),
    ],
    bosToken: null,
    eosToken: "<|im_end|>",
    padToken: "<|endoftext|>",
    unkToken: null,
    stopTokens: ["<|im_end|>", "<|endoftext|>"],
    addBosToken: false,
    chatTemplate: QWEN3_CHAT_TEMPLATE,
    generationDefaults: { do_sample: true, temperature: 0.6, top_k: 20, top_p: 0.95 },
  },
};
