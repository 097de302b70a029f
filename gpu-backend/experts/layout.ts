import type { ByteRange } from "../model/types.js";
import { IO_ALIGN } from "./reader.js";

/** One positioned read into a slot. */
export interface ReadOp {
  file: string;
  offset: number;
  length: number;
  slotOffset: number;
}

/** How one expert's byte ranges land in a slot: the reads to issue and where each range ends up. */
export interface ExpertPlan {
  ops: ReadOp[];
  /** Per checkpoint range (same order as expertRanges): where its bytes sit in the slot. */
  views: { slotOffset: number; length: number }[];
  /** Per checkpoint range: its file (views and files line up). */
  files: string[];
  /** Slot bytes this expert needs (aligned spans laid end to end). */
  slotBytes: number;
  /** Bytes the reads move from disk (ranges + alignment padding + merged gaps). */
  readBytes: number;
  /** Bytes of the ranges themselves (the expert's size on disk). */
  dataBytes: number;
}

/**
 * Ranges of one file closer than this are read as one span (one syscall beats two). Small on
 * purpose: a gap's bytes are read and held in the slot for nothing.
 */
const MERGE_GAP = 2 * IO_ALIGN;
/** Reads are split into pieces of at most this size so one expert uses several I/O threads. */
export const MAX_OP_BYTES = 2 * 1024 * 1024;

const down = (x: number) => Math.floor(x / IO_ALIGN) * IO_ALIGN;
const up = (x: number) => Math.ceil(x / IO_ALIGN) * IO_ALIGN;

/**
 * Plan the reads of one expert: ranges of the same file are sorted and merged into aligned spans
 * (offset, length and slot position all multiples of IO_ALIGN, so O_DIRECT reads land in the slot
 * with no bounce copy); a span that would run past the end of its file stops at the exact end.
 */
export function planExpert(
  ranges: ByteRange[],
  fileSize: (file: string) => number,
  maxOp = MAX_OP_BYTES,
): ExpertPlan {
  const order = ranges.map((r, i) => ({ r, i }));
  order.sort((a, b) => (a.r.file === b.r.file ? a.r.offset - b.r.offset : a.r.file < b.r.file ? -1 : 1));
  const views: ExpertPlan["views"] = new Array(ranges.length);
  const ops: ReadOp[] = [];
  let slot = 0;
  let readBytes = 0;
  let i = 0;
  while (i < order.length) {
    const file = order[i].r.file;
    const start = down(order[i].r.offset);
    let end = order[i].r.offset + order[i].r.length;
    let j = i + 1;
    while (j < order.length && order[j].r.file === file && order[j].r.offset <= up(end) + MERGE_GAP) {
      end = Math.max(end, order[j].r.offset + order[j].r.length);
      j++;
    }
    // Never stop before the data itself: a file shorter than its ranges (truncated) must fail
    // the read with "short read", not hand back a slot with stale bytes.
    const spanEnd = Math.min(up(end), Math.max(fileSize(file), end));
    for (let k = i; k < j; k++) {
      views[order[k].i] = { slotOffset: slot + (order[k].r.offset - start), length: order[k].r.length };
    }
    for (let off = start; off < spanEnd; off += maxOp) {
      const length = Math.min(maxOp, spanEnd - off);
      ops.push({ file, offset: off, length, slotOffset: slot + (off - start) });
      readBytes += length;
    }
    slot += up(spanEnd - start);
    i = j;
  }
  const dataBytes = ranges.reduce((s, r) => s + r.length, 0);
  return { ops, views, files: ranges.map((r) => r.file), slotBytes: slot, readBytes, dataBytes };
}
