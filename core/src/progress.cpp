#include "medload/core/progress.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <sstream>

namespace medload {
namespace {

std::string format_seconds(double s) {
  std::ostringstream os;
  os.precision(s < 10 ? 1 : 0);
  os << std::fixed << s << " s";
  return os.str();
}

}  // namespace

Progress::Progress(std::string label, std::uint64_t total, std::string unit, ProgressStyle style,
                   std::ostream* out)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      style_(style),
      out_(out ? out : &std::cerr),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  if (style_ == ProgressStyle::kAuto) {
    style_ = (out_ == &std::cerr && ::isatty(STDERR_FILENO)) ? ProgressStyle::kBar : ProgressStyle::kLines;
  }
}

Progress::~Progress() {
  if (!finished_.load()) {
    finish();
  }
}

void Progress::advance(std::uint64_t n) {
  done_.fetch_add(n);
  if (style_ == ProgressStyle::kQuiet) {
    return;
  }
  // Draw from whichever thread gets the lock; the others carry on without waiting.
  std::unique_lock<std::mutex> lock(draw_mutex_, std::try_to_lock);
  if (lock.owns_lock()) {
    draw(false);
  }
}

void Progress::finish() {
  if (finished_.exchange(true) || style_ == ProgressStyle::kQuiet) {
    return;
  }
  std::lock_guard<std::mutex> lock(draw_mutex_);
  draw(true);
}

void Progress::draw(bool final) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const std::uint64_t done = done_.load();
  const double fraction = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;

  if (!final) {
    const double since = std::chrono::duration<double>(now - last_draw_).count();
    if (style_ == ProgressStyle::kBar && since < 0.1) {
      return;
    }
    if (style_ == ProgressStyle::kLines) {
      if (total_ && done >= total_) {
        return;  // the final line says it, with the elapsed time
      }
      const int decile = static_cast<int>(fraction * 10);
      if (since < 2.0 && decile == last_decile_) {
        return;
      }
      last_decile_ = decile;
    }
  }
  last_draw_ = now;

  std::ostringstream os;
  os.precision(0);
  os << std::fixed;
  if (style_ == ProgressStyle::kBar) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    os << '\r' << label_ << " [" << std::string(static_cast<std::size_t>(filled), '#')
       << std::string(static_cast<std::size_t>(kWidth - filled), ' ') << "] ";
  } else {
    os << label_ << ": ";
  }
  os << done << '/' << total_ << ' ' << unit_ << " (" << fraction * 100 << "%), " << rate << ' ' << unit_ << "/s";
  if (final) {
    os << ", " << format_seconds(elapsed);
  } else if (rate > 0 && total_ > done) {
    os << ", eta " << format_seconds(static_cast<double>(total_ - done) / rate);
  }
  if (style_ == ProgressStyle::kBar) {
    os << "\x1b[K";  // clear what a longer previous line left
    if (final) os << '\n';
  } else {
    os << '\n';
  }
  (*out_) << os.str() << std::flush;
}

}  // namespace medload
