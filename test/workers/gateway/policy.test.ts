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
  });
});
