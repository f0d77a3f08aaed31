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

  // No more threads than files; validate.threads is at most 256, and so is what 0 resolves to here.
  const std::size_t threads = std::min<std::size_t>(
      {core::resolve_threads(static_cast<std::size_t>(std::max(0, options_.threads))), sources.size(), 256});

  // Codecs and the dictionary are ready before the spawner is forked, so each worker starts warm.
  // The spawner is forked here, before the scan's threads run; it forks every worker, the
  // replacements for crashed ones included.
  detail::prepare_dicom();
  std::optional<detail::WorkerSpawner> spawner;
  std::vector<std::unique_ptr<detail::DecodeWorker>> workers;
  if (options_.isolation == Isolation::kProcess) {
    spawner.emplace(options_, threads, stage ? &stage : nullptr);
    for (std::size_t t = 0; t < threads; ++t) {
      workers.push_back(
          std::make_unique<detail::DecodeWorker>(options_, *spawner, static_cast<std::size_t>(t)));
    }
  }

  // Files are handed out in input order and committed in input order, so the first copy of
  // duplicate pixels wins whatever the timing. A thread that finishes a file ahead of an earlier
  // one leaves it pending and takes the next file; whichever thread commits the earlier file also
  // commits the pending ones after it, and their frames wait in `ready` for any thread to deliver,
  // so no thread idles waiting for another's file. A thread waits only when it would run more
  // than `ahead` files past the last committed one (which bounds the memory held by pending
  // frames), and delivers every ready file before it does.
  struct Finished {
    FileOutcome outcome;
    std::vector<DecodedImage> frames;
    std::vector<StagedFrame> staged;  // the stage's outputs, one per frame (none without a stage)
  };
  const std::size_t ahead = 4 * threads;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex commit_mutex;
  std::condition_variable committed_cv;
  std::size_t committed = 0;
  std::map<std::size_t, Finished> pending;
  std::unordered_map<std::uint64_t, std::size_t> first_with_pixels;
  std::exception_ptr failure;

  // Commits `finished` as file `committed` (under commit_mutex): the duplicate decision, then
  // the report entry. What is left in `finished` is to be delivered.
  auto commit_locked = [&](Finished& finished) {
    FileOutcome& outcome = finished.outcome;
    if (outcome.ok && options_.reject_duplicates) {
      const auto [it, inserted] = first_with_pixels.emplace(outcome.pixel_hash, committed);
      if (!inserted) {
        outcome.ok = false;
        outcome.reason = Reason::kDuplicate;
        outcome.duplicate_of = sources[it->second].report_path;
        outcome.detail = "the same decoded pixels as " + outcome.duplicate_of;
        finished.frames.clear();
        finished.staged.clear();
      }
    }
    report.files[committed] = std::move(outcome);
    ++committed;
  };

  // Records the exception in flight (the first one wins) and stops the scan: the worker plumbing
  // (fork or socket failures) or on_image threw.
  auto fail = [&] {
    std::lock_guard lock(commit_mutex);
    if (!failure) failure = std::current_exception();
    stop = true;
  };
  // Commits file i, or leaves it pending until the files before it are in; what that commits
  // joins `ready`, from which every thread takes frames to deliver, one frame at a time, so the
  // delivery work (the caller's preprocessing) is shared however the commits fall, and the frames
  // of one multi-frame file are shared too. A file without frames (rejected) has one entry without
  // a frame, for the progress.
  struct Ready {
    std::size_t file;
    std::optional<DecodedImage> frame;
    StagedFrame staged;
    bool last;  // the file's last entry: the progress advances by one file
  };
  std::deque<Ready> ready;
  // Commits `finished` as file i (the next in order) and queues its frames with their stage outputs.
  auto make_ready_locked = [&](std::size_t i, Finished& finished) {
    commit_locked(finished);
    auto& frames = finished.frames;
    if (frames.empty()) ready.push_back({i, std::nullopt, {}, true});
    for (std::size_t k = 0; k < frames.size(); ++k) {
      StagedFrame staged = k < finished.staged.size() ? std::move(finished.staged[k]) : StagedFrame{};
      ready.push_back({i, std::move(frames[k]), std::move(staged), k + 1 == frames.size()});
    }
  };
  auto complete = [&](std::size_t i, Finished finished) {
    {
      std::lock_guard lock(commit_mutex);
      if (committed != i) {
        pending.emplace(i, std::move(finished));
        return;
      }
      make_ready_locked(i, finished);
      for (auto it = pending.begin(); it != pending.end() && it->first == committed; it = pending.erase(it)) {
        make_ready_locked(it->first, it->second);
      }
    }
    committed_cv.notify_all();
  };
  // Delivers one ready frame; false when none was ready.
  auto deliver_one = [&] {
    std::optional<Ready> entry;
    {
      std::lock_guard lock(commit_mutex);
      if (ready.empty()) return false;
      entry.emplace(std::move(ready.front()));
      ready.pop_front();
    }
    if (entry->frame && !stop.load() && on_image) {
      try {
        on_image(entry->file, std::move(*entry->frame), std::move(entry->staged));
      } catch (...) {
        fail();
      }
    }
    if (entry->last && progress) progress->advance();
    return true;
  };

  // With a worker, a thread keeps one file queued in it ahead of the one it is finishing, so the
  // worker decodes the next file while this thread preprocesses the current one. It queues the
  // next file only when that needs no waiting for the memory bound; it waits only with nothing
  // queued, so a thread never waits for a commit that its own queued file holds up.
  auto run = [&](detail::DecodeWorker* worker) {
    constexpr std::size_t kNothing = SIZE_MAX;
    std::size_t queued = kNothing;  // submitted to the worker, not yet collected
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      const bool claimed = i < sources.size();
      bool submitted = false;
      if (claimed && queued != kNothing && !stop.load()) {
        {
          std::lock_guard lock(commit_mutex);
          submitted = i < committed + ahead;
        }
        if (submitted) {
          try {
            worker->submit(sources[i]);
          } catch (...) {
            fail();
          }
        }
      }
      deliver_one();  // this thread's share of the committed frames, while its worker decodes
      if (queued != kNothing) {
        Finished finished;
        if (!stop.load()) {
          try {
            finished.outcome = worker->collect(finished.frames, finished.staged);
          } catch (...) {
            fail();
          }
        }
        complete(queued, std::move(finished));
        queued = kNothing;
      }
      if (!claimed) {
        while (deliver_one()) {
        }
        return;
      }
      if (submitted) {
        queued = i;
        continue;
      }
      while (deliver_one()) {
      }
      {
        std::unique_lock lock(commit_mutex);
        committed_cv.wait(lock, [&] { return i < committed + ahead; });
      }
      Finished finished;
      if (!stop.load()) {
        try {
          if (worker) {
            worker->submit(sources[i]);
            queued = i;
            continue;
          }
          finished.outcome = decode_file(sources[i], options_, finished.frames);
          if (stage && !finished.frames.empty()) detail::run_stage(stage, finished.frames, finished.staged);
        } catch (...) {
          fail();
        }
      }
      complete(i, std::move(finished));
    }
  };

  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t) pool.emplace_back(run, workers.empty() ? nullptr : workers[t].get());
  for (auto& thread : pool) thread.join();
  workers.clear();
  spawner.reset();
  if (failure) std::rethrow_exception(failure);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace medload::loader
