/**
 * openCheckpoint(path): a Hugging Face folder or a .gguf file -> Checkpoint (types.ts).
 * See checkpoint-hf.ts and checkpoint-gguf.ts for the name mappings and conventions.
 */
import { openSync, readSync, statSync } from "node:fs";
import { FormatError } from "../formats/errors.js";
import { GGUF_MAGIC } from "../formats/gguf.js";
import { closeQuietly } from "../formats/io.js";
import { GgufCheckpoint } from "./checkpoint-gguf.js";
import { HfCheckpoint } from "./checkpoint-hf.js";
import type { Checkpoint } from "./types.js";

export { configFromGguf, GgufCheckpoint } from "./checkpoint-gguf.js";
export { HfCheckpoint } from "./checkpoint-hf.js";

function startsWithGgufMagic(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const b = new Uint8Array(4);
    return readSync(fd, b, 0, 4, 0) === 4 && new DataView(b.buffer).getUint32(0, true) === GGUF_MAGIC;
  } finally {
    closeQuietly(fd);
  }
}

export function openCheckpoint(path: string): Checkpoint {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch (e) {
    throw new FormatError(path, `cannot open checkpoint (${(e as Error).message})`);
  }
  if (st.isDirectory()) return new HfCheckpoint(path);
  if (path.endsWith(".gguf") || startsWithGgufMagic(path)) return new GgufCheckpoint(path);
  throw new FormatError(path, "not a checkpoint: expected a Hugging Face folder or a .gguf file");
}
