/**
 * API key format: `sk-moe-<prefix>_<secret>`. The prefix (10 hex chars) is public and indexes the
 * KV record; the secret (32 base62 chars, ~190 bits) never leaves the response that created it.
 */
import { sha256Hex } from "../../src/signing.js";

export const KEY_PREFIX = "sk-moe-";
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function randomString(length: number, alphabet: string): string {
  // Rejection sampling keeps the distribution uniform.
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    const bytes = new Uint8Array(length * 2);
    crypto.getRandomValues(bytes);
    for (const b of bytes) {
      if (b < limit && out.length < length) out += alphabet[b % alphabet.length];
    }
  }
  return out;
}

export function randomId(length = 16): string {
  return randomString(length, "0123456789abcdefghijklmnopqrstuvwxyz");
}

export interface NewKey {
  key: string;
  prefix: string;
  hash: string;
}

export async function generateApiKey(): Promise<NewKey> {
  const prefix = randomString(10, "0123456789abcdef");
  const key = `${KEY_PREFIX}${prefix}_${randomString(32, ALPHABET)}`;
  return { key, prefix, hash: await sha256Hex(key) };
}

/** The prefix of a well-formed key, or null. */
export function parseKeyPrefix(key: string): string | null {
  const m = /^sk-moe-([0-9a-f]{10})_[0-9A-Za-z]{32}$/.exec(key);
  return m ? m[1] : null;
}

/** Short, safe-to-echo form of a presented key (as OpenAI does: `sk-moe-ab...wxyz`). */
export function redactKey(key: string): string {
  if (key.length <= 12) return "****";
  return `${key.slice(0, 9)}****${key.slice(-4)}`;
}

/** Constant-time comparison of two equal-length hex strings. */
export function timingSafeEqualHex(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
