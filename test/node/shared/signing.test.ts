import { describe, expect, it } from "vitest";
import { NonceCache, SIG_HEADERS, signRequest, verifyRequest } from "../../../src/signing.js";

const SECRET = "s3cret";
const T0 = 1_700_000_000_000;

async function signed(overrides: Partial<{ body: string; now: number; nonce: string }> = {}) {
  const headers = await signRequest(SECRET, {
    method: "POST",
    path: "/v1/chat/completions",
    body: overrides.body ?? '{"a":1}',
    tenant: "acme",
    now: overrides.now ?? T0,
    nonce: overrides.nonce,
  });
  return headers;
}

function verify(
  headers: Record<string, string>,
  req: Partial<{ method: string; path: string; body: string; secret: string }> = {},
  opts: { now?: number; nonces?: NonceCache } = {},
) {
  return verifyRequest(
    req.secret ?? SECRET,
    {
      method: req.method ?? "POST",
      path: req.path ?? "/v1/chat/completions",
      body: req.body ?? '{"a":1}',
      header: (n) => headers[n] ?? null,
    },
    { now: opts.now ?? T0 + 1000, nonces: opts.nonces },
  );
}

describe("request signing", () => {
  it("accepts a correctly signed request and returns the tenant", async () => {
    const h = await signed();
    expect(Object.keys(h).sort()).toEqual(Object.values(SIG_HEADERS).sort());
    expect(await verify(h)).toEqual({ ok: true, tenant: "acme" });
  });

  it("refuses any change to method, path, body, tenant or secret", async () => {
    const h = await signed();
    expect(await verify(h, { method: "PUT" })).toEqual({ ok: false, reason: "bad_signature" });
    expect(await verify(h, { path: "/v1/completions" })).toEqual({ ok: false, reason: "bad_signature" });
    expect(await verify(h, { body: '{"a":2}' })).toEqual({ ok: false, reason: "bad_signature" });
    expect(await verify(h, { secret: "other" })).toEqual({ ok: false, reason: "bad_signature" });
    expect(await verify({ ...h, [SIG_HEADERS.tenant]: "evil" })).toEqual({
      ok: false,
      reason: "bad_signature",
    });
  });

  it("refuses stale timestamps in both directions (60 s skew)", async () => {
    const h = await signed();
    expect((await verify(h, {}, { now: T0 + 60_000 })).ok).toBe(true);
    expect(await verify(h, {}, { now: T0 + 60_001 })).toEqual({ ok: false, reason: "stale" });
    expect(await verify(h, {}, { now: T0 - 60_001 })).toEqual({ ok: false, reason: "stale" });
  });

  it("refuses a replayed nonce, but not a new one", async () => {
    const nonces = new NonceCache();
    const h = await signed();
    expect((await verify(h, {}, { nonces })).ok).toBe(true);
    expect(await verify(h, {}, { nonces })).toEqual({ ok: false, reason: "replayed" });
    expect((await verify(await signed(), {}, { nonces })).ok).toBe(true);
  });

  it("tells unsigned from malformed", async () => {
    expect(await verify({})).toEqual({ ok: false, reason: "unsigned" });
    const h = await signed();
    const { [SIG_HEADERS.nonce]: _n, ...noNonce } = h;
    expect(await verify(noNonce)).toEqual({ ok: false, reason: "malformed" });
    expect(await verify({ ...h, [SIG_HEADERS.signature]: "zz" })).toEqual({ ok: false, reason: "malformed" });
    expect(await verify({ ...h, [SIG_HEADERS.timestamp]: "12a" })).toEqual({
      ok: false,
      reason: "malformed",
    });
  });

  it("does not record nonces of forged requests", async () => {
    const nonces = new NonceCache();
    const h = await signed({ nonce: "n1" });
    expect((await verify(h, { body: "forged" }, { nonces })).ok).toBe(false);
    expect(nonces.size).toBe(0);
    expect((await verify(h, {}, { nonces })).ok).toBe(true);
  });
});

describe("NonceCache", () => {
  it("is bounded: the oldest nonce goes first", () => {
    const c = new NonceCache(3, 60_000);
    for (const n of ["a", "b", "c", "d"]) expect(c.add(n, 0)).toBe(true);
    expect(c.size).toBe(3);
    expect(c.add("a", 0)).toBe(true); // evicted, so new again
    expect(c.add("d", 0)).toBe(false);
  });

  it("forgets nonces older than its ttl", () => {
    const c = new NonceCache(10, 1000);
    c.add("a", 0);
    c.add("b", 900);
    expect(c.add("c", 1500)).toBe(true);
    expect(c.size).toBe(2); // a expired
    expect(c.add("b", 1500)).toBe(false);
  });
});
