import { describe, expect, it } from "vitest";
import { StopStringFilter } from "../../../gpu-backend/engine/stop-strings.js";

function run(stops: string[], pieces: string[]): { out: string; stopped: boolean } {
  const f = new StopStringFilter(stops);
  let out = "";
  for (const p of pieces) {
    out += f.push(p);
    if (f.stopped) return { out, stopped: true };
  }
  return { out: out + f.flush(), stopped: false };
}

describe("stop strings", () => {
  it("passes text through without stops", () => {
    expect(run([], ["ab", "c"])).toEqual({ out: "abc", stopped: false });
  });

  it("cuts before a stop string split across pieces", () => {
    expect(run(["END"], ["hello E", "N", "D more"])).toEqual({ out: "hello ", stopped: true });
  });

  it("holds back a possible prefix, then releases it when it is not a stop", () => {
    const f = new StopStringFilter(["###"]);
    expect(f.push("a#")).toBe("a");
    expect(f.push("#b")).toBe("##b");
  });

  it("takes the earliest of several stop strings", () => {
    expect(run(["yz", "x"], ["wxyz"])).toEqual({ out: "w", stopped: true });
  });

  it("flushes held text at the end", () => {
    expect(run(["abc"], ["xab"])).toEqual({ out: "xab", stopped: false });
  });
});
