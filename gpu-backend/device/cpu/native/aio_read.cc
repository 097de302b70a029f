// Aligned O_DIRECT reads submitted with Linux native AIO from the JS thread itself, completions
// picked up by the event loop through an eventfd. The worker-thread path (read_direct.cc) first has
// to get a libuv thread onto a CPU to even start the read; with both cores computing that took
// 0.02-0.4 ms per read here, a large part of a 1.6 MiB expert read (~0.6 ms). io_submit starts
// the device read at once, and every op of every expert is in the device queue together instead of
// four at a time (libuv's pool). Anything this path does not take (unaligned, buffered, a file
// system without O_DIRECT, a full queue) goes to the worker path, which also handles what a
// completion here could not (a short or refused read is retried there, so errors read the same).
#include <napi.h>

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <string>
#include <utility>

#include "read_direct.h"

namespace moe {

namespace {

constexpr unsigned kDepth = 512;  // reads in flight at most (more go to the worker path)

long sys_io_setup(unsigned nr, aio_context_t* ctx) { return syscall(SYS_io_setup, nr, ctx); }
long sys_io_destroy(aio_context_t ctx) { return syscall(SYS_io_destroy, ctx); }
long sys_io_submit(aio_context_t ctx, long n, iocb** cbs) { return syscall(SYS_io_submit, ctx, n, cbs); }
long sys_io_getevents(aio_context_t ctx, long min, long max, io_event* ev, timespec* t) {
  return syscall(SYS_io_getevents, ctx, min, max, ev, t);
}

struct Request {
  iocb cb{};
  int fd;
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::Uint8Array> dest;  // keeps the destination alive while the read runs
  size_t destOffset;
  std::string path;
  uint64_t offset;
  size_t length;
  Request(Napi::Env env, int fd, Napi::Uint8Array d, size_t destOff, std::string p, uint64_t off, size_t len)
      : fd(fd),
        deferred(Napi::Promise::Deferred::New(env)),
        dest(Napi::Persistent(d)),
        destOffset(destOff),
        path(std::move(p)),
        offset(off),
        length(len) {}
};

class AioReader {
 public:
  // The reader of this environment (its event loop), or nullptr when native AIO is unavailable.
  static AioReader* of(Napi::Env env) {
    if (auto* r = env.GetInstanceData<AioReader>()) return r->ok_ ? r : nullptr;
    auto* r = new AioReader(env);
    env.SetInstanceData<AioReader>(r);  // deleted with the environment
    return r->ok_ ? r : nullptr;
  }

  ~AioReader() {
    // (The environment is going away: reads still in flight, if any, are abandoned.)
    if (ok_)
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    else
      delete poll_;
    if (efd_ >= 0) close(efd_);
    if (ctx_) sys_io_destroy(ctx_);
  }

  // Submits the read; nullptr if this path cannot take it (nothing was started).
  std::unique_ptr<Napi::Promise> read(Napi::Env env, const std::string& path, uint64_t offset, size_t length,
                                      Napi::Uint8Array dest, size_t destOffset) {
    if (pending_ >= kDepth) return nullptr;
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd < 0) return nullptr;  // (the worker path reports the error or reads buffered)
    auto* r = new Request(env, fd, dest, destOffset, path, offset, length);
    r->cb.aio_data = reinterpret_cast<uintptr_t>(r);
    r->cb.aio_lio_opcode = IOCB_CMD_PREAD;
    r->cb.aio_fildes = static_cast<uint32_t>(fd);
    r->cb.aio_buf = reinterpret_cast<uintptr_t>(dest.Data() + destOffset);
    r->cb.aio_nbytes = length;
    r->cb.aio_offset = static_cast<int64_t>(offset);
    r->cb.aio_flags = IOCB_FLAG_RESFD;
    r->cb.aio_resfd = static_cast<uint32_t>(efd_);
    iocb* list[1] = {&r->cb};
    if (sys_io_submit(ctx_, 1, list) != 1) {
      close(fd);
      delete r;
      return nullptr;
    }
    if (pending_++ == 0) uv_poll_start(poll_, UV_READABLE, on_readable);
    return std::make_unique<Napi::Promise>(r->deferred.Promise());
  }

 private:
  explicit AioReader(Napi::Env env) : env_(env), async_(env, "moe.readDirect") {
    napi_get_uv_event_loop(env, &loop_);
    if (!loop_ || sys_io_setup(kDepth, &ctx_) != 0) return;
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0 || uv_poll_init(loop_, poll_, efd_) != 0) return;
    poll_->data = this;
    ok_ = true;
  }

  static void on_readable(uv_poll_t* handle, int, int) { static_cast<AioReader*>(handle->data)->drain(); }

  void drain() {
    uint64_t count;
    while (::read(efd_, &count, sizeof count) > 0) {
    }
    Napi::HandleScope scope(env_);
    io_event events[64];
    timespec now{0, 0};
    long got;
    while ((got = sys_io_getevents(ctx_, 0, 64, events, &now)) > 0) {
      for (long i = 0; i < got; i++) finish(reinterpret_cast<Request*>(events[i].data), events[i].res);
    }
    if (pending_ == 0) uv_poll_stop(poll_);
  }

  void finish(Request* r, int64_t res) {
    pending_--;
    close(r->fd);
    // Resolving inside a callback scope runs the promise reactions (microtasks) when it closes, as
    // for any callback from the event loop.
    Napi::CallbackScope cb(env_, async_);
    if (res == static_cast<int64_t>(r->length)) {
      r->deferred.Resolve(Napi::Number::New(env_, static_cast<double>(r->length)));
    } else {
      // Short (end of file) or failed: the worker path reads again and gives the usual answer.
      r->deferred.Resolve(
          read_direct_worker(env_, r->path, r->offset, r->length, r->dest.Value(), r->destOffset, true));
    }
    delete r;
  }

  Napi::Env env_;
  Napi::AsyncContext async_;
  uv_loop_t* loop_ = nullptr;
  aio_context_t ctx_ = 0;
  int efd_ = -1;
  uv_poll_t* poll_ = new uv_poll_t();
  size_t pending_ = 0;
  bool ok_ = false;
};

}  // namespace

std::unique_ptr<Napi::Promise> read_direct_aio(Napi::Env env, const std::string& path, uint64_t offset,
                                               size_t length, Napi::Uint8Array dest, size_t destOffset) {
  if (length == 0 || !direct_aligned(offset, length, dest.Data() + destOffset)) return nullptr;
  if (getenv("MOE_NO_AIO")) return nullptr;
  AioReader* r = AioReader::of(env);
  return r ? r->read(env, path, offset, length, dest, destOffset) : nullptr;
}

}  // namespace moe
