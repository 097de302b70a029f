/**
 * TenantQuota: one Durable Object per tenant (idFromName(tenantId)), so quota counters are exact
 * across every edge location. Each RPC method runs to completion without awaiting, so reserve and
 * settle are atomic with respect to each other; state is written through to SQLite-backed storage
 * in the same step (the output gate holds the reply until it is durable).
 * Limits travel with each call (they live on the tenant record), so a quota change applies at once.
 */
import { DurableObject } from "cloudflare:workers";
import {
  emptyState,
  expireReservations,
  nextExpiry,
  type QuotaLimits,
  type QuotaSnapshot,
  type QuotaState,
  type ReserveResult,
  reserve,
  type SettleResult,
  settle,
  snapshot,
} from "../../src/quota/index.js";
import { LEDGER_SCHEMA, type LedgerEntry, readUsage, recordUsage, type UsageReport } from "./ledger.js";

const STATE_KEY = "quota-state";
const LIMITS_KEY = "quota-limits";

export interface ReserveCall {
  id: string;
  tokens: number;
  stream: boolean;
  /** Leak guard: an unsettled reservation is released after this long. */
  ttlMs: number;
  limits: QuotaLimits;
}

export interface SettleCall {
  id: string;
  /** Tokens charged against the quota. */
  charge: number;
  refundRequest?: boolean;
  /** What goes into the usage ledger (omit to record nothing, e.g. a request that never ran). */
  usage?: LedgerEntry;
}

export interface QuotaStatus {
  snapshot: QuotaSnapshot;
  openReservations: number;
  streams: number;
  expiredReservations: number;
}

export class TenantQuota<E = unknown> extends DurableObject<E> {
  private state: QuotaState;
  private limits: QuotaLimits = {};
  private expired = 0;

  constructor(ctx: DurableObjectState, env: E) {
    super(ctx, env);
    ctx.storage.sql.exec(LEDGER_SCHEMA);
    const kv = ctx.storage.kv;
    this.state = kv.get<QuotaState>(STATE_KEY) ?? emptyState(Date.now());
    this.limits = kv.get<QuotaLimits>(LIMITS_KEY) ?? {};
    this.expired = kv.get<number>("expired") ?? 0;
  }

  private persist(): void {
    this.ctx.storage.kv.put(STATE_KEY, this.state);
  }

  /**
   * Admission's write does not hold the reply: the decision is already made atomically in memory,
   * and the write follows in order. If storage ever failed, the object restarts from the last
   * durable state, which can only forget reservations (a refund), never admit past a limit.
   * Settlements (and the ledger) stay confirmed before their reply.
   */
  private persistUnconfirmed(): void {
    void this.ctx.storage.put(STATE_KEY, this.state, { allowUnconfirmed: true });
  }

  /** Alarm time already set (in memory: avoids one storage write per admission). */
  private alarmAt: number | null = null;

  private scheduleAlarm(): void {
    const next = nextExpiry(this.state);
    // A pending alarm at or before the earliest expiry will reschedule itself when it runs.
    if (next === null || (this.alarmAt !== null && this.alarmAt <= next)) return;
    this.alarmAt = next;
    void this.ctx.storage.setAlarm(next, { allowUnconfirmed: true });
  }

  reserve(call: ReserveCall): ReserveResult {
    this.rememberLimits(call.limits);
    const result = reserve(this.state, call.limits, call, Date.now());
    if (result.ok) {
      this.persistUnconfirmed();
      this.scheduleAlarm();
    }
    return result;
  }

  settle(call: SettleCall): SettleResult {
    const now = Date.now();
    const result = settle(this.state, this.limits, call, now);
    // Only the first settle of a reservation writes the ledger: retries of a settle are harmless.
    if (result.found) {
      if (call.usage) recordUsage(this.ctx.storage.sql, call.usage, now);
      this.persist();
    }
    return result;
  }

  /** Ledger only: a request that held no reservation (a prompt-cache hit). */
  record(usage: LedgerEntry): void {
    recordUsage(this.ctx.storage.sql, usage, Date.now());
  }

  status(limits?: QuotaLimits): QuotaStatus {
    if (limits) this.rememberLimits(limits);
    return {
      snapshot: snapshot(this.state, limits ?? this.limits, Date.now()),
      openReservations: Object.keys(this.state.reservations).length,
      streams: this.state.streams,
      expiredReservations: this.expired,
    };
  }

  usage(from?: string, to?: string): UsageReport {
    return readUsage(this.ctx.storage.sql, from, to);
  }

  /** Operator reset of the counters (not the ledger). */
  resetCounters(): void {
    this.state = emptyState(Date.now());
    this.persist();
  }

  override alarm(): void {
    this.alarmAt = null;
    const gone = expireReservations(this.state, this.limits, Date.now());
    if (gone.length > 0) {
      this.expired += gone.length;
      this.ctx.storage.kv.put("expired", this.expired);
      this.persist();
    }
    this.scheduleAlarm();
  }

  private rememberLimits(limits: QuotaLimits): void {
    if (JSON.stringify(limits) !== JSON.stringify(this.limits)) {
      this.limits = limits;
      this.ctx.storage.kv.put(LIMITS_KEY, limits);
    }
  }
}
