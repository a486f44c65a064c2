#include "dm/base/alloc.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace dm {

namespace {

// Constant-initialized, so it is valid when the load-time constructor runs.
std::atomic<bool> tuned{false};

#ifdef __GLIBC__
// glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit; mallopt refuses anything larger.
constexpr int kMmapThreshold = 4 * 1024 * 1024 * static_cast<int>(sizeof(long));
constexpr int kTrimThreshold = 1 << 30;  // 1 GiB

bool disabled_by_env() {
  const char* env = std::getenv("DM_MALLOC_TUNING");
  return env != nullptr && std::strcmp(env, "0") == 0;
}
#endif

}  // namespace

void tune_allocator() {
#ifdef __GLIBC__
  if (tuned.load(std::memory_order_acquire) || disabled_by_env()) return;
  // Both or nothing: a high mmap threshold alone moves the buffers into the
  // heap, where the default trim threshold gives them back just the same.
  // (Two racing first calls set the same values twice, which is harmless.)
  const bool ok = mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1 &&
                  mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1;
  tuned.store(ok, std::memory_order_release);
#endif
}

bool allocator_tuned() { return tuned.load(std::memory_order_acquire); }

namespace {
// At load time of libdm.so (priority 101: before the library's own static
// initializers, whose allocations then already see the settings).
__attribute__((constructor(101))) void tune_allocator_at_load() { tune_allocator(); }
}  // namespace

}  // namespace dm
