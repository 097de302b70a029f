#pragma once
#include <napi.h>

namespace moe {
// readDirect(path, offset, length, dest: Uint8Array, destOffset, direct = true) -> Promise<number>
Napi::Value read_direct(const Napi::CallbackInfo& info);
}  // namespace moe
