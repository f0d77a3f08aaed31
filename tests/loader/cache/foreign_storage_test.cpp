// Caches that reach outside their file: a soft, external or user-defined link, a dataset with
// external storage, a virtual dataset, or a cache path that is a FIFO. Every reader opens a cache
// through schema::CacheFile, which refuses each of them, naming the object, before any object is
// read (a FIFO as the outside file must not block it); `medload inspect` exits 1 with the message.
//
// Each open runs in a forked child that SIGALRM ends after kDeadlineSeconds, so an open that
// blocks on a FIFO fails its test quickly instead of hanging the suite.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "h5.h"
#include "medload/core/error.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/inspect.h"
#include "medload_test/command.h"
#include "schema.h"
#include "test_util.h"

namespace {

namespace fs = std::filesystem;
namespace h5 = medload::loader::h5;
using medload::loader::CacheReader;
using medload::loader::test::TempDir;

constexpr unsigned kDeadlineSeconds = 20;

// What an action run by run_guarded did.
struct Outcome {
  enum Kind { kReturned, kFormatError, kIoError, kHdfError, kOtherError, kTimedOut, kCrashed };
  Kind kind = kCrashed;
  std::string message;
  double seconds = 0;
};

const char* kind_name(Outcome::Kind kind) {
  switch (kind) {
    case Outcome::kReturned:
      return "no error";
    case Outcome::kFormatError:
      return "FormatError";
    case Outcome::kIoError:
      return "IoError";
    case Outcome::kHdfError:
      return "HdfError";
    case Outcome::kOtherError:
      return "another exception";
    case Outcome::kTimedOut:
      return "a hang (ended by SIGALRM)";
    default:
      return "a crash";
  }
}

// Runs `action` in a forked child that alarm() ends after kDeadlineSeconds; what it threw comes
// back through a pipe. The child leaves with _exit (the parent's temporary folders stay).
Outcome run_guarded(const std::function<void()>& action) {
  const auto start = std::chrono::steady_clock::now();
  int fds[2];
  if (::pipe(fds) != 0) return {Outcome::kCrashed, "pipe failed", 0};
  const pid_t pid = ::fork();
  if (pid < 0) return {Outcome::kCrashed, "fork failed", 0};
  if (pid == 0) {
    ::close(fds[0]);
    ::alarm(kDeadlineSeconds);
    char kind = 'R';
    std::string message;
    try {
      action();
    } catch (const medload::HdfError& e) {
      kind = 'H';
      message = e.what();
    } catch (const medload::FormatError& e) {
      kind = 'F';
      message = e.what();
    } catch (const medload::IoError& e) {
      kind = 'I';
      message = e.what();
    } catch (const std::exception& e) {
      kind = 'O';
      message = e.what();
    }
    const std::string answer = kind + message;
    for (std::size_t sent = 0; sent < answer.size();) {
      const ssize_t n = ::write(fds[1], answer.data() + sent, answer.size() - sent);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string answer;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n > 0) {
      answer.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  Outcome outcome;
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
    outcome.kind = Outcome::kTimedOut;
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || answer.empty()) {
    outcome.kind = Outcome::kCrashed;
  } else {
    switch (answer[0]) {
      case 'R':
        outcome.kind = Outcome::kReturned;
        break;
      case 'F':
        outcome.kind = Outcome::kFormatError;
        break;
      case 'I':
        outcome.kind = Outcome::kIoError;
        break;
      case 'H':
        outcome.kind = Outcome::kHdfError;
        break;
      default:
        outcome.kind = Outcome::kOtherError;
    }
    outcome.message = answer.substr(1);
  }
  return outcome;
}

// Opens `path` with a CacheReader in a guarded child. (Not for a FIFO path: CacheReader opens
// its own descriptor of the path before the CacheFile.)
Outcome open_reader(const std::string& path) {
  return run_guarded([&] { const CacheReader reader(path); });
}

// Opens `path` with a schema::CacheFile (what every reader opens a cache through) in a guarded
// child.
Outcome open_cache_file(const std::string& path) {
  return run_guarded([&] { const medload::loader::schema::CacheFile file(path); });
}

// Expects `outcome` to be `kind` with a message holding every one of `parts`, well within the
// deadline.
void expect_outcome(const Outcome& outcome, Outcome::Kind kind, const std::vector<std::string>& parts) {
  EXPECT_EQ(outcome.kind, kind) << "expected " << kind_name(kind) << ", got " << kind_name(outcome.kind)
                                << ": " << outcome.message;
  for (const std::string& part : parts) {
    EXPECT_NE(outcome.message.find(part), std::string::npos)
        << "\"" << part << "\" not in: " << outcome.message;
  }
  EXPECT_LT(outcome.seconds, 10.0) << outcome.message;
}

// Part of every refusal of a foreign object.
const std::string kOneFile = "a medload cache is one self-contained file";

// A test folder with a valid cache built from eight small PNGs (valid.h5) and a FIFO (fifo).
class ForeignStorage : public ::testing::Test {
 protected:
  void SetUp() override {
    medload::loader::test::write_tree(dir_.path("in"), {"a", "b"}, 4);
    medload::loader::build_cache(medload::loader::test::quiet_build_options(dir_.path("in"), valid(), 16));
    ASSERT_EQ(::mkfifo(fifo().c_str(), 0600), 0) << std::strerror(errno);
  }

  std::string valid() const { return dir_.path("valid.h5"); }
  std::string fifo() const { return dir_.path("fifo"); }
  std::string path(const std::string& name) const { return dir_.path(name); }

  // A copy of the valid cache at `name`, changed by `change` through the HDF5 C API.
  std::string changed_copy(const std::string& name, const std::function<void(hid_t)>& change) const {
    const std::string copy = path(name);
    fs::copy_file(valid(), copy, fs::copy_options::overwrite_existing);
    h5::File file = h5::File::open(copy, /*read_write=*/true);
    change(file.id());
    file.close();
    return copy;
  }

  // A file of `bytes` bytes of 'Z': the private file a crafted cache points at (/etc/shadow).
  std::string secret_file(std::size_t bytes = 65536) const {
    const std::string secret = path("secret.txt");
    medload::loader::test::write_bytes(secret, std::string(bytes, 'Z'));
    return secret;
  }

  TempDir dir_{"foreign"};
};

// Replaces the dataset `name` by one of the same type and shape whose storage is the external
// file `outside` (nothing is written: the outside file is never touched).
void replace_with_external_storage(hid_t file, const std::string& name, const std::string& outside) {
  h5::Datatype type;
  h5::Dataspace space;
  {
    const h5::Dataset old = h5::open_dataset(file, name);
    type = h5::Datatype(H5Dget_type(old.id()));
    space = h5::Dataspace(H5Dget_space(old.id()));
  }
  h5::remove(file, name);
  const h5::PropList create(H5Pcreate(H5P_DATASET_CREATE));
  ASSERT_GE(H5Pset_external(create.id(), outside.c_str(), 0, H5F_UNLIMITED), 0);
  ASSERT_GE(H5Pset_fill_time(create.id(), H5D_FILL_TIME_NEVER), 0);
  const h5::Dataset replaced(
      H5Dcreate2(file, name.c_str(), type.id(), space.id(), H5P_DEFAULT, create.id(), H5P_DEFAULT));
  ASSERT_TRUE(replaced.valid()) << h5::last_error_message();
}

// Replaces the link `name` by an external link to `target_file`:`target_object`.
void replace_with_external_link(hid_t file, const std::string& name, const std::string& target_file,
                                const std::string& target_object) {
  h5::remove(file, name);
  ASSERT_GE(H5Lcreate_external(target_file.c_str(), target_object.c_str(), file, name.c_str(), H5P_DEFAULT,
                               H5P_DEFAULT),
            0)
      << h5::last_error_message();
}

// ---- external storage --------------------------------------------------------------------------

TEST_F(ForeignStorage, ExternalStorageOfLabelsIsRefused) {
  const std::string secret = secret_file();
  const std::string cache =
      changed_copy("labels.h5", [&](hid_t file) { replace_with_external_storage(file, "labels", secret); });
  expect_outcome(
      open_reader(cache), Outcome::kFormatError,
      {cache + " is not a usable medload cache: /labels keeps its data in an external file (" + secret + ")",
       kOneFile});
}

TEST_F(ForeignStorage, ExternalStorageOfAStringColumnOnAFifoIsRefusedWithoutBlocking) {
  const std::string cache = changed_copy(
      "patient.h5", [&](hid_t file) { replace_with_external_storage(file, "patient_id", fifo()); });
  expect_outcome(open_reader(cache), Outcome::kFormatError,
                 {cache + " is not a usable medload cache: /patient_id keeps its data in an external file (" +
                  fifo() + ")"});
}

TEST_F(ForeignStorage, SeveralExternalFilesNameTheFirst) {
  const std::string secret = secret_file();
  const std::string cache = changed_copy("sites.h5", [&](hid_t file) {
    h5::Datatype type;
    h5::Dataspace space;
    {
      const h5::Dataset old = h5::open_dataset(file, "site");
      type = h5::Datatype(H5Dget_type(old.id()));
      space = h5::Dataspace(H5Dget_space(old.id()));
    }
    h5::remove(file, "site");
    const h5::PropList create(H5Pcreate(H5P_DATASET_CREATE));
    ASSERT_GE(H5Pset_external(create.id(), secret.c_str(), 0, 8), 0);
    ASSERT_GE(H5Pset_external(create.id(), fifo().c_str(), 0, H5F_UNLIMITED), 0);
    ASSERT_GE(H5Pset_fill_time(create.id(), H5D_FILL_TIME_NEVER), 0);
    const h5::Dataset replaced(
        H5Dcreate2(file, "site", type.id(), space.id(), H5P_DEFAULT, create.id(), H5P_DEFAULT));
    ASSERT_TRUE(replaced.valid()) << h5::last_error_message();
  });
  expect_outcome(open_reader(cache), Outcome::kFormatError,
                 {"/site keeps its data in 2 external files (" + secret + ", ...)"});
}

// ---- links -------------------------------------------------------------------------------------

TEST_F(ForeignStorage, ExternalLinkToAFifoIsRefusedWithoutOpeningIt) {
  const std::string cache = changed_copy(
      "elink_fifo.h5", [&](hid_t file) { replace_with_external_link(file, "labels", fifo(), "/labels"); });
  expect_outcome(
      open_reader(cache), Outcome::kFormatError,
      {cache + " is not a usable medload cache: /labels is an external link (to " + fifo() + ":/labels)",
       kOneFile, "medload reads nothing outside it"});
}

TEST_F(ForeignStorage, ExternalLinkToAValidCacheIsRefused) {
  const std::string other = path("other.h5");
  fs::copy_file(valid(), other);
  const std::string cache = changed_copy(
      "elink_cache.h5", [&](hid_t file) { replace_with_external_link(file, "labels", other, "/labels"); });
  expect_outcome(open_reader(cache), Outcome::kFormatError,
                 {"/labels is an external link (to " + other + ":/labels)"});
}

TEST_F(ForeignStorage, ExternalLinkInsideAGroupIsRefused) {
  const std::string other = path("other.h5");
  fs::copy_file(valid(), other);
  const std::string cache = changed_copy("elink_group.h5", [&](hid_t file) {
    replace_with_external_link(file, "geometry/crop_x", other, "/geometry/crop_x");
  });
  expect_outcome(open_reader(cache), Outcome::kFormatError,
                 {"/geometry/crop_x is an external link (to " + other + ":/geometry/crop_x)"});
}

TEST_F(ForeignStorage, SoftLinkIsRefused) {
  const std::string cache = changed_copy("soft.h5", [](hid_t file) {
    h5::remove(file, "checksum");
    ASSERT_GE(H5Lcreate_soft("/pixel_hash", file, "checksum", H5P_DEFAULT, H5P_DEFAULT), 0);
  });
  expect_outcome(open_reader(cache), Outcome::kFormatError,
                 {cache + " is not a usable medload cache: /checksum is a soft link (to /pixel_hash)"});
}

TEST_F(ForeignStorage, DanglingSoftLinkIsRefused) {
  const std::string cache = changed_copy("dangling.h5", [](hid_t file) {
    ASSERT_GE(H5Lcreate_soft("/nowhere", file, "extra", H5P_DEFAULT, H5P_DEFAULT), 0);
  });
  expect_outcome(open_reader(cache), Outcome::kFormatError, {"/extra is a soft link (to /nowhere)"});
}

hid_t refuse_traversal(const char*, hid_t, const void*, size_t, hid_t, hid_t) { return H5I_INVALID_HID; }

TEST_F(ForeignStorage, UserDefinedLinkIsRefused) {
  constexpr H5L_type_t kType = static_cast<H5L_type_t>(99);
  H5L_class_t link_class{};
  link_class.version = H5L_LINK_CLASS_T_VERS;
  link_class.id = kType;
  link_class.comment = "medload-test";
  link_class.trav_func = refuse_traversal;
  ASSERT_GE(H5Lregister(&link_class), 0);
  const std::string cache = changed_copy("ud.h5", [&](hid_t file) {
    const char value[] = "/etc/shadow";
    ASSERT_GE(H5Lcreate_ud(file, "extra", kType, value, sizeof value, H5P_DEFAULT, H5P_DEFAULT), 0)
        << h5::last_error_message();
  });
  expect_outcome(open_reader(cache), Outcome::kFormatError, {"/extra is a user-defined link (type 99)"});
  // A process that does not know the link class (every reader but this test) names it too.
  ASSERT_GE(H5Lunregister(kType), 0);
  expect_outcome(open_reader(cache), Outcome::kFormatError, {"/extra is a user-defined link (type 99)"});
}

// A link name with a newline and an escape character is shown with '?' for each.
TEST_F(ForeignStorage, NamesFromTheFileAreShownSafely) {
  const std::string name = "evil\n\x1b[2Jname";
  const std::string cache = changed_copy("evil.h5", [&](hid_t file) {
    ASSERT_GE(H5Lcreate_soft(std::string(300, 'x').c_str(), file, name.c_str(), H5P_DEFAULT, H5P_DEFAULT), 0);
  });
  const Outcome outcome = open_reader(cache);
  expect_outcome(outcome, Outcome::kFormatError,
                 {"/evil??[2Jname is a soft link (to " + std::string(200, 'x') + "...)"});
  EXPECT_EQ(outcome.message.find('\n'), std::string::npos) << outcome.message;
  EXPECT_EQ(outcome.message.find('\x1b'), std::string::npos) << outcome.message;
}

// ---- virtual datasets ------------------------------------------------------------------------

TEST_F(ForeignStorage, VirtualImagesFromAFifoAreRefusedWithoutOpeningIt) {
  const std::string cache = changed_copy("vds.h5", [&](hid_t file) {
    h5::Datatype type;
    h5::Dataspace space;
    {
      const h5::Dataset old = h5::open_dataset(file, "images");
      type = h5::Datatype(H5Dget_type(old.id()));
      space = h5::Dataspace(H5Dget_space(old.id()));
    }
    h5::remove(file, "images");
    const h5::PropList create(H5Pcreate(H5P_DATASET_CREATE));
    ASSERT_GE(H5Pset_virtual(create.id(), space.id(), fifo().c_str(), "/images", space.id()), 0);
    const h5::Dataset replaced(
        H5Dcreate2(file, "images", type.id(), space.id(), H5P_DEFAULT, create.id(), H5P_DEFAULT));
    ASSERT_TRUE(replaced.valid()) << h5::last_error_message();
  });
  expect_outcome(
      open_reader(cache), Outcome::kFormatError,
      {cache + " is not a usable medload cache: /images is a virtual dataset (its data is mapped from " +
       fifo() + ")"});
}

// ---- the cache path ----------------------------------------------------------------------------

TEST_F(ForeignStorage, CachePathThatIsAFifoIsRefusedWithoutBlocking) {
  expect_outcome(open_cache_file(fifo()), Outcome::kIoError,
                 {"cannot read the cache " + fifo() + ": it is a FIFO (named pipe), not a regular file"});
}

TEST_F(ForeignStorage, SymlinkToAFifoIsRefusedWithoutBlocking) {
  const std::string link = path("link.h5");
  fs::create_symlink(fifo(), link);
  expect_outcome(open_cache_file(link), Outcome::kIoError,
                 {"cannot read the cache " + link + ": it is a FIFO (named pipe), not a regular file"});
}

TEST_F(ForeignStorage, CachePathThatIsADirectoryOrADeviceIsRefused) {
  expect_outcome(open_cache_file(path("in")), Outcome::kIoError,
                 {"cannot read the cache " + path("in") + ": it is a folder, not a regular file"});
  expect_outcome(open_cache_file("/dev/zero"), Outcome::kIoError,
                 {"cannot read the cache /dev/zero: it is a character device, not a regular file"});
}

// ---- what stays accepted -----------------------------------------------------------------------

// The built cache, and one whose /labels is compact, open: contiguous, chunked and compact
// storage inside the file are all a cache's own.
TEST_F(ForeignStorage, HardLinksAndStorageInsideTheFileAreAccepted) {
  expect_outcome(open_reader(valid()), Outcome::kReturned, {});
  const std::string cache = changed_copy("compact.h5", [](hid_t file) {
    const std::vector<std::int64_t> labels = h5::read_vector<std::int64_t>(file, "labels");
    h5::remove(file, "labels");
    const h5::PropList create(H5Pcreate(H5P_DATASET_CREATE));
    ASSERT_GE(H5Pset_layout(create.id(), H5D_COMPACT), 0);
    const hsize_t dims[1] = {labels.size()};
    const h5::Dataspace space(H5Screate_simple(1, dims, nullptr));
    const h5::Dataset compact(
        H5Dcreate2(file, "labels", H5T_STD_I64LE, space.id(), H5P_DEFAULT, create.id(), H5P_DEFAULT));
    ASSERT_TRUE(compact.valid()) << h5::last_error_message();
    ASSERT_GE(H5Dwrite(compact.id(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels.data()), 0);
    // A second hard link to a group is still a hard link.
    ASSERT_GE(H5Lcreate_hard(file, "geometry", file, "geometry_again", H5P_DEFAULT, H5P_DEFAULT), 0);
  });
  expect_outcome(open_reader(cache), Outcome::kReturned, {});
  expect_outcome(open_cache_file(cache), Outcome::kReturned, {});
}

// ---- every way in ------------------------------------------------------------------------------

// schema::CacheFile (every reader's way in) and inspect_cache refuse the cache too.
TEST_F(ForeignStorage, CacheFileAndInspectRefuseIt) {
  const std::string cache = changed_copy(
      "elink_fifo.h5", [&](hid_t file) { replace_with_external_link(file, "labels", fifo(), "/labels"); });
  const std::string named = "/labels is an external link (to " + fifo() + ":/labels)";
  expect_outcome(open_cache_file(cache), Outcome::kFormatError, {named});
  expect_outcome(run_guarded([&] { medload::loader::inspect_cache(cache); }), Outcome::kFormatError, {named});
}

// `medload inspect` exits 1 naming the object, and prints nothing of the outside file.
TEST_F(ForeignStorage, InspectCommandRefusesIt) {
  const std::string other = path("other.h5");
  fs::copy_file(valid(), other);
  const std::string linked = changed_copy(
      "elink_cache.h5", [&](hid_t file) { replace_with_external_link(file, "labels", other, "/labels"); });
  const medload::test::CommandResult link = medload::test::run_medload("inspect " + linked);
  EXPECT_EQ(link.exit_code, 1) << link.output;
  EXPECT_NE(link.output.find("/labels is an external link (to " + other + ":/labels)"), std::string::npos)
      << link.output;

  const std::string secret = secret_file();
  const std::string stored = changed_copy(
      "site_secret.h5", [&](hid_t file) { replace_with_external_storage(file, "site", secret); });
  const medload::test::CommandResult storage = medload::test::run_medload("inspect " + stored);
  EXPECT_EQ(storage.exit_code, 1) << storage.output;
  EXPECT_NE(storage.output.find("/site keeps its data in an external file (" + secret + ")"),
            std::string::npos)
      << storage.output;
  EXPECT_EQ(storage.output.find("ZZZZ"), std::string::npos) << storage.output;
}

}  // namespace
