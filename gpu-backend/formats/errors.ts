/**
 * One error type for every checkpoint-format problem, so callers (CLI, server) can print a clear
 * message that names the file and, when known, the tensor.
 */
export class FormatError extends Error {
  readonly file: string;
  readonly tensor: string | undefined;

  constructor(file: string, message: string, tensor?: string) {
    super(`${file}${tensor !== undefined ? ` [tensor ${tensor}]` : ""}: ${message}`);
    this.name = "FormatError";
    this.file = file;
    this.tensor = tensor;
  }
}
