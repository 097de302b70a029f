/**
 * `GET /v1/models`: only the models this tenant may use, each with its license name, URL and
 * notice; `GET /v1/models/{model}`: one of them (404 like OpenAI's for any other id).
 */
import type { Context } from "hono";
import { modelNotFound } from "../../src/openai/errors.js";
import { visibleModels } from "../../src/policy/index.js";
import type { AppEnv } from "../env.js";
import { gatewayConfig } from "./config.js";
import { toPolicySubject } from "./settings.js";

type VisibleModel = ReturnType<typeof visibleModels>[number];

function modelObject(m: VisibleModel) {
  return {
    id: m.id,
    object: "model",
    created: 0,
    owned_by: m.model.ownedBy,
    root: m.model.id,
    license: m.rules.licenseName,
    license_url: m.rules.licenseUrl,
    ...(m.rules.notice ? { license_notice: m.rules.notice } : {}),
    ...(m.rules.attributionHeaders["x-attribution"]
      ? { attribution: m.rules.attributionHeaders["x-attribution"] }
      : {}),
  };
}

function tenantModels(c: Context<AppEnv>): VisibleModel[] {
  const tenant = c.get("tenant");
  return visibleModels(gatewayConfig(c.env).policy, toPolicySubject(tenant.id, tenant.gateway));
}

export function listModels(c: Context<AppEnv>): Response {
  return c.json({ object: "list", data: tenantModels(c).map(modelObject) });
}

export function getModel(c: Context<AppEnv>): Response {
  const id = c.req.param("model") ?? "";
  const m = tenantModels(c).find((x) => x.id === id);
  if (!m) throw modelNotFound(id);
  return c.json(modelObject(m));
}
