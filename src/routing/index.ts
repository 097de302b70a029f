export * from "./breaker.js";
export * from "./hash.js";
export * from "./prefix.js";
export * from "./select.js";
export * from "./types.js";
