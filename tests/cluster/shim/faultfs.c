/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* LD_PRELOAD shim for the cluster nemesis: a slow or failing disk under one directory.
 *
 *   EDH_FAULTFS_DIR=/path/to/state   only file descriptors whose path starts with this are touched
 *   EDH_FAULTFS_CTL=/path/to/ctl     control file, re-read whenever its mtime or size changes:
 *                                      missing or empty  no fault
 *                                      "delay MS"        sleep MS ms before each write/sync
 *                                      "fail"            writes and syncs fail with EIO
 *   EDH_FAULTFS_STALLS=/path/to/log  optional: each delay the process's main thread sat through
 *                                    (it runs the daemon's event loop) appends a line
 *                                    "START END CALL" (CLOCK_MONOTONIC ns), so the history checker can
 *                                    treat the stall like a pause (tests/checker/check_history.py)
 *
 * Intercepted: fsync, fdatasync, write, pwrite, pwrite64, writev, pwritev, and io_submit through
 * syscall(2) (libraft's kernel-AIO writer calls it that way; the iocb's file descriptor decides).
 * The synchronous calls sleep in the caller; a delayed io_submit returns at once and its batch is
 * submitted by a worker thread when the delay has passed (see submit_later).
 * A test shim, not part of electiond. */

/* both pwrite and pwrite64 are defined here: no redirection of one to the other */
#undef _FILE_OFFSET_BITS

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { MODE_NONE, MODE_DELAY, MODE_FAIL };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct timespec ctl_mtime;
static off_t ctl_size = -1;
static int mode = MODE_NONE;
static long delay_ms;

static void *next(const char *name) {
        return dlsym(RTLD_NEXT, name);
}

static int current_mode(long *ret_delay) {
        const char *ctl = getenv("EDH_FAULTFS_CTL");
        struct stat st;
        int m;

        if (!ctl)
                return MODE_NONE;
        pthread_mutex_lock(&lock);
        if (stat(ctl, &st) < 0) {
                mode = MODE_NONE;
                ctl_size = -1;
        } else if (st.st_size != ctl_size || st.st_mtim.tv_sec != ctl_mtime.tv_sec ||
                   st.st_mtim.tv_nsec != ctl_mtime.tv_nsec) {
                char buf[64] = {};
                FILE *f = fopen(ctl, "re");

                mode = MODE_NONE;
                if (f) {
                        if (fgets(buf, sizeof(buf), f)) {
                                if (strncmp(buf, "delay ", 6) == 0) {
                                        mode = MODE_DELAY;
                                        delay_ms = strtol(buf + 6, NULL, 10);
                                } else if (strncmp(buf, "fail", 4) == 0)
                                        mode = MODE_FAIL;
                        }
                        fclose(f);
                }
                ctl_size = st.st_size;
                ctl_mtime = st.st_mtim;
        }
        m = mode;
        *ret_delay = delay_ms;
        pthread_mutex_unlock(&lock);
        return m;
}

static int under_dir(int fd) {
        const char *dir = getenv("EDH_FAULTFS_DIR");
        char link[64], path[PATH_MAX];
        ssize_t n;

        if (!dir || fd < 0)
                return 0;
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, path, sizeof(path) - 1);
        if (n <= 0)
                return 0;
        path[n] = 0;
        return strncmp(path, dir, strlen(dir)) == 0;
}

static void log_stall(const char *call, const struct timespec *a, const struct timespec *b) {
        static ssize_t (*real_write)(int, const void *, size_t);
        const char *path = getenv("EDH_FAULTFS_STALLS");
        char line[96];
        int fd, n;

        if (!path || gettid() != getpid())
                return;
        if (!real_write)
                real_write = next("write");
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return;
        n = snprintf(line, sizeof(line), "%lld %lld %s\n",
                     (long long) a->tv_sec * 1000000000LL + a->tv_nsec,
                     (long long) b->tv_sec * 1000000000LL + b->tv_nsec, call);
        (void) !real_write(fd, line, (size_t) n);   /* one O_APPEND write: lines never interleave */
        close(fd);
}

/* 0: go on; -1 with errno: fail the call */
static int fault(const char *call, int fd) {
        long ms;
        int m = current_mode(&ms);

        if (m == MODE_NONE || !under_dir(fd))
                return 0;
        if (m == MODE_FAIL) {
                errno = EIO;
                return -1;
        }
        if (ms > 0) {
                struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L }, a, b;
                int saved = errno;

                clock_gettime(CLOCK_MONOTONIC, &a);
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                clock_gettime(CLOCK_MONOTONIC, &b);
                log_stall(call, &a, &b);
                errno = saved;
        }
        return 0;
}

int fsync(int fd) {
        static int (*f)(int);
        if (!f)
                f = next("fsync");
        if (fault("fsync", fd) < 0)
                return -1;
        return f(fd);
}

int fdatasync(int fd) {
        static int (*f)(int);
        if (!f)
                f = next("fdatasync");
        if (fault("fdatasync", fd) < 0)
                return -1;
        return f(fd);
}

ssize_t write(int fd, const void *buf, size_t count) {
        static ssize_t (*f)(int, const void *, size_t);
        if (!f)
                f = next("write");
        if (fd > 2 && fault("write", fd) < 0)
                return -1;
        return f(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t off) {
        static ssize_t (*f)(int, const void *, size_t, off_t);
        if (!f)
                f = next("pwrite");
        if (fault("pwrite", fd) < 0)
                return -1;
        return f(fd, buf, count, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t off) {
        static ssize_t (*f)(int, const void *, size_t, off_t);
        if (!f)
                f = next("pwrite64");
        if (fault("pwrite64", fd) < 0)
                return -1;
        return f(fd, buf, count, off);
}

ssize_t writev(int fd, const struct iovec *iov, int n) {
        static ssize_t (*f)(int, const struct iovec *, int);
        if (!f)
                f = next("writev");
        if (fd > 2 && fault("writev", fd) < 0)
                return -1;
        return f(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off) {
        static ssize_t (*f)(int, const struct iovec *, int, off_t);
        if (!f)
                f = next("pwritev");
        if (fault("pwritev", fd) < 0)
                return -1;
        return f(fd, iov, n, off);
}

/* A slow disk does not block io_submit: libraft submits with RWF_NOWAIT and the latency shows at
 * completion. So a delayed io_submit is accepted at once and handed to one worker thread, which
 * submits each batch, in order, once its delay has passed. */
typedef struct Pending {
        struct Pending *next;
        long ctx, nr;
        struct iocb **iocbs;
        struct timespec due;
} Pending;

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static Pending *queue_head, *queue_tail;
static int worker_running;
static long (*real_syscall)(long, ...);

static void *submit_worker(void *arg) {
        (void) arg;
        for (;;) {
                Pending *p;
                long done = 0;

                pthread_mutex_lock(&queue_lock);
                while (!queue_head)
                        pthread_cond_wait(&queue_cond, &queue_lock);
                p = queue_head;
                pthread_mutex_unlock(&queue_lock);

                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &p->due, NULL) == EINTR)
                        ;
                while (done < p->nr) {
                        long r = real_syscall(SYS_io_submit, p->ctx, p->nr - done, p->iocbs + done);
                        if (r > 0) {
                                done += r;
                                continue;
                        }
                        /* the caller cannot hear of a failure any more: submit what NOWAIT refused
                         * blocking (this thread may block), and give up on anything else */
                        if (r < 0 && errno == EAGAIN && (p->iocbs[done]->aio_rw_flags & RWF_NOWAIT)) {
                                p->iocbs[done]->aio_rw_flags &= ~RWF_NOWAIT;
                                continue;
                        }
                        break;
                }
                pthread_mutex_lock(&queue_lock);
                queue_head = p->next;
                if (!queue_head)
                        queue_tail = NULL;
                pthread_mutex_unlock(&queue_lock);
                free(p->iocbs);
                free(p);
        }
        return NULL;
}

static long submit_later(long ctx, long nr, struct iocb **iocbs, long ms) {
        Pending *p = calloc(1, sizeof(Pending));

        if (!p || !(p->iocbs = malloc(sizeof(struct iocb *) * (size_t) nr))) {
                free(p);
                errno = EAGAIN;
                return -1;
        }
        memcpy(p->iocbs, iocbs, sizeof(struct iocb *) * (size_t) nr);
        p->ctx = ctx;
        p->nr = nr;
        clock_gettime(CLOCK_MONOTONIC, &p->due);
        p->due.tv_sec += ms / 1000;
        p->due.tv_nsec += (ms % 1000) * 1000000L;
        if (p->due.tv_nsec >= 1000000000L) {
                p->due.tv_sec++;
                p->due.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&queue_lock);
        if (!worker_running) {
                pthread_t t;
                if (pthread_create(&t, NULL, submit_worker, NULL) != 0) {
                        pthread_mutex_unlock(&queue_lock);
                        free(p->iocbs);
                        free(p);
                        errno = EAGAIN;
                        return -1;
                }
                pthread_detach(t);
                worker_running = 1;
        }
        if (queue_tail)
                queue_tail->next = p;
        else
                queue_head = p;
        queue_tail = p;
        pthread_cond_signal(&queue_cond);
        pthread_mutex_unlock(&queue_lock);
        return nr;
}

long syscall(long number, ...) {
        long a[6];
        va_list ap;

        if (!real_syscall)
                real_syscall = next("syscall");
        va_start(ap, number);
        for (int i = 0; i < 6; i++)
                a[i] = va_arg(ap, long);
        va_end(ap);
        if (number == SYS_io_submit && a[1] > 0 && a[2]) {
                struct iocb **iocbs = (struct iocb **) a[2];
                long ms;
                int m = current_mode(&ms);

                if (m != MODE_NONE && under_dir((int) iocbs[0]->aio_fildes)) {
                        if (m == MODE_FAIL) {
                                errno = EIO;
                                return -1;
                        }
                        if (ms > 0)
                                return submit_later(a[0], a[1], iocbs, ms);
                }
        }
        return real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
