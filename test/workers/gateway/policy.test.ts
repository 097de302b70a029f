/** License policy in the chain: each rule's decision with its status and reason, obligations as headers, no charge on denial. */
import { beforeEach, describe, expect, it } from "vitest";
import { clearOfMinuteEdge, framesAnswer, harness } from "./util.js";

const MODELS = "llama-4-scout,mixtral-8x7b,test-model";
const ask = (model: string) => ({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 5 });
const goodLlama = {
  domicile: "US",
  attestations: { mau: { kind: "below-threshold" }, aup: { policy: "llama4-aup", version: "1" } },
};

function setup() {
  return harness(() => framesAnswer(["ok"], { prompt_tokens: 1, completion_tokens: 1 }), { MODELS });
}

async function denial(res: Response) {
  const body = (await res.json()) as { error: { code: string; type: string; message: string } };
  return { status: res.status, ...body.error };
}

beforeEach(() => clearOfMinuteEdge());

describe("license policy in the chain", () => {
  it("allows an attested tenant with the Llama attribution obligations as headers", async () => {
    const h = setup();
    const { key } = await h.tenant(goodLlama);
    const res = await h.chat(key, ask("llama-4-scout"));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-attribution")).toBe("Built with Llama");
    expect(res.headers.get("x-model-license")).toBe("Llama 4 Community License");
    expect(res.headers.get("x-policy-decision")).toBe("allow");
  });

  it("Apache-2.0 models pass with their license header only", async () => {
    const h = setup();
    const { key } = await h.tenant();
    const res = await h.chat(key, ask("mixtral-8x7b"));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-model-license")).toBe("Apache-2.0");
    expect(res.headers.get("x-attribution")).toBeNull();
  });

  it("each Llama rule denies with its reason code and charges nothing", async () => {
    const h = setup();
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{}, 403, "mau_attestation_missing"],
      [{ attestations: { mau: { kind: "meta-license" } } }, 403, "aup_not_accepted"],
      [{ ...goodLlama, domicile: "FR" }, 451, "eu_multimodal_restricted"],
      [{ ...goodLlama, trade_restricted: true }, 451, "trade_restricted"],
      [{ ...goodLlama, use_cases: ["weapons"] }, 403, "forbidden_use_case"],
      [{ ...goodLlama, suspended: true }, 403, "tenant_suspended"],
      [{ ...goodLlama, allowed_models: ["mixtral-8x7b"] }, 403, "model_not_allowed"],
    ];
    for (const [settings, status, code] of cases) {
      const { key } = await h.tenant({ ...settings, quota: { tokens_per_minute: 1000 } });
      const res = await h.chat(key, ask("llama-4-scout"));
      const d = await denial(res);
      expect(d, code).toMatchObject({ status, code, type: "permission_error" });
      expect(res.headers.get("x-policy-decision")).toBe(`deny; reason=${code}`);
      const u = await h.usage(key);
      expect(u.totals.requests ?? 0).toBe(0);
      expect(u.quota.dimensions.find((x) => x.dimension === "tokens_minute")?.remaining).toBe(1000);
    }
    expect(h.calls.length).toBe(0);
  });

  it("aliases: a Llama derivative must be named Llama*, and resolves to its base model", async () => {
    const h = setup();
    const { id, key } = await h.tenant({ ...goodLlama, aliases: { "Llama-support": "llama-4-scout" } });
    const bad = await h.admin("PATCH", `/tenants/${id}`, { aliases: { support: "llama-4-scout" } });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("derivative_name_invalid");
    const res = await h.chat(key, ask("Llama-support"));
    expect(res.status).toBe(200);
    expect(h.calls[0].body.model).toBe("llama-4-scout");
  });

  it("/v1/models lists only what the tenant may use, with license name and URL", async () => {
    const h = setup();
    const eu = await h.tenant({ ...goodLlama, domicile: "DE" });
    const us = await h.tenant(goodLlama);
    const list = async (key: string) => {
      const res = await h.send("/v1/models", { headers: { authorization: `Bearer ${key}` } });
      return ((await res.json()) as { data: Array<{ id: string; license: string; license_url: string }> })
        .data;
    };
    expect((await list(eu.key)).map((m) => m.id)).toEqual(["mixtral-8x7b", "test-model"]);
    const all = await list(us.key);
    expect(all.map((m) => m.id)).toEqual(["llama-4-scout", "mixtral-8x7b", "test-model"]);
    expect(all[0]).toMatchObject({
      license: "Llama 4 Community License",
      license_url: expect.stringContaining("llama4"),
    });
    // Retrieve one: the same object; a model the tenant may not use is as unknown as any other.
    const get = (key: string, id: string) =>
      h.send(`/v1/models/${id}`, { headers: { authorization: `Bearer ${key}` } });
    const one = await get(us.key, "llama-4-scout");
    expect(one.status).toBe(200);
    expect(await one.json()).toEqual(all[0]);
    for (const [key, id] of [
      [eu.key, "llama-4-scout"],
      [us.key, "no-such-model"],
    ]) {
      const res = await get(key, id);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("model_not_found");
    }
    expect((await h.send("/v1/models/test-model")).status).toBe(401);
  });
});

describe("CORS on the public API", () => {
  it("answers preflights and lets a browser read answers and errors, with their rate-limit headers", async () => {
    const h = setup();
    const { key } = await h.tenant();
    const pre = await h.send("/v1/chat/completions", {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-stainless-os",
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
    expect(pre.headers.get("access-control-allow-methods")).toContain("POST");
    expect(pre.headers.get("access-control-allow-headers")).toBe("authorization,content-type,x-stainless-os");
    const ok = await h.send("/v1/chat/completions", {
      method: "POST",
      headers: {
        origin: "https://app.example",
        authorization: `Bearer ${key}`,
        "content-type": "application/json",
      },
      body: JSON.stringify(ask("test-model")),
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe("*");
    expect(ok.headers.get("access-control-expose-headers")).toContain("x-request-id");
    const denied = await h.send("/v1/models", { headers: { origin: "https://app.example" } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("access-control-allow-origin")).toBe("*");
  });
});
