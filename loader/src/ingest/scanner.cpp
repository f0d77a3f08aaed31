#include "medload/loader/ingest/scanner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "decoders.h"
#include "medload/core/progress.h"
#include "medload/core/thread_pool.h"
#include "scan_internal.h"

namespace medload::loader {

namespace detail {

void run_stage(const FrameStage& stage, std::vector<DecodedImage>& frames, std::vector<StagedFrame>& staged) {
  staged.reserve(frames.size());
  for (DecodedImage& frame : frames) {
    staged.push_back(stage(frame));
    std::vector<std::uint8_t>().swap(frame.pixels);
  }
}

}  // namespace detail

namespace {

// No more threads than files; validate.threads is at most 256, and so is what 0 resolves to here.
std::size_t scan_threads(const ValidationOptions& options, std::size_t files) {
  return std::min<std::size_t>(
      {core::resolve_threads(static_cast<std::size_t>(std::max(0, options.threads))), files, 256});
}

// The worker processes of a kProcess scan (none in process). The spawner is forked when this is
// made, before the scan's threads run; it forks every worker, the replacements for crashed ones
// included. Members end in reverse order: the workers before their spawner.
struct WorkerProcesses {
  std::optional<detail::WorkerSpawner> spawner;
  std::vector<std::unique_ptr<detail::DecodeWorker>> workers;

  WorkerProcesses(const ValidationOptions& options, std::size_t threads, const FrameStage& stage) {
    if (options.isolation != Isolation::kProcess) return;
    spawner.emplace(options, threads, stage ? &stage : nullptr);
    for (std::size_t t = 0; t < threads; ++t) {
      workers.push_back(std::make_unique<detail::DecodeWorker>(options, *spawner, t));
    }
  }

  // Thread t's worker; nullptr in process.
  detail::DecodeWorker* of_thread(std::size_t t) const {
    return workers.empty() ? nullptr : workers[t].get();
  }
};

// What one scan's threads share, and the body each of them runs.
//
// Files are handed out in input order and committed in input order, so the first copy of
// duplicate pixels wins whatever the timing. A thread that finishes a file ahead of an earlier
// one leaves it pending and takes the next file; whichever thread commits the earlier file also
// commits the pending ones after it, and their frames wait in `ready_` for any thread to deliver,
// so no thread idles waiting for another's file. A thread waits only when it would run more
// than `ahead_` files past the last committed one (which bounds the memory held by pending
// frames), and delivers every ready file before it does.
class ScanRun {
 public:
  // Everything given is borrowed and must outlive the run; outcomes land in `report.files`
  // (already sized to `sources`).
  ScanRun(const std::vector<SourceFile>& sources, const ValidationOptions& options, const FrameStage& stage,
          const OnStagedImage& on_image, Progress* progress, std::size_t threads, ScanReport& report)
      : sources_(sources),
        options_(options),
        stage_(stage),
        on_image_(on_image),
        progress_(progress),
        ahead_(4 * threads),
        report_(report) {}

  // Runs `threads` scan threads, thread t with worker t (none in process: it decodes itself), until
  // every file is committed and delivered.
  void run_threads(const WorkerProcesses& workers, std::size_t threads) {
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < threads; ++t) pool.emplace_back(&ScanRun::run, this, workers.of_thread(t));
    for (auto& thread : pool) thread.join();
  }

  // Rethrows the first exception that stopped the scan, if any.
  void rethrow_failure() const {
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  struct Finished {
    FileOutcome outcome;
    std::vector<DecodedImage> frames;
    std::vector<StagedFrame> staged;  // the stage's outputs, one per frame (none without a stage)
  };
  // A committed file's frame waiting to be delivered. A file without frames (rejected) has one
  // entry without a frame, for the progress.
  struct Ready {
    std::size_t file;
    std::optional<DecodedImage> frame;
    StagedFrame staged;
    bool last;  // the file's last entry: the progress advances by one file
  };

  void run(detail::DecodeWorker* worker);
  bool submit_ahead(detail::DecodeWorker& worker, std::size_t i);
  void collect(detail::DecodeWorker& worker, std::size_t i);
  bool take(detail::DecodeWorker* worker, std::size_t i);
  void wait_for_room(std::size_t i);
  void commit_locked(Finished& finished);
  void make_ready_locked(std::size_t i, Finished& finished);
  void complete(std::size_t i, Finished finished);
  bool deliver_one();
  void deliver_all();
  void fail();

  const std::vector<SourceFile>& sources_;
  const ValidationOptions& options_;
  const FrameStage& stage_;
  const OnStagedImage& on_image_;
  Progress* const progress_;
  const std::size_t ahead_;
  ScanReport& report_;

  std::atomic<std::size_t> next_{0};  // the next file to hand out
  std::atomic<bool> stop_{false};
  std::mutex commit_mutex_;  // guards everything below
  std::condition_variable committed_cv_;
  std::size_t committed_ = 0;  // files before this one are in the report
  std::map<std::size_t, Finished> pending_;
  std::unordered_map<std::uint64_t, std::size_t> first_with_pixels_;
  std::deque<Ready> ready_;
  std::exception_ptr failure_;
};

// The body of one scan thread. With a worker, a thread keeps one file queued in it ahead of the
// one it is finishing, so the worker decodes the next file while this thread preprocesses the
// current one. It queues the next file only when that needs no waiting for the memory bound; it
// waits only with nothing queued, so a thread never waits for a commit that its own queued file
// holds up.
void ScanRun::run(detail::DecodeWorker* worker) {
  std::optional<std::size_t> queued;  // submitted to the worker, not yet collected
  for (;;) {
    const std::size_t i = next_.fetch_add(1);
    const bool claimed = i < sources_.size();
    const bool submitted = claimed && queued && submit_ahead(*worker, i);
    deliver_one();  // this thread's share of the committed frames, while its worker decodes
    if (queued) {
      collect(*worker, *queued);
      queued.reset();
    }
    if (!claimed) {
      deliver_all();
      return;
    }
    if (submitted || take(worker, i)) queued = i;
  }
}

// Queues file i in the worker behind the one it holds, when the memory bound allows that without
// waiting; true when it did (or tried: a failure to submit stops the scan).
bool ScanRun::submit_ahead(detail::DecodeWorker& worker, std::size_t i) {
  if (stop_.load()) return false;
  {
    std::lock_guard lock(commit_mutex_);
    if (i >= committed_ + ahead_) return false;
  }
  try {
    worker.submit(sources_[i]);
  } catch (...) {
    fail();
  }
  return true;
}

// Collects the worker's result for file i (nothing once the scan stopped) and completes it.
void ScanRun::collect(detail::DecodeWorker& worker, std::size_t i) {
  Finished finished;
  if (!stop_.load()) {
    try {
      finished.outcome = worker.collect(finished.frames, finished.staged);
    } catch (...) {
      fail();
    }
  }
  complete(i, std::move(finished));
}

// Takes file i with nothing queued: delivers what is ready and waits for room ahead, then hands the
// file to the worker (true), or decodes it here, runs the stage and completes it (false).
bool ScanRun::take(detail::DecodeWorker* worker, std::size_t i) {
  deliver_all();
  wait_for_room(i);
  Finished finished;
  if (!stop_.load()) {
    try {
      if (worker) {
        worker->submit(sources_[i]);
        return true;
      }
      finished.outcome = decode_file(sources_[i], options_, finished.frames);
      if (stage_ && !finished.frames.empty()) detail::run_stage(stage_, finished.frames, finished.staged);
    } catch (...) {
      fail();
    }
  }
  complete(i, std::move(finished));
  return false;
}

// Waits until file i is less than `ahead_` files past the last committed one.
void ScanRun::wait_for_room(std::size_t i) {
  std::unique_lock lock(commit_mutex_);
  committed_cv_.wait(lock, [&] { return i < committed_ + ahead_; });
}

// Commits `finished` as file `committed_` (under commit_mutex_): the duplicate decision, then
// the report entry. What is left in `finished` is to be delivered.
void ScanRun::commit_locked(Finished& finished) {
  FileOutcome& outcome = finished.outcome;
  if (outcome.ok && options_.reject_duplicates) {
    const auto [it, inserted] = first_with_pixels_.emplace(outcome.pixel_hash, committed_);
    if (!inserted) {
      outcome.ok = false;
      outcome.reason = Reason::kDuplicate;
      outcome.duplicate_of = sources_[it->second].report_path;
      outcome.detail = "the same decoded pixels as " + outcome.duplicate_of;
      finished.frames.clear();
      finished.staged.clear();
    }
  }
  report_.files[committed_] = std::move(outcome);
  ++committed_;
}

// Commits `finished` as file i (the next in order) and queues its frames with their stage outputs.
void ScanRun::make_ready_locked(std::size_t i, Finished& finished) {
  commit_locked(finished);
  auto& frames = finished.frames;
  if (frames.empty()) ready_.push_back({i, std::nullopt, {}, true});
  for (std::size_t k = 0; k < frames.size(); ++k) {
    StagedFrame staged = k < finished.staged.size() ? std::move(finished.staged[k]) : StagedFrame{};
    ready_.push_back({i, std::move(frames[k]), std::move(staged), k + 1 == frames.size()});
  }
}

// Commits file i, or leaves it pending until the files before it are in; what that commits
// joins `ready_`, from which every thread takes frames to deliver, one frame at a time, so the
// delivery work (the caller's preprocessing) is shared however the commits fall, and the frames
// of one multi-frame file are shared too.
void ScanRun::complete(std::size_t i, Finished finished) {
  {
    std::lock_guard lock(commit_mutex_);
    if (committed_ != i) {
      pending_.emplace(i, std::move(finished));
      return;
    }
    make_ready_locked(i, finished);
    for (auto it = pending_.begin(); it != pending_.end() && it->first == committed_;
         it = pending_.erase(it)) {
      make_ready_locked(it->first, it->second);
    }
  }
  committed_cv_.notify_all();
}

// Delivers one ready frame; false when none was ready.
bool ScanRun::deliver_one() {
  std::optional<Ready> entry;
  {
    std::lock_guard lock(commit_mutex_);
    if (ready_.empty()) return false;
    entry.emplace(std::move(ready_.front()));
    ready_.pop_front();
  }
  if (entry->frame && !stop_.load() && on_image_) {
    try {
      on_image_(entry->file, std::move(*entry->frame), std::move(entry->staged));
    } catch (...) {
      fail();
    }
  }
  if (entry->last && progress_) progress_->advance();
  return true;
}

// Delivers ready frames until none is left.
void ScanRun::deliver_all() {
  while (deliver_one()) {
  }
}

// Records the exception in flight (the first one wins) and stops the scan: the worker plumbing
// (fork or socket failures), the stage (in process, or rethrown from a worker) or on_image threw.
void ScanRun::fail() {
  std::lock_guard lock(commit_mutex_);
  if (!failure_) failure_ = std::current_exception();
  stop_ = true;
}

}  // namespace

Scanner::Scanner(ValidationOptions options) : options_(options) { options_.validate(); }

ScanReport Scanner::scan(const std::vector<SourceFile>& sources, const OnImage& on_image,
                         Progress* progress) const {
  OnStagedImage deliver;
  if (on_image) {
    deliver = [&on_image](std::size_t file_index, DecodedImage&& frame, StagedFrame&&) {
      on_image(file_index, std::move(frame));
    };
  }
  return scan_with_stage(sources, {}, deliver, progress);
}

ScanReport Scanner::scan_with_stage(const std::vector<SourceFile>& sources, const FrameStage& stage,
                                    const OnStagedImage& on_image, Progress* progress) const {
  const auto started = std::chrono::steady_clock::now();
  ScanReport report;
  report.files.resize(sources.size());
  if (sources.empty()) return report;
  const std::size_t threads = scan_threads(options_, sources.size());

  // Codecs and the dictionary are ready before the spawner is forked, so each worker starts warm.
  detail::prepare_dicom();
  std::optional<WorkerProcesses> workers(std::in_place, options_, threads, stage);
  ScanRun run(sources, options_, stage, on_image, progress, threads, report);
  run.run_threads(*workers, threads);
  workers.reset();  // every worker and the spawner end before an exception leaves the scan
  run.rethrow_failure();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace medload::loader
