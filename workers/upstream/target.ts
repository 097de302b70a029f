import type { Env } from "../env.js";

/** One backend to send a request to. The gateway's routing stage picks among several. */
export interface UpstreamTarget {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:8788. */
  baseUrl: string;
  /** HMAC secret this backend verifies with. */
  secret: string;
}

export function defaultTarget(env: Env): UpstreamTarget {
  return { baseUrl: (env.BACKEND_URL ?? "").replace(/\/+$/, ""), secret: env.BACKEND_SECRET ?? "" };
}

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;
