/**
 * A cached answer, stored as msgpack (compact, binary-safe; msgpackr runs in workerd and Node).
 * It keeps the content as the deltas that were streamed, so a replay sends the same content.
 */
import { Packr } from "msgpackr";

export interface CacheEntry {
  v: 1;
  kind: "chat" | "completion";
  /** Model name as requested. */
  model: string;
  /** ms since epoch when stored. */
  createdAt: number;
  /** Content deltas in order (their concatenation is the answer). */
  deltas: string[];
  finishReason: string;
  promptTokens: number;
  completionTokens: number;
}

// Plain maps, no msgpackr record extension: any msgpack reader can decode an entry.
const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeEntry(e: CacheEntry): Uint8Array {
  return packr.pack(e);
}

function isEntry(x: unknown): x is CacheEntry {
  if (typeof x !== "object" || x === null) return false;
  const e = x as Record<string, unknown>;
  return (
    e.v === 1 &&
    (e.kind === "chat" || e.kind === "completion") &&
    typeof e.model === "string" &&
    typeof e.createdAt === "number" &&
    Array.isArray(e.deltas) &&
    e.deltas.every((d) => typeof d === "string") &&
    typeof e.finishReason === "string" &&
    typeof e.promptTokens === "number" &&
    typeof e.completionTokens === "number"
  );
}

/** Decode, or null for anything that is not a valid v1 entry (a corrupt entry is a miss). */
export function decodeEntry(bytes: Uint8Array): CacheEntry | null {
  try {
    const x: unknown = packr.unpack(bytes);
    return isEntry(x) ? x : null;
  } catch {
    return null;
  }
}

export function entryText(e: CacheEntry): string {
  return e.deltas.join("");
}
