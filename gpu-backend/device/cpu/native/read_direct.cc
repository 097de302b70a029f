// Positioned file reads with O_DIRECT on a libuv worker thread (bypassing the page cache, so a
// paged-in expert does not also occupy page cache the RAM budget does not see).
//
// Alignment: callers may pass any offset/length/destination. When offset, length and the
// destination address are all 4096-aligned the read goes straight into the destination; otherwise
// the enclosing 4096-aligned span is read through an aligned bounce buffer (8 MiB at a time) and the
// wanted bytes are copied out. If the filesystem refuses O_DIRECT (tmpfs, some FUSE) the read falls
// back to ordinary pread (as does direct = false, for callers that want the page cache). A range past the end of the file rejects with "short read".
#include "read_direct.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace moe {

namespace {
constexpr size_t kAlign = kDirectAlign;
constexpr size_t kBounce = 8u << 20;

struct IoError {
  std::string msg;
  bool refused;  // O_DIRECT not usable here: retry buffered
};

// Reads up to len bytes at off, stopping early only at end of file. Returns bytes read.
size_t pread_full(int fd, uint8_t* buf, size_t len, uint64_t off, const std::string& path, bool direct) {
  size_t done = 0;
  while (done < len) {
    const ssize_t r = pread(fd, buf + done, len - done, static_cast<off_t>(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      throw IoError{"readDirect: read of " + path + " at offset " + std::to_string(off + done) +
                        " failed: " + std::strerror(e),
                    direct && e == EINVAL};
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
    // A direct read that stops short of an aligned boundary is at end of file.
    if (direct && (done % kAlign) != 0) break;
  }
  return done;
}

[[noreturn]] void short_read(const std::string& path, uint64_t offset, size_t length, size_t got) {
  throw IoError{"readDirect: short read of " + path + ": wanted " + std::to_string(length) + " bytes at offset " +
                    std::to_string(offset) + ", got " + std::to_string(got) + " (file truncated?)",
                false};
}

void read_buffered(int fd, const std::string& path, uint64_t offset, size_t length, uint8_t* dst) {
  const size_t got = pread_full(fd, dst, length, offset, path, false);
  if (got < length) short_read(path, offset, length, got);
}

void read_odirect(int fd, const std::string& path, uint64_t offset, size_t length, uint8_t* dst) {
  if (direct_aligned(offset, length, dst)) {
    const size_t got = pread_full(fd, dst, length, offset, path, true);
    if (got < length) short_read(path, offset, length, got);
    return;
  }
  const uint64_t end = offset + length;
  uint64_t pos = offset / kAlign * kAlign;
  const size_t bounceSize = std::min<uint64_t>(kBounce, (end - pos + kAlign - 1) / kAlign * kAlign);
  void* bounce = nullptr;
  if (posix_memalign(&bounce, kAlign, bounceSize) != 0) throw IoError{"readDirect: out of memory", false};
  try {
    while (pos < end) {
      const size_t span = std::min<uint64_t>(bounceSize, (end - pos + kAlign - 1) / kAlign * kAlign);
      const size_t got = pread_full(fd, static_cast<uint8_t*>(bounce), span, pos, path, true);
      const uint64_t from = std::max<uint64_t>(pos, offset), to = std::min<uint64_t>(pos + got, end);
      if (to > from) std::memcpy(dst + (from - offset), static_cast<uint8_t*>(bounce) + (from - pos), to - from);
      if (pos + got < std::min<uint64_t>(pos + span, end)) short_read(path, offset, length, to > offset ? to - offset : 0);
      pos += span;
    }
  } catch (...) {
    std::free(bounce);
    throw;
  }
  std::free(bounce);
}

class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, std::string path, uint64_t offset, size_t length, Napi::Uint8Array dest, size_t destOffset,
             bool direct)
      : Napi::AsyncWorker(env),
        direct_(direct),
        deferred_(Napi::Promise::Deferred::New(env)),
        path_(std::move(path)),
        offset_(offset),
        length_(length),
        dst_(dest.Data() + destOffset),
        ref_(Napi::Persistent(dest)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      run();
    } catch (const IoError& e) {
      SetError(e.msg);
    }
  }

  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), static_cast<double>(length_))); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  void run() {
    if (length_ == 0) return;
    int fd = direct_ ? open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT) : -1;
    if (fd >= 0) {
      try {
        read_odirect(fd, path_, offset_, length_, dst_);
        close(fd);
        return;
      } catch (const IoError& e) {
        close(fd);
        if (!e.refused) throw;
      }
    } else if (direct_ && errno != EINVAL && errno != EOPNOTSUPP) {
      const int e = errno;
      throw IoError{"readDirect: cannot open " + path_ + ": " + std::strerror(e), false};
    }
    fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int e = errno;
      throw IoError{"readDirect: cannot open " + path_ + ": " + std::strerror(e), false};
    }
    try {
      read_buffered(fd, path_, offset_, length_, dst_);
    } catch (...) {
      close(fd);
      throw;
    }
    close(fd);
  }

  bool direct_;
  Napi::Promise::Deferred deferred_;
  std::string path_;
  uint64_t offset_;
  size_t length_;
  uint8_t* dst_;
  Napi::Reference<Napi::Uint8Array> ref_;  // keeps the destination alive while the read runs
};
}  // namespace

Napi::Value read_direct(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto reject = [&](const std::string& msg) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(Napi::RangeError::New(env, msg).Value());
    return d.Promise();
  };
  if (info.Length() < 5 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsTypedArray() ||
      !info[4].IsNumber())
    return reject("readDirect(path, offset, length, dest: Uint8Array, destOffset)");
  const double offset = info[1].As<Napi::Number>().DoubleValue();
  const double length = info[2].As<Napi::Number>().DoubleValue();
  const double destOffset = info[4].As<Napi::Number>().DoubleValue();
  Napi::TypedArray ta = info[3].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array) return reject("readDirect: dest must be a Uint8Array");
  Napi::Uint8Array dest = info[3].As<Napi::Uint8Array>();
  if (offset < 0 || length < 0 || destOffset < 0 || offset != static_cast<uint64_t>(offset) ||
      length != static_cast<uint64_t>(length) || destOffset != static_cast<uint64_t>(destOffset))
    return reject("readDirect: offset, length and destOffset must be non-negative integers");
  if (destOffset + length > static_cast<double>(dest.ByteLength()))
    return reject("readDirect: dest too small: needs " + std::to_string(static_cast<uint64_t>(destOffset + length)) +
                  " bytes, has " + std::to_string(dest.ByteLength()));
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const bool direct = info.Length() < 6 || info[5].IsUndefined() || info[5].ToBoolean().Value();
  if (direct) {
    if (auto p = read_direct_aio(env, path, static_cast<uint64_t>(offset), static_cast<size_t>(length), dest,
                                 static_cast<size_t>(destOffset)))
      return *p;
  }
  return read_direct_worker(env, path, static_cast<uint64_t>(offset), static_cast<size_t>(length), dest,
                            static_cast<size_t>(destOffset), direct);
}

Napi::Promise read_direct_worker(Napi::Env env, const std::string& path, uint64_t offset, size_t length,
                                 Napi::Uint8Array dest, size_t destOffset, bool direct) {
  auto* w = new ReadWorker(env, path, offset, length, dest, destOffset, direct);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace moe
