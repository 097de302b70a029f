import { canonicalRequest, stableStringify } from "./canonical.js";

export const CACHE_KEY_VERSION = "moe-edge-prompt-cache/v1";

const encoder = new TextEncoder();

function hex(buf: ArrayBuffer): string {
  let s = "";
  for (const b of new Uint8Array(buf)) s += b.toString(16).padStart(2, "0");
  return s;
}

/** SHA-256 (WebCrypto: the same in workerd and Node) of version, tenant, model and canonical body. */
export async function promptCacheHash(
  tenantId: string,
  model: string,
  body: Record<string, unknown>,
): Promise<string> {
  const material = [CACHE_KEY_VERSION, tenantId, model, stableStringify(canonicalRequest(body))].join("\0");
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(material)));
}

/**
 * Storage key. The tenant id is in the key's text as well as in the hash, so isolation does not rest
 * on the hash alone: a tenant's lookups can only ever read under its own prefix.
 */
export function storageKey(tenantId: string, hash: string): string {
  return `pc/${encodeURIComponent(tenantId)}/${hash}`;
}
