/** `GET /v1/models`: only the models this tenant may use, each with its license name, URL and notice. */
import type { Context } from "hono";
import { visibleModels } from "../../src/policy/index.js";
import type { AppEnv } from "../env.js";
import { gatewayConfig } from "./config.js";
import { toPolicySubject } from "./settings.js";

export function listModels(c: Context<AppEnv>): Response {
  const tenant = c.get("tenant");
  const models = visibleModels(gatewayConfig(c.env).policy, toPolicySubject(tenant.id, tenant.gateway));
  return c.json({
    object: "list",
    data: models.map((m) => ({
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
    })),
  });
}
