#pragma once
#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>

namespace moe {
// O_DIRECT transfers need offset, length and memory address all multiples of this.
constexpr size_t kDirectAlign = 4096;
inline bool direct_aligned(uint64_t offset, size_t length, const void* dst) {
  return offset % kDirectAlign == 0 && length % kDirectAlign == 0 &&
         reinterpret_cast<uintptr_t>(dst) % kDirectAlign == 0;
}

// readDirect(path, offset, length, dest: Uint8Array, destOffset, direct = true) -> Promise<number>
Napi::Value read_direct(const Napi::CallbackInfo& info);
// The same read on a libuv worker thread (any alignment; buffered fallback; exact errors).
Napi::Promise read_direct_worker(Napi::Env env, const std::string& path, uint64_t offset, size_t length,
                                 Napi::Uint8Array dest, size_t destOffset, bool direct);
// An aligned O_DIRECT read through native AIO (aio_read.cc); nullptr if that path cannot take it.
std::unique_ptr<Napi::Promise> read_direct_aio(Napi::Env env, const std::string& path, uint64_t offset,
                                               size_t length, Napi::Uint8Array dest, size_t destOffset);
}  // namespace moe
