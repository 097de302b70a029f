/** Worker module entry: the Hono app (Durable Object classes are exported from here too). */
import { createApp } from "./app.js";

export default createApp();
