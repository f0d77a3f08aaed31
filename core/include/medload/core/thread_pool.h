#pragma once
/// A fixed-size pool of worker threads shared by scanning, cache building, serving and
/// augmentation. Work is plain callables; exceptions travel back through futures.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace medload {

namespace core {

/// The most threads resolve_threads(0) gives, whatever the machine reports (ThreadPool's limit).
inline constexpr std::size_t kMaxAutoThreads = 1024;

/// A thread count as options give it: `requested` itself when above 0 (the caller's validate()
/// bounds it), and 0 means one per hardware thread, at least 1 and at most kMaxAutoThreads.
std::size_t resolve_threads(std::size_t requested) noexcept;

}  // namespace core

class ThreadPool {
 public:
  /// Starts `threads` workers; 0 means one per hardware thread. Throws ConfigError above 1024.
  explicit ThreadPool(std::size_t threads = 0);
  /// Finishes the queued work, then joins every worker.
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Number of worker threads.
  std::size_t size() const noexcept { return workers_.size(); }

  /// Queues `fn`; the future yields its result or rethrows its exception.
  template <class F>
  auto submit(F&& fn) -> std::future<std::invoke_result_t<std::decay_t<F>>> {
    using R = std::invoke_result_t<std::decay_t<F>>;
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(fn));
    std::future<R> result = task->get_future();
    enqueue([task] { (*task)(); });
    return result;
  }

  /// Runs body(i) for i in [0, n) on the workers and the calling thread, in chunks taken
  /// dynamically; returns when all are done. Rethrows the first exception (the rest of the
  /// range is then skipped). Must not be called from inside one of this pool's workers.
  void parallel_for(std::size_t n, const std::function<void(std::size_t)>& body);

 private:
  void enqueue(std::function<void()> job);
  void work();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace medload
