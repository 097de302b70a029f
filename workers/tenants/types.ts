import type { TenantGatewaySettings } from "../gateway/settings.js";

export interface Tenant {
  id: string;
  name: string;
  createdAt: string;
  /** Gateway settings: quota, allowed models, license attestations, domicile, cache (admin API). */
  gateway?: TenantGatewaySettings;
}

/** What KV holds for one API key: never the key itself, only its SHA-256. */
export interface ApiKeyRecord {
  /** Public part of the key (`sk-moe-<prefix>_...`), safe to show and log. */
  prefix: string;
  /** Hex SHA-256 of the full key. */
  hash: string;
  tenantId: string;
  createdAt: string;
  revokedAt?: string;
}
