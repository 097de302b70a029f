/**
 * Hugging Face tokenizer files -> llama.cpp tokenizer metadata (the `tokenizer.ggml.*` keys that
 * convert_hf_to_gguf's _set_vocab_gpt2 + SpecialVocab write). Only byte-level BPE ("gpt2") is
 * supported. `tokenizer.ggml.pre` is chosen by matching the tokenizer.json split regex against the
 * regexes llama.cpp implements for each pre-tokenizer name (llama-vocab.cpp).
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FormatError } from "./errors.js";
import { type GgufValue, gv } from "./gguf.js";

/** tokenizer.json regex -> llama.cpp pre-tokenizer name. */
export const KNOWN_PRE: [string, string][] = [
  // GPT-2 (also what a ByteLevel pre-tokenizer with use_regex applies)
  ["'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", "gpt-2"],
  // Llama 3
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "llama-bpe",
  ],
  // Qwen2 / Qwen3
  [
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "qwen2",
  ],
  // Llama 4 / GPT-4o
  [
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    "llama4",
  ],
];

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Find the regex of the (first) Split pre-tokenizer, or GPT-2's when ByteLevel applies its own. */
export function preTokenizerRegex(tok: Json): string | null {
  const walk = (p: unknown): string | null => {
    if (!isObj(p)) return null;
    if (p.type === "Sequence" && Array.isArray(p.pretokenizers)) {
      for (const q of p.pretokenizers) {
        const r = walk(q);
        if (r !== null) return r;
      }
      return null;
    }
    if (p.type === "Split" && isObj(p.pattern)) {
      if (typeof p.pattern.Regex === "string") return p.pattern.Regex;
      if (typeof p.pattern.String === "string") return p.pattern.String;
    }
    if (p.type === "ByteLevel" && p.use_regex !== false) return KNOWN_PRE[0][0];
    return null;
  };
  return walk(tok.pre_tokenizer);
}

export function detectPreTokenizer(tok: Json, source: string): string {
  const re = preTokenizerRegex(tok);
  if (re === null)
    throw new FormatError(source, "no pre-tokenizer regex found (need a Split or ByteLevel pre-tokenizer)");
  for (const [known, name] of KNOWN_PRE) if (known === re) return name;
  throw new FormatError(
    source,
    `pre-tokenizer regex ${JSON.stringify(re)} matches none that llama.cpp implements (gpt-2, llama-bpe, qwen2, llama4); pass tokenizerPre to override`,
  );
}

export interface TokenizerMetaOptions {
  vocabSize: number;
  /** Override the detected tokenizer.ggml.pre. */
  pre?: string;
  /** Fallbacks from config.json when tokenizer_config.json names no bos/eos token. */
  bosTokenId?: number | null;
  eosTokenId?: number | null;
  defaultAddBos?: boolean;
}

function readJson(path: string): Json {
  try {
    const v = JSON.parse(readFileSync(path, "utf8"));
    if (!isObj(v)) throw new Error("not a JSON object");
    return v;
  } catch (e) {
    throw new FormatError(path, `cannot read (${(e as Error).message})`);
  }
}

function tokenContent(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (isObj(v) && typeof v.content === "string") return v.content;
  return null;
}

/** Build the tokenizer.* metadata from tokenizer.json (+ tokenizer_config.json, chat_template.jinja). */
export function tokenizerMetadata(dir: string, o: TokenizerMetaOptions): [string, GgufValue][] {
  const tjPath = join(dir, "tokenizer.json");
  if (!existsSync(tjPath)) throw new FormatError(tjPath, "tokenizer.json is required to export GGUF");
  const tj = readJson(tjPath);
  const model = tj.model;
  if (!isObj(model) || model.type !== "BPE" || !isObj(model.vocab)) {
    throw new FormatError(
      tjPath,
      `only byte-level BPE tokenizers are supported (model.type ${JSON.stringify(isObj(model) ? model.type : undefined)})`,
    );
  }
  const pre = o.pre ?? detectPreTokenizer(tj, tjPath);
  const tokens: (string | undefined)[] = new Array(o.vocabSize);
  const types: number[] = new Array(o.vocabSize).fill(1);
  for (const [t, id] of Object.entries(model.vocab as Record<string, number>)) {
    if (!Number.isInteger(id) || id < 0 || id >= o.vocabSize) {
      throw new FormatError(
        tjPath,
        `token ${JSON.stringify(t)} has id ${id} outside vocab_size ${o.vocabSize}`,
      );
    }
    tokens[id] = t;
  }
  const added = Array.isArray(tj.added_tokens) ? tj.added_tokens : [];
  const byContent = new Map<string, number>();
  for (const a of added) {
    if (!isObj(a) || typeof a.id !== "number" || typeof a.content !== "string") continue;
    if (a.id < 0 || a.id >= o.vocabSize)
      throw new FormatError(tjPath, `added token id ${a.id} outside vocab_size`);
    tokens[a.id] = a.content;
    // Special (or special-looking) added tokens are control tokens; others user-defined.
    const looksSpecial = a.content.startsWith("<|") && a.content.endsWith("|>");
    types[a.id] = a.special === true || looksSpecial ? 3 : 4;
    byContent.set(a.content, a.id);
  }
  for (let i = 0; i < o.vocabSize; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = 5; // unused
    }
  }
  for (const [t, id] of Object.entries(model.vocab as Record<string, number>)) byContent.set(t, id);
  const merges = Array.isArray(model.merges)
    ? model.merges.map((m) => (Array.isArray(m) ? m.join(" ") : String(m)))
    : [];

  const tcPath = join(dir, "tokenizer_config.json");
  const tc = existsSync(tcPath) ? readJson(tcPath) : {};
  const idOf = (key: string): number | null => {
    const c = tokenContent(tc[key]);
    return c !== null && byContent.has(c) ? byContent.get(c)! : null;
  };
  const bos = idOf("bos_token") ?? o.bosTokenId ?? null;
  const eos = idOf("eos_token") ?? o.eosTokenId ?? null;
  const pad = idOf("pad_token");
  const unk = idOf("unk_token");

  let chat: string | null = null;
  const jinja = join(dir, "chat_template.jinja");
  if (existsSync(jinja)) chat = readFileSync(jinja, "utf8");
  else if (typeof tc.chat_template === "string") chat = tc.chat_template;
  else if (Array.isArray(tc.chat_template)) {
    const list = tc.chat_template.filter(isObj);
    const def = list.find((t) => t.name === "default") ?? list[0];
    if (def && typeof def.template === "string") chat = def.template;
  }

  const out: [string, GgufValue][] = [
    ["tokenizer.ggml.model", gv.str("gpt2")],
    ["tokenizer.ggml.pre", gv.str(pre)],
    ["tokenizer.ggml.tokens", gv.strs(tokens as string[])],
    ["tokenizer.ggml.token_type", gv.i32s(types)],
    ["tokenizer.ggml.merges", gv.strs(merges)],
  ];
  if (bos !== null) out.push(["tokenizer.ggml.bos_token_id", gv.u32(bos)]);
  if (eos !== null) out.push(["tokenizer.ggml.eos_token_id", gv.u32(eos)]);
  if (unk !== null) out.push(["tokenizer.ggml.unknown_token_id", gv.u32(unk)]);
  if (pad !== null) out.push(["tokenizer.ggml.padding_token_id", gv.u32(pad)]);
  const addBos = typeof tc.add_bos_token === "boolean" ? tc.add_bos_token : (o.defaultAddBos ?? false);
  out.push(["tokenizer.ggml.add_bos_token", gv.bool(addBos)]);
  if (typeof tc.add_eos_token === "boolean")
    out.push(["tokenizer.ggml.add_eos_token", gv.bool(tc.add_eos_token)]);
  if (chat !== null) out.push(["tokenizer.chat_template", gv.str(chat)]);
  return out;
}
