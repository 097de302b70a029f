/**
 * Child processes for the local stack: each runs in its own process group (so stopping it stops
 * whatever it spawned: tsx's node, wrangler's workerd), its output is prefixed line by line, and
 * it can be awaited healthy over HTTP.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";

export interface Proc {
  name: string;
  child: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Recent output lines, for error messages. */
  tail: string[];
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Print each output line prefixed with the name (default true). */
  echo?: boolean;
}

export function startProc(name: string, command: string, args: string[], opts: SpawnOptions): Proc {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true, // own process group: killed as a whole, and not hit by the terminal's Ctrl-C twice
    stdio: ["ignore", "pipe", "pipe"],
  });
  const tail: string[] = [];
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
    if (opts.echo !== false) console.log(`[${name}] ${line}`);
  };
  if (child.stdout) createInterface({ input: child.stdout }).on("line", onLine);
  if (child.stderr) createInterface({ input: child.stderr }).on("line", onLine);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
    child.once("error", (err) => {
      onLine(`failed to start: ${err.message}`);
      resolve("spawn-error");
    });
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const signalGroup = (sig: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      // already gone
    }
  };
  return {
    name,
    child,
    exited,
    tail,
    async stop(graceMs = 5000) {
      if (done) return;
      signalGroup("SIGTERM");
      const timer = setTimeout(() => signalGroup("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
      signalGroup("SIGKILL"); // stragglers in the group (e.g. workerd under wrangler)
    },
  };
}

/** A free TCP port on 127.0.0.1 (the OS picks; there is a small race until the user binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Poll `url` until it answers 200; fail early if `proc` exits. Returns the parsed JSON body. */
export async function waitHealthy(url: string, proc: Proc, timeoutMs: number): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  let exited: number | string | null = null;
  void proc.exited.then((c) => {
    exited = c;
  });
  while (Date.now() < deadline) {
    if (exited !== null) {
      throw new Error(`${proc.name} exited (${exited}) before it was ready:\n${proc.tail.join("\n")}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return await res.json().catch(() => null);
      await res.body?.cancel();
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${proc.name} was not healthy at ${url} within ${timeoutMs} ms:\n${proc.tail.join("\n")}`);
}
