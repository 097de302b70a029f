import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";

it("health answers", async () => {
  const res = await exports.default.fetch("http://edge.test/health");
  expect(res.status).toBe(200);
});
