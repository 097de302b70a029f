/**
 * Builds a family's tokenizer files (Hugging Face `tokenizer.json` + `tokenizer_config.json`) from
 * our BPE trainer. The pre-tokenizer used for training is the very one @huggingface/tokenizers
 * builds from the emitted JSON, so training and encoding split text identically.
 */
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import type { Family } from "../model/types.js";
import { BYTE_TO_CHAR } from "./bytes.js";
import { CORPUS } from "./corpus.js";
import { type SpecialToken, TOKENIZER_SPECS } from "./families.js";
import { trainByteLevelBpe } from "./train.js";

export interface BuiltTokenizer {
  family: Family;
  /** Total ids (model vocab + added tokens) == config.json vocab_size. */
  vocabSize: number;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** Id of every special/added token by content. */
  specialIds: Record<string, number>;
  bosTokenId: number | null;
  /** Every stop token id (config.json eos_token_id). */
  eosTokenIds: number[];
  padTokenId: number | null;
  /** How many reserved tokens filled the vocabulary because the corpus ran out of merges. */
  reservedFill: number;
}

export interface BuildTokenizerOptions {
  family: Family;
  vocabSize: number;
  /** tokenizer_config.json model_max_length. */
  modelMaxLength?: number;
}

function splitPreTokenizer(regex: string): Record<string, unknown> {
  return {
    type: "Sequence",
    pretokenizers: [
      { type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
}

function bpeModel(
  vocab: Record<string, number>,
  merges: string[],
  unk: string | null,
): Record<string, unknown> {
  return {
    type: "BPE",
    dropout: null,
    unk_token: unk,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab,
    merges,
  };
}

/** A byte-alphabet-only tokenizer whose pre-tokenizer splits exactly like the final one. */
function pretokenizerFor(regex: string): (text: string) => string[] {
  const vocab: Record<string, number> = {};
  BYTE_TO_CHAR.forEach((c, i) => {
    vocab[c] = i;
  });
  const tok = new HfTokenizer(
    {
      version: "1.0",
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: splitPreTokenizer(regex),
      post_processor: null,
      decoder: null,
      model: bpeModel(vocab, [], null),
    },
    {},
  );
  const pre = tok.pre_tokenizer;
  if (!pre) throw new Error("tokenizer: pre-tokenizer failed to build");
  return (text) => pre.pre_tokenize(text);
}

const trainCache = new Map<string, { tokens: string[]; merges: [string, string][] }>();

function train(regex: string, newTokens: number): { tokens: string[]; merges: [string, string][] } {
  const key = `${regex}\u0000${newTokens}`;
  let r = trainCache.get(key);
  if (!r) {
    r = trainByteLevelBpe({ texts: CORPUS, pretokenize: pretokenizerFor(regex), newTokens });
    trainCache.set(key, r);
  }
  return r;
}

function addedTokenEntry(id: number, t: SpecialToken): Record<string, unknown> {
  return {
    id,
    content: t.content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: t.special,
  };
}

export function buildTokenizer(opts: BuildTokenizerOptions): BuiltTokenizer {
  const spec = TOKENIZER_SPECS[opts.family];
  const fixed = 256 + spec.leadingSpecials.length + spec.trailingSpecials.length;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < fixed) {
    throw new Error(
      `tokenizer: vocab size ${opts.vocabSize} must be an integer >= ${fixed} for ${opts.family}`,
    );
  }
  const { tokens, merges } = train(spec.splitRegex, opts.vocabSize - fixed);

  const vocab: Record<string, number> = {};
  const added: SpecialToken[] = [];
  const addedIds: number[] = [];
  let next = 0;
  for (const t of spec.leadingSpecials) {
    vocab[t.content] = next;
    added.push(t);
    addedIds.push(next++);
  }
  for (const c of BYTE_TO_CHAR) vocab[c] = next++;
  for (const t of tokens) vocab[t] = next++;
  // If the corpus ever runs out of merges, fill with reserved control tokens (as Llama 3/4 do).
  const trailing = [...spec.trailingSpecials];
  const reservedFill = opts.vocabSize - next - trailing.length;
  for (let i = 0; i < reservedFill; i++)
    trailing.push({ content: `<|reserved_special_token_${i}|>`, special: true });
  for (const t of trailing) {
    added.push(t);
    addedIds.push(next++);
  }
  if (next !== opts.vocabSize) throw new Error(`tokenizer: internal error, built ${next} ids`);

  const specialIds: Record<string, number> = {};
  added.forEach((t, i) => {
    specialIds[t.content] = addedIds[i];
  });
  const idOf = (s: string | null): number | null => (s === null ? null : (specialIds[s] ?? null));
  const bosTokenId = idOf(spec.bosToken);

  let postProcessor: Record<string, unknown>;
  if (spec.addBosToken && spec.bosToken !== null && bosTokenId !== null) {
    const bos = spec.bosToken;
    postProcessor = {
      type: "Sequence",
      processors: [
        { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
        {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [
            { SpecialToken: { id: bos, type_id: 0 } },
            { Sequence: { id: "A", type_id: 0 } },
            { SpecialToken: { id: bos, type_id: 1 } },
            { Sequence: { id: "B", type_id: 1 } },
          ],
          special_tokens: { [bos]: { id: bos, ids: [bosTokenId], tokens: [bos] } },
        },
      ],
    };
  } else {
    postProcessor = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  }

  const tokenizerJson: Record<string, unknown> = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added.map((t, i) => addedTokenEntry(addedIds[i], t)),
    normalizer: null,
    pre_tokenizer: splitPreTokenizer(spec.splitRegex),
    post_processor: postProcessor,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: bpeModel(
      vocab,
      merges.map(([a, b]) => `${a} ${b}`),
      spec.unkToken,
    ),
  };

  const addedTokensDecoder: Record<string, unknown> = {};
  added.forEach((t, i) => {
    addedTokensDecoder[String(addedIds[i])] = {
      content: t.content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: t.special,
    };
  });
  const tokenizerConfig: Record<string, unknown> = {
    add_bos_token: spec.addBosToken,
    add_eos_token: false,
    added_tokens_decoder: addedTokensDecoder,
    bos_token: spec.bosToken,
    chat_template: spec.chatTemplate,
    clean_up_tokenization_spaces: false,
    eos_token: spec.eosToken,
    extra_special_tokens: {},
    model_input_names: ["input_ids", "attention_mask"],
    model_max_length: opts.modelMaxLength ?? 131072,
    pad_token: spec.padToken,
    // The generic fast class: it loads tokenizer.json as-is (no slow SentencePiece/vocab.json path).
    tokenizer_class: "PreTrainedTokenizerFast",
    unk_token: spec.unkToken,
  };

  return {
    family: opts.family,
    vocabSize: opts.vocabSize,
    tokenizerJson,
    tokenizerConfig,
    specialIds,
    bosTokenId,
    eosTokenIds: spec.stopTokens.map((s) => {
      const id = specialIds[s];
      if (id === undefined) throw new Error(`tokenizer: stop token ${s} missing`);
      return id;
    }),
    padTokenId: idOf(spec.padToken),
    reservedFill: Math.max(0, reservedFill),
  };
}
