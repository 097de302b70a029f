#include "pool.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace moe {

namespace {

class Pool {
 public:
  void run(int threads, int n, const std::function<void(int)>& f, bool two_ended) {
    std::lock_guard<std::mutex> serial(run_mu_);
    grow(threads - 1);
    const uint32_t g = gen_.load(std::memory_order_relaxed) + 1;
    // Invalidate the old generation's counter first: a worker still holding the previous job's
    // (or a half-written) description can then no longer claim a chunk with it.
    ticket_.store(static_cast<uint64_t>(g) << 32 | static_cast<uint64_t>(n) << 16);
    fn_.store(&f, std::memory_order_relaxed);
    from_back_.store(two_ended, std::memory_order_relaxed);
    active_.store(threads - 1, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    gen_.store(g);  // publishes the job (seq_cst: ordered before the sleepers check below)
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lk(m_);
      cv_.notify_all();
    }
    int c;
    while (claim(g, false, c)) {
      f(c);
      done_.fetch_add(1, std::memory_order_release);
    }
    while (done_.load(std::memory_order_acquire) < n) _mm_pause();
  }

  static constexpr int kMaxChunks = 0xffff;
  static constexpr size_t kPiece = 4096;

  // The idle-prefetch list: ranges cut into 4 KiB pieces, claimed through one cursor, version (32
  // bits) | next piece (32), so a worker's claim on a replaced list fails. Calls from several
  // threads at once may mix their lists: that only prefetches the wrong memory.
  void set_prefetch(const void* const* ptrs, const size_t* lens, int n) {
    n = std::min(n, kPrefetchRanges);
    // Stop the old list first (its pieces become out of range), then publish the new one.
    const uint32_t v = static_cast<uint32_t>(pf_cursor_.load() >> 32) + 1;
    pf_cursor_.store(static_cast<uint64_t>(v) << 32 | 0xffffffffu);
    uint64_t end = 0;
    for (int i = 0; i < n; i++) {
      pf_ptr_[i].store(reinterpret_cast<uintptr_t>(ptrs[i]), std::memory_order_relaxed);
      pf_len_[i].store(lens[i], std::memory_order_relaxed);
      end += (lens[i] + kPiece - 1) / kPiece;
      pf_end_[i].store(end, std::memory_order_relaxed);
    }
    pf_n_.store(n, std::memory_order_relaxed);
    pf_cursor_.store(static_cast<uint64_t>(v) << 32);
  }

 private:
  // One piece of the idle-prefetch list, if any is left. Prefetch instructions never fault, so a
  // list replaced (or its memory freed) while a piece is in flight costs a few wasted reads only.
  bool prefetch_piece() {
    uint64_t c = pf_cursor_.load(std::memory_order_acquire);
    const uint32_t piece = static_cast<uint32_t>(c);
    const int n = pf_n_.load(std::memory_order_relaxed);
    uint64_t start = 0;
    for (int i = 0; i < n; i++) {
      const uint64_t end = pf_end_[i].load(std::memory_order_relaxed);
      if (piece < end) {
        if (!pf_cursor_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel)) return true;
        const size_t off = (piece - start) * kPiece;
        const size_t len = std::min(kPiece, pf_len_[i].load(std::memory_order_relaxed) - off);
        const char* p = reinterpret_cast<const char*>(pf_ptr_[i].load(std::memory_order_relaxed)) + off;
        // Into this core's L2 (T0 would also evict its L1); what the other core reads comes from
        // there or from the L3 the L2 evicts to.
        for (size_t o = 0; o < len; o += 64) _mm_prefetch(p + o, _MM_HINT_T2);
        return true;
      }
      start = end;
    }
    return false;
  }

  // The ticket is generation (32 bits) | back (16) | front (16): chunks [front, back) are left.
  // The calling thread always takes the front one; workers take the back one in two-ended runs.
  bool claim(uint32_t g, bool back, int& chunk) {
    uint64_t t = ticket_.load(std::memory_order_acquire);
    for (;;) {
      if (static_cast<uint32_t>(t >> 32) != g) return false;
      const int front = static_cast<int>(t & 0xffff), end = static_cast<int>(t >> 16 & 0xffff);
      if (front >= end) return false;
      const uint64_t next = back ? t - (uint64_t{1} << 16) : t + 1;
      if (ticket_.compare_exchange_weak(t, next, std::memory_order_acq_rel)) {
        chunk = back ? end - 1 : front;
        return true;
      }
    }
  }

  void grow(int workers) {
    while (static_cast<int>(threads_.size()) < workers) {
      const int idx = static_cast<int>(threads_.size());
      threads_.emplace_back([this, idx] { worker(idx); });
      threads_.back().detach();  // the pool lives for the whole process
    }
  }

  void worker(int idx) {
    uint32_t seen = gen_.load();
    for (;;) {
      uint32_t g;
      int spins = 0;
      // Spin briefly (ops come in quick succession during a forward pass), then sleep. A spin
      // prefetches a piece of the caller's list while there is one.
      while ((g = gen_.load(std::memory_order_acquire)) == seen) {
        if (++spins < kSpin) {
          if (!prefetch_piece()) _mm_pause();
          continue;
        }
        std::unique_lock<std::mutex> lk(m_);
        sleepers_.fetch_add(1);
        cv_.wait(lk, [&] { return gen_.load() != seen; });
        sleepers_.fetch_sub(1);
        spins = 0;
      }
      seen = g;
      if (idx >= active_.load(std::memory_order_relaxed)) continue;
      const std::function<void(int)>* f = fn_.load(std::memory_order_relaxed);
      const bool back = from_back_.load(std::memory_order_relaxed);
      int c;
      // A successful claim proves generation g is still current, so f and back belong to it.
      while (claim(g, back, c)) {
        (*f)(c);
        done_.fetch_add(1, std::memory_order_release);
      }
    }
  }

  static constexpr int kSpin = 20000;  // ~0.1-0.3 ms of pause instructions
  std::mutex run_mu_;
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
  std::atomic<uint32_t> gen_{0};
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> done_{0};
  std::atomic<bool> from_back_{false};
  std::atomic<int> active_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<const std::function<void(int)>*> fn_{nullptr};
  std::atomic<uint64_t> pf_cursor_{0xffffffffu};
  std::atomic<int> pf_n_{0};
  std::atomic<uintptr_t> pf_ptr_[kPrefetchRanges]{};
  std::atomic<size_t> pf_len_[kPrefetchRanges]{};
  std::atomic<uint64_t> pf_end_[kPrefetchRanges]{};
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: detached workers may outlive static destructors
  return *p;
}

}  // namespace

void prefetch_when_idle(const void* const* ptrs, const size_t* lens, int n) { pool().set_prefetch(ptrs, lens, n); }

void run_chunks(int threads, int n, const std::function<void(int)>& f, bool two_ended) {
  if (n <= 0) return;
  if (threads <= 1 || n == 1) {
    for (int c = 0; c < n; c++) f(c);
    return;
  }
  // The ticket counts chunks in 16 bits: larger runs go in pieces.
  for (int base = 0; base < n; base += Pool::kMaxChunks) {
    const int m = std::min(Pool::kMaxChunks, n - base);
    if (base == 0 && m == n) pool().run(threads, n, f, two_ended);
    else pool().run(threads, m, [&](int c) { f(base + c); }, two_ended);
  }
}

}  // namespace moe
