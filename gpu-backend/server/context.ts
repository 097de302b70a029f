import type { HttpBindings } from "@hono/node-server";

export type ServerEnv = {
  Bindings: HttpBindings;
  Variables: {
    /** The request body as received (read once by auth, which hashes it). */
    rawBody: Uint8Array;
    /** Tenant id from a signed request (empty for unsigned local calls). */
    tenant: string;
  };
};
