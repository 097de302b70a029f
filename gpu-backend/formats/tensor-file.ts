import { closeSync } from "node:fs";
import { FormatError } from "./errors.js";
import { openWithHeader, preadExact } from "./io.js";

/** What both container formats know of a tensor: where its bytes are. */
export interface TensorLocation {
  /** Absolute byte offset in the file. */
  offset: number;
  nbytes: number;
}

/**
 * An open safetensors or GGUF file: its parsed header plus positioned tensor reads. Errors name
 * the file and the tensor.
 */
export class TensorFile<I extends TensorLocation, H extends { tensors: Map<string, I> }> {
  readonly header: H;
  private fd: number | undefined;

  constructor(
    readonly path: string,
    readHeader: (fd: number, path: string) => H,
  ) {
    const { fd, header } = openWithHeader(path, readHeader);
    this.fd = fd;
    this.header = header;
  }

  info(name: string): I {
    const t = this.header.tensors.get(name);
    if (!t) throw new FormatError(this.path, "tensor not found", name);
    return t;
  }

  /** Raw little-endian bytes of one tensor. */
  read(name: string): Uint8Array {
    const t = this.info(name);
    return this.readRange(t.offset, t.nbytes, name);
  }

  readRange(offset: number, length: number, tensor?: string): Uint8Array {
    if (this.fd === undefined) throw new FormatError(this.path, "file is closed", tensor);
    try {
      return preadExact(this.fd, offset, length);
    } catch (e) {
      throw new FormatError(this.path, (e as Error).message, tensor);
    }
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
