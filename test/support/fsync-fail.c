/*
 * A failing disk for the failed-fsync test (test/e2e/fsync-failure.test.ts), loaded with LD_PRELOAD: once the
 * file named by SIGNAL_TEST_FSYNC_FAIL_FLAG exists, libc's fsync and fdatasync fail with EIO, as they do when
 * the kernel could not write a page back; until then they are the real calls.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

typedef int (*sync_fn)(int);

/* Read once at load, before any thread exists: the environment is not read again from libuv's threads. */
static const char *flag_path;
static sync_fn real_fsync;
static sync_fn real_fdatasync;

__attribute__((constructor)) static void init(void) {
  flag_path = getenv("SIGNAL_TEST_FSYNC_FAIL_FLAG");
  real_fsync = (sync_fn)dlsym(RTLD_NEXT, "fsync");
  real_fdatasync = (sync_fn)dlsym(RTLD_NEXT, "fdatasync");
}

static int sync_or_fail(sync_fn real, int fd) {
  int saved = errno; /* access() sets errno while the flag is absent */
  int failing = flag_path != NULL && access(flag_path, F_OK) == 0;
  errno = saved;
  if (failing) {
    errno = EIO;
    return -1;
  }
  return real(fd);
}

int fsync(int fd) { return sync_or_fail(real_fsync, fd); }

int fdatasync(int fd) { return sync_or_fail(real_fdatasync, fd); }
