import { type FileHandle, open } from "node:fs/promises";
import { loadNative, type NativeAddon } from "../device/cpu/native.js";

/**
 * Where the expert store gets its bytes: positioned reads into buffers it owns. The native reader
 * uses O_DIRECT on libuv worker threads (no page cache, so an expert is never held twice); the
 * buffered reader is the portable fallback (and what tests wrap to inject faults).
 */
export interface BlockReader {
  /** "direct" bypasses the page cache; "buffered" goes through it (say which in benchmarks). */
  readonly kind: "direct" | "buffered";
  /** Memory for slots: aligned to at least `alignment` bytes. */
  alloc(bytes: number): Uint8Array;
  /** Read exactly `length` bytes at `offset` of `file` into dest[destOffset..]; rejects on error or a short file. */
  read(file: string, offset: number, length: number, dest: Uint8Array, destOffset: number): Promise<number>;
  close(): void;
}

/** Offsets, lengths and buffer addresses that are multiples of this go straight to the device. */
export const IO_ALIGN = 4096;

type NativeIo = Pick<NativeAddon, "allocAligned" | "readDirect">;

/** The native addon's I/O functions, or null when the addon is not built. */
export function loadNativeIo(): NativeIo | null {
  try {
    return loadNative();
  } catch {
    return null;
  }
}

/** O_DIRECT reads on libuv threads through the native addon. */
export class DirectReader implements BlockReader {
  readonly kind = "direct" as const;
  constructor(private readonly io: NativeIo) {}
  alloc(bytes: number): Uint8Array {
    return this.io.allocAligned(bytes, IO_ALIGN);
  }
  read(file: string, offset: number, length: number, dest: Uint8Array, destOffset: number): Promise<number> {
    return this.io.readDirect(file, offset, length, dest, destOffset);
  }
  close(): void {}
}

/** Page-cache reads with fs.promises (also on libuv threads); descriptors cached per file. */
export class BufferedReader implements BlockReader {
  readonly kind = "buffered" as const;
  private readonly handles = new Map<string, Promise<FileHandle>>();

  alloc(bytes: number): Uint8Array {
    // Buffered reads have no alignment rule; plain memory will do.
    return new Uint8Array(bytes);
  }

  private handle(file: string): Promise<FileHandle> {
    let h = this.handles.get(file);
    if (!h) {
      h = open(file, "r");
      this.handles.set(file, h);
      h.catch(() => this.handles.delete(file));
    }
    return h;
  }

  async read(
    file: string,
    offset: number,
    length: number,
    dest: Uint8Array,
    destOffset: number,
  ): Promise<number> {
    const fh = await this.handle(file);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(dest, destOffset + done, length - done, offset + done);
      if (bytesRead === 0) {
        throw new Error(
          `short read of ${file}: wanted ${length} bytes at offset ${offset}, got ${done} (file truncated?)`,
        );
      }
      done += bytesRead;
    }
    return done;
  }

  close(): void {
    for (const h of this.handles.values()) h.then((fh) => fh.close()).catch(() => {});
    this.handles.clear();
  }
}

/** The best reader available: direct I/O through the addon when built, else buffered. */
export function defaultReader(): BlockReader {
  const io = loadNativeIo();
  return io ? new DirectReader(io) : new BufferedReader();
}
