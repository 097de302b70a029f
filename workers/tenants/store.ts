/**
 * Tenants and API keys in KV. Layout:
 *   tenant:<id>        -> Tenant
 *   apikey:<prefix>    -> ApiKeyRecord (hash only)
 *   tenant-keys:<id>   -> string[] of key prefixes (for listing / revoking)
 * Lookups are cached in the isolate for a few seconds, since every request authenticates.
 */

import { sha256Hex } from "../../src/signing.js";
import { generateApiKey, parseKeyPrefix, randomId, timingSafeEqualHex } from "./keys.js";
import type { ApiKeyRecord, Tenant } from "./types.js";

const CACHE_TTL_MS = 5_000;

interface Cached<T> {
  value: T;
  at: number;
}

export class TenantStore {
  private static readonly cache = new Map<string, Cached<unknown>>();

  constructor(private readonly kv: KVNamespace) {}

  private async getJson<T>(key: string): Promise<T | null> {
    const hit = TenantStore.cache.get(key);
    if (hit && Date.now() - hit.at < CACHE_TTL_MS) return hit.value as T | null;
    const value = await this.kv.get<T>(key, "json");
    TenantStore.cache.set(key, { value, at: Date.now() });
    return value;
  }

  private async putJson(key: string, value: unknown): Promise<void> {
    await this.kv.put(key, JSON.stringify(value));
    TenantStore.cache.delete(key);
  }

  /** Forget cached entries (after a change made elsewhere). */
  static clearCache(): void {
    TenantStore.cache.clear();
  }

  getTenant(id: string): Promise<Tenant | null> {
    return this.getJson<Tenant>(`tenant:${id}`);
  }

  getKeyRecord(prefix: string): Promise<ApiKeyRecord | null> {
    return this.getJson<ApiKeyRecord>(`apikey:${prefix}`);
  }

  async listKeyPrefixes(tenantId: string): Promise<string[]> {
    return (await this.kv.get<string[]>(`tenant-keys:${tenantId}`, "json")) ?? [];
  }

  async createTenant(name: string, id: string = randomId()): Promise<Tenant> {
    const tenant: Tenant = { id, name, createdAt: new Date().toISOString() };
    await this.putJson(`tenant:${id}`, tenant);
    return tenant;
  }

  /** Issue a new key; the full key is returned once and only its hash is stored. */
  async issueKey(tenantId: string): Promise<{ key: string; record: ApiKeyRecord }> {
    const { key, prefix, hash } = await generateApiKey();
    const record: ApiKeyRecord = { prefix, hash, tenantId, createdAt: new Date().toISOString() };
    await this.putJson(`apikey:${prefix}`, record);
    const prefixes = await this.listKeyPrefixes(tenantId);
    await this.kv.put(`tenant-keys:${tenantId}`, JSON.stringify([...prefixes, prefix]));
    return { key, record };
  }

  async saveKeyRecord(record: ApiKeyRecord): Promise<void> {
    await this.putJson(`apikey:${record.prefix}`, record);
  }

  /** The presented key is exactly a key that was revoked (so the error can say so). */
  async isRevokedKey(key: string): Promise<boolean> {
    const prefix = parseKeyPrefix(key);
    if (!prefix) return false;
    const record = await this.getKeyRecord(prefix);
    return !!record?.revokedAt && timingSafeEqualHex(await sha256Hex(key), record.hash);
  }

  /** The tenant a presented key belongs to, or null (malformed, unknown, revoked, wrong secret). */
  async authenticate(key: string): Promise<{ tenant: Tenant; record: ApiKeyRecord } | null> {
    const prefix = parseKeyPrefix(key);
    if (!prefix) return null;
    const record = await this.getKeyRecord(prefix);
    if (!record || record.revokedAt) return null;
    if (!timingSafeEqualHex(await sha256Hex(key), record.hash)) return null;
    const tenant = await this.getTenant(record.tenantId);
    return tenant ? { tenant, record } : null;
  }
}
