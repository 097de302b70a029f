/**
 * Running a benchmark process on "a machine smaller than the model": a cgroup v1 memory limit
 * (page cache included, which is what makes llama.cpp's mmap page), and cold starts with the page
 * cache dropped. Both need root; callers report when they are unavailable instead of faking it.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const CG_ROOT = "/sys/fs/cgroup/memory";

export function cgroupsAvailable(): boolean {
  try {
    const probe = join(CG_ROOT, `paging-probe-${process.pid}`);
    mkdirSync(probe);
    rmdirSync(probe);
    return true;
  } catch {
    return false;
  }
}

/** Drop the page cache (dirty pages written first). False when not permitted. */
export function dropPageCache(): boolean {
  spawnSync("sync");
  try {
    writeFileSync("/proc/sys/vm/drop_caches", "3\n");
    return true;
  } catch {
    return false;
  }
}

export interface CappedResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** memory.max_usage_in_bytes of the group at the end (RSS + page cache peak); null when uncapped. */
  peakBytes: number | null;
  /** Times the limit was hit (memory.failcnt). */
  failcnt: number | null;
}

/**
 * Run `cmd args` (optionally inside a fresh memory cgroup limited to `limitBytes`, swap
 * included where the kernel accounts it), collect its output, remove the group.
 */
export function runCapped(
  cmd: string,
  args: string[],
  opts: { limitBytes?: number; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<CappedResult> {
  let group: string | null = null;
  if (opts.limitBytes !== undefined) {
    group = join(CG_ROOT, `paging-bench-${process.pid}-${Date.now()}`);
    mkdirSync(group);
    writeFileSync(join(group, "memory.limit_in_bytes"), String(Math.floor(opts.limitBytes)));
    const memsw = join(group, "memory.memsw.limit_in_bytes");
    if (existsSync(memsw)) {
      try {
        writeFileSync(memsw, String(Math.floor(opts.limitBytes)));
      } catch {
        // no swap accounting: RAM limit alone
      }
    }
  }
  // The shell joins the group before exec, so every byte the benchmark touches is charged to it.
  const script = group ? `echo $$ > ${join(group, "cgroup.procs")} && exec "$0" "$@"` : `exec "$0" "$@"`;
  return new Promise((resolve, reject) => {
    const child = spawn("sh", ["-c", script, cmd, ...args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs) : null;
    child.on("error", reject);
    child.on("close", (code) => {
      if (timer) clearTimeout(timer);
      let peakBytes: number | null = null;
      let failcnt: number | null = null;
      if (group) {
        try {
          peakBytes = Number(readFileSync(join(group, "memory.max_usage_in_bytes"), "utf8").trim());
          failcnt = Number(readFileSync(join(group, "memory.failcnt"), "utf8").trim());
        } catch {
          // the group vanished: leave the numbers out
        }
        try {
          rmdirSync(group);
        } catch {
          // a straggler is still inside; the kernel removes the group once it exits
        }
      }
      resolve({
        code,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        peakBytes,
        failcnt,
      });
    });
  });
}
