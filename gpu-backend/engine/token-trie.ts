/**
 * The tokens of a vocabulary as a byte trie, for the grammar masks (json-constraint.ts): walking it
 * from an automaton state steps each shared prefix once and drops a whole subtree at the first byte
 * the state refuses, instead of feeding every token's bytes from the start.
 */
import type { ByteAutomaton } from "./json-grammar.js";

export class TokenTrie {
  /** Per node: first child, next sibling (-1: none), the byte on the edge into it. */
  private readonly firstChild: Int32Array;
  private readonly nextSibling: Int32Array;
  private readonly edge: Uint8Array;
  /** Per node: the token ids spelled exactly by its path, as a range of `ids`. */
  private readonly idStart: Int32Array;
  private readonly idCount: Int32Array;
  private readonly ids: Int32Array;

  constructor(bytes: readonly Uint8Array[], tokens: readonly number[]) {
    const order = [...tokens].sort((a, b) => compareBytes(bytes[a], bytes[b]));
    let total = 1;
    for (const id of tokens) total += bytes[id].length;
    this.firstChild = new Int32Array(total).fill(-1);
    this.nextSibling = new Int32Array(total).fill(-1);
    this.edge = new Uint8Array(total);
    this.idStart = new Int32Array(total);
    this.idCount = new Int32Array(total);
    this.ids = Int32Array.from(order);
    const lastChild = new Int32Array(total).fill(-1);
    // Sorted keys: the path of the previous token is the stack; keep its common prefix, add the rest.
    const path = [0];
    let prev: Uint8Array = new Uint8Array(0);
    let nodes = 1;
    order.forEach((id, i) => {
      const b = bytes[id];
      let common = 0;
      while (common < b.length && common < prev.length && b[common] === prev[common]) common++;
      path.length = common + 1;
      for (let d = common; d < b.length; d++) {
        const parent = path[d];
        const node = nodes++;
        this.edge[node] = b[d];
        if (lastChild[parent] < 0) this.firstChild[parent] = node;
        else this.nextSibling[lastChild[parent]] = node;
        lastChild[parent] = node;
        path.push(node);
      }
      const end = path[b.length];
      if (this.idCount[end] === 0) this.idStart[end] = i;
      this.idCount[end]++;
      prev = b;
    });
  }

  /** Calls allow(id) for every token whose bytes the automaton accepts from `state`. */
  walk(state: ByteAutomaton, allow: (id: number) => void): void {
    this.visitChildren(0, state, allow);
  }

  private visitChildren(node: number, state: ByteAutomaton, allow: (id: number) => void): void {
    for (let c = this.firstChild[node]; c >= 0; c = this.nextSibling[c]) {
      const next = state.step(this.edge[c]);
      if (!next) continue;
      for (let k = 0; k < this.idCount[c]; k++) allow(this.ids[this.idStart[c] + k]);
      this.visitChildren(c, next, allow);
    }
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
