// Aligned native buffers handed to JS as external ArrayBuffers (freed by the GC finalizer).
#pragma once
#include <napi.h>

#include <cstddef>

namespace moe {

// Zero-filled, `align`-aligned (power of two, >= 64) memory of at least `bytes` bytes, as a Uint8Array
// of exactly `bytes` bytes. Large blocks come from mmap (lazily committed, page aligned).
Napi::Uint8Array alloc_aligned(Napi::Env env, size_t bytes, size_t align);

}  // namespace moe
