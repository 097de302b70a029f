/**
 * Edge -> backend request signing. HMAC-SHA256 (WebCrypto, so the same code runs in workerd and
 * Node) over a canonical string of method, path (with query), timestamp, nonce, tenant and
 * sha256(body). The backend refuses unsigned, stale (clock skew beyond a limit) and replayed
 * (nonce seen before) requests.
 */

export const SIG_HEADERS = {
  timestamp: "x-moe-timestamp",
  nonce: "x-moe-nonce",
  signature: "x-moe-signature",
  tenant: "x-moe-tenant",
} as const;

export const DEFAULT_MAX_SKEW_MS = 60_000;

const encoder = new TextEncoder();
// The key type, spelled so it resolves under both Node's and workerd's type definitions.
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;
const keyCache = new Map<string, Promise<HmacKey>>();

function hmacKey(secret: string): Promise<HmacKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    keyCache.set(secret, key);
  }
  return key;
}

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let out = "";
  for (const b of view) out += b.toString(16).padStart(2, "0");
  return out;
}

function fromHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export type Body = string | Uint8Array | ArrayBuffer | null | undefined;

function bodyBytes(body: Body): Uint8Array {
  if (body == null) return new Uint8Array(0);
  if (typeof body === "string") return encoder.encode(body);
  return body instanceof Uint8Array ? body : new Uint8Array(body);
}

export async function sha256Hex(data: Body): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", bodyBytes(data)));
}

export interface SignInput {
  method: string;
  /** Path plus query string, e.g. `/v1/chat/completions`. */
  path: string;
  body: Body;
  tenant: string;
  timestamp: number;
  nonce: string;
}

async function canonical(input: SignInput): Promise<Uint8Array> {
  const parts = [
    "moe-v1",
    input.method.toUpperCase(),
    input.path,
    String(input.timestamp),
    input.nonce,
    input.tenant,
    await sha256Hex(input.body),
  ];
  return encoder.encode(parts.join("\n"));
}

export function randomNonce(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return toHex(bytes);
}

/** Headers to add to a request so that the backend accepts it. */
export async function signRequest(
  secret: string,
  req: { method: string; path: string; body: Body; tenant: string; now?: number; nonce?: string },
): Promise<Record<string, string>> {
  const timestamp = req.now ?? Date.now();
  const nonce = req.nonce ?? randomNonce();
  const input: SignInput = {
    method: req.method,
    path: req.path,
    body: req.body,
    tenant: req.tenant,
    timestamp,
    nonce,
  };
  const sig = await crypto.subtle.sign("HMAC", await hmacKey(secret), await canonical(input));
  return {
    [SIG_HEADERS.timestamp]: String(timestamp),
    [SIG_HEADERS.nonce]: nonce,
    [SIG_HEADERS.tenant]: req.tenant,
    [SIG_HEADERS.signature]: toHex(sig),
  };
}

/**
 * Nonces seen within the skew window. Bounded: when full, the oldest entry goes first; an entry
 * older than the window is no longer needed because its timestamp would be refused as stale.
 */
export class NonceCache {
  private readonly seen = new Map<string, number>();

  constructor(
    readonly capacity = 100_000,
    readonly ttlMs = 2 * DEFAULT_MAX_SKEW_MS,
  ) {}

  /** Record a nonce; true if it was new, false on a replay. */
  add(nonce: string, now: number): boolean {
    this.evict(now);
    if (this.seen.has(nonce)) return false;
    this.seen.set(nonce, now);
    while (this.seen.size > this.capacity) {
      const oldest = this.seen.keys().next().value;
      if (oldest === undefined) break;
      this.seen.delete(oldest);
    }
    return true;
  }

  get size(): number {
    return this.seen.size;
  }

  private evict(now: number): void {
    for (const [nonce, at] of this.seen) {
      if (now - at <= this.ttlMs) break; // insertion order == time order
      this.seen.delete(nonce);
    }
  }
}

export type VerifyResult =
  | { ok: true; tenant: string }
  | { ok: false; reason: "unsigned" | "malformed" | "stale" | "bad_signature" | "replayed" };

export async function verifyRequest(
  secret: string,
  req: { method: string; path: string; body: Body; header: (name: string) => string | null | undefined },
  opts: { now?: number; maxSkewMs?: number; nonces?: NonceCache } = {},
): Promise<VerifyResult> {
  const sigHex = req.header(SIG_HEADERS.signature);
  const ts = req.header(SIG_HEADERS.timestamp);
  const nonce = req.header(SIG_HEADERS.nonce);
  const tenant = req.header(SIG_HEADERS.tenant) ?? "";
  if (!sigHex && !ts && !nonce) return { ok: false, reason: "unsigned" };
  if (!sigHex || !ts || !nonce || !/^\d+$/.test(ts) || nonce.length > 128)
    return { ok: false, reason: "malformed" };
  const sig = fromHex(sigHex);
  if (!sig) return { ok: false, reason: "malformed" };
  const now = opts.now ?? Date.now();
  const timestamp = Number(ts);
  if (Math.abs(now - timestamp) > (opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS))
    return { ok: false, reason: "stale" };
  const data = await canonical({
    method: req.method,
    path: req.path,
    body: req.body,
    tenant,
    timestamp,
    nonce,
  });
  // subtle.verify compares in constant time.
  const valid = await crypto.subtle.verify("HMAC", await hmacKey(secret), sig, data);
  if (!valid) return { ok: false, reason: "bad_signature" };
  // Record the nonce only after the signature checks out, so forged requests cannot fill the cache.
  if (opts.nonces && !opts.nonces.add(nonce, now)) return { ok: false, reason: "replayed" };
  return { ok: true, tenant };
}
