#include "medload/loader/ingest/scanner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "decoders.h"
#include "medload/core/progress.h"
#include "scan_internal.h"

namespace medload::loader {

Scanner::Scanner(ValidationOptions options) : options_(options) { options_.validate(); }

ScanReport Scanner::scan(const std::vector<SourceFile>& sources, const OnImage& on_image,
                         Progress* progress) const {
  const auto started = std::chrono::steady_clock::now();
  ScanReport report;
  report.files.resize(sources.size());
  if (sources.empty()) return report;

  int threads =
      options_.threads > 0 ? options_.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp<int>(threads, 1, static_cast<int>(std::min<std::size_t>(sources.size(), 256)));

  // Codecs and the dictionary are ready before any fork, so each worker starts warm.
  detail::prepare_dicom();
  std::vector<std::unique_ptr<detail::DecodeWorker>> workers;
  if (options_.isolation == Isolation::kProcess) {
    for (int t = 0; t < threads; ++t) workers.push_back(std::make_unique<detail::DecodeWorker>(options_));
  }

  // Files are handed out in input order and committed in input order: a file waits until every
  // earlier file is committed, so the first copy of duplicate pixels wins whatever the timing.
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex commit_mutex;
  std::condition_variable committed_cv;
  std::size_t committed = 0;
  std::unordered_map<std::uint64_t, std::size_t> first_with_pixels;
  std::exception_ptr failure;

  auto run = [&](detail::DecodeWorker* worker) {
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= sources.size()) return;
      std::vector<DecodedImage> frames;
      FileOutcome outcome;
      if (!stop.load()) {
        try {
          outcome = worker ? worker->decode(sources[i], frames) : decode_file(sources[i], options_, frames);
        } catch (...) {
          // Only the worker plumbing throws (fork or socket failures): the scan cannot go on.
          std::lock_guard lock(commit_mutex);
          if (!failure) failure = std::current_exception();
          stop = true;
        }
      }
      {
        std::unique_lock lock(commit_mutex);
        committed_cv.wait(lock, [&] { return committed == i; });
        if (outcome.ok && options_.reject_duplicates) {
          const auto [it, inserted] = first_with_pixels.emplace(outcome.pixel_hash, i);
          if (!inserted) {
            outcome.ok = false;
            outcome.reason = Reason::kDuplicate;
            outcome.duplicate_of = sources[it->second].report_path;
            outcome.detail = "the same decoded pixels as " + outcome.duplicate_of;
            frames.clear();
          }
        }
        report.files[i] = std::move(outcome);
        ++committed;
      }
      committed_cv.notify_all();
      if (!stop.load() && on_image) {
        try {
          for (auto& frame : frames) on_image(i, std::move(frame));
        } catch (...) {
          std::lock_guard lock(commit_mutex);
          if (!failure) failure = std::current_exception();
          stop = true;
        }
      }
      if (progress) progress->advance();
    }
  };

  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(run, workers.empty() ? nullptr : workers[t].get());
  for (auto& thread : pool) thread.join();
  workers.clear();
  if (failure) std::rethrow_exception(failure);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace medload::loader
