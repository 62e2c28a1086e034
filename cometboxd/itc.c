/* itc.c - resuming a connection from the pool thread that serves it,
 * without libmicrohttpd's wake-up write.
 *
 * MHD_resume_connection() always writes 8 bytes to the daemon's eventfd, so
 * that the thread serving the connection leaves epoll_wait and resumes it.
 * When that thread is the caller, inside one of our callbacks, the write is
 * not needed: before its next epoll_wait, the thread's loop resumes every
 * connection marked for it (MHD_epoll() calls resume_suspended_connections()
 * first; libmicrohttpd 0.9.75, daemon.c). A pool thread that resumes the
 * thousands of held requests a fan-out woke would make as many system calls
 * for nothing. So cometboxd defines write(): during cbx_resume_here() it
 * skips the one 8-byte write of the value 1; every other write goes on to the next
 * definition (libc's, or a sanitizer's interceptor). Should a libmicrohttpd
 * no longer write there, nothing is skipped and nothing breaks.
 * docs/THREADS.md ("Waking held requests"). */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "itc.h"

typedef ssize_t (*write_fn)(int, const void *, size_t);

static write_fn next_write;
static _Thread_local bool skip_wake;
static _Atomic uint64_t skipped;

__attribute__((constructor)) static void find_next_write(void)
{
    next_write = (write_fn)dlsym(RTLD_NEXT, "write");
}

static bool is_wake(const void *buf, size_t n)
{
    uint64_t v;

    if (n != sizeof v)
        return false;
    memcpy(&v, buf, sizeof v);
    return v == 1; /* eventfd: add 1 */
}

ssize_t write(int fd, const void *buf, size_t n)
{
    if (skip_wake && is_wake(buf, n)) {
        skip_wake = false;
        atomic_fetch_add_explicit(&skipped, 1, memory_order_relaxed);
        return (ssize_t)n;
    }
    if (next_write != NULL)
        return next_write(fd, buf, n);
    return syscall(SYS_write, fd, buf, n); /* before the constructor ran */
}

void cbx_resume_here(struct MHD_Connection *c)
{
    skip_wake = true;
    MHD_resume_connection(c);
    skip_wake = false;
}

uint64_t cbx_resume_wakeups_skipped(void)
{
    return atomic_load_explicit(&skipped, memory_order_relaxed);
}
