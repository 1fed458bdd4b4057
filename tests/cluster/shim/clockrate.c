/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* LD_PRELOAD shim for the cluster nemesis: a process whose monotonic clocks run at a wrong rate.
 *
 *   EDH_CLOCK_RATE=0.5   the process sees CLOCK_MONOTONIC(_RAW/_COARSE) and CLOCK_BOOTTIME(_ALARM)
 *                        advance at 0.5 s per real second (from the moment the shim loaded)
 *
 * clock_gettime() of those clocks is scaled: seen = base + (real - base) * rate. Timers are
 * translated back so they fire when the process's own clock reaches the time it asked for:
 * timerfd_settime() of a timerfd on those clocks (sd-event arms absolute CLOCK_BOOTTIME and
 * CLOCK_MONOTONIC timerfds) maps an absolute expiry through the inverse, a relative one and the
 * interval by 1/rate; epoll_wait/epoll_pwait/poll timeouts and nanosleep/clock_nanosleep
 * durations are divided by the rate too. This breaks the clock-rate assumption on purpose
 * (DESIGN.md: rates differ by at most 1%), to show the checker catches what it excludes.
 * A test shim, not part of electiond. */

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>

#define MAX_FD 65536
#define NSEC 1000000000LL

static double rate = 1.0;
static int64_t base[16];
static unsigned char fd_scaled[MAX_FD];
static int (*real_clock_gettime)(clockid_t, struct timespec *);

static int scaled_clock(clockid_t c) {
        return c == CLOCK_MONOTONIC || c == CLOCK_MONOTONIC_RAW || c == CLOCK_MONOTONIC_COARSE ||
               c == CLOCK_BOOTTIME || c == CLOCK_BOOTTIME_ALARM;
}

static int64_t ts_ns(const struct timespec *ts) {
        return (int64_t) ts->tv_sec * NSEC + ts->tv_nsec;
}

static struct timespec ns_ts(int64_t ns) {
        if (ns < 0)
                ns = 0;
        return (struct timespec) { .tv_sec = ns / NSEC, .tv_nsec = ns % NSEC };
}

__attribute__((constructor)) static void init(void) {
        const char *e = getenv("EDH_CLOCK_RATE");
        struct timespec ts;

        real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
        if (e) {
                double r = strtod(e, NULL);
                if (r > 0.001 && r < 1000)
                        rate = r;
        }
        for (clockid_t c = 0; c < 16; c++)
                if (scaled_clock(c) && real_clock_gettime(c, &ts) == 0)
                        base[c] = ts_ns(&ts);
}

int clock_gettime(clockid_t c, struct timespec *ts) {
        int r;

        if (!real_clock_gettime)
                real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
        r = real_clock_gettime(c, ts);
        if (r == 0 && c >= 0 && c < 16 && scaled_clock(c))
                *ts = ns_ts(base[c] + (int64_t) ((double) (ts_ns(ts) - base[c]) * rate));
        return r;
}

int timerfd_create(clockid_t c, int flags) {
        static int (*f)(clockid_t, int);
        int fd;

        if (!f)
                f = dlsym(RTLD_NEXT, "timerfd_create");
        fd = f(c, flags);
        if (fd >= 0 && fd < MAX_FD)
                fd_scaled[fd] = scaled_clock(c) ? (unsigned char) (c + 1) : 0;
        return fd;
}

int timerfd_settime(int fd, int flags, const struct itimerspec *nv, struct itimerspec *old) {
        static int (*f)(int, int, const struct itimerspec *, struct itimerspec *);
        struct itimerspec v;

        if (!f)
                f = dlsym(RTLD_NEXT, "timerfd_settime");
        if (fd < 0 || fd >= MAX_FD || !fd_scaled[fd] || !nv)
                return f(fd, flags, nv, old);
        v = *nv;
        if (ts_ns(&v.it_value) != 0) {
                if (flags & TFD_TIMER_ABSTIME) {
                        clockid_t c = fd_scaled[fd] - 1;
                        int64_t b = base[c];
                        v.it_value = ns_ts(b + (int64_t) ((double) (ts_ns(&nv->it_value) - b) / rate));
                        if (ts_ns(&v.it_value) == 0)
                                v.it_value.tv_nsec = 1;
                } else
                        v.it_value = ns_ts((int64_t) ((double) ts_ns(&nv->it_value) / rate) + 1);
        }
        if (ts_ns(&v.it_interval) != 0)
                v.it_interval = ns_ts((int64_t) ((double) ts_ns(&nv->it_interval) / rate) + 1);
        return f(fd, flags, &v, old);
}

static int scale_ms(int timeout) {
        if (timeout <= 0)
                return timeout;
        return (int) ((double) timeout / rate) + 1;
}

int epoll_wait(int epfd, struct epoll_event *ev, int n, int timeout) {
        static int (*f)(int, struct epoll_event *, int, int);
        if (!f)
                f = dlsym(RTLD_NEXT, "epoll_wait");
        return f(epfd, ev, n, scale_ms(timeout));
}

int epoll_pwait(int epfd, struct epoll_event *ev, int n, int timeout, const sigset_t *ss) {
        static int (*f)(int, struct epoll_event *, int, int, const sigset_t *);
        if (!f)
                f = dlsym(RTLD_NEXT, "epoll_pwait");
        return f(epfd, ev, n, scale_ms(timeout), ss);
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
        static int (*f)(struct pollfd *, nfds_t, int);
        if (!f)
                f = dlsym(RTLD_NEXT, "poll");
        return f(fds, n, scale_ms(timeout));
}

int nanosleep(const struct timespec *req, struct timespec *rem) {
        static int (*f)(const struct timespec *, struct timespec *);
        struct timespec v;
        if (!f)
                f = dlsym(RTLD_NEXT, "nanosleep");
        v = ns_ts((int64_t) ((double) ts_ns(req) / rate));
        return f(&v, rem);
}

int clock_nanosleep(clockid_t c, int flags, const struct timespec *req, struct timespec *rem) {
        static int (*f)(clockid_t, int, const struct timespec *, struct timespec *);
        struct timespec v;
        if (!f)
                f = dlsym(RTLD_NEXT, "clock_nanosleep");
        if (!scaled_clock(c))
                return f(c, flags, req, rem);
        if (flags & TIMER_ABSTIME)
                v = ns_ts(base[c] + (int64_t) ((double) (ts_ns(req) - base[c]) / rate));
        else
                v = ns_ts((int64_t) ((double) ts_ns(req) / rate));
        return f(c, flags, &v, rem);
}
