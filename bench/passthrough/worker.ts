/**
 * The bare pass-through baseline for `npm run bench -- edge`: a minimal worker that only forwards
 * the request to ORIGIN_URL and streams the answer back. Run under `wrangler dev` exactly like the
 * gateway, so the difference between the two is what the gateway does.
 */
interface Env {
  ORIGIN_URL: string;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response('{"status":"ok"}');
    return fetch(`${env.ORIGIN_URL}${url.pathname}${url.search}`, {
      method: request.method,
      headers: request.headers,
      body: request.body,
    });
  },
};
