export * from "./codec.js";
export * from "./collect.js";
export * from "./openai.js";
export * from "./sse.js";
export * from "./types.js";
