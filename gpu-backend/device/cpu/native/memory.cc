#include "memory.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

namespace moe {

namespace {
constexpr size_t kMmapThreshold = 64 * 1024;

struct Block {
  void* ptr;
  size_t mapped;  // 0 when from posix_memalign
};

void free_block(Napi::Env, void*, Block* b) {
  if (b->mapped)
    munmap(b->ptr, b->mapped);
  else
    std::free(b->ptr);
  delete b;
}
}  // namespace

Napi::Uint8Array alloc_aligned(Napi::Env env, size_t bytes, size_t align) {
  if (align < 64 || (align & (align - 1)) != 0) throw Napi::RangeError::New(env, "alignment must be a power of two >= 64");
  auto* b = new Block{nullptr, 0};
  const size_t size = bytes == 0 ? align : (bytes + align - 1) / align * align;
  if (size >= kMmapThreshold && align <= 4096) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      delete b;
      throw Napi::Error::New(env, "allocAligned: out of memory (mmap " + std::to_string(size) + " bytes)");
    }
    // Weights are streamed end to end: huge pages cut TLB misses (a hint; ignored if unavailable).
    if (size >= (2u << 20)) madvise(p, size, MADV_HUGEPAGE);
    b->ptr = p;
    b->mapped = size;
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
