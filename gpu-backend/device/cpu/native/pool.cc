#include "pool.h"

#include <immintrin.h>

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
  // Queues a range for the idle workers to prefetch (see prefetch_async in pool.h).
  void post_prefetch(const uint8_t* p, size_t n) {
    {
      std::lock_guard<std::mutex> lk(bg_mu_);
      if (bg_count_ == kRing) {  // full: the oldest range is the least useful now
        bg_head_ = (bg_head_ + 1) % kRing;
        bg_count_--;
      }
      ring_[(bg_head_ + bg_count_) % kRing] = {p, n};
      bg_count_++;
      bg_pending_.store(bg_count_, std::memory_order_release);
    }
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lk(m_);
      cv_.notify_all();
    }
  }

  // Drops queued ranges that start inside [p, p + n): their op is running now.
  void cancel_prefetch(const uint8_t* p, size_t n) {
    if (bg_pending_.load(std::memory_order_acquire) == 0) return;
    std::lock_guard<std::mutex> lk(bg_mu_);
    for (int i = 0; i < bg_count_; i++) {
      Range& r = ring_[(bg_head_ + i) % kRing];
      if (r.p >= p && r.p < p + n) r.n = 0;
    }
    while (bg_count_ > 0 && ring_[bg_head_].n == 0) {
      bg_head_ = (bg_head_ + 1) % kRing;
      bg_count_--;
    }
    bg_pending_.store(bg_count_, std::memory_order_release);
  }

  bool has_workers() const { return !threads_.empty(); }

  void run(int threads, int n, const std::function<void(int)>& f) {
    std::lock_guard<std::mutex> serial(run_mu_);
    grow(threads - 1);
    const uint32_t g = gen_.load(std::memory_order_relaxed) + 1;
    // Invalidate the old generation's counter first: a worker still holding the previous job's
    // (or a half-written) description can then no longer claim a chunk with it.
    ticket_.store(static_cast<uint64_t>(g) << 32);
    fn_.store(&f, std::memory_order_relaxed);
    n_.store(n, std::memory_order_relaxed);
    active_.store(threads - 1, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    gen_.store(g);  // publishes the job (seq_cst: ordered before the sleepers check below)
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lk(m_);
      cv_.notify_all();
    }
    int c;
    while (claim(g, n, c)) {
      f(c);
      done_.fetch_add(1, std::memory_order_release);
    }
    while (done_.load(std::memory_order_acquire) < n) _mm_pause();
  }

 private:
  bool claim(uint32_t g, int n, int& chunk) {
    uint64_t t = ticket_.load(std::memory_order_acquire);
    for (;;) {
      if (static_cast<uint32_t>(t >> 32) != g) return false;
      const int c = static_cast<int>(t & 0xffffffffu);
      if (c >= n) return false;
      if (ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) {
        chunk = c;
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

  // Takes up to kBgPiece bytes from the front of the oldest queued range; false when none.
  bool take_piece(const uint8_t*& p, size_t& n) {
    std::lock_guard<std::mutex> lk(bg_mu_);
    while (bg_count_ > 0 && ring_[bg_head_].n == 0) {  // cancelled
      bg_head_ = (bg_head_ + 1) % kRing;
      bg_count_--;
    }
    bg_pending_.store(bg_count_, std::memory_order_release);
    if (bg_count_ == 0) return false;
    Range& r = ring_[bg_head_];
    p = r.p;
    n = r.n < kBgPiece ? r.n : kBgPiece;
    r.p += n;
    r.n -= n;
    if (r.n == 0) {
      bg_head_ = (bg_head_ + 1) % kRing;
      bg_count_--;
      bg_pending_.store(bg_count_, std::memory_order_release);
    }
    return true;
  }

  // Prefetches a piece a cache line at a time; stops as soon as a job is published (the job
  // needs this thread more than the cache needs the rest of the piece).
  void prefetch_piece(uint32_t seen) {
    const uint8_t* p;
    size_t n;
    if (!take_piece(p, n)) return;
    for (size_t o = 0; o < n; o += kBgStep) {
      if (gen_.load(std::memory_order_relaxed) != seen) return;
      const size_t end = o + kBgStep < n ? o + kBgStep : n;
      for (size_t q = o; q < end; q += 64) _mm_prefetch(reinterpret_cast<const char*>(p + q), _MM_HINT_T0);
    }
  }

  void worker(int idx) {
    uint32_t seen = gen_.load();
    for (;;) {
      uint32_t g;
      int spins = 0;
      // Spin briefly (ops come in quick succession during a forward pass), then sleep. While
      // idle, prefetch what the caller said the next ops will read.
      while ((g = gen_.load(std::memory_order_acquire)) == seen) {
        if (bg_pending_.load(std::memory_order_acquire) > 0) {
          prefetch_piece(seen);
          spins = 0;
          continue;
        }
        if (++spins < kSpin) {
          _mm_pause();
          continue;
        }
        std::unique_lock<std::mutex> lk(m_);
        sleepers_.fetch_add(1);
        cv_.wait(lk, [&] { return gen_.load() != seen || bg_pending_.load() > 0; });
        sleepers_.fetch_sub(1);
        spins = 0;
      }
      seen = g;
      if (idx >= active_.load(std::memory_order_relaxed)) continue;
      const std::function<void(int)>* f = fn_.load(std::memory_order_relaxed);
      const int n = n_.load(std::memory_order_relaxed);
      int c;
      // A successful claim proves generation g is still current, so f and n belong to it.
      while (claim(g, n, c)) {
        (*f)(c);
        done_.fetch_add(1, std::memory_order_release);
      }
    }
  }

  static constexpr int kSpin = 20000;  // ~0.1-0.3 ms of pause instructions
  struct Range {
    const uint8_t* p;
    size_t n;
  };
  static constexpr int kRing = 16;
  static constexpr size_t kBgPiece = 64 * 1024;
  // A new job is noticed within this many bytes of prefetches (a few lines: when the line fill
  // buffers are full, each prefetch waits for one to free up).
  static constexpr size_t kBgStep = 256;
  std::mutex bg_mu_;
  Range ring_[kRing] = {};
  int bg_head_ = 0, bg_count_ = 0;  // guarded by bg_mu_
  std::atomic<int> bg_pending_{0};
  std::mutex run_mu_;
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
  std::atomic<uint32_t> gen_{0};
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> done_{0};
  std::atomic<int> n_{0};
  std::atomic<int> active_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<const std::function<void(int)>*> fn_{nullptr};
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: detached workers may outlive static destructors
  return *p;
}

}  // namespace

void prefetch_async(const void* p, size_t bytes) {
  if (bytes == 0 || !pool().has_workers()) return;
  pool().post_prefetch(static_cast<const uint8_t*>(p), bytes);
}

void cancel_prefetch(const void* p, size_t bytes) {
  if (bytes > 0) pool().cancel_prefetch(static_cast<const uint8_t*>(p), bytes);
}

void run_chunks(int threads, int n, const std::function<void(int)>& f) {
  if (n <= 0) return;
  if (threads <= 1 || n == 1) {
    for (int c = 0; c < n; c++) f(c);
    return;
  }
  pool().run(threads, n, f);
}

}  // namespace moe
