export * from "./canonical.js";
export * from "./entry.js";
export * from "./key.js";
export * from "./replay.js";
