/** A routed-expert budget as the user wrote it: a byte count or a share of all routed experts. */
export type BudgetSpec = { kind: "bytes"; bytes: number } | { kind: "percent"; percent: number };

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** Parse "512MiB", "1.5GB", "1073741824" or "25%". Throws a clear error on anything else. */
export function parseBudget(text: string): BudgetSpec {
  const s = text.trim();
  const pct = /^(\d+(?:\.\d+)?)\s*%$/.exec(s);
  if (pct) {
    const percent = Number(pct[1]);
    if (!(percent > 0 && percent <= 100)) {
      throw new RangeError(`expert budget ${JSON.stringify(text)}: a percentage must be in (0, 100]`);
    }
    return { kind: "percent", percent };
  }
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(s);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new RangeError(
      `expert budget ${JSON.stringify(text)}: expected bytes (e.g. 1073741824, 512MiB, 2GB) or a percentage of all routed experts (e.g. 25%)`,
    );
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!(bytes > 0)) throw new RangeError(`expert budget ${JSON.stringify(text)}: must be positive`);
  return { kind: "bytes", bytes };
}

/** Human-readable byte count for messages. */
export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
