/**
 * Loads a Hugging Face tokenizer folder (tokenizer.json, tokenizer_config.json, optional
 * chat_template.jinja and generation_config.json) into our `Tokenizer` interface, with
 * @huggingface/tokenizers for encode/decode and @huggingface/jinja for the chat template.
 * The same code path serves generated models and real downloads.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { detectToolCallFormat } from "../engine/tool-calls.js";
import type { ChatMessage, Tokenizer, ToolCallFormat } from "../engine/types.js";
import { byteLevelToBytes } from "./bytes.js";

export interface ChatTemplateOptions {
  /** Append the assistant header (default true). */
  addGenerationPrompt?: boolean;
  /** OpenAI-style tool definitions, passed to the template as `tools`. */
  tools?: unknown[];
  /** Any further template variables (e.g. Qwen3's enable_thinking). */
  extra?: Record<string, unknown>;
  /** Appended to the rendered text: the start of the assistant's reply. */
  replyPrefix?: string;
  /** Template variables from the request (chat_template_kwargs); `extra` wins over them. */
  variables?: Record<string, unknown>;
}

/** A message as templates see it (role kept open: templates also know "ipython" etc.). */
export interface TemplateMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

export interface LoadedTokenizer extends Tokenizer {
  /** Ids of control tokens (added tokens marked special): what skip_special_tokens drops. */
  readonly specialTokenIds: ReadonlySet<number>;
  readonly bosTokenId: number | null;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  /** Number of ids (highest id + 1). */
  readonly vocabSize: number;
  readonly chatTemplate: string | null;
  readonly toolCallFormat: ToolCallFormat | null;
  encode(text: string, addSpecialTokens?: boolean): number[];
  decode(ids: number[], skipSpecialTokens?: boolean): string;
  /** A token's bytes, for tokenizers whose decoder is `ByteLevel` (see StreamDecodable). */
  tokenBytes?(id: number): Uint8Array;
  /** Render the chat template to text (no tokenization). */
  renderChat(messages: readonly (ChatMessage | TemplateMessage)[], opts?: ChatTemplateOptions): string;
  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions): number[];
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
}

type Json = Record<string, unknown>;

function readJson(path: string): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`tokenizer: cannot read ${path}: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`tokenizer: ${path} is not a JSON object`);
  }
  return parsed as Json;
}

/** tokenizer_config.json tokens may be strings or AddedToken objects ({content: ...}). */
function tokenString(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as Json).content === "string")
    return (v as Json).content as string;
  return null;
}

/** chat_template may be a string or a list of {name, template} (pick "default", else the first). */
function pickTemplate(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    const named = v.filter(
      (t): t is { name: string; template: string } =>
        typeof t === "object" && t !== null && typeof t.template === "string",
    );
    return (named.find((t) => t.name === "default") ?? named[0])?.template ?? null;
  }
  return null;
}

function idList(v: unknown): number[] {
  if (typeof v === "number") return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === "number");
  return [];
}

class HfBackedTokenizer implements LoadedTokenizer {
  readonly specialTokenIds: ReadonlySet<number>;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: number[];
  readonly vocabSize: number;
  private readonly template: Template | null;
  /** Bytes of each token seen so far (tokenBytes). */
  private readonly bytes: Uint8Array[] = [];
  readonly tokenBytes?: (id: number) => Uint8Array;
  readonly toolCallFormat: ToolCallFormat | null;

  constructor(
    private readonly tok: HfTokenizer,
    private readonly config: Json,
    readonly chatTemplate: string | null,
    readonly bosToken: string | null,
    readonly eosToken: string | null,
    extraEosIds: number[],
    private readonly source: string,
    byteLevel: boolean,
  ) {
    if (byteLevel) this.tokenBytes = (id) => (this.bytes[id] ??= this.byteLevelBytes(id));
    const special = new Set<number>();
    for (const [id, t] of tok.get_added_tokens_decoder()) if (t.special) special.add(id);
    this.specialTokenIds = special;
    let max = -1;
    for (const id of tok.get_vocab(true).values()) if (id > max) max = id;
    this.vocabSize = max + 1;
    this.bosTokenId = bosToken === null ? null : (tok.token_to_id(bosToken) ?? null);
    const eos = new Set<number>(extraEosIds);
    const eosId = eosToken === null ? undefined : tok.token_to_id(eosToken);
    if (eosId !== undefined) eos.add(eosId);
    this.eosTokenIds = [...eos];
    this.template = chatTemplate === null ? null : new Template(chatTemplate);
    this.toolCallFormat = detectToolCallFormat(chatTemplate);
  }

  encode(text: string, addSpecialTokens = true): number[] {
    return this.tok.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: number[], skipSpecialTokens = false): string {
    // @huggingface/tokenizers throws on an empty list; an empty list is simply "".
    if (ids.length === 0) return "";
    return this.tok.decode(ids, {
      skip_special_tokens: skipSpecialTokens,
      clean_up_tokenization_spaces: false,
    });
  }

  renderChat(messages: readonly (ChatMessage | TemplateMessage)[], opts: ChatTemplateOptions = {}): string {
    if (!this.template) throw new Error(`tokenizer: ${this.source} has no chat template`);
    if (messages.length === 0) throw new Error("tokenizer: chat template needs at least one message");
    // OpenAI's "developer" role is the newer name of "system"; the families' templates know only the latter.
    const msgs = messages.map((m) => (m.role === "developer" ? { ...m, role: "system" } : { ...m }));
    const ctx: Record<string, unknown> = {
      messages: msgs,
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      bos_token: this.bosToken ?? "",
      eos_token: this.eosToken ?? "",
      pad_token: tokenString(this.config.pad_token) ?? "",
      unk_token: tokenString(this.config.unk_token) ?? "",
      ...opts.extra,
    };
    if (opts.tools !== undefined) ctx.tools = opts.tools;
    return this.template.render(ctx);
  }

  applyChatTemplate(messages: ChatMessage[], opts?: ChatTemplateOptions): number[] {
    // The template already spells out bos; tokenizing must not add it again (as transformers does).
    const rendered = this.renderChat(messages, { ...opts, extra: { ...opts?.variables, ...opts?.extra } });
    return this.encode(rendered + (opts?.replyPrefix ?? ""), false);
  }

  /**
   * What the ByteLevel decoder makes of one token: each character mapped back to its byte, or
   * the token's own UTF-8 when it holds a character outside the byte alphabet (added tokens).
   */
  private byteLevelBytes(id: number): Uint8Array {
    const token = this.tok.id_to_token(id) ?? "";
    return byteLevelToBytes(token) ?? new TextEncoder().encode(token);
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }
}

/** Build from already-parsed files (tests, or callers holding the JSON in memory). */
export function tokenizerFromJson(
  tokenizerJson: Json,
  tokenizerConfig: Json,
  opts: { chatTemplate?: string | null; generationConfig?: Json; source?: string } = {},
): LoadedTokenizer {
  const tok = new HfTokenizer(tokenizerJson, tokenizerConfig);
  const template = opts.chatTemplate ?? pickTemplate(tokenizerConfig.chat_template);
  const eosIds = idList(opts.generationConfig?.eos_token_id);
  return new HfBackedTokenizer(
    tok,
    tokenizerConfig,
    template,
    tokenString(tokenizerConfig.bos_token),
    tokenString(tokenizerConfig.eos_token),
    eosIds,
    opts.source ?? "tokenizer",
    (tokenizerJson.decoder as Json | null | undefined)?.type === "ByteLevel",
  );
}

/**
 * Load the tokenizer of a model folder. A sidecar `chat_template.jinja` takes priority over
 * tokenizer_config.json's chat_template (transformers >= 4.47 behaviour). Stop ids come from
 * generation_config.json's eos_token_id (falling back to config.json's) plus the eos_token.
 */
export async function loadTokenizer(dir: string): Promise<LoadedTokenizer> {
  const tjPath = join(dir, "tokenizer.json");
  if (!existsSync(tjPath)) throw new Error(`tokenizer: ${tjPath} not found`);
  const tokenizerJson = readJson(tjPath);
  const cfgPath = join(dir, "tokenizer_config.json");
  const tokenizerConfig = existsSync(cfgPath) ? readJson(cfgPath) : {};
  const sidecar = join(dir, "chat_template.jinja");
  const chatTemplate = existsSync(sidecar) ? readFileSync(sidecar, "utf8") : null;
  const genPath = join(dir, "generation_config.json");
  const modelCfgPath = join(dir, "config.json");
  let generationConfig: Json | undefined;
  if (existsSync(genPath)) generationConfig = readJson(genPath);
  if (idList(generationConfig?.eos_token_id).length === 0 && existsSync(modelCfgPath)) {
    generationConfig = { eos_token_id: readJson(modelCfgPath).eos_token_id };
  }
  return tokenizerFromJson(tokenizerJson, tokenizerConfig, { chatTemplate, generationConfig, source: dir });
}
