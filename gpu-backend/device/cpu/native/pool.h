// A small persistent thread pool for the ops (instead of OpenMP).
//
// Why not OpenMP: an OpenMP region ends with a barrier that every team thread must reach, so when
// another process holds a core, each op waits for that core's scheduler tick (4 ms here) before its
// worker even starts, and decode stalls. Here the caller takes chunks itself from a shared counter
// and only waits for chunks a worker has actually started; a late worker finds nothing left.
#pragma once
#include <cstddef>
#include <functional>

namespace moe {

// Runs f(chunk) for every chunk in [0, n) on up to `threads` threads, the calling thread included,
// and returns when all are done. Calls from several threads at once are serialized.
void run_chunks(int threads, int n, const std::function<void(int)>& f);

// Asks the pool's idle workers to prefetch [p, p + bytes) toward the caches, between and around
// the jobs they run (a job always comes first; the range is dropped when 16 newer ones queue up).
// Returns at once. No effect on results: the memory an op will read soon arrives early, during
// stretches where only the calling thread works (small ops, JS). Needs a worker (threads > 1 ran).
void prefetch_async(const void* p, size_t bytes);
// Drops queued prefetch ranges that start inside [p, p + bytes): the op reading them has begun.
void cancel_prefetch(const void* p, size_t bytes);

}  // namespace moe
