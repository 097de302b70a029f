/**
 * Source code and structured text written for this project (original, free to use) so the trained
 * vocabulary has tokens for indentation, brackets, keywords and identifiers, as real code-aware
 * tokenizers do. Kept free of backticks and dollar-brace so it can sit in template literals.
 */
export const CODE: readonly string[] = [
  String.raw`import { readFile } from "node:fs/promises";

export interface User {
  id: number;
  name: string;
  email: string;
  createdAt: Date;
}

export async function loadUsers(path: string): Promise<User[]> {
  const text = await readFile(path, "utf8");
  const rows = JSON.parse(text) as Array<Record<string, unknown>>;
  return rows.map((row) => ({
    id: Number(row.id),
    name: String(row.name),
    email: String(row.email).toLowerCase(),
    createdAt: new Date(String(row.created_at)),
  }));
}

export function groupBy<T, K extends string>(items: T[], key: (item: T) => K): Record<K, T[]> {
  const out = {} as Record<K, T[]>;
  for (const item of items) {
    const k = key(item);
    if (!out[k]) out[k] = [];
    out[k].push(item);
  }
  return out;
}`,

  String.raw`class LruCache<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly capacity: number) {
    if (capacity <= 0) throw new RangeError("capacity must be positive");
  }

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    if (this.map.has(key)) this.map.delete(key);
    else if (this.map.size >= this.capacity) {
      const oldest = this.map.keys().next().value as K;
      this.map.delete(oldest);
    }
    this.map.set(key, value);
  }

  get size(): number {
    return this.map.size;
  }
}`,

  String.raw`def fibonacci(n: int) -> list[int]:
    """Return the first n Fibonacci numbers."""
    if n <= 0:
        return []
    result = [0, 1]
    while len(result) < n:
        result.append(result[-1] + result[-2])
    return result[:n]


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


class Account:
    def __init__(self, owner: str, balance: float = 0.0) -> None:
        self.owner = owner
        self.balance = balance

    def deposit(self, amount: float) -> None:
        if amount <= 0:
            raise ValueError("amount must be positive")
        self.balance += amount

    def withdraw(self, amount: float) -> None:
        if amount > self.balance:
            raise ValueError("insufficient funds")
        self.balance -= amount

    def __repr__(self) -> str:
        return f"Account(owner={self.owner!r}, balance={self.balance:.2f})"


if __name__ == "__main__":
    print(fibonacci(10))
    print([n for n in range(30) if is_prime(n)])
    with open("data.txt", "r", encoding="utf-8") as f:
        for line in f:
            print(line.strip())`,

  String.raw`#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t len;
    size_t cap;
    int *data;
} Vec;

static void vec_push(Vec *v, int x) {
    if (v->len == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->data = realloc(v->data, v->cap * sizeof(int));
        if (!v->data) {
            perror("realloc");
            exit(1);
        }
    }
    v->data[v->len++] = x;
}

int main(int argc, char **argv) {
    Vec v = {0, 0, NULL};
    for (int i = 0; i < 100; i++) {
        vec_push(&v, i * i);
    }
    long sum = 0;
    for (size_t i = 0; i < v.len; i++) sum += v.data[i];
    printf("sum = %ld\n", sum);
    free(v.data);
    return 0;
}`,

  String.raw`use std::collections::HashMap;
use std::fs;

#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub threads: usize,
    pub verbose: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self { name: "server".to_string(), threads: 4, verbose: false }
    }
}

pub fn word_counts(text: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for word in text.split_whitespace() {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let text = fs::read_to_string("input.txt")?;
    let counts = word_counts(&text);
    let mut pairs: Vec<_> = counts.into_iter().collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1));
    for (word, n) in pairs.iter().take(10) {
        println!("{word}: {n}");
    }
    Ok(())
}`,

  String.raw`package main

import (
	"fmt"
	"net/http"
	"time"
)

type Server struct {
	addr    string
	timeout time.Duration
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"status\": \"ok\", \"time\": %d}", time.Now().Unix())
}

func main() {
	s := &Server{addr: ":8080", timeout: 5 * time.Second}
	http.HandleFunc("/health", s.handleHealth)
	if err := http.ListenAndServe(s.addr, nil); err != nil {
		panic(err)
	}
}`,

  String.raw`SELECT u.id, u.name, COUNT(o.id) AS order_count, SUM(o.total) AS revenue
FROM users AS u
LEFT JOIN orders AS o ON o.user_id = u.id
WHERE u.created_at >= '2024-01-01'
GROUP BY u.id, u.name
HAVING COUNT(o.id) > 0
ORDER BY revenue DESC
LIMIT 20;

CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  payload TEXT,
  created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

INSERT INTO events (tenant_id, kind, payload) VALUES ('acme', 'login', '{"ip": "10.0.0.1"}');`,

  String.raw`{
  "name": "example-service",
  "version": "1.4.2",
  "private": true,
  "scripts": {
    "build": "tsc -p tsconfig.json",
    "test": "vitest run",
    "start": "node dist/index.js"
  },
  "dependencies": {
    "express": "^4.19.2",
    "zod": "^3.23.8"
  },
  "config": {
    "port": 3000,
    "retries": 3,
    "timeoutMs": 1500,
    "features": ["search", "export", "billing"],
    "enabled": true,
    "owner": null
  }
}`,

  String.raw`#!/usr/bin/env bash
set -euo pipefail

OUT_DIR="build/output"
mkdir -p "$OUT_DIR"

for file in src/*.txt; do
  name="$(basename "$file" .txt)"
  echo "processing $name"
  tr '[:upper:]' '[:lower:]' < "$file" | sort | uniq -c > "$OUT_DIR/$name.counts"
done

if [ -f "$OUT_DIR/summary.log" ]; then
  rm "$OUT_DIR/summary.log"
fi
grep -rn "TODO" src/ || echo "no TODO items found"
git status --short && git log --oneline -n 5`,

  String.raw`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Dashboard</title>
  <link rel="stylesheet" href="/static/style.css">
</head>
<body>
  <header class="top-bar">
    <h1>Usage dashboard</h1>
    <nav><a href="/keys">API keys</a> | <a href="/billing">Billing</a></nav>
  </header>
  <main id="content">
    <table class="usage">
      <thead><tr><th>Date</th><th>Requests</th><th>Tokens</th></tr></thead>
      <tbody></tbody>
    </table>
    <button type="button" onclick="refresh()">Refresh</button>
  </main>
  <script src="/static/app.js"></script>
</body>
</html>`,

  String.raw`.top-bar {
  display: flex;
  align-items: center;
  justify-content: space-between;
  padding: 12px 24px;
  background-color: #1f2937;
  color: #f9fafb;
}

table.usage td,
table.usage th {
  padding: 4px 8px;
  border-bottom: 1px solid #e5e7eb;
  text-align: right;
}

@media (max-width: 600px) {
  .top-bar { flex-direction: column; }
}`,

  String.raw`# Project setup

1. Install the dependencies with **npm install**.
2. Copy the example settings: cp .env.example .env
3. Start the development server: npm run dev

## Configuration

| Variable | Default | Description |
| --- | --- | --- |
| PORT | 8080 | Port the HTTP server listens on |
| LOG_LEVEL | info | One of debug, info, warn, error |
| MAX_TOKENS | 4096 | Upper limit on generated tokens per request |

> Note: never commit the .env file; it contains secrets.

- [x] write the parser
- [ ] add tests for edge cases
- [ ] document the public API`,

  String.raw`export function softmax(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp(logits[i] - max);
    sum += out[i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

export function topK(values: Float32Array, k: number): number[] {
  const idx = Array.from(values.keys());
  idx.sort((a, b) => values[b] - values[a] || a - b);
  return idx.slice(0, k);
}

const response = await fetch("https://api.example.com/v1/chat/completions", {
  method: "POST",
  headers: { "content-type": "application/json", authorization: "Bearer sk-test" },
  body: JSON.stringify({ model: "demo", messages: [{ role: "user", content: "Hello!" }], stream: true }),
});
if (!response.ok) throw new Error("request failed with status " + response.status);`,

  String.raw`import numpy as np

def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    variance = np.mean(x.astype(np.float32) ** 2, axis=-1, keepdims=True)
    return (x / np.sqrt(variance + eps)) * weight


def attention(q, k, v, mask=None):
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    probs = np.exp(scores)
    probs /= probs.sum(axis=-1, keepdims=True)
    return probs @ v


for epoch in range(10):
    loss = 0.0
    for batch in loader:
        optimizer.zero_grad()
        output = model(batch["input_ids"])
        loss_value = criterion(output, batch["labels"])
        loss_value.backward()
        optimizer.step()
        loss += loss_value.item()
    print(f"epoch {epoch}: loss={loss / len(loader):.4f}")`,

  String.raw`apiVersion: apps/v1
kind: Deployment
metadata:
  name: inference-backend
  labels:
    app: backend
spec:
  replicas: 3
  selector:
    matchLabels:
      app: backend
  template:
    metadata:
      labels:
        app: backend
    spec:
      containers:
        - name: server
          image: registry.example.com/backend:1.2.0
          ports:
            - containerPort: 8000
          resources:
            limits:
              memory: "16Gi"
              cpu: "4"
          env:
            - name: MODEL_DIR
              value: /models/default`,

  String.raw`public class Matrix {
    private final double[][] values;

    public Matrix(int rows, int cols) {
        this.values = new double[rows][cols];
    }

    public Matrix multiply(Matrix other) {
        int n = values.length, m = other.values[0].length, k = other.values.length;
        Matrix result = new Matrix(n, m);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < m; j++) {
                double sum = 0;
                for (int t = 0; t < k; t++) {
                    sum += values[i][t] * other.values[t][j];
                }
                result.values[i][j] = sum;
            }
        }
        return result;
    }

    @Override
    public String toString() {
        return "Matrix(" + values.length + "x" + values[0].length + ")";
    }
}`,
];
