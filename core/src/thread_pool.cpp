#include "medload/core/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <string>

#include "medload/core/check_range.h"

namespace medload {

std::size_t core::resolve_threads(std::size_t requested) noexcept {
  if (requested != 0) return requested;
  const std::size_t hardware = std::thread::hardware_concurrency();  // 0 when unknown
  return std::clamp<std::size_t>(hardware, 1, kMaxAutoThreads);
}

ThreadPool::ThreadPool(std::size_t threads) {
  core::check_range("ThreadPool threads", threads, 0, 1024);
  threads = core::resolve_threads(threads);
  workers_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    workers_.emplace_back([this] { work(); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& worker : workers_) {
    worker.join();
  }
}

void ThreadPool::enqueue(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
}

void ThreadPool::work() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) {
        return;  // stopping, and nothing left to do
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

void ThreadPool::parallel_for(std::size_t n, const std::function<void(std::size_t)>& body) {
  if (n == 0) {
    return;
  }
  struct Shared {
    std::atomic<std::size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    std::exception_ptr error;
  };
  auto shared = std::make_shared<Shared>();
  auto run = [shared, n, &body] {
    for (;;) {
      const std::size_t i = shared->next.fetch_add(1);
      if (i >= n || shared->failed.load()) {
        return;
      }
      try {
        body(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(shared->error_mutex);
        if (!shared->error) {
          shared->error = std::current_exception();
        }
        shared->failed = true;
      }
    }
  };
  const std::size_t helpers = std::min(workers_.size(), n - 1);
  std::vector<std::future<void>> done;
  done.reserve(helpers);
  for (std::size_t i = 0; i < helpers; ++i) {
    done.push_back(submit(run));
  }
  run();
  for (auto& f : done) {
    f.get();
  }
  if (shared->error) {
    std::rethrow_exception(shared->error);
  }
}

}  // namespace medload
