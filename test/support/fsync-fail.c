/*
 * A failing disk for the failed-fsync test (test/e2e/fsync-failure.test.ts), loaded with LD_PRELOAD: once the
 * file named by SIGNAL_TEST_FSYNC_FAIL_FLAG exists, fsync and fdatasync fail with EIO, as they do when the
 * kernel could not write a page back; until then they are the real calls.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void) {
  const char *flag = getenv("SIGNAL_TEST_FSYNC_FAIL_FLAG");
  return flag != NULL && access(flag, F_OK) == 0;
}

static int sync_or_fail(const char *name, int fd) {
  if (failing()) {
    errno = EIO;
    return -1;
  }
  int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
  return real(fd);
}

int fsync(int fd) { return sync_or_fail("fsync", fd); }

int fdatasync(int fd) { return sync_or_fail("fdatasync", fd); }
