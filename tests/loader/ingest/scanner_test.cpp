// The Scanner: crash containment, timeouts, determinism across thread counts, the callback.

#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gdcmImageReader.h>
#include <opencv2/core/utility.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "medload/core/error.h"
#include "medload/loader/ingest/scanner.h"
#include "test_util.h"

namespace medload::loader {
namespace {

using test::TempDir;
using test::textured;
using test::write_image;

// Removes the hook when a test ends, whatever happens.
struct HookGuard {
  explicit HookGuard(detail::PreDecodeHook hook) { detail::set_pre_decode_hook(std::move(hook)); }
  ~HookGuard() { detail::set_pre_decode_hook({}); }
};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void make_images(const TempDir& dir, const std::vector<std::string>& names) {
  unsigned seed = 10;
  for (const auto& name : names) write_image(dir / name, textured(48, 48, CV_8UC1, seed++));
}

// Inputs whose pixels cross from a worker both ways: a 48 px image and a 2-frame DICOM through
// the worker's shared memory (32 MiB), a 4200 x 4100 16-bit PNG (34 MB) through its socket.
void write_transfer_inputs(const TempDir& dir) {
  make_images(dir, {"small.png"});
  std::filesystem::copy_file(test::fixture("dicom/SC_rgb_rle_2frame.dcm"), dir / "multi.dcm");
  write_image(dir / "large.png", textured(4100, 4200, CV_16UC1, 3));
}

TEST(Scanner, DecoderThatAbortsOrSegfaultsMarksOnlyItsFileAndTheScanGoesOn) {
  TempDir dir("crash");
  make_images(dir, {"a.png", "abort_me.png", "b.png", "segv_me.png", "c.png", "d.png"});
  HookGuard hook([](const std::string& path) {
    if (contains(path, "abort_me")) std::abort();
    if (contains(path, "segv_me")) std::raise(SIGSEGV);
  });
  ValidationOptions options;
  options.threads = 2;
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()));
  ASSERT_EQ(report.files.size(), 6u);
  int crashes = 0;
  for (const auto& f : report.files) {
    const bool bad = contains(f.path, "_me");
    EXPECT_EQ(f.ok, !bad) << f.path << ": " << f.detail;
    if (bad) {
      ASSERT_TRUE(f.reason) << f.path;
      EXPECT_EQ(*f.reason, Reason::kDecoderCrash) << f.path;
      EXPECT_TRUE(contains(f.detail, "the scan went on")) << f.detail;
      EXPECT_NE(f.content_hash, 0u);  // still identified by its bytes
      ++crashes;
    }
  }
  EXPECT_EQ(crashes, 2);
}

TEST(Scanner, AnExceptionInAWorkerMarksItsFileAndNeverUnwindsIntoTheScanningProcess) {
  // Unwinding out of a forked worker would run this test's own code a second time in the child.
  TempDir dir("worker_throws");
  make_images(dir, {"a.png", "throw_me.png", "b.png"});
  const pid_t test_process = ::getpid();
  HookGuard hook([test_process](const std::string& path) {
    if (contains(path, "throw_me")) throw std::runtime_error("reply could not be built");
    if (::getpid() == test_process) std::abort();  // the hook runs in workers only
  });
  ValidationOptions options;
  options.threads = 1;
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()));
  ASSERT_EQ(::getpid(), test_process);
  ASSERT_EQ(report.files.size(), 3u);
  for (const auto& f : report.files) {
    if (!contains(f.path, "throw_me")) {
      EXPECT_TRUE(f.ok) << f.path << ": " << f.detail;
      continue;
    }
    ASSERT_TRUE(f.reason);
    EXPECT_EQ(*f.reason, Reason::kDecoderCrash);
    EXPECT_TRUE(contains(f.detail, "reply could not be built")) << f.detail;
  }
}

TEST(Scanner, AFifoOrAFolderListedAsAFileIsUnreadableAtOnceInWorkersAndInProcess) {
  TempDir dir("fifo");
  make_images(dir, {"a.png"});
  ASSERT_EQ(::mkfifo((dir / "pipe.png").c_str(), 0600), 0);
  std::filesystem::create_directories(dir / "folder.png");
  test::write_bytes(dir / "manifest.csv", "path,label\na.png,x\npipe.png,x\nfolder.png,x\n");
  for (const Isolation isolation : {Isolation::kProcess, Isolation::kInProcess}) {
    ValidationOptions options;
    options.threads = 1;
    options.isolation = isolation;
    options.file_timeout_s = 30;
    // Never even opened (inotify sees the opens of a FIFO): opening some devices has effects.
    const int watcher = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    ASSERT_GE(::inotify_add_watch(watcher, (dir / "pipe.png").c_str(), IN_OPEN), 0);
    const auto started = std::chrono::steady_clock::now();
    const ScanReport report = Scanner(options).scan(list_sources(dir.path().string(), dir / "manifest.csv"));
    char events[4096];
    EXPECT_LE(::read(watcher, events, sizeof events), 0) << "the FIFO was opened";
    ::close(watcher);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(20)) << "blocked on the FIFO";
    ASSERT_EQ(report.files.size(), 3u);
    EXPECT_TRUE(report.files[0].ok) << report.files[0].detail;
    for (std::size_t i : {1u, 2u}) {
      ASSERT_TRUE(report.files[i].reason) << report.files[i].path;
      EXPECT_EQ(*report.files[i].reason, Reason::kUnreadable);
      EXPECT_TRUE(contains(report.files[i].detail, "not a regular file")) << report.files[i].detail;
    }
    EXPECT_TRUE(contains(report.files[1].detail, "FIFO")) << report.files[1].detail;
  }
}

TEST(Scanner, AFileOverTheByteLimitIsTooLargeWithoutBeingRead) {
  TempDir dir("file_limit");
  make_images(dir, {"a.png"});
  ValidationOptions options;
  options.threads = 1;
  options.max_file_bytes = 16;
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()));
  ASSERT_EQ(report.files.size(), 1u);
  ASSERT_TRUE(report.files[0].reason);
  EXPECT_EQ(*report.files[0].reason, Reason::kTooLarge);
  EXPECT_TRUE(contains(report.files[0].detail, "validate.max_file_bytes")) << report.files[0].detail;
}

TEST(Scanner, ADecoderPastItsCpuTimeCostsItsFileAlone) {
  TempDir dir("cpu_limit");
  make_images(dir, {"a.png", "spin_me.png", "b.png"});
  HookGuard hook([](const std::string& path) {
    if (!contains(path, "spin_me")) return;
    for (volatile std::uint64_t i = 0;; i = i + 1) {  // a decoder stuck in a loop
    }
  });
  ValidationOptions options;
  options.threads = 1;
  options.worker_cpu_s = 1;
  options.file_timeout_s = 60;
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()));
  ASSERT_EQ(report.files.size(), 3u);
  for (const auto& f : report.files) {
    if (!contains(f.path, "spin_me")) {
      EXPECT_TRUE(f.ok) << f.path << ": " << f.detail;
      continue;
    }
    ASSERT_TRUE(f.reason);
    EXPECT_EQ(*f.reason, Reason::kDecoderCrash);
    EXPECT_TRUE(contains(f.detail, "signal " + std::to_string(SIGXCPU))) << f.detail;
  }
}

#ifndef __SANITIZE_ADDRESS__  // the address-space limit is not applied under AddressSanitizer
TEST(Scanner, ADecoderPastItsMemoryLimitCostsItsFileAlone) {
  // The worker may grow by 64 MiB over what it inherits; decoding a 6000 x 6000 16-bit PNG needs
  // 72 MB for the pixels alone, the 48 px image a few kB.
  TempDir dir("memory_limit");
  make_images(dir, {"a.png"});
  write_image(dir / "big.png", textured(6000, 6000, CV_16UC1, 9));
  ValidationOptions options;
  options.threads = 1;
  options.worker_memory_mb = 64;
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()));
  ASSERT_EQ(report.files.size(), 2u);
  EXPECT_TRUE(report.files[0].ok) << report.files[0].detail;
  ASSERT_TRUE(report.files[1].reason) << report.files[1].path;
  EXPECT_EQ(*report.files[1].reason, Reason::kDecoderCrash) << report.files[1].detail;
  options.worker_memory_mb = 0;  // no limit: the same file decodes
  EXPECT_TRUE(Scanner(options).scan(list_sources(dir.path().string())).files[1].ok);
}
#endif

TEST(Scanner, AWorkerHoldsNoDescriptorItInheritedBesideItsSocket) {
  // A pipe the scanning process has open when the scan starts stands in for the worker sockets of
  // another scan running on another thread. Were a worker to keep it, that scan would never see
  // end of file from its own worker when it crashes, only the per-file timeout.
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  struct stat pipe_stat {};
  ASSERT_EQ(::fstat(pipe_fds[1], &pipe_stat), 0);
  TempDir dir("fds");
  make_images(dir, {"a.png", "b.png"});
  // The descriptor's number may have been reused for something else in the worker: compare the
  // file it refers to.
  HookGuard hook([held = pipe_fds[1], pipe_stat](const std::string&) {
    struct stat held_stat {};
    if (::fstat(held, &held_stat) == 0 && held_stat.st_dev == pipe_stat.st_dev &&
        held_stat.st_ino == pipe_stat.st_ino) {
      std::abort();  // inherited and still open
    }
  });
  ValidationOptions options;
  options.threads = 1;
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()));
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  ASSERT_EQ(report.files.size(), 2u);
  for (const auto& f : report.files) EXPECT_TRUE(f.ok) << f.path << ": " << f.detail;
}

TEST(Scanner, RealFileThatAbortsGdcmIsContained) {
  // Debian's GDCM 3.0.21 is built with assertions: reading pydicom's rtdose_1frame.dcm fails
  // an assertion in gdcm::Attribute and aborts the whole process. Here the worker's decoder is
  // GDCM itself, run on the real file.
  TempDir dir("gdcm");
  std::filesystem::copy_file(test::fixture("dicom/rtdose_1frame.dcm"), dir / "rtdose_1frame.dcm");
  std::filesystem::copy_file(test::fixture("dicom/MR_small.dcm"), dir / "MR_small.dcm");
  HookGuard hook([](const std::string& path) {
    gdcm::ImageReader reader;
    reader.SetFileName(path.c_str());
    if (reader.Read()) {
      std::vector<char> buffer(reader.GetImage().GetBufferLength());
      reader.GetImage().GetBuffer(buffer.data());
    }
  });
  ValidationOptions options;
  options.threads = 1;
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()));
  ASSERT_EQ(report.files.size(), 2u);
  EXPECT_TRUE(report.files[0].ok) << report.files[0].path << ": " << report.files[0].detail;  // MR_small.dcm
  ASSERT_TRUE(report.files[1].reason);
  EXPECT_EQ(*report.files[1].reason, Reason::kDecoderCrash) << report.files[1].detail;
}

TEST(Scanner, HungDecoderIsKilledAfterTheTimeout) {
  TempDir dir("hang");
  make_images(dir, {"a.png", "hang_me.png", "z.png"});  // sorted: a, hang_me, z
  HookGuard hook([](const std::string& path) {
    if (contains(path, "hang_me")) std::this_thread::sleep_for(std::chrono::hours(1));
  });
  ValidationOptions options;
  options.threads = 1;
  options.file_timeout_s = 1;
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()));
  EXPECT_TRUE(report.files[0].ok);
  ASSERT_TRUE(report.files[1].reason);
  EXPECT_EQ(*report.files[1].reason, Reason::kDecoderCrash);
  EXPECT_TRUE(contains(report.files[1].detail, "did not finish within 1 s")) << report.files[1].detail;
  EXPECT_TRUE(report.files[2].ok);  // the replacement worker decodes the rest
}

TEST(Scanner, SameOutcomesWithOneTwoAndFourThreadsInProcessOrWorkers) {
  TempDir dir("threads");
  std::vector<std::string> names;
  for (int i = 0; i < 24; ++i) names.push_back("f" + std::to_string(100 + i) + ".png");
  make_images(dir, names);
  const cv::Mat copy = textured(48, 48, CV_8UC1, 10);  // the pixels of f100.png, several times
  for (int i = 0; i < 4; ++i) write_image(dir / ("dup" + std::to_string(i) + ".png"), copy);
  test::write_bytes(dir / "empty.png", "");
  const auto sources = list_sources(dir.path().string());
  nlohmann::json reference;
  for (Isolation isolation : {Isolation::kInProcess, Isolation::kProcess}) {
    for (int threads : {1, 2, 4}) {
      ValidationOptions options;
      options.threads = threads;
      options.isolation = isolation;
      ScanReport report = Scanner(options).scan(sources);
      report.seconds = 0;
      const auto j = report.to_json();
      if (reference.is_null()) reference = j;
      EXPECT_EQ(j, reference) << threads << " threads";
    }
  }
  EXPECT_EQ(reference.at("counts").at("by_reason").at("duplicate"), 4);
  EXPECT_EQ(reference.at("files")[0].at("reason"), nullptr);  // dup0.png: the first copy in input order
}

TEST(Scanner, ASlowFileDoesNotStallTheOtherThreadsAndStillWinsAsTheFirstCopy) {
  // f00.png takes 600 ms to decode; z.png has its pixels. With 2 threads the other thread goes
  // on decoding later files meanwhile (at most 4 x threads - 1 = 7 of them: the bound on pending
  // files), and the duplicate is still decided in input order.
  TempDir dir("slow");
  std::vector<std::string> names;
  for (int i = 0; i < 16; ++i) names.push_back("f" + std::to_string(10 + i).substr(0, 2) + ".png");
  names[0] = "f00.png";
  make_images(dir, names);
  write_image(dir / "z.png", textured(48, 48, CV_8UC1, 10));  // f00.png's pixels (seed 10)
  const std::string log = dir / "decode.log";
  HookGuard hook([log](const std::string& path) {
    const bool slow = contains(path, "f00.png");
    if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(600));
    std::ofstream(log, std::ios::app) << (slow ? "slow" : "other") << "\n";
  });
  ValidationOptions options;
  options.threads = 2;
  std::atomic<int> delivered{0};
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()),
                                                  [&](std::size_t, DecodedImage&&) { ++delivered; });
  ASSERT_EQ(report.files.size(), 17u);
  EXPECT_TRUE(report.files[0].ok) << report.files[0].detail;
  ASSERT_TRUE(report.files[16].reason);
  EXPECT_EQ(*report.files[16].reason, Reason::kDuplicate);
  EXPECT_TRUE(contains(report.files[16].duplicate_of, "f00.png")) << report.files[16].duplicate_of;
  EXPECT_EQ(delivered.load(), 16);
  std::ifstream in(log);
  int before_slow = 0;
  for (std::string line; std::getline(in, line) && line != "slow";) ++before_slow;
  EXPECT_GE(before_slow, 2);  // one thread waiting for the slow file would stop after 1
  EXPECT_LE(before_slow, 7);
}

TEST(Scanner, WorkersDeliverTheSamePixelsAsInProcessDecodingSmallOrLarge) {
  // Pixels come back from a worker through its shared memory (32 MiB) when they fit, else through
  // the socket: a 48 px image, a 2-frame DICOM and a 4200 x 4100 16-bit PNG (34 MB) cover both.
  TempDir dir("transfer");
  write_transfer_inputs(dir);
  const auto sources = list_sources(dir.path().string());
  std::map<std::pair<Isolation, int>, std::map<std::pair<std::size_t, int>, std::vector<std::uint8_t>>>
      pixels;
  // One thread queues each next file in its worker (alternate slots); two threads decode in two.
  for (int threads : {1, 2}) {
    for (Isolation isolation : {Isolation::kInProcess, Isolation::kProcess}) {
      ValidationOptions options;
      options.threads = threads;
      options.isolation = isolation;
      std::mutex mutex;
      const ScanReport report = Scanner(options).scan(sources, [&](std::size_t file, DecodedImage&& frame) {
        std::lock_guard lock(mutex);
        pixels[{isolation, threads}][{file, frame.frame_index}] = std::move(frame.pixels);
      });
      EXPECT_EQ(report.ok_count(), 3u);
    }
    const auto& workers = pixels[{Isolation::kProcess, threads}];
    ASSERT_EQ(workers.size(), 4u);  // 1 + 2 frames + 1
    EXPECT_EQ(workers, (pixels[{Isolation::kInProcess, threads}])) << threads << " threads";
    EXPECT_EQ(workers.at({0, 0}).size(), std::size_t{4100} * 4200 * 2);  // large.png
  }
}

TEST(Scanner, FilesQueuedBehindACrashAreDecodedByTheReplacementWorker) {
  // One thread keeps the next file queued in its worker while it finishes the current one. A
  // crash takes the queued request down with the worker; it goes to the replacement, whose reply
  // must carry that file's own pixels (two crashes in a row, then one more, cover the slots).
  TempDir dir("queued");
  make_images(dir, {"a.png", "b_abort_me.png", "c_abort_me.png", "d.png", "e_segv_me.png", "f.png", "g.png"});
  HookGuard hook([](const std::string& path) {
    if (contains(path, "abort_me")) std::abort();
    if (contains(path, "segv_me")) std::raise(SIGSEGV);
  });
  ValidationOptions options;
  options.threads = 1;
  options.file_timeout_s = 20;  // a request lost with the worker would show as a timeout
  const auto sources = list_sources(dir.path().string());
  std::map<std::size_t, std::vector<std::uint8_t>> pixels;
  std::mutex mutex;
  const ScanReport report = Scanner(options).scan(sources, [&](std::size_t file, DecodedImage&& frame) {
    std::lock_guard lock(mutex);
    pixels[file] = std::move(frame.pixels);
  });
  ASSERT_EQ(report.files.size(), sources.size());
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const bool bad = contains(sources[i].path, "_me");
    EXPECT_EQ(report.files[i].ok, !bad) << sources[i].path << ": " << report.files[i].detail;
    if (bad) continue;
    std::vector<DecodedImage> expected;
    ASSERT_TRUE(decode_file(sources[i], options, expected).ok);
    ASSERT_EQ(expected.size(), 1u);
    EXPECT_EQ(pixels[i], expected[0].pixels) << sources[i].path;
  }
  EXPECT_EQ(pixels.size(), 4u);
}

TEST(Scanner, WorkersAndTheirReplacementsAreForkedByOneSpawnerNotByTheScanningProcess) {
  // A scan thread forking a replacement worker while another thread holds a lock (the allocator's
  // under AddressSanitizer, any library's) would hand the child a lock nobody releases: every
  // worker must come from the single-threaded spawner.
  TempDir dir("spawner");
  TempDir logs("spawner_log");
  make_images(dir, {"a.png", "b_abort_me.png", "c.png", "d_abort_me.png", "e.png", "f.png"});
  const std::string log = logs / "parents.txt";
  HookGuard hook([log](const std::string& path) {
    std::ofstream(log, std::ios::app) << ::getpid() << ' ' << ::getppid() << '\n';
    if (contains(path, "abort_me")) std::abort();
  });
  ValidationOptions options;
  options.threads = 2;
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()));
  ASSERT_EQ(report.files.size(), 6u);
  for (const auto& f : report.files) EXPECT_EQ(f.ok, !contains(f.path, "_me")) << f.path << ": " << f.detail;
  std::ifstream in(log);
  std::set<long> workers;
  std::set<long> parents;
  long worker = 0;
  long parent = 0;
  while (in >> worker >> parent) {
    workers.insert(worker);
    parents.insert(parent);
  }
  // Each abort ends a worker and the files after it go to replacements: whatever the order, at
  // least three workers decoded something.
  EXPECT_GE(workers.size(), 3u);
  ASSERT_EQ(parents.size(), 1u);
  EXPECT_NE(*parents.begin(), static_cast<long>(::getpid()));
}

TEST(Scanner, ASpawnerKilledMidScanIsAClearErrorNotAHang) {
  TempDir dir("spawner_killed");
  make_images(dir, {"a.png", "b_kill_spawner.png", "c.png", "d.png"});
  HookGuard hook([](const std::string& path) {
    if (contains(path, "kill_spawner")) {
      ::kill(::getppid(), SIGKILL);
      std::abort();  // so that a replacement is needed
    }
  });
  ValidationOptions options;
  options.threads = 2;
  options.file_timeout_s = 60;
  try {
    Scanner(options).scan(list_sources(dir.path().string()));
    FAIL() << "the scan went on without its spawner";
  } catch (const WorkerError& e) {
    EXPECT_TRUE(contains(e.what(), "spawner process is gone")) << e.what();
  }
}

TEST(Scanner, CallbackGetsEveryFrameOfOkFilesOnlyWithTheirInfo) {
  TempDir dir("callback");
  make_images(dir, {"cls_a/1.png", "cls_b/2.png"});
  std::filesystem::copy_file(test::fixture("dicom/SC_rgb_rle_2frame.dcm"), dir / "cls_a/multi.dcm");
  test::write_bytes(dir / "cls_b/bad.png", "x");
  const auto sources = list_sources(dir.path().string());
  for (Isolation isolation : {Isolation::kInProcess, Isolation::kProcess}) {
    std::mutex mutex;
    std::vector<std::pair<std::size_t, int>> seen;  // (file index, frame index)
    std::vector<std::string> labels(4);
    std::vector<std::uint64_t> source_hashes(4);
    ValidationOptions options;
    options.threads = 2;
    options.isolation = isolation;
    const ScanReport report = Scanner(options).scan(sources, [&](std::size_t file, DecodedImage&& frame) {
      std::lock_guard lock(mutex);
      seen.emplace_back(file, frame.frame_index);
      labels[file] = frame.info.labels.at(0);
      source_hashes[file] = frame.source_hash;
    });
    std::sort(seen.begin(), seen.end());
    // sorted sources: cls_a/1.png, cls_a/multi.dcm, cls_b/2.png, cls_b/bad.png
    const std::vector<std::pair<std::size_t, int>> expected = {{0, 0}, {1, 0}, {1, 1}, {2, 0}};
    EXPECT_EQ(seen, expected);
    EXPECT_EQ(labels[1], "cls_a");
    EXPECT_EQ(labels[2], "cls_b");
    EXPECT_EQ(report.ok_count(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_NE(source_hashes[i], 0u) << sources[i].path;  // each frame names the bytes it came from
      EXPECT_EQ(source_hashes[i], report.files[i].content_hash) << sources[i].path;
    }
  }
}

TEST(Scanner, ExceptionFromTheCallbackStopsTheScanAndIsRethrown) {
  TempDir dir("throw");
  make_images(dir, {"a.png", "b.png", "c.png"});
  ValidationOptions options;
  options.threads = 2;
  EXPECT_THROW(
      Scanner(options).scan(list_sources(dir.path().string()),
                            [](std::size_t, DecodedImage&&) { throw std::runtime_error("disk full"); }),
      std::runtime_error);
}

// The socket of the decoder worker this runs in: the one descriptor it keeps past stderr.
int worker_socket() {
  for (int fd = 3; fd < 1024; ++fd) {
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) return fd;
  }
  return -1;
}

// Sends a framed message announcing `length` bytes with `body` after it, as the worker's reply.
void send_fake_reply(std::uint64_t length, const std::string& body) {
  const int fd = worker_socket();
  if (fd < 0) std::abort();
  if (::write(fd, &length, sizeof length) != static_cast<ssize_t>(sizeof length)) std::abort();
  if (!body.empty() && ::write(fd, body.data(), body.size()) != static_cast<ssize_t>(body.size())) std::abort();
}

TEST(Scanner, AWorkerThatAnswersNonsenseMarksOnlyItsFileAndTheScanGoesOn) {
  // Unparseable text, a reply missing its fields, and a length far past any limit: each file is
  // decoder_crash with the reason, its worker is replaced, and the other files are decoded.
  TempDir dir("nonsense");
  make_images(dir, {"a.png", "garbage_me.png", "b.png", "empty_me.png", "c.png", "huge_me.png", "d.png"});
  HookGuard hook([](const std::string& path) {
    const std::string garbage = "not a reply";
    const std::string empty = "{}";
    if (contains(path, "garbage_me")) send_fake_reply(garbage.size(), garbage);
    if (contains(path, "empty_me")) send_fake_reply(empty.size(), empty);
    if (contains(path, "huge_me")) send_fake_reply(std::uint64_t{1} << 60, "");
    if (contains(path, "_me")) ::pause();  // the scan kills it once it has read the reply
  });
  ValidationOptions options;
  options.threads = 2;
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()));
  ASSERT_EQ(report.files.size(), 7u);
  for (const auto& f : report.files) {
    const bool bad = contains(f.path, "_me");
    EXPECT_EQ(f.ok, !bad) << f.path << ": " << f.detail;
    if (!bad) continue;
    ASSERT_TRUE(f.reason) << f.path;
    EXPECT_EQ(*f.reason, Reason::kDecoderCrash) << f.path;
    EXPECT_TRUE(contains(f.detail, "malformed reply")) << f.path << ": " << f.detail;
    EXPECT_NE(f.content_hash, 0u) << f.path;  // recomputed without the decoder
  }
  const auto by_path = [&](const std::string& part) {
    for (const auto& f : report.files) {
      if (contains(f.path, part)) return f.detail;
    }
    return std::string();
  };
  EXPECT_TRUE(contains(by_path("garbage_me"), "parse error")) << by_path("garbage_me");
  EXPECT_TRUE(contains(by_path("empty_me"), "outcome")) << by_path("empty_me");
  EXPECT_TRUE(contains(by_path("huge_me"), std::to_string(std::uint64_t{1} << 60))) << by_path("huge_me");
}

// A stage that sends back the frame's pixels in reverse, with every field of its description
// set: `width` is the process it ran in, `decoded_hash` the size of its input, the rest fixed.
StagedFrame reversing_stage(const DecodedImage& frame) {
  StagedFrame out;
  out.height = 5;
  out.width = static_cast<int>(::getpid());
  out.channels = 3;
  out.type = PixelType::kUInt16;
  out.geometry.original_height = frame.height;
  out.geometry.crop_x = 7;
  out.geometry.scale = 0.25;
  out.geometry.pad_right = 9;
  out.times.clahe_ns = 11;
  out.times.total_ns = 13;
  out.checksum = 17;
  out.decoded_hash = frame.pixels.size();
  out.bytes.assign(frame.pixels.rbegin(), frame.pixels.rend());
  return out;
}

TEST(Scanner, AStageRunsWhereEachFileIsDecodedAndOnlyItsOutputComesBack) {
  // A 48 px image, a 2-frame DICOM and a 4200 x 4100 16-bit PNG: the outputs come back through
  // the worker's shared memory, and through its socket when they do not fit there (34 MB).
  TempDir dir("stage");
  write_transfer_inputs(dir);
  const auto sources = list_sources(dir.path().string());
  std::map<std::pair<std::size_t, int>, std::vector<std::uint8_t>> decoded;
  std::mutex decoded_mutex;
  Scanner(ValidationOptions{}).scan(sources, [&](std::size_t file, DecodedImage&& frame) {
    std::lock_guard lock(decoded_mutex);
    decoded[{file, frame.frame_index}] = std::move(frame.pixels);
  });
  ASSERT_EQ(decoded.size(), 4u);
  for (Isolation isolation : {Isolation::kInProcess, Isolation::kProcess}) {
    ValidationOptions options;
    options.threads = 2;
    options.isolation = isolation;
    std::mutex mutex;
    std::map<std::pair<std::size_t, int>, StagedFrame> staged;
    std::vector<DecodedImage> frames;
    const ScanReport report = Scanner(options).scan_with_stage(
        sources, reversing_stage, [&](std::size_t file, DecodedImage&& frame, StagedFrame&& output) {
          std::lock_guard lock(mutex);
          staged[{file, frame.frame_index}] = std::move(output);
          frames.push_back(std::move(frame));
        });
    EXPECT_EQ(report.ok_count(), 3u);
    ASSERT_EQ(staged.size(), 4u);
    for (const auto& [key, output] : staged) {
      const auto& pixels = decoded.at(key);
      EXPECT_EQ(output.bytes, std::vector<std::uint8_t>(pixels.rbegin(), pixels.rend()));
      EXPECT_EQ(output.decoded_hash, pixels.size());
      EXPECT_EQ(output.height, 5);
      EXPECT_EQ(output.channels, 3);
      EXPECT_EQ(output.type, PixelType::kUInt16);
      EXPECT_GT(output.geometry.original_height, 0);
      EXPECT_EQ(output.geometry.crop_x, 7);
      EXPECT_EQ(output.geometry.scale, 0.25);
      EXPECT_EQ(output.geometry.pad_right, 9);
      EXPECT_EQ(output.times.clahe_ns, 11);
      EXPECT_EQ(output.times.total_ns, 13);
      EXPECT_EQ(output.checksum, 17u);
      const int pid = output.width;
      if (isolation == Isolation::kProcess) {
        EXPECT_NE(pid, ::getpid()) << "the stage ran in the scanning process";
      } else {
        EXPECT_EQ(pid, ::getpid());
      }
    }
    for (const auto& frame : frames) {
      EXPECT_TRUE(frame.pixels.empty()) << frame.source_path;  // the pixels stayed where they were decoded
      EXPECT_GT(frame.height, 0);
      EXPECT_NE(frame.source_hash, 0u);
    }
  }
}

TEST(Scanner, AnExceptionFromAStageStopsTheScanAndKeepsItsTypeAndMessage) {
  TempDir dir("stage_throw");
  make_images(dir, {"a.png", "b.png", "c.png"});
  for (Isolation isolation : {Isolation::kInProcess, Isolation::kProcess}) {
    ValidationOptions options;
    options.threads = 2;
    options.isolation = isolation;
    try {
      Scanner(options).scan_with_stage(
          list_sources(dir.path().string()),
          [](const DecodedImage& frame) -> StagedFrame {
            throw FormatError("preprocess: cannot handle " + frame.source_path);
          },
          [](std::size_t, DecodedImage&&, StagedFrame&&) {});
      ADD_FAILURE() << "no exception";
    } catch (const FormatError& e) {
      EXPECT_TRUE(contains(e.what(), "preprocess: cannot handle ")) << e.what();
      EXPECT_TRUE(contains(e.what(), ".png")) << e.what();
    }
  }
}

TEST(Scanner, AStageThatCrashesInAWorkerMarksOnlyItsFile) {
  TempDir dir("stage_crash");
  make_images(dir, {"a.png", "abort_me.png", "b.png", "c.png"});
  ValidationOptions options;
  options.threads = 2;
  const ScanReport report = Scanner(options).scan_with_stage(
      list_sources(dir.path().string()),
      [](const DecodedImage& frame) {
        if (contains(frame.source_path, "abort_me")) std::abort();
        return StagedFrame{};
      },
      [](std::size_t, DecodedImage&&, StagedFrame&&) {});
  ASSERT_EQ(report.files.size(), 4u);
  for (const auto& f : report.files) {
    const bool bad = contains(f.path, "abort_me");
    EXPECT_EQ(f.ok, !bad) << f.path << ": " << f.detail;
    if (bad) {
      ASSERT_TRUE(f.reason);
      EXPECT_EQ(*f.reason, Reason::kDecoderCrash);
    }
  }
}

TEST(Scanner, OpenCVParallelLoopsInAStageRunWholeInTheWorkersOwnThread) {
  // The scanning process runs OpenCV's thread pool first (TBB on Debian), as a program that
  // preprocessed something before its scan would. The pool's threads do not exist in a forked
  // worker: a parallel loop inside a stage must still cover its whole range, in the worker's own
  // thread, without waiting for them (a hang would end as a decoder_crash after the timeout).
  std::atomic<int> parts{0};
  cv::parallel_for_(cv::Range(0, 64), [&](const cv::Range& range) {
    parts += range.size();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  ASSERT_EQ(parts.load(), 64);
  TempDir dir("stage_serial");
  make_images(dir, {"a.png", "b.png", "c.png"});
  ValidationOptions options;
  options.threads = 2;
  std::mutex mutex;
  std::vector<StagedFrame> outputs;  // height: threads seen, width: iterations covered, channels: caller's
  const ScanReport report = Scanner(options).scan_with_stage(
      list_sources(dir.path().string()),
      [](const DecodedImage&) {
        std::mutex ids_mutex;
        std::set<std::thread::id> ids;
        int covered = 0;
        cv::parallel_for_(cv::Range(0, 64), [&](const cv::Range& range) {
          std::lock_guard lock(ids_mutex);
          ids.insert(std::this_thread::get_id());
          covered += range.size();
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
        StagedFrame out;
        out.height = static_cast<int>(ids.size());
        out.width = covered;
        out.channels = static_cast<int>(ids.count(std::this_thread::get_id()));
        return out;
      },
      [&](std::size_t, DecodedImage&&, StagedFrame&& staged) {
        std::lock_guard lock(mutex);
        outputs.push_back(std::move(staged));
      });
  EXPECT_EQ(report.ok_count(), 3u);
  ASSERT_EQ(outputs.size(), 3u);
  for (const auto& output : outputs) {
    EXPECT_EQ(output.height, 1) << "threads that ran the loop";
    EXPECT_EQ(output.channels, 1) << "the stage's own thread ran it";
    EXPECT_EQ(output.width, 64) << "iterations covered";
  }
}
}  // namespace
}  // namespace medload::loader
