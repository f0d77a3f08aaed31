// Files medload reads are opened only when they are regular files: a FIFO, a device or a folder
// named where a file is expected is refused at once (a FIFO without a writer would block a plain
// open forever), and outputs never replace one.

#include <gtest/gtest.h>

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "medload/core/atomic_file.h"
#include "medload/core/error.h"
#include "medload/core/regular_file.h"
#include "medload_test/temp_dir.h"

namespace {

using medload::IoError;
using medload::core::open_regular_file;
using medload::core::read_regular_file;
using medload::core::RegularFileStream;
using medload::test::TempDir;

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// The IoError message of `call`, or "" when it threw none.
template <class Call>
std::string io_error_of(Call&& call) {
  try {
    call();
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

TEST(RegularFile, ReadsARegularFileAndFollowsLinksToOne) {
  TempDir dir("regular");
  write_text(dir / "a.json", "{\"x\": 1}");
  std::filesystem::create_symlink(dir / "a.json", dir / "link.json");
  EXPECT_EQ(read_regular_file(dir / "a.json", "the config", 1 << 20), "{\"x\": 1}");
  EXPECT_EQ(read_regular_file(dir / "link.json", "the config", 1 << 20), "{\"x\": 1}");
  EXPECT_EQ(read_regular_file(dir / "a.json", "the config", 8), "{\"x\": 1}");  // exactly the limit
  write_text(dir / "empty", "");
  EXPECT_EQ(read_regular_file(dir / "empty", "the config", 8), "");
}

TEST(RegularFile, RefusesAFifoAtOnceNamingWhatItIs) {
  TempDir dir("regular");
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  std::filesystem::create_symlink(dir / "fifo", dir / "link");
  // No writer ever opens the FIFO: a plain open would block here forever.
  for (const std::string name : {"fifo", "link"}) {
    const std::string message = io_error_of([&] { open_regular_file(dir / name, "the manifest"); });
    EXPECT_NE(message.find("cannot read the manifest " + (dir / name) +
                           ": it is a FIFO (named pipe), not a regular file"),
              std::string::npos)
        << message;
    EXPECT_NE(io_error_of([&] { read_regular_file(dir / name, "the config", 1 << 20); }), "");
    EXPECT_NE(io_error_of([&] { RegularFileStream in(dir / name, "the table"); }), "");
  }
}

// Whether `path` was opened while `call` ran (inotify's IN_OPEN, which FIFOs and devices report).
template <class Call>
bool opened_during(const std::string& path, Call&& call) {
  const int watcher = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  EXPECT_GE(watcher, 0);
  EXPECT_GE(::inotify_add_watch(watcher, path.c_str(), IN_OPEN), 0);
  call();
  char events[4096];
  const ssize_t got = ::read(watcher, events, sizeof events);
  ::close(watcher);
  return got > 0;
}

TEST(RegularFile, SpecialFilesAreNeverOpened) {
  // Opening some devices has effects of its own (a watchdog device starts its timer, a tape
  // device rewinds): they are looked at, not opened.
  TempDir dir("regular");
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  for (const std::string& path : {dir / "fifo", std::string("/dev/null")}) {
    EXPECT_FALSE(opened_during(path, [&] {
      EXPECT_NE(io_error_of([&] { open_regular_file(path, "x"); }), "");
    })) << path;
  }
  write_text(dir / "file", "x");
  EXPECT_TRUE(opened_during(dir / "file", [&] { open_regular_file(dir / "file", "x"); }));  // the probe works
}

TEST(RegularFile, RefusesDevicesFoldersAndMissingFiles) {
  TempDir dir("regular");
  EXPECT_NE(io_error_of([] {
              read_regular_file("/dev/zero", "the config", 1 << 20);
            }).find("it is a character device, not a regular file"),
            std::string::npos);
  EXPECT_NE(io_error_of([&] { read_regular_file(dir.str(), "the config", 1 << 20); }).find("it is a folder"),
            std::string::npos);
  EXPECT_NE(io_error_of([&] {
              read_regular_file(dir / "missing", "the config", 1 << 20);
            }).find("it does not exist"),
            std::string::npos);
}

TEST(RegularFile, RefusesANameHoldingANulByteRatherThanReadTheFileBeforeIt) {
  TempDir dir("regular");
  write_text(dir / "a.csv", "x");
  const std::string message =
      io_error_of([&] { read_regular_file(dir / "a.csv" + std::string(1, '\0') + "b", "the table", 100); });
  EXPECT_NE(message.find("the name holds a NUL byte"), std::string::npos) << message;
}

TEST(RegularFile, RefusesAFileLargerThanTheLimitGivingBoth) {
  TempDir dir("regular");
  write_text(dir / "big", std::string(100, 'x'));
  const std::string message = io_error_of([&] { read_regular_file(dir / "big", "the config", 99); });
  EXPECT_NE(message.find("it is 100 bytes; the limit is 99"), std::string::npos) << message;
}

TEST(RegularFile, StreamReadsLinesAndKnowsTheSize) {
  TempDir dir("regular");
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "row " + std::to_string(i) + "\n";  // several buffers
  write_text(dir / "t.csv", text);
  RegularFileStream in(dir / "t.csv", "the table");
  EXPECT_EQ(in.size_bytes(), text.size());
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    EXPECT_EQ(line, "row " + std::to_string(rows));
    ++rows;
  }
  EXPECT_EQ(rows, 20000);
  EXPECT_FALSE(in.bad());
}

TEST(RequireReplaceable, RefusesFifosDevicesAndFoldersButNotFilesOrLinks) {
  TempDir dir("replaceable");
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  std::filesystem::create_directories(dir / "folder");
  write_text(dir / "file", "old");
  std::filesystem::create_symlink("/dev/null", dir / "link");
  EXPECT_NE(io_error_of([&] {
              medload::require_replaceable(dir / "fifo");
            }).find("refusing to replace " + (dir / "fifo") + ": it is a FIFO (named pipe)"),
            std::string::npos);
  EXPECT_NE(io_error_of([&] { medload::require_replaceable(dir / "folder"); }).find("it is a folder"),
            std::string::npos);
  EXPECT_NE(io_error_of([] { medload::require_replaceable("/dev/null"); }).find("character device"),
            std::string::npos);
  EXPECT_EQ(io_error_of([&] { medload::require_replaceable(dir / "file"); }), "");
  EXPECT_EQ(io_error_of([&] { medload::require_replaceable(dir / "link"); }), "");
  EXPECT_EQ(io_error_of([&] { medload::require_replaceable(dir / "new"); }), "");
}

TEST(RequireReplaceable, AtomicWritesLeaveAFifoAsItWasAndReplaceALinkNotItsTarget) {
  TempDir dir("replaceable");
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  EXPECT_NE(io_error_of([&] { medload::write_file_atomically(dir / "fifo", "new"); }), "");
  write_text(dir / "temp", "new");
  EXPECT_NE(io_error_of([&] { medload::publish_atomically(dir / "temp", dir / "fifo"); }), "");
  struct stat st {};
  ASSERT_EQ(::lstat((dir / "fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_FALSE(std::filesystem::exists(dir / "temp"));  // the failed publish removed its temporary
  // A link in the output's place is replaced by the file; what it pointed to is untouched.
  write_text(dir / "target", "target");
  std::filesystem::create_symlink(dir / "target", dir / "link");
  medload::write_file_atomically(dir / "link", "new");
  EXPECT_FALSE(std::filesystem::is_symlink(dir / "link"));
  EXPECT_EQ(read_regular_file(dir / "link", "", 100), "new");
  EXPECT_EQ(read_regular_file(dir / "target", "", 100), "target");
}

TEST(RequireReplaceable, AnAtomicWriteNeverWritesThroughALinkAtItsTemporaryName) {
  // The temporary's name (path.tmp-<pid>) can be guessed: a link put there had the content
  // written, and the file it pointed to truncated, wherever it pointed.
  TempDir dir("replaceable");
  write_text(dir / "victim", "precious");
  const std::string temporary = dir / "out.json" + ".tmp-" + std::to_string(::getpid());
  std::filesystem::create_symlink(dir / "victim", temporary);
  medload::write_file_atomically(dir / "out.json", "new");
  EXPECT_EQ(read_regular_file(dir / "victim", "", 100), "precious");
  EXPECT_EQ(read_regular_file(dir / "out.json", "", 100), "new");
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(temporary)));
}

}  // namespace
