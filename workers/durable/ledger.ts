/**
 * The per-tenant usage ledger, in the TenantQuota Durable Object's SQLite storage: one row per
 * (UTC day, model). Exact integers, written in the same synchronous step as the quota settlement,
 * so the ledger and the quota counters can never disagree.
 */

/** One request's contribution to the ledger. */
export interface LedgerEntry {
  model: string;
  /** Prompt / completion tokens computed by a backend for this request (0 for a cache hit). */
  promptTokens: number;
  completionTokens: number;
  /** Tokens served from the edge prompt cache (prompt + completion of the replayed answer). */
  cachedTokens: number;
  cacheHit: boolean;
  outcome: "ok" | "error" | "aborted";
}

export interface UsageRow {
  day: string;
  model: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cached_tokens: number;
  cache_hits: number;
  errors: number;
  aborted: number;
}

export interface UsageReport {
  totals: Omit<UsageRow, "day" | "model">;
  byModel: Array<Omit<UsageRow, "day">>;
  byDay: UsageRow[];
}

export const LEDGER_SCHEMA = `CREATE TABLE IF NOT EXISTS usage (
  day TEXT NOT NULL,
  model TEXT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  cached_tokens INTEGER NOT NULL DEFAULT 0,
  cache_hits INTEGER NOT NULL DEFAULT 0,
  errors INTEGER NOT NULL DEFAULT 0,
  aborted INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (day, model)
)`;

export function recordUsage(sql: SqlStorage, entry: LedgerEntry, now: number): void {
  const day = new Date(now).toISOString().slice(0, 10);
  sql.exec(
    `INSERT INTO usage (day, model, requests, prompt_tokens, completion_tokens, cached_tokens, cache_hits, errors, aborted)
     VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (day, model) DO UPDATE SET
       requests = requests + 1,
       prompt_tokens = prompt_tokens + excluded.prompt_tokens,
       completion_tokens = completion_tokens + excluded.completion_tokens,
       cached_tokens = cached_tokens + excluded.cached_tokens,
       cache_hits = cache_hits + excluded.cache_hits,
       errors = errors + excluded.errors,
       aborted = aborted + excluded.aborted`,
    day,
    entry.model,
    Math.max(0, Math.trunc(entry.promptTokens)),
    Math.max(0, Math.trunc(entry.completionTokens)),
    Math.max(0, Math.trunc(entry.cachedTokens)),
    entry.cacheHit ? 1 : 0,
    entry.outcome === "error" ? 1 : 0,
    entry.outcome === "aborted" ? 1 : 0,
  );
}

const SUMS = `SUM(requests) AS requests, SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
  SUM(prompt_tokens + completion_tokens) AS total_tokens, SUM(cached_tokens) AS cached_tokens,
  SUM(cache_hits) AS cache_hits, SUM(errors) AS errors, SUM(aborted) AS aborted`;

function num(v: SqlStorageValue | undefined): number {
  return typeof v === "number" ? v : 0;
}

function toTotals(r: Record<string, SqlStorageValue>): UsageReport["totals"] {
  return {
    requests: num(r.requests),
    prompt_tokens: num(r.prompt_tokens),
    completion_tokens: num(r.completion_tokens),
    total_tokens: num(r.total_tokens),
    cached_tokens: num(r.cached_tokens),
    cache_hits: num(r.cache_hits),
    errors: num(r.errors),
    aborted: num(r.aborted),
  };
}

/** Usage between two UTC days inclusive (YYYY-MM-DD); no bounds means everything. */
export function readUsage(sql: SqlStorage, from = "0000-00-00", to = "9999-99-99"): UsageReport {
  const totals =
    sql.exec(`SELECT ${SUMS} FROM usage WHERE day >= ? AND day <= ?`, from, to).toArray()[0] ?? {};
  const byModel = sql
    .exec(
      `SELECT model, ${SUMS} FROM usage WHERE day >= ? AND day <= ? GROUP BY model ORDER BY model`,
      from,
      to,
    )
    .toArray()
    .map((r) => ({ model: String(r.model), ...toTotals(r) }));
  const byDay = sql
    .exec(
      `SELECT day, model, ${SUMS} FROM usage WHERE day >= ? AND day <= ? GROUP BY day, model ORDER BY day, model`,
      from,
      to,
    )
    .toArray()
    .map((r) => ({ day: String(r.day), model: String(r.model), ...toTotals(r) }));
  return { totals: toTotals(totals), byModel, byDay };
}
