import { describe, expect, it } from "vitest";
import {
  acquire,
  type BackendConfig,
  type BackendHealth,
  breakerAllows,
  DEFAULT_ROUTING,
  newBreaker,
  prefixHash,
  rankBackends,
  recordFailure,
  recordSuccess,
} from "../../../src/routing/index.js";

const pool: BackendConfig[] = ["a", "b", "c", "d"].map((id) => ({ id, url: `http://${id}`, models: ["m"] }));
const health = (over: Partial<Record<string, Partial<BackendHealth>>> = {}) =>
  new Map<string, BackendHealth>(
    pool.map((b) => [
      b.id,
      { up: true, lastCheckAt: 0, load: 0, loadAt: 0, breaker: newBreaker(), ...over[b.id] },
    ]),
  );

describe("circuit breaker", () => {
  it("opens after N failures, lets one probe through after the cooldown, closes on success", () => {
    const b = newBreaker();
    const o = DEFAULT_ROUTING;
    for (let i = 0; i < o.failureThreshold - 1; i++) recordFailure(b, o, 0);
    expect(b.state).toBe("closed");
    recordFailure(b, o, 100);
    expect(b.state).toBe("open");
    expect(breakerAllows(b, o, 100 + o.openMs - 1)).toBe(false);
    expect(acquire(b, o, 100 + o.openMs)).toBe(true);
    expect(b.state).toBe("half_open");
    expect(acquire(b, o, 100 + o.openMs)).toBe(false); // one probe at a time
    recordFailure(b, o, 200 + o.openMs);
    expect(b.state).toBe("open");
    expect(acquire(b, o, 200 + 2 * o.openMs)).toBe(true);
    recordSuccess(b);
    expect(b.state).toBe("closed");
    expect(b.failures).toBe(0);
  });
});

describe("backend selection", () => {
  const pick = (prefix: number, h = health()) =>
    rankBackends(pool, h, { model: "m", prefix }, DEFAULT_ROUTING, 0);

  it("prefix affinity: a prefix always maps to the same backend; prefixes spread over the pool", () => {
    const counts = new Map<string, number>();
    for (let p = 0; p < 4000; p++) {
      const first = pick(p)[0].backend.id;
      expect(pick(p)[0].backend.id).toBe(first);
      counts.set(first, (counts.get(first) ?? 0) + 1);
    }
    for (const id of ["a", "b", "c", "d"]) expect(counts.get(id)).toBeGreaterThan(800);
  });

  it("shared prompt prefixes give the same hash; different ones differ", () => {
    const sys = { role: "system", content: "You are helpful. ".repeat(40) };
    const r1 = { model: "m", messages: [sys, { role: "user", content: "one" }] };
    const r2 = { model: "m", messages: [sys, { role: "user", content: "two" }] };
    const r3 = {
      model: "m",
      messages: [
        { role: "system", content: "Other" },
        { role: "user", content: "one" },
      ],
    };
    expect(prefixHash(r1, 512)).toBe(prefixHash(r2, 512));
    expect(prefixHash(r1, 512)).not.toBe(prefixHash(r3, 512));
    expect(prefixHash({ ...r1, model: "x" }, 512)).not.toBe(prefixHash(r1, 512));
  });

  it("removing a backend moves only the prefixes it held (rendezvous property)", () => {
    const h = health({ c: { up: false } });
    for (let p = 0; p < 2000; p++) {
      const before = pick(p)[0].backend.id;
      const after = pick(p, h)[0].backend.id;
      if (before !== "c") expect(after).toBe(before);
      else expect(after).not.toBe("c");
    }
  });

  it("skips backends that do not serve the model, are down, or have an open breaker", () => {
    const open = newBreaker();
    open.state = "open";
    open.openedAt = 0;
    const h = health({ a: { up: false }, b: { breaker: open } });
    const pool2 = [...pool, { id: "e", url: "http://e", models: ["other"] }];
    const ids = rankBackends(pool2, h, { model: "m", prefix: 7 }, DEFAULT_ROUTING, 1).map(
      (c) => c.backend.id,
    );
    expect(ids.sort()).toEqual(["c", "d"]);
  });

  it("load overrides affinity when the preferred backend is saturated or much busier", () => {
    for (let p = 0; p < 200; p++) {
      const preferred = pick(p)[0].backend.id;
      const busy = pick(p, health({ [preferred]: { load: 1 } }));
      expect(busy[0].backend.id).not.toBe(preferred);
      expect(busy.map((c) => c.backend.id)).toContain(preferred); // still a retry candidate
      const slightly = pick(p, health({ [preferred]: { load: DEFAULT_ROUTING.loadSlack / 2 } }));
      expect(slightly[0].backend.id).toBe(preferred);
    }
  });
});
