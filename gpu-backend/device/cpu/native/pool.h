// A small persistent thread pool for the ops (instead of OpenMP).
//
// Why not OpenMP: an OpenMP region ends with a barrier that every team thread must reach, so when
// another process holds a core, each op waits for that core's scheduler tick (4 ms here) before its
// worker even starts, and decode stalls. Here the caller takes chunks itself from a shared counter
// and only waits for chunks a worker has actually started; a late worker finds nothing left.
#pragma once
#include <functional>

namespace moe {

// Runs f(chunk) for every chunk in [0, n) on up to `threads` threads, the calling thread included,
// and returns when all are done. Calls from several threads at once are serialized. Two-ended: the
// calling thread takes chunks from the front, the workers from the back (so two kinds of work
// listed at either end run side by side); otherwise all take them in order.
void run_chunks(int threads, int n, const std::function<void(int)>& f, bool two_ended = false);

// Gives the pool's workers memory to pull into the caches while they wait for work (the caller
// lists the weights its next ops read); replaces the previous list. Ranges past the first
// kPrefetchRanges are left out (a hint only).
constexpr int kPrefetchRanges = 32;
void prefetch_when_idle(const void* const* ptrs, const size_t* lens, int n);

}  // namespace moe
