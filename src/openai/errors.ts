/**
 * OpenAI-shaped errors, shared by the edge and the backend so both answer bad input the same way:
 * body `{ error: { message, type, param, code } }` with a matching HTTP status.
 */

export type OpenAIErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "rate_limit_error"
  | "server_error";

export interface OpenAIErrorBody {
  error: {
    message: string;
    type: OpenAIErrorType;
    param: string | null;
    code: string | null;
  };
}

/** Thrown anywhere in a request; the error handler turns it into the JSON body and status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: OpenAIErrorType,
    readonly code: string | null = null,
    readonly param: string | null = null,
    /** Extra response headers (e.g. Retry-After on 429). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function isOpenAIErrorBody(value: unknown): value is OpenAIErrorBody {
  if (typeof value !== "object" || value === null) return false;
  const err = (value as { error?: unknown }).error;
  return (
    typeof err === "object" && err !== null && typeof (err as { message?: unknown }).message === "string"
  );
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, "invalid_request_error", code, param);

export const invalidJson = () =>
  badRequest(
    "We could not parse the JSON body of your request. The body must be a valid JSON object.",
    null,
    "invalid_json",
  );

export const missingApiKey = () =>
  new ApiError(
    401,
    "You didn't provide an API key. Send it in the Authorization header as 'Bearer YOUR_KEY'.",
    "authentication_error",
    "missing_api_key",
  );

export const invalidApiKey = (hint: string) =>
  new ApiError(401, `Incorrect API key provided: ${hint}.`, "authentication_error", "invalid_api_key");

export const modelNotFound = (model: string) =>
  new ApiError(
    404,
    `The model '${model}' does not exist or you do not have access to it.`,
    "invalid_request_error",
    "model_not_found",
    "model",
  );

export const notFound = (message = "Not found.") =>
  new ApiError(404, message, "not_found_error", "not_found");

/** A known route called with a method it does not take (405, with the Allow header). */
export const methodNotAllowed = (method: string, path: string, allow: string) =>
  new ApiError(
    405,
    `${method} is not allowed on ${path}; use ${allow}.`,
    "invalid_request_error",
    "method_not_allowed",
    null,
    {
      allow,
    },
  );

export const payloadTooLarge = (limit: number) =>
  new ApiError(
    413,
    `Request body too large: the limit is ${limit} bytes.`,
    "invalid_request_error",
    "request_too_large",
  );

export const serverError = (
  message = "The server had an error while processing your request.",
  code = "server_error",
) => new ApiError(500, message, "server_error", code);

export const upstreamError = (message: string, code = "upstream_unavailable") =>
  new ApiError(502, message, "server_error", code);
