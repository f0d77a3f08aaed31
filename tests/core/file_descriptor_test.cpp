#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <utility>

#include "medload/core/file_descriptor.h"

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

int open_null() {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  return fd;
}

TEST(FileDescriptor, ClosesWhenItGoes) {
  int raw = -1;
  {
    const medload::core::FileDescriptor fd(open_null());
    raw = fd.get();
    EXPECT_TRUE(fd);
    EXPECT_TRUE(is_open(raw));
  }
  EXPECT_FALSE(is_open(raw));
}

TEST(FileDescriptor, MoveTransfersOwnershipOnce) {
  medload::core::FileDescriptor a(open_null());
  const int raw = a.get();
  medload::core::FileDescriptor b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): a moved-from handle holds nothing
  EXPECT_EQ(b.get(), raw);
  medload::core::FileDescriptor c;
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
  EXPECT_TRUE(is_open(raw));
  c.reset();
  EXPECT_FALSE(is_open(raw));
}

TEST(FileDescriptor, ReleaseGivesUpWithoutClosing) {
  int raw = -1;
  {
    medload::core::FileDescriptor fd(open_null());
    raw = fd.release();
    EXPECT_FALSE(fd);
  }
  EXPECT_TRUE(is_open(raw));
  ::close(raw);
}

}  // namespace
