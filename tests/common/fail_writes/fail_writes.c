/* A test shim, loaded with LD_PRELOAD: the disk fills up at the k-th write to a regular file.
 *
 *   MEDLOAD_FAIL_WRITE_AT=k   the k-th write (1-based) to a regular file, and every one after
 *                             it, fails with ENOSPC ("No space left on device"), as on a full disk
 *   medload_fail_writes_at(k) the same, from inside the process (found with dlsym)
 *
 * write, pwrite, pwrite64, writev, pwritev and copy_file_range are intercepted; writes to pipes,
 * terminals and sockets (the program's own output) pass. Without the variable nothing changes.
 * Lets a test walk every write of a build, merge or split and check what each failure leaves. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long countdown = -1; /* writes to regular files left before the disk is full; <= 0: off */
static int full = 0;

__attribute__((constructor)) static void read_setting(void) {
  const char* at = getenv("MEDLOAD_FAIL_WRITE_AT");
  if (at != NULL) countdown = atol(at);
}

/* Arms the shim from inside the process (a test that forks once per k): the k-th write to a
 * regular file from now on, and every one after it, fails; 0 disarms it. */
void medload_fail_writes_at(long k) {
  countdown = k;
  full = 0;
}

/* Whether this write to `fd` fails. Counts only regular files. */
static int disk_full(int fd) {
  struct stat st;
  if (countdown <= 0 && !full) return 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  if (!full && --countdown == 0) full = 1;
  if (full) errno = ENOSPC;
  return full;
}

/* The next definition of `name` (libc's), looked up once. */
#define REAL(name, ...)                          \
  typedef __VA_ARGS__;                           \
  static real_t real = NULL;                     \
  if (real == NULL) real = (real_t)dlsym(RTLD_NEXT, name)

ssize_t write(int fd, const void* buf, size_t n) {
  REAL("write", ssize_t (*real_t)(int, const void*, size_t));
  return disk_full(fd) ? -1 : real(fd, buf, n);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  REAL("pwrite", ssize_t (*real_t)(int, const void*, size_t, off_t));
  return disk_full(fd) ? -1 : real(fd, buf, n, offset);
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t offset) {
  REAL("pwrite64", ssize_t (*real_t)(int, const void*, size_t, off64_t));
  return disk_full(fd) ? -1 : real(fd, buf, n, offset);
}

ssize_t writev(int fd, const struct iovec* iov, int count) {
  REAL("writev", ssize_t (*real_t)(int, const struct iovec*, int));
  return disk_full(fd) ? -1 : real(fd, iov, count);
}

ssize_t pwritev(int fd, const struct iovec* iov, int count, off_t offset) {
  REAL("pwritev", ssize_t (*real_t)(int, const struct iovec*, int, off_t));
  return disk_full(fd) ? -1 : real(fd, iov, count, offset);
}

ssize_t copy_file_range(int in, loff_t* in_offset, int out, loff_t* out_offset, size_t n, unsigned flags) {
  REAL("copy_file_range", ssize_t (*real_t)(int, loff_t*, int, loff_t*, size_t, unsigned));
  return disk_full(out) ? -1 : real(in, in_offset, out, out_offset, n, flags);
}
