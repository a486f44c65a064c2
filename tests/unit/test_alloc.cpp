// Tests of dm/base/alloc: the glibc malloc tuning is applied when libdm.so
// loads (DM_MALLOC_TUNING is unset under ctest), and it does what it is for:
// a large block comes from the heap rather than a fresh mmap, and freeing it
// leaves the memory in the process.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "dm/base/alloc.hpp"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace {

bool disabled_by_env() {
  const char* env = std::getenv("DM_MALLOC_TUNING");
  return env != nullptr && std::string(env) == "0";
}

// Keeps the compiler from eliding the malloc/free pair below.
void* volatile sink = nullptr;

}  // namespace

TEST(Alloc, TunedAtLoadUnlessSwitchedOff) {
#ifndef __GLIBC__
  GTEST_SKIP() << "the tuning is glibc-only";
#else
  if (disabled_by_env()) {
    EXPECT_FALSE(dm::allocator_tuned()) << "DM_MALLOC_TUNING=0 must leave glibc's defaults";
    dm::tune_allocator();
    EXPECT_FALSE(dm::allocator_tuned()) << "DM_MALLOC_TUNING=0 also holds for explicit calls";
  } else {
    EXPECT_TRUE(dm::allocator_tuned()) << "libdm.so's load-time constructor did not tune malloc";
    dm::tune_allocator();  // idempotent
    EXPECT_TRUE(dm::allocator_tuned());
  }
#endif
}

TEST(Alloc, LargeBlocksStayInTheHeap) {
#ifndef __GLIBC__
  GTEST_SKIP() << "the tuning is glibc-only";
#else
  if (!dm::allocator_tuned()) GTEST_SKIP() << "allocator not tuned (DM_MALLOC_TUNING=0)";
  // 16 MiB: far above glibc's default mmap threshold (128 KiB), below the tuned 32 MiB.
  const size_t size = size_t(16) << 20;
  const struct mallinfo2 before = mallinfo2();
  void* p = std::malloc(size);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, size);
  sink = p;
  const struct mallinfo2 during = mallinfo2();
  // Not mmap'ed (hblkhd counts the bytes in mmap'ed blocks).
  EXPECT_LT(during.hblkhd, before.hblkhd + size);
  std::free(sink);
  sink = nullptr;
  const struct mallinfo2 after = mallinfo2();
  // Not trimmed: the heap keeps its size and the block is free space in it.
  EXPECT_GE(after.arena, during.arena);
  EXPECT_GE(after.fordblks, size);
#endif
}
