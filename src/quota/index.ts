export * from "./arithmetic.js";
export * from "./estimate.js";
export * from "./headers.js";
export type * from "./types.js";
export * from "./windows.js";
