import { invalidJson } from "../../src/openai/errors.js";

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Parse a request body as JSON; 400 invalid_json (OpenAI-style) when it is not. */
export function parseJsonBody(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    throw invalidJson();
  }
}
