/** Worker module entry: the Hono app (Durable Object classes are exported from here too). */
import { createApp } from "./app.js";

export { TenantQuota } from "./durable/tenant-quota.js";
export default createApp();
