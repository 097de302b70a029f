/** A backend's refusal (non-2xx before any answer) as the client's error, status and Retry-After kept. */
import { ApiError, isOpenAIErrorBody, upstreamError } from "../../src/openai/errors.js";

export async function upstreamFailure(res: Response): Promise<ApiError> {
  const text = await res.text();
  try {
    const body: unknown = JSON.parse(text);
    if (isOpenAIErrorBody(body)) {
      const e = body.error;
      const headers: Record<string, string> = {};
      const retry = res.headers.get("retry-after");
      if (retry) headers["retry-after"] = retry;
      return new ApiError(res.status >= 400 ? res.status : 502, e.message, e.type, e.code, e.param, headers);
    }
  } catch {
    // not JSON: fall through
  }
  return upstreamError(`The inference backend answered ${res.status}.`, "upstream_error");
}
