// Threading and the small ops. The heavy inner loops live in the per-ISA kernel tables.
#include <algorithm>
#include <atomic>
#include <climits>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <sys/mman.h>

#include "kernels.h"
#include "pool.h"

namespace moe {

static bool cpu_has(const char* isa) {
  if (std::strcmp(isa, "avx512vnni") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  if (std::strcmp(isa, "avx512") == 0) return __builtin_cpu_supports("avx512f");
  if (std::strcmp(isa, "avx2") == 0)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  return std::strcmp(isa, "scalar") == 0;
}

const KernelTable* kernels_by_name(const char* name) {
  if (!cpu_has(name)) return nullptr;
  if (std::strcmp(name, "avx512vnni") == 0) return &kAvx512VnniKernels;
  if (std::strcmp(name, "avx512") == 0) return &kAvx512Kernels;
  if (std::strcmp(name, "avx2") == 0) return &kAvx2Kernels;
  return &kScalarKernels;
}

static const KernelTable* pick_best() {
  __builtin_cpu_init();
  const char* forced = std::getenv("MOE_ISA");
  if (forced && *forced) {
    if (const KernelTable* k = kernels_by_name(forced)) return k;
  }
  if (const KernelTable* k = kernels_by_name("avx512vnni")) return k;
  if (const KernelTable* k = kernels_by_name("avx512")) return k;
  if (const KernelTable* k = kernels_by_name("avx2")) return k;
  return &kScalarKernels;
}

const KernelTable* best_kernels() {
  static const KernelTable* const best = pick_best();
  return best;
}

// Runs f(begin, end) over [0, n) in about 8 chunks per thread (multiples of `align`, at least
// `min_chunk`) from the pool's shared counter. Small problems stay on the calling thread (a
// hand-off costs ~1-2 us).
template <class F>
static void parallel_chunks(int threads, int n, int align, bool worth_it, F&& f, int min_chunk = 1) {
  const int nt = std::min(threads, (n + align - 1) / align);
  if (nt <= 1 || !worth_it) {
    f(0, n);
    return;
  }
  const int chunk = std::max({align, min_chunk, ((n + nt * 8 - 1) / (nt * 8) + align - 1) / align * align});
  const int nchunks = (n + chunk - 1) / chunk;
  run_chunks(nt, nchunks, [&](int c) { f(c * chunk, std::min(n, (c + 1) * chunk)); });
}

// Chunks of a matmul's rows start at multiples of this (the avx512vnni q8/q4 kernels work on
// 16-row groups; a chunk must not split one).
static int row_align(const MatmulArgs& a) {
  return a.dtype == DT_Q8 || a.dtype == DT_Q4 || a.dtype == DT_Q8P || a.dtype == DT_Q4P ? 16 : 4;
}

// Memory-bound matmuls (a few tokens) get chunks of at least this many weight elements: each
// chunk starts a new memory stream whose first lines arrive at DRAM latency before the
// prefetchers catch up, which small chunks pay over and over (a 1 MiB q8 matvec took ~29 us in 16
// chunks, ~27 us in 2; decode 5.04 -> 4.70 ms/token). Compute-bound ones keep ~8 chunks per
// thread, so a thread that loses its core for a moment leaves little behind for the others.
constexpr double kMinStreamChunk = 512 * 1024;
static bool streams(const MatmulArgs& a) { return a.n <= 4; }
static int min_chunk_rows(const MatmulArgs& a, int threads) {
  if (!streams(a)) return 1;
  const int align = row_align(a);
  // ... but a smaller matrix still gets a chunk per thread: one core streams about half of what
  // two do (a 512x512 q8 o_proj alone on one thread took ~16 us of a Maverick-like token's ~2 ms).
  const int perThread = (a.rows + threads - 1) / threads;
  const int rows = std::min(static_cast<int>(kMinStreamChunk / a.cols), perThread);
  return std::max(align, (rows + align - 1) / align * align);
}

void matmul(const KernelTable* k, int threads, const MatmulArgs& args) {
  MatmulArgs a = args;
  if (k->prepare) k->prepare(a, 0);
  const double work = static_cast<double>(a.rows) * a.cols * a.n;
  parallel_chunks(
      threads, a.rows, row_align(a), work >= 32768, [&](int r0, int r1) { k->matmul_rows(a, r0, r1); },
      min_chunk_rows(a, threads));
}

void matmul_many(const KernelTable* k, int threads, std::vector<MatmulArgs>& jobs) {
  double work = 0;
  for (size_t j = 0; j < jobs.size(); j++) {
    MatmulArgs& a = jobs[j];
    // Jobs on the same activations (q/k/v, gate/up) share one preparation.
    const MatmulArgs* same = nullptr;
    for (size_t i = 0; i < j && !same; i++)
      if (jobs[i].prepared && jobs[i].x == a.x && jobs[i].n == a.n && jobs[i].cols == a.cols) same = &jobs[i];
    if (same) a.prepared = same->prepared;
    else if (k->prepare) k->prepare(a, static_cast<int>(j));
    work += static_cast<double>(a.rows) * a.cols * a.n;
  }
  if (threads <= 1 || work < 32768) {
    for (const MatmulArgs& a : jobs) k->matmul_rows(a, 0, a.rows);
    return;
  }
  // Chunks of about equal work (~8 per thread in all, streaming ones at least kMinStreamChunk);
  // boundaries are multiples of row_align(), as in matmul(). Batched jobs (n > 4: compute-bound)
  // and matvec-like ones (memory-bound: routed experts with a token or two) are kept apart.
  struct Chunk {
    int job, r0, r1;
  };
  std::vector<Chunk> dense, stream;
  const double target = work / (threads * 8);
  // Jobs are spread over the threads whole; each is split for the threads too only when there
  // are fewer chunks than threads (small jobs otherwise start more streams for nothing).
  for (int split : {1, threads}) {
    dense.clear();
    stream.clear();
    for (int j = 0; j < static_cast<int>(jobs.size()); j++) {
      const MatmulArgs& a = jobs[j];
      const double rowWork = static_cast<double>(a.cols) * a.n;
      const int align = row_align(a);
      int per = static_cast<int>(target / rowWork);
      per = std::max({align, min_chunk_rows(a, split), (per + align - 1) / align * align});
      for (int r = 0; r < a.rows; r += per)
        (streams(a) ? stream : dense).push_back({j, r, std::min(a.rows, r + per)});
    }
    if (dense.size() + stream.size() >= static_cast<size_t>(threads)) break;
  }
  // Batched chunks first, for the calling thread, streaming ones after them for the workers
  // (run_chunks two-ended): the arithmetic of the batched jobs overlaps the weight streaming of
  // the others. One queue with the two kinds interleaved left both threads on the same kind at
  // once about half the time (16-sequence decode steps ~2-3% slower, alternating runs).
  const bool mixed = !dense.empty() && !stream.empty();
  std::vector<Chunk> chunks = std::move(dense);
  chunks.insert(chunks.end(), stream.begin(), stream.end());
  run_chunks(
      threads, static_cast<int>(chunks.size()),
      [&](int c) {
        const Chunk& ch = chunks[c];
        k->matmul_rows(jobs[ch.job], ch.r0, ch.r1);
      },
      mixed);
}

void pack_quantized_parallel(int threads, int dtype, uint8_t* data, uint8_t* scales, int rows, int cols) {
  const int groups = rows / 16;
  const size_t gbytes = static_cast<size_t>(16) * cols / (dtype == DT_Q8 ? 1 : 2);
  const size_t gscale = static_cast<size_t>(cols) / 32 * 16 * 2;
  // Split from 64K weights: a paged-in Maverick-like expert (three 0.5M-weight matrices) is packed
  // on the decode step's critical path (its first use): ~120 -> ~95 us per expert on two threads.
  parallel_chunks(threads, groups, 1, static_cast<double>(rows) * cols >= (1 << 16), [&](int g0, int g1) {
    pack_quantized(dtype, data + g0 * gbytes, scales + g0 * gscale, (g1 - g0) * 16, cols);
  });
}

// Sum of squares of one row in double, in 8 interleaved lanes (element i goes to lane i % 8)
// added up in a fixed order: independent chains the compiler can vectorize, instead of one double
// add latency per element (~4x faster on a 1,024-wide row), and the same result wherever it runs.
static inline __attribute__((always_inline)) double sum_squares(const float* x, int dim) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= dim; i += 8)
    for (int k = 0; k < 8; k++) lane[k] += static_cast<double>(x[i + k]) * x[i + k];
  for (int k = 0; i < dim; i++, k++) lane[k] += static_cast<double>(x[i]) * x[i];
  return ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

// Built for AVX-512 too (picked at load by the CPU): the same per-lane double arithmetic,
// vectorized (ISO C++ mode keeps GCC from fusing the multiply and add, so both builds agree bit
// for bit).
__attribute__((target_clones("avx512f", "default"))) static void rmsnorm_rows(float* out, const float* x,
                                                                               const float* weight, int r0, int r1,
                                                                               int dim, float eps) {
  for (int r = r0; r < r1; r++) {
    const float* xr = x + static_cast<size_t>(r) * dim;
    float* o = out + static_cast<size_t>(r) * dim;
    const float inv = static_cast<float>(1.0 / std::sqrt(sum_squares(xr, dim) / dim + eps));
    if (weight) {
      for (int i = 0; i < dim; i++) o[i] = xr[i] * inv * weight[i];
    } else {
      for (int i = 0; i < dim; i++) o[i] = xr[i] * inv;
    }
  }
}

void rmsnorm(int threads, float* out, const float* x, const float* weight, int rows, int dim, float eps) {
  // A row's result does not depend on which rows share its chunk, so a batch splits over threads.
  parallel_chunks(threads, rows, 8, rows >= 16 && static_cast<double>(rows) * dim >= 16384,
                  [&](int r0, int r1) { rmsnorm_rows(out, x, weight, r0, r1, dim, eps); });
}

__attribute__((target_clones("avx512f", "default"))) void rope(float* x, int nTok, int nHeads, int headDim,
                                                                const int32_t* positions, const float* invFreq,
                                                                int half, bool neox) {
  // cos/sin of every (token, frequency), kept for the next call: a step ropes q and k of every
  // layer at the same positions, so the table is computed once per step, not 2 x layers times.
  thread_local std::vector<float> cs;
  thread_local std::vector<int32_t> lastPos;
  thread_local std::vector<float> lastFreq;
  const size_t want = 2 * static_cast<size_t>(half) * nTok;
  const bool same = cs.size() == want && std::equal(positions, positions + nTok, lastPos.begin(), lastPos.end()) &&
                    std::equal(invFreq, invFreq + half, lastFreq.begin(), lastFreq.end());
  if (!same) {
    cs.resize(want);
    lastPos.assign(positions, positions + nTok);
    lastFreq.assign(invFreq, invFreq + half);
    for (int t = 0; t < nTok; t++)
      // Angles in double: positions can be large and f32 angle products lose digits.
      for (int i = 0; i < half; i++) {
        const double theta = static_cast<double>(positions[t]) * invFreq[i];
        cs[(static_cast<size_t>(t) * half + i) * 2] = static_cast<float>(std::cos(theta));
        cs[(static_cast<size_t>(t) * half + i) * 2 + 1] = static_cast<float>(std::sin(theta));
      }
  }
  for (int t = 0; t < nTok; t++) {
    const float* ct = cs.data() + static_cast<size_t>(t) * half * 2;
    for (int h = 0; h < nHeads; h++) {
      float* base = x + (static_cast<size_t>(t) * nHeads + h) * headDim;
      for (int i = 0; i < half; i++) {
        float* a = neox ? base + i : base + 2 * i;
        float* b = neox ? a + half : a + 1;
        const float c = ct[2 * i], s = ct[2 * i + 1];
        const float x0 = *a, x1 = *b;
        *a = x0 * c - x1 * s;
        *b = x0 * s + x1 * c;
      }
    }
  }
}

// Prefill chunks of at least this many tokens read their keys and values from a contiguous copy.
constexpr int kGatherTokens = 4;

void attention_many(const KernelTable* k, int threads, const std::vector<AttentionArgs>& seqs) {
  // Items are (sequence, token, range of KV heads). A decode token reads each key row once for
  // all heads: whole rows stream best, so rows are split only as far as needed to give every
  // thread a few items. The tokens of a prefill chunk all read the same keys, one head's slice
  // of every cache row (e.g. 256 of 2,048 bytes): strided, ~2x slower per key than contiguous
  // rows. Their items are one KV head each, head-major, and a thread first copies the head's
  // rows into a contiguous buffer that its following items (more tokens of that head) reuse.
  // The arithmetic per head is unchanged, so the results are too.
  int rowsTotal = 0;
  for (const AttentionArgs& a : seqs) rowsTotal += a.nTok;
  if (rowsTotal == 0) return;
  const int split = std::max(1, (2 * threads + rowsTotal - 1) / rowsTotal);
  struct Item {
    int seq, t, h0, h1;
  };
  std::vector<Item> items;
  size_t scratch = 0;
  double work = 0;
  for (int s = 0; s < static_cast<int>(seqs.size()); s++) {
    const AttentionArgs& a = seqs[s];
    const bool gather = a.nTok >= kGatherTokens;
    const int heads = gather ? 1 : (a.nKvHeads + std::min(split, a.nKvHeads) - 1) / std::min(split, a.nKvHeads);
    if (gather) {
      for (int h = 0; h < a.nKvHeads; h++)
        for (int t = 0; t < a.nTok; t++) items.push_back({s, t, h, h + 1});
    } else {
      for (int t = 0; t < a.nTok; t++)
        for (int h = 0; h < a.nKvHeads; h += heads) items.push_back({s, t, h, std::min(a.nKvHeads, h + heads)});
    }
    const int maxKeys = a.pos0 + a.nTok;
    scratch = std::max(scratch, static_cast<size_t>(heads) * (a.nHeads / a.nKvHeads) * maxKeys);
    work += static_cast<double>(a.nTok) * a.nHeads * maxKeys * a.headDim;
  }
  const int n = static_cast<int>(items.size());
  const int nt = (work >= 16384 && n > 1) ? std::min(threads, n) : 1;
  // Small groups of items (causal prefill: later tokens cost more).
  const int per = std::max(1, n / (nt * 8));
  const int groups = (n + per - 1) / per;
  // A copy is only reused within this call: the cache may be rewritten before the next one.
  static std::atomic<uint64_t> calls{0};
  const uint64_t call = ++calls;
  run_chunks(nt, groups, [&](int gi) {
    thread_local std::vector<float> scores;
    thread_local std::vector<uint8_t> gk, gv;  // one head's rows, in the cache's element type
    thread_local uint64_t gCall = 0;
    thread_local int gSeq = -1, gHead = -1;
    if (scores.size() < scratch) scores.resize(scratch);
    const int end = std::min(n, (gi + 1) * per);
    for (int i = gi * per; i < end; i++) {
      const Item& it = items[i];
      const AttentionArgs& a = seqs[it.seq];
      if (a.nTok < kGatherTokens) {
        k->attend(a, it.t, it.h0, it.h1, scores.data());
        continue;
      }
      const size_t hd = a.headDim, row = static_cast<size_t>(a.nKvHeads) * hd, es = a.kvF16 ? 2 : 4;
      const int keys = a.pos0 + a.nTok;
      if (gCall != call || gSeq != it.seq || gHead != it.h0) {
        gk.resize(keys * hd * es);
        gv.resize(keys * hd * es);
        const size_t off = static_cast<size_t>(it.h0) * hd;
        const auto* k0 = static_cast<const uint8_t*>(a.k);
        const auto* v0 = static_cast<const uint8_t*>(a.v);
        for (int j = 0; j < keys; j++) {
          std::memcpy(gk.data() + j * hd * es, k0 + (j * row + off) * es, hd * es);
          std::memcpy(gv.data() + j * hd * es, v0 + (j * row + off) * es, hd * es);
        }
        gCall = call;
        gSeq = it.seq;
        gHead = it.h0;
      }
      AttentionArgs b = a;
      b.k = gk.data();
      b.v = gv.data();
      b.kvRow = hd;
      b.kvHead0 = it.h0;
      k->attend(b, it.t, it.h0, it.h1, scores.data());
    }
  });
}

void swiglu(const KernelTable* k, int threads, float* out, const float* gate, const float* up, size_t len) {
  if (len > static_cast<size_t>(INT32_MAX)) len = INT32_MAX;  // (callers pass int lengths)
  parallel_chunks(threads, static_cast<int>(len), 64, len >= (1u << 16),
                  [&](int b, int e) { k->swiglu(out + b, gate + b, up + b, static_cast<size_t>(e - b)); });
}

// Elementwise ops are built for AVX-512 too, as rmsnorm_rows: no reassociation, no fusing, so
// the same numbers as the baseline build.
__attribute__((target_clones("avx512f", "default"))) void add_scaled(float* out, const float* a, size_t len,
                                                                      float scale) {
  if (scale == 1.f) {
    for (size_t i = 0; i < len; i++) out[i] += a[i];
  } else {
    for (size_t i = 0; i < len; i++) out[i] += a[i] * scale;
  }
}

__attribute__((target_clones("avx512f", "default"))) void gather_rows(float* dst, const float* src,
                                                                       const int32_t* rows, int count, int dim,
                                                                       const float* scales) {
  for (int r = 0; r < count; r++) {
    float* d = dst + static_cast<size_t>(r) * dim;
    const float* s = src + static_cast<size_t>(rows[r]) * dim;
    if (!scales) {
      std::memcpy(d, s, static_cast<size_t>(dim) * sizeof(float));
      continue;
    }
    const float g = scales[r];
    for (int i = 0; i < dim; i++) d[i] = s[i] * g;
  }
}

void scatter_add_rows(float* dst, const float* src, const int32_t* rows, int count, int dim, const float* scales) {
  for (int r = 0; r < count; r++)
    add_scaled(dst + static_cast<size_t>(rows[r]) * dim, src + static_cast<size_t>(r) * dim, dim,
               scales ? scales[r] : 1.f);
}

void route(const float* logits, int nTok, int nExperts, int k, bool sigmoid, bool renormalize, int32_t* outIds,
           float* outWeights) {
  std::vector<double> score(nExperts);
  std::vector<char> taken(nExperts);
  for (int t = 0; t < nTok; t++) {
    const float* l = logits + static_cast<size_t>(t) * nExperts;
    if (sigmoid) {
      for (int e = 0; e < nExperts; e++) score[e] = l[e];
    } else {
      double mx = -INFINITY, sum = 0;
      for (int e = 0; e < nExperts; e++) mx = std::max(mx, static_cast<double>(l[e]));
      for (int e = 0; e < nExperts; e++) sum += score[e] = std::exp(l[e] - mx);
      for (int e = 0; e < nExperts; e++) score[e] /= sum;
    }
    std::fill(taken.begin(), taken.end(), 0);
    double total = 0;
    for (int j = 0; j < k; j++) {
      int best = -1;  // highest score; ties go to the lower id
      for (int e = 0; e < nExperts; e++)
        if (!taken[e] && (best < 0 || score[e] > score[best])) best = e;
      taken[best] = 1;
      const double w = sigmoid ? 1.0 / (1.0 + std::exp(-score[best])) : score[best];
      outIds[t * k + j] = best;
      outWeights[t * k + j] = static_cast<float>(w);
      total += w;
    }
    if (renormalize && total > 0)
      for (int j = 0; j < k; j++) outWeights[t * k + j] = static_cast<float>(outWeights[t * k + j] / total);
  }
}

double mem_read_bandwidth(const KernelTable* k, size_t bytes, int threads, int passes) {
  const size_t n = bytes / sizeof(float);
  // On huge pages, like the weights and expert slots whose reads the benchmarks' bounds divide by
  // this: on 4 KiB pages the same loop reads ~6% slower here (TLB misses; 43-45 vs 46-48 GB/s,
  // alternating), which would make every bound that much too lenient.
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t size = (n * sizeof(float) + kHuge - 1) / kHuge * kHuge;
  float* p = static_cast<float*>(std::aligned_alloc(kHuge, size));
  if (!p) return 0;
  madvise(p, size, MADV_HUGEPAGE);  // a hint: ignored where transparent huge pages are off
  const int nt = std::max(1, threads);
  // First touch from the threads that will read (page placement), small values so sums stay finite.
  constexpr int kChunks = 64;
  run_chunks(nt, kChunks, [&](int c) {
    const size_t b = n * c / kChunks, e = n * (c + 1) / kChunks;
    std::fill(p + b, p + e, 1e-6f);
  });
  double best = 0;
  std::atomic<float> sink{0};
  for (int pass = 0; pass < passes; pass++) {
    const auto t0 = std::chrono::steady_clock::now();
    run_chunks(nt, kChunks, [&](int c) {
      const size_t b = n * c / kChunks, e = n * (c + 1) / kChunks;
      const float s = k->read_sum(p + b, e - b);
      sink.store(s, std::memory_order_relaxed);  // keeps the reads from being optimised away
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n * sizeof(float)) / s / 1e9);
  }
  std::free(p);
  return best;
}

}  // namespace moe
