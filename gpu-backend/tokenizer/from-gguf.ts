/**
 * A GGUF file's embedded tokenizer (llama.cpp's `tokenizer.ggml.*` metadata) -> the same
 * `LoadedTokenizer` a Hugging Face folder gives. We rebuild the tokenizer.json / tokenizer_config
 * objects that convert_hf_to_gguf started from and hand them to `tokenizerFromJson`, so one
 * implementation (@huggingface/tokenizers + jinja) serves both paths.
 *
 * Only byte-level BPE ("gpt2") is supported. SentencePiece GGUFs ("llama": Mixtral's official
 * tokenizer, Llama 2) carry scores and byte tokens instead of merges: out of scope here.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { FormatError } from "../formats/errors.js";
import { plainValue, readGgufHeader } from "../formats/gguf.js";
import { KNOWN_PRE } from "../formats/gguf-tokenizer.js";
import { type LoadedTokenizer, loadTokenizer, tokenizerFromJson } from "./load.js";

type Json = Record<string, unknown>;

/** llama.cpp token types (llama_token_type). */
const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

interface PreSpec {
  /** Split regex; null = ByteLevel's built-in GPT-2 regex. */
  regex: string | null;
  /** llama.cpp skips merges when a whole pre-token is in the vocab (as Llama 3's tokenizer.json). */
  ignoreMerges: boolean;
  /** llama.cpp's add_bos default when the file has no tokenizer.ggml.add_bos_token. */
  addBos: boolean;
}

const regexOf = (name: string): string => {
  const hit = KNOWN_PRE.find(([, n]) => n === name);
  if (!hit) throw new Error(`from-gguf: internal error, no regex for ${name}`);
  return hit[0];
};

/**
 * Pre-tokenizer names (llama-vocab.cpp) -> the tokenizer.json pre-tokenizer they implement: the
 * inverse of gguf-tokenizer.ts's KNOWN_PRE, plus the aliases llama.cpp treats the same way.
 */
const PRE: Record<string, PreSpec> = {
  "gpt-2": { regex: null, ignoreMerges: false, addBos: false },
  "llama-bpe": { regex: regexOf("llama-bpe"), ignoreMerges: true, addBos: true },
  qwen2: { regex: regexOf("qwen2"), ignoreMerges: false, addBos: false },
  llama4: { regex: regexOf("llama4"), ignoreMerges: false, addBos: false },
};
PRE.llama3 = PRE["llama-bpe"];
PRE["llama-v3"] = PRE["llama-bpe"];
PRE["gpt-4o"] = PRE.llama4;
PRE["deepseek-r1-qwen"] = PRE.qwen2;

/**
 * Tokens llama.cpp treats as end-of-generation by their text (llama-vocab.cpp), plus Llama 4's
 * <|eot|> / <|eom|>: its generation_config stops on them, but a GGUF names only one eos id.
 */
const EOG_TEXTS = new Set([
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<|return|>",
  "<|call|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "<|eom_id|>",
  "<EOT>",
  "_<EOT>",
  "<|end_of_text|>",
  "<end_of_utterance>",
  "<|eot|>",
  "<|eom|>",
]);

export interface GgufTokenizerFiles {
  tokenizerJson: Json;
  tokenizerConfig: Json;
  chatTemplate: string | null;
  /** { eos_token_id: [...] }: every end-of-generation id. */
  generationConfig: Json;
}

function strings(v: unknown, key: string, path: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
    throw new FormatError(path, `${key} is missing or not a string array`);
  return v as string[];
}

function optId(v: unknown, n: number): number | null {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v < n ? v : null;
}

/** Rebuild tokenizer.json + tokenizer_config.json equivalents from GGUF metadata. */
export function tokenizerFilesFromGguf(meta: (key: string) => unknown, path: string): GgufTokenizerFiles {
  const model = meta("tokenizer.ggml.model");
  if (model !== "gpt2") {
    throw new FormatError(
      path,
      `tokenizer.ggml.model ${JSON.stringify(model)} is not supported: only byte-level BPE ("gpt2") GGUF tokenizers can be used` +
        (model === "llama" ? ' (SentencePiece "llama" tokenizers are out of scope)' : "") +
        "; put the model's tokenizer.json beside the .gguf file instead",
    );
  }
  const preName = meta("tokenizer.ggml.pre");
  const pre = typeof preName === "string" ? PRE[preName] : undefined;
  if (!pre) {
    throw new FormatError(
      path,
      `tokenizer.ggml.pre ${JSON.stringify(preName)} is not supported (known: ${Object.keys(PRE).join(", ")}); put the model's tokenizer.json beside the .gguf file instead`,
    );
  }
  const tokens = strings(meta("tokenizer.ggml.tokens"), "tokenizer.ggml.tokens", path);
  const merges = strings(meta("tokenizer.ggml.merges") ?? [], "tokenizer.ggml.merges", path);
  const typesRaw = meta("tokenizer.ggml.token_type");
  const types: number[] = Array.isArray(typesRaw) ? (typesRaw as number[]) : [];
  const n = tokens.length;

  // Normal and byte tokens are the BPE vocabulary; control / user-defined tokens are HF added
  // tokens (convert_hf_to_gguf stores them as raw text, which is what added_tokens hold); unused
  // ones are padding rows of the embedding with no token behind them.
  const vocab: Record<string, number> = {};
  const added: Json[] = [];
  for (let id = 0; id < n; id++) {
    const t = types[id] ?? TokenType.NORMAL;
    if (t === TokenType.UNUSED) continue;
    if (t === TokenType.CONTROL || t === TokenType.USER_DEFINED) {
      added.push({
        id,
        content: tokens[id],
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: t === TokenType.CONTROL,
      });
    } else if (!Object.hasOwn(vocab, tokens[id])) {
      vocab[tokens[id]] = id;
    }
  }

  const idMeta = (k: string) => optId(meta(`tokenizer.ggml.${k}`), n);
  const bosId = idMeta("bos_token_id");
  const eosId = idMeta("eos_token_id");
  const unkId = idMeta("unknown_token_id");
  const padId = idMeta("padding_token_id");
  const addBosMeta = meta("tokenizer.ggml.add_bos_token");
  const addBos = (typeof addBosMeta === "boolean" ? addBosMeta : pre.addBos) && bosId !== null;
  const addEos = meta("tokenizer.ggml.add_eos_token") === true && eosId !== null;
  // transformers names a bos only where the model uses one (Qwen's is null although llama.cpp
  // records <|endoftext|>): keep it when it is added, or when the template spells it out.
  const template = meta("tokenizer.chat_template");
  const chatTemplate = typeof template === "string" ? template : null;
  const bosToken =
    bosId !== null && (addBos || (chatTemplate?.includes("bos_token") ?? false)) ? tokens[bosId] : null;
  const tokOf = (id: number | null) => (id === null ? null : tokens[id]);

  const byteLevel = {
    type: "ByteLevel",
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: pre.regex === null,
  };
  const preTokenizer =
    pre.regex === null
      ? byteLevel
      : {
          type: "Sequence",
          pretokenizers: [
            { type: "Split", pattern: { Regex: pre.regex }, behavior: "Isolated", invert: false },
            byteLevel,
          ],
        };

  const postByteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  let postProcessor: Json = postByteLevel;
  if (addBos || addEos) {
    const specials: Json = {};
    const seq = (id: "A" | "B", typeId: number): Json[] => {
      const out: Json[] = [];
      if (addBos) out.push({ SpecialToken: { id: tokens[bosId!], type_id: typeId } });
      out.push({ Sequence: { id, type_id: typeId } });
      if (addEos) out.push({ SpecialToken: { id: tokens[eosId!], type_id: typeId } });
      return out;
    };
    for (const id of [addBos ? bosId : null, addEos ? eosId : null]) {
      if (id !== null) specials[tokens[id]] = { id: tokens[id], ids: [id], tokens: [tokens[id]] };
    }
    postProcessor = {
      type: "Sequence",
      processors: [
        postByteLevel,
        {
          type: "TemplateProcessing",
          single: seq("A", 0),
          pair: [...seq("A", 0), ...seq("B", 1)],
          special_tokens: specials,
        },
      ],
    };
  }

  const tokenizerJson: Json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: preTokenizer,
    post_processor: postProcessor,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: tokOf(unkId),
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: pre.ignoreMerges,
      vocab,
      merges,
    },
  };
  const tokenizerConfig: Json = {
    add_bos_token: addBos,
    add_eos_token: addEos,
    bos_token: bosToken,
    eos_token: tokOf(eosId),
    pad_token: tokOf(padId),
    unk_token: tokOf(unkId),
    clean_up_tokenization_spaces: false,
    tokenizer_class: "PreTrainedTokenizerFast",
  };

  // llama.cpp's end-of-generation set: eos / eot / eom ids plus the tokens it knows by text.
  const eog = new Set<number>();
  for (const k of ["eos_token_id", "eot_token_id", "eom_token_id"]) {
    const id = idMeta(k);
    if (id !== null) eog.add(id);
  }
  for (let id = 0; id < n; id++) if (EOG_TEXTS.has(tokens[id])) eog.add(id);

  return { tokenizerJson, tokenizerConfig, chatTemplate, generationConfig: { eos_token_id: [...eog] } };
}

/** The tokenizer embedded in a GGUF file. */
export async function tokenizerFromGguf(path: string): Promise<LoadedTokenizer> {
  const header = readGgufHeader(path);
  const files = tokenizerFilesFromGguf((k) => plainValue(header.metadata.get(k)), path);
  return tokenizerFromJson(files.tokenizerJson, files.tokenizerConfig, {
    chatTemplate: files.chatTemplate,
    generationConfig: files.generationConfig,
    source: path,
  });
}

/**
 * The tokenizer of a model path: a folder's tokenizer files; for a .gguf file, the tokenizer files
 * beside it when there is a tokenizer.json, else the one embedded in the GGUF.
 */
export async function loadModelTokenizer(modelPath: string): Promise<LoadedTokenizer> {
  if (statSync(modelPath).isDirectory()) return loadTokenizer(modelPath);
  const dir = dirname(modelPath);
  if (modelPath.endsWith(".gguf") && !existsSync(join(dir, "tokenizer.json")))
    return tokenizerFromGguf(modelPath);
  return loadTokenizer(dir);
}
