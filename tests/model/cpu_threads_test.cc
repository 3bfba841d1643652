// model::CpuThreads: the thread counts it sets reach threads started under
// it, and both are restored when it goes.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <thread>

#include "steper/model.h"

namespace steper::model {
namespace {

int blas_threads() {
  auto get = reinterpret_cast<int (*)()>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get ? get() : -1;
}

TEST(CpuThreads, SetsBothForNewThreadsAndRestores) {
  torch::set_num_threads(2);
  const int blas_before = blas_threads();
  {
    CpuThreads one(1);
    EXPECT_EQ(torch::get_num_threads(), 1);
    int in_thread = 0;
    std::thread t([&] {
      // A parallel op first, as in training: LibTorch sets a new thread's
      // count lazily, at its first parallel region.
      (void)torch::ones({64, 64}).sum();
      in_thread = torch::get_num_threads();
    });
    t.join();
    EXPECT_EQ(in_thread, 1);
    if (blas_before > 0) {
      EXPECT_EQ(blas_threads(), 1);
    }
  }
  EXPECT_EQ(torch::get_num_threads(), 2);
  EXPECT_EQ(blas_threads(), blas_before);
}

}  // namespace
}  // namespace steper::model
