#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "medload/core/error.h"
#include "medload/core/thread_pool.h"

namespace {

TEST(ThreadPool, ParallelForVisitsEveryIndexOnce) {
  medload::ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(10000);
  pool.parallel_for(hits.size(), [&](std::size_t i) { hits[i].fetch_add(1); });
  for (std::size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << i;
}

TEST(ThreadPool, ParallelForRethrowsTheWorkersException) {
  medload::ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(100,
                                 [](std::size_t i) {
                                   if (i == 37) throw std::runtime_error("sample 37");
                                 }),
               std::runtime_error);
}

TEST(ThreadPool, SubmitReturnsResultsAndExceptions) {
  medload::ThreadPool pool(2);
  auto ok = pool.submit([] { return 42; });
  auto bad = pool.submit([]() -> int { throw medload::IoError("disk"); });
  EXPECT_EQ(ok.get(), 42);
  EXPECT_THROW(bad.get(), medload::IoError);
}

TEST(ThreadPool, RejectsAbsurdThreadCounts) {
  try {
    medload::ThreadPool pool(5000);
    FAIL() << "expected ConfigError";
  } catch (const medload::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("1024"), std::string::npos);
  }
}

TEST(ResolveThreads, KeepsARequestAndResolvesZeroToTheHardware) {
  EXPECT_EQ(medload::core::resolve_threads(3), 3u);
  EXPECT_EQ(medload::core::resolve_threads(5000), 5000u);  // bounding it is the caller's validate()
  const std::size_t hardware = std::thread::hardware_concurrency();
  const std::size_t expected = std::min<std::size_t>(std::max<std::size_t>(hardware, 1), medload::core::kMaxAutoThreads);
  EXPECT_EQ(medload::core::resolve_threads(0), expected);
  EXPECT_EQ(medload::ThreadPool(0).size(), expected);
}

}  // namespace
