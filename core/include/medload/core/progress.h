#pragma once
/// Progress of long work (scans, builds, benchmarks): a redrawn bar on a terminal, plain
/// lines ("scan: 1200/5000 files (24%), 310 files/s, eta 12 s") otherwise, nothing when quiet.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>

namespace medload {

/// How progress is shown.
enum class ProgressStyle {
  kAuto,   ///< a bar when stderr is a terminal, plain lines otherwise
  kBar,    ///< always a redrawn bar
  kLines,  ///< plain lines, at most one every 2 s and one per 10 %
  kQuiet,  ///< nothing
};

/// A thread-safe progress counter. `advance` is cheap (one atomic add; drawing is rate-limited).
class Progress {
 public:
  /// `label` names the work ("scan"), `unit` what is counted ("files"); `out` defaults to stderr.
  Progress(std::string label, std::uint64_t total, std::string unit = "items",
           ProgressStyle style = ProgressStyle::kAuto, std::ostream* out = nullptr);
  /// Prints the final line if finish() was not called.
  ~Progress();

  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// Counts `n` more items done. Safe from any thread.
  void advance(std::uint64_t n = 1);
  /// Prints the final state once (count, elapsed seconds, rate).
  void finish();
  /// Items counted so far.
  std::uint64_t done() const noexcept { return done_.load(); }

 private:
  void draw(bool final);

  std::string label_;
  std::string unit_;
  std::uint64_t total_;
  ProgressStyle style_;
  std::ostream* out_;
  std::atomic<std::uint64_t> done_{0};
  std::atomic<bool> finished_{false};
  std::mutex draw_mutex_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  int last_decile_ = -1;
};

}  // namespace medload
