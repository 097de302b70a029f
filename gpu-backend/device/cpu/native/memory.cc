#include "memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <cstring>

namespace moe {

namespace {
constexpr size_t kMmapThreshold = 64 * 1024;
constexpr size_t kHuge = 2u << 20;
// Weights come from 2 MiB-aligned arenas backed by transparent huge pages: streaming a model
// through 4 KiB pages costs a TLB miss every 4 KiB (and separate mmaps of a few MiB each almost
// never contain an aligned huge page).
constexpr size_t kArena = 64u << 20;

// An arena is unmapped when its last allocation is freed and no new one can come from it.
struct Arena {
  char* base;
  size_t size;
  size_t used = 0;
  size_t live = 0;
  bool retired = false;
};

struct Block {
  void* ptr;
  Arena* arena;  // null when from posix_memalign
};

std::mutex g_mu;
Arena* g_current = nullptr;

// A mapping of `size` bytes (a multiple of kHuge) aligned to kHuge, with the huge-page hint.
char* map_huge(size_t size) {
  void* p = mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  char* raw = static_cast<char*>(p);
  char* aligned = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + kHuge - 1) & ~(kHuge - 1));
  if (aligned > raw) munmap(raw, aligned - raw);
  const size_t tail = (raw + size + kHuge) - (aligned + size);
  if (tail > 0) munmap(aligned + size, tail);
  madvise(aligned, size, MADV_HUGEPAGE);  // a hint; ignored where unavailable
  return aligned;
}

void release(Arena* a) {
  munmap(a->base, a->size);
  delete a;
}

// Caller holds g_mu.
void* arena_alloc(size_t size, size_t align, Arena** out) {
  if (size > kArena / 4) {
    // Large tensors get an arena of their own, retired at once.
    const size_t mapped = (size + kHuge - 1) / kHuge * kHuge;
    char* p = map_huge(mapped);
    if (!p) return nullptr;
    *out = new Arena{p, mapped, size, 1, true};
    return p;
  }
  Arena* a = g_current;
  size_t off = a ? (a->used + align - 1) / align * align : 0;
  if (!a || off + size > a->size) {
    char* p = map_huge(kArena);
    if (!p) return nullptr;
    if (a) {
      a->retired = true;
      if (a->live == 0) release(a);
    }
    a = g_current = new Arena{p, kArena};
    off = 0;
  }
  a->used = off + size;
  a->live++;
  *out = a;
  return a->base + off;
}

void free_block(Napi::Env, void*, Block* b) {
  if (b->arena) {
    std::lock_guard<std::mutex> lk(g_mu);
    Arena* a = b->arena;
    if (--a->live == 0 && a->retired) release(a);
  } else {
    std::free(b->ptr);
  }
  delete b;
}
}  // namespace

Napi::Uint8Array alloc_aligned(Napi::Env env, size_t bytes, size_t align) {
  if (align < 64 || (align & (align - 1)) != 0) throw Napi::RangeError::New(env, "alignment must be a power of two >= 64");
  auto* b = new Block{nullptr, nullptr};
  const size_t size = bytes == 0 ? align : (bytes + align - 1) / align * align;
  if (size >= kMmapThreshold && align <= 4096) {
    std::lock_guard<std::mutex> lk(g_mu);
    b->ptr = arena_alloc(size, align, &b->arena);
    if (!b->ptr) {
      delete b;
      throw Napi::Error::New(env, "allocAligned: out of memory (mmap " + std::to_string(size) + " bytes)");
    }
  } else {
    if (posix_memalign(&b->ptr, align, size) != 0) {
      delete b;
      throw Napi::Error::New(env, "allocAligned: out of memory (" + std::to_string(size) + " bytes)");
    }
    std::memset(b->ptr, 0, size);
  }
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, b->ptr, bytes, free_block, b);
  return Napi::Uint8Array::New(env, bytes, ab, 0);
}

}  // namespace moe
