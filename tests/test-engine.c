/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The replication engine on a real libraft + libuv storage in a temporary directory. */

#include <arpa/inet.h>
#include <ftw.h>
#include <glib.h>
#include <inttypes.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>

#include <raft.h>
#include <raft/uv.h>

#include "electiond-engine.h"

#define PAYLOAD_SIZE 64
#define WAIT_USEC    (10 * USEC_PER_SEC)

/* The test's state machine: the list of values applied, in order. */
typedef struct TestFsm {
        GArray *values;       /* uint64_t */
        uint64_t last_index;
        unsigned n_bad_order; /* index not strictly increasing */
        unsigned n_bad_data;  /* payload not what was submitted */
        unsigned n_snapshots;
        unsigned n_restores;
        unsigned n_role_changes;
} TestFsm;

typedef struct Tracker {
        unsigned n_done;
        unsigned n_ok;
        unsigned n_shutdown;
        int last_error;
} Tracker;

static void payload_fill(uint8_t *p, uint64_t value) {
        memcpy(p, &value, sizeof value);
        for (size_t i = sizeof value; i < PAYLOAD_SIZE; i++)
                p[i] = (uint8_t) (value * 31 + i);
}

/* An entry carries one or more payloads (several = a batch, as the manager sends them). */
static void fsm_apply(void *userdata, const void *data, size_t size, uint64_t index) {
        TestFsm *f = userdata;
        uint8_t expect[PAYLOAD_SIZE];

        if (index <= f->last_index)
                f->n_bad_order++;
        f->last_index = index;

        if (size == 0 || size % PAYLOAD_SIZE != 0) {
                f->n_bad_data++;
                return;
        }
        for (const uint8_t *p = data; p < (const uint8_t *) data + size; p += PAYLOAD_SIZE) {
                uint64_t value;

                memcpy(&value, p, sizeof value);
                payload_fill(expect, value);
                if (memcmp(expect, p, PAYLOAD_SIZE) != 0)
                        f->n_bad_data++;
                g_array_append_val(f->values, value);
        }
}

static int fsm_snapshot(void *userdata, GBytes **ret) {
        TestFsm *f = userdata;

        f->n_snapshots++;
        *ret = g_bytes_new(f->values->data, f->values->len * sizeof(uint64_t));
        return 0;
}

static int fsm_restore(void *userdata, const void *data, size_t size) {
        TestFsm *f = userdata;

        if (size % sizeof(uint64_t) != 0)
                return -EBADMSG;
        f->n_restores++;
        g_array_set_size(f->values, 0);
        g_array_append_vals(f->values, data, size / sizeof(uint64_t));
        /* Entries after the snapshot come next; their indexes are checked relative to each other. */
        f->last_index = 0;
        return 0;
}

static void fsm_role_changed(void *userdata) {
        TestFsm *f = userdata;
        f->n_role_changes++;
}

static const EngineCallbacks test_callbacks = {
        .apply = fsm_apply,
        .snapshot = fsm_snapshot,
        .restore = fsm_restore,
        .role_changed = fsm_role_changed,
};

static void test_fsm_init(TestFsm *f) {
        *f = (TestFsm) { .values = g_array_new(false, false, sizeof(uint64_t)) };
}

static void test_fsm_done(TestFsm *f) {
        g_array_unref(f->values);
}

static void tracker_done(int status, void *userdata) {
        Tracker *t = userdata;

        t->n_done++;
        if (status == 0)
                t->n_ok++;
        else if (status == -ESHUTDOWN)
                t->n_shutdown++;
        else
                t->last_error = status;
}

typedef bool (*Condition)(void *userdata);

/* Run the loop until cond holds or the deadline passes. */
static bool run_until(sd_event *event, Condition cond, void *userdata, uint64_t timeout_usec) {
        uint64_t deadline = now_monotonic_usec() + timeout_usec;

        while (!cond(userdata)) {
                uint64_t now = now_monotonic_usec();
                if (now >= deadline)
                        return false;
                g_assert_cmpint(sd_event_run(event, deadline - now), >=, 0);
        }
        return true;
}

static bool cond_leader(void *userdata) {
        return engine_is_leader(userdata);
}

typedef struct TrackerWait {
        Tracker *tracker;
        unsigned n;
} TrackerWait;

static bool cond_tracker(void *userdata) {
        TrackerWait *w = userdata;
        return w->tracker->n_done >= w->n;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void rm_rf(const char *dir) {
        g_assert_cmpint(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), ==, 0);
}

static char *make_tmpdir(void) {
        GError *error = NULL;
        char *dir = g_dir_make_tmp("test-engine-XXXXXX", &error);
        g_assert_no_error(error);
        return dir;
}

static Engine *open_engine_config(sd_event *event, const EngineConfig *config, TestFsm *f) {
        Engine *e = NULL;

        g_assert_cmpint(engine_new(event, config, &test_callbacks, f, &e), ==, 0);
        g_assert_cmpint(engine_start(e), ==, 0);
        return e;
}

static Engine *open_engine(sd_event *event, const char *dir, unsigned snapshot_threshold, TestFsm *f) {
        EngineConfig config = {
                .dir = dir,
                .server_id = 1,
                .snapshot_threshold = snapshot_threshold,
        };

        return open_engine_config(event, &config, f);
}

/* Starts and waits until the engine is usable; returns the time that took. */
static uint64_t open_engine_leader(sd_event *event, const char *dir, unsigned snapshot_threshold, TestFsm *f, Engine **ret) {
        uint64_t start = now_monotonic_usec();
        Engine *e = open_engine(event, dir, snapshot_threshold, f);

        g_assert_true(run_until(event, cond_leader, e, WAIT_USEC));
        g_assert_cmpstr(engine_role_name(e), ==, "leader");
        *ret = e;
        return now_monotonic_usec() - start;
}

static void submit_value(Engine *e, uint64_t value, Tracker *t) {
        uint8_t p[PAYLOAD_SIZE];

        payload_fill(p, value);
        g_assert_cmpint(engine_submit(e, p, sizeof p, tracker_done, t), ==, 0);
}

static void wait_tracker(sd_event *event, Tracker *t, unsigned n) {
        TrackerWait w = { t, n };
        g_assert_true(run_until(event, cond_tracker, &w, WAIT_USEC));
}

static void assert_values_sequence(const TestFsm *f, uint64_t n) {
        g_assert_cmpuint(f->values->len, ==, n);
        for (uint64_t i = 0; i < n; i++)
                g_assert_cmpuint(g_array_index(f->values, uint64_t, i), ==, i);
        g_assert_cmpuint(f->n_bad_order, ==, 0);
        g_assert_cmpuint(f->n_bad_data, ==, 0);
}

static void test_submit_and_restart(void) {
        g_autofree char *dir = make_tmpdir();
        sd_event *event = NULL;
        Engine *e = NULL;
        TestFsm f;
        Tracker t = {};
        uint64_t usec, start, last_index;
        const unsigned n_seq = 300, n = 1000;
        unsigned n_total;

        g_assert_cmpint(sd_event_new(&event), >=, 0);
        test_fsm_init(&f);

        usec = open_engine_leader(event, dir, 0, &f, &e);
        printf("# startup to leader (fresh dir): %.2f ms\n", usec / 1000.0);
        g_assert_cmpuint(f.n_role_changes, >=, 1);

        /* One at a time: each waits for its commit (an fsync) before the next. */
        start = now_monotonic_usec();
        for (unsigned i = 0; i < n_seq; i++) {
                submit_value(e, i, &t);
                wait_tracker(event, &t, i + 1);
                /* The index apply saw is the entry's: libraft's last_applied once it is done. */
                g_assert_cmpuint(engine_last_applied(e), ==, f.last_index);
                /* Committed on a lone voter means on its disk. */
                g_assert_cmpuint(engine_last_stored(e), >=, f.last_index);
        }
        usec = now_monotonic_usec() - start;
        printf("# sequential: %u entries in %.1f ms, %.0f entries/s\n", n_seq, usec / 1000.0, n_seq * 1e6 / usec);

        /* Many in flight at once: libraft batches them into fewer disk writes. */
        start = now_monotonic_usec();
        for (unsigned i = 0; i < n; i++)
                submit_value(e, n_seq + i, &t);
        wait_tracker(event, &t, n_seq + n);
        usec = now_monotonic_usec() - start;
        printf("# concurrent: %u entries in %.1f ms, %.0f entries/s\n", n, usec / 1000.0, n * 1e6 / usec);

        g_assert_cmpuint(t.n_ok, ==, n_seq + n);
        g_assert_cmpint(t.last_error, ==, 0);
        assert_values_sequence(&f, n_seq + n);

        /* Batched: 100 payloads per entry, one entry at a time, as the manager flushes. */
        start = now_monotonic_usec();
        for (unsigned b = 0; b < n / 100; b++) {
                uint8_t batch[100 * PAYLOAD_SIZE];

                for (unsigned i = 0; i < 100; i++)
                        payload_fill(batch + i * PAYLOAD_SIZE, n_seq + n + b * 100 + i);
                g_assert_cmpint(engine_submit(e, batch, sizeof batch, tracker_done, &t), ==, 0);
                wait_tracker(event, &t, n_seq + n + b + 1);
        }
        usec = now_monotonic_usec() - start;
        printf("# batched: %u payloads in %u entries in %.1f ms, %.0f payloads/s\n",
               n, n / 100, usec / 1000.0, n * 1e6 / usec);
        n_total = n_seq + 2 * n;
        assert_values_sequence(&f, n_total);
        last_index = f.last_index;
        g_assert_cmpuint(engine_last_applied(e), >=, last_index);

        e = engine_free(e);
        g_assert_cmpstr(engine_role_name(e), ==, "unavailable");

        /* Restart on the same directory: everything comes back from the log, in order. */
        test_fsm_done(&f);
        test_fsm_init(&f);
        usec = open_engine_leader(event, dir, 0, &f, &e);
        printf("# startup to leader (log holding %u values): %.2f ms\n", n_total, usec / 1000.0);
        assert_values_sequence(&f, n_total);
        g_assert_cmpuint(f.last_index, ==, last_index);

        t = (Tracker) {};
        for (unsigned i = 0; i < 10; i++)
                submit_value(e, n_total + i, &t);
        wait_tracker(event, &t, 10);
        g_assert_cmpuint(t.n_ok, ==, 10);
        assert_values_sequence(&f, n_total + 10);
        g_assert_cmpuint(f.last_index, >, last_index + 10);

        engine_free(e);
        test_fsm_done(&f);
        sd_event_unref(event);
        rm_rf(dir);
}

static bool dir_has_snapshot(const char *dir) {
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        const char *name;

        g_assert_nonnull(d);
        while ((name = g_dir_read_name(d)))
                if (g_str_has_prefix(name, "snapshot-") && !g_str_has_suffix(name, ".meta"))
                        return true;
        return false;
}

static void test_snapshot(void) {
        g_autofree char *dir = make_tmpdir();
        sd_event *event = NULL;
        Engine *e = NULL;
        TestFsm f;
        Tracker t = {};
        uint64_t last_index;
        const unsigned n = 500;

        g_assert_cmpint(sd_event_new(&event), >=, 0);
        test_fsm_init(&f);

        (void) open_engine_leader(event, dir, 64, &f, &e);
        for (unsigned i = 0; i < n; i++) {
                submit_value(e, i, &t);
                /* Mix waiting and pipelining so snapshots happen between and during appends. */
                if (i % 7 == 0)
                        wait_tracker(event, &t, i + 1);
        }
        wait_tracker(event, &t, n);
        g_assert_cmpuint(t.n_ok, ==, n);
        assert_values_sequence(&f, n);
        g_assert_cmpuint(f.n_snapshots, >=, 2);
        g_assert_true(dir_has_snapshot(dir));
        last_index = f.last_index;
        engine_free(e);

        /* Restart: state comes from the snapshot, then the trailing entries. */
        test_fsm_done(&f);
        test_fsm_init(&f);
        (void) open_engine_leader(event, dir, 64, &f, &e);
        g_assert_cmpuint(f.n_restores, ==, 1);
        assert_values_sequence(&f, n);

        t = (Tracker) {};
        for (unsigned i = 0; i < 100; i++)
                submit_value(e, n + i, &t);
        wait_tracker(event, &t, 100);
        g_assert_cmpuint(t.n_ok, ==, 100);
        assert_values_sequence(&f, n + 100);
        g_assert_cmpuint(f.last_index, >, last_index + 100);

        engine_free(e);
        test_fsm_done(&f);
        sd_event_unref(event);
        rm_rf(dir);
}

/* A child commits K entries and dies by SIGKILL without closing anything. */
static void test_crash(void) {
        g_autofree char *dir = make_tmpdir();
        const uint64_t k = 137;
        int pipefd[2];
        pid_t pid;

        g_assert_cmpint(pipe(pipefd), ==, 0);
        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                sd_event *event = NULL;
                Engine *e = NULL;
                TestFsm f;
                Tracker t = {};
                uint64_t acked;

                close(pipefd[0]);
                if (sd_event_new(&event) < 0)
                        _exit(2);
                test_fsm_init(&f);
                (void) open_engine_leader(event, dir, 0, &f, &e);
                /* Pipelined, and the last one waited for: done(0) for K means K is durable. */
                for (uint64_t i = 0; i <= k; i++)
                        submit_value(e, i, &t);
                wait_tracker(event, &t, k + 1);
                if (t.n_ok != k + 1)
                        _exit(3);
                acked = k;
                if (write(pipefd[1], &acked, sizeof acked) != sizeof acked)
                        _exit(4);
                /* Exactly what kill -9 does: no close, no flush, no exit handlers. */
                raise(SIGKILL);
                _exit(5);
        }

        close(pipefd[1]);
        uint64_t acked = UINT64_MAX;
        g_assert_cmpint(read(pipefd[0], &acked, sizeof acked), ==, sizeof acked);
        close(pipefd[0]);
        int status;
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFSIGNALED(status));
        g_assert_cmpint(WTERMSIG(status), ==, SIGKILL);
        g_assert_cmpuint(acked, ==, k);

        sd_event *event = NULL;
        Engine *e = NULL;
        TestFsm f;
        Tracker t = {};

        g_assert_cmpint(sd_event_new(&event), >=, 0);
        test_fsm_init(&f);
        (void) open_engine_leader(event, dir, 0, &f, &e);
        assert_values_sequence(&f, k + 1);

        submit_value(e, k + 1, &t);
        wait_tracker(event, &t, 1);
        g_assert_cmpuint(t.n_ok, ==, 1);
        assert_values_sequence(&f, k + 2);

        engine_free(e);
        test_fsm_done(&f);
        sd_event_unref(event);
        rm_rf(dir);
}

/* Closing with entries in flight completes every one exactly once: committed or -ESHUTDOWN. */
static void test_shutdown_pending(void) {
        g_autofree char *dir = make_tmpdir();
        sd_event *event = NULL;
        Engine *e = NULL;
        TestFsm f;
        Tracker t = {};
        const unsigned n = 200;

        g_assert_cmpint(sd_event_new(&event), >=, 0);
        test_fsm_init(&f);

        /* Created but never started: closes cleanly too. */
        EngineConfig config = { .dir = dir, .server_id = 1 };
        g_assert_cmpint(engine_new(event, &config, &test_callbacks, &f, &e), ==, 0);
        e = engine_free(e);
        g_assert_null(e);

        (void) open_engine_leader(event, dir, 0, &f, &e);

        for (unsigned i = 0; i < n; i++)
                submit_value(e, i, &t);
        g_assert_cmpuint(t.n_done, ==, 0); /* never synchronously */
        engine_free(e);

        g_assert_cmpuint(t.n_done, ==, n);
        g_assert_cmpuint(t.n_ok + t.n_shutdown, ==, n);
        g_assert_cmpint(t.last_error, ==, 0);
        printf("# closed with %u in flight: %u committed, %u shut down\n", n, t.n_ok, t.n_shutdown);

        /* Whatever was acknowledged is there after a restart, in order. */
        unsigned acked = t.n_ok;
        test_fsm_done(&f);
        test_fsm_init(&f);
        (void) open_engine_leader(event, dir, 0, &f, &e);
        g_assert_cmpuint(f.values->len, >=, acked);
        assert_values_sequence(&f, f.values->len);

        engine_free(e);
        test_fsm_done(&f);
        sd_event_unref(event);
        rm_rf(dir);
}

static int on_idle_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        *(bool *) userdata = true;
        return 0;
}

/* An idle leader keeps its role (the libuv timer must be followed precisely) without spinning. */
static void test_idle(void) {
        g_autofree char *dir = make_tmpdir();
        sd_event *event = NULL;
        sd_event_source *deadline = NULL;
        Engine *e = NULL;
        TestFsm f;
        Tracker t = {};
        bool expired = false;
        unsigned iterations = 0, role_changes;
        EngineConfig config = {
                .dir = dir,
                .server_id = 1,
                .election_timeout_msec = 100,
                .heartbeat_timeout_msec = 20,
        };

        /* Not started: refused synchronously, done never called. */
        g_assert_cmpint(sd_event_new(&event), >=, 0);
        test_fsm_init(&f);
        EngineConfig bad = { .dir = dir, .election_timeout_msec = 50, .heartbeat_timeout_msec = 50 };
        g_assert_cmpint(engine_new(event, &bad, &test_callbacks, &f, &e), ==, -EINVAL);
        g_assert_cmpint(engine_new(event, &config, &test_callbacks, &f, &e), ==, 0);
        g_assert_false(engine_is_leader(e));
        g_assert_cmpstr(engine_role_name(e), ==, "unavailable");
        g_assert_cmpint(engine_submit(e, "x", 1, tracker_done, &t), ==, -ENOTCONN);
        g_assert_cmpint(engine_start(e), ==, 0);
        g_assert_cmpint(engine_start(e), ==, -EALREADY);
        g_assert_true(run_until(event, cond_leader, e, WAIT_USEC));
        role_changes = f.n_role_changes;

        /* Ten election timeouts of nothing to do. */
        g_assert_cmpint(sd_event_add_time_relative(event, &deadline, CLOCK_MONOTONIC, 1000 * USEC_PER_MSEC, 1,
                                                   on_idle_deadline, &expired), >=, 0);
        while (!expired) {
                g_assert_cmpint(sd_event_run(event, UINT64_MAX), >=, 0);
                iterations++;
                g_assert_true(engine_is_leader(e));
        }
        printf("# idle second: %u loop iterations (tick every %u ms)\n", iterations, config.heartbeat_timeout_msec);
        g_assert_cmpuint(f.n_role_changes, ==, role_changes);
        g_assert_cmpuint(iterations, <, 400);
        g_assert_cmpuint(t.n_done, ==, 0);

        sd_event_source_unref(deadline);
        engine_free(e);
        test_fsm_done(&f);
        sd_event_unref(event);
        rm_rf(dir);
}

static char *loopback_address(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        /* Let the kernel pick a free port; the tiny reuse race is acceptable in a test. */
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sa, &len), ==, 0);
        close(fd);
        return g_strdup_printf("127.0.0.1:%u", ntohs(sa.sin_port));
}

typedef struct AppliedWait {
        TestFsm *fsm;
        unsigned n;
} AppliedWait;

static bool cond_applied(void *userdata) {
        AppliedWait *w = userdata;
        return w->fsm->values->len >= w->n;
}

static void wait_applied(sd_event *event, TestFsm *f, unsigned n) {
        AppliedWait w = { f, n };
        g_assert_true(run_until(event, cond_applied, &w, WAIT_USEC));
}

typedef struct TransportHook {
        unsigned n_new;
        unsigned n_free;
} TransportHook;

/* Stands in for the cluster's authenticated transport: plain TCP, but created through the hook. */
static int hook_transport_new(void *userdata, struct uv_loop_s *loop, struct raft_uv_transport **ret) {
        TransportHook *h = userdata;
        struct raft_uv_transport *t = g_new0(struct raft_uv_transport, 1);

        t->version = 1;
        g_assert_cmpint(raft_uv_tcp_init(t, loop), ==, 0);
        h->n_new++;
        *ret = t;
        return 0;
}

static void hook_transport_free(void *userdata, struct raft_uv_transport *t) {
        TransportHook *h = userdata;

        raft_uv_tcp_close(t);
        g_free(t);
        h->n_free++;
}

/* Two servers over loopback TCP: bootstrap, add, promote, replicate, transfer, remove. */
static void test_cluster_two_nodes(void) {
        g_autofree char *dir1 = make_tmpdir(), *dir2 = make_tmpdir();
        g_autofree char *addr1 = loopback_address(), *addr2 = loopback_address();
        g_autofree EngineServer *servers = NULL;
        sd_event *event = NULL;
        Engine *e1, *e2;
        TestFsm f1, f2;
        Tracker t = {}, change = {};
        size_t n_servers;
        uint64_t leader_id;
        const char *leader_address;
        EngineConfig c1 = { .dir = dir1, .server_id = 1, .address = addr1 };
        TransportHook hook = {};
        EngineConfig c2 = {
                .dir = dir2,
                .server_id = 2,
                .address = addr2,
                .transport_new = hook_transport_new,
                .transport_free = hook_transport_free,
                .transport_userdata = &hook,
        };
        EngineServer boot = { .id = 1, .address = addr1, .voter = true };

        g_assert_cmpint(sd_event_new(&event), >=, 0);
        test_fsm_init(&f1);
        test_fsm_init(&f2);

        g_assert_cmpint(engine_new(event, &c1, &test_callbacks, &f1, &e1), ==, 0);
        g_assert_cmpint(engine_bootstrap(e1, &boot, 1), ==, 0);
        g_assert_cmpint(engine_bootstrap(e1, &boot, 1), ==, -EEXIST);
        g_assert_cmpint(engine_start(e1), ==, 0);
        g_assert_cmpint(engine_bootstrap(e1, &boot, 1), ==, -EBUSY);
        g_assert_true(run_until(event, cond_leader, e1, WAIT_USEC));

        /* A node without state waits to be added. */
        g_assert_cmpint(engine_new(event, &c2, &test_callbacks, &f2, &e2), ==, 0);
        g_assert_cmpint(engine_start(e2), ==, 0);
        g_assert_false(engine_is_leader(e2));

        for (unsigned i = 0; i < 10; i++)
                submit_value(e1, i, &t);
        wait_tracker(event, &t, 10);
        g_assert_cmpuint(t.n_ok, ==, 10);

        g_assert_cmpint(engine_add_member(e1, 2, addr2, tracker_done, &change), ==, 0);
        wait_tracker(event, &change, 1);
        g_assert_cmpuint(change.n_ok, ==, 1);
        g_assert_cmpuint(engine_n_voters(e1), ==, 1);
        g_assert_cmpint(engine_add_member(e1, 2, addr2, tracker_done, &change), ==, -EEXIST);

        g_assert_cmpint(engine_assign_member(e1, 2, true, tracker_done, &change), ==, 0);
        wait_tracker(event, &change, 2);
        g_assert_cmpuint(change.n_ok, ==, 2);
        g_assert_cmpuint(engine_n_voters(e1), ==, 2);

        g_assert_cmpint(engine_get_servers(e1, &servers, &n_servers), ==, 0);
        g_assert_cmpuint(n_servers, ==, 2);
        for (size_t i = 0; i < n_servers; i++) {
                g_assert_true(servers[i].voter);
                g_assert_cmpstr(servers[i].address, ==, servers[i].id == 1 ? addr1 : addr2);
        }

        for (unsigned i = 10; i < 20; i++)
                submit_value(e1, i, &t);
        wait_tracker(event, &t, 20);
        g_assert_cmpuint(t.n_ok, ==, 20);
        wait_applied(event, &f2, 20);
        assert_values_sequence(&f1, 20);
        assert_values_sequence(&f2, 20);

        engine_leader(e2, &leader_id, &leader_address);
        g_assert_cmpuint(leader_id, ==, 1);
        g_assert_cmpstr(leader_address, ==, addr1);
        /* Started as follower, then learnt who leads: both reported. */
        g_assert_cmpuint(f2.n_role_changes, >=, 2);

        /* Hand leadership over; the new leader serves after its own barrier. */
        g_assert_cmpint(engine_transfer_leadership(e1, 2, tracker_done, &change), ==, 0);
        wait_tracker(event, &change, 3);
        g_assert_cmpuint(change.n_ok, ==, 3);
        g_assert_true(run_until(event, cond_leader, e2, WAIT_USEC));
        g_assert_false(engine_is_leader(e1));
        g_assert_cmpint(engine_submit(e1, "x", 1, tracker_done, &t), ==, -ENOTCONN);
        g_assert_cmpuint(engine_current_term(e2), >=, 2);

        submit_value(e2, 20, &t);
        wait_tracker(event, &t, 21);
        g_assert_cmpuint(t.n_ok, ==, 21);
        wait_applied(event, &f1, 21);
        assert_values_sequence(&f1, 21);
        assert_values_sequence(&f2, 21);

        g_assert_cmpint(engine_remove_member(e2, 1, tracker_done, &change), ==, 0);
        wait_tracker(event, &change, 4);
        g_assert_cmpuint(change.n_ok, ==, 4);
        g_assert_cmpuint(engine_n_voters(e2), ==, 1);

        g_assert_cmpuint(hook.n_new, ==, 1);
        g_assert_cmpuint(hook.n_free, ==, 0);
        engine_free(e1);
        engine_free(e2);
        g_assert_cmpuint(hook.n_free, ==, 1);
        test_fsm_done(&f1);
        test_fsm_done(&f2);
        sd_event_unref(event);
        rm_rf(dir1);
        rm_rf(dir2);
}

typedef struct Chain {
        Engine *engine;
        TestFsm *fsm;
        Tracker tracker;
        uint64_t next;
        uint64_t n;
        unsigned n_expected; /* completions to wait for */
        int submit_error;
} Chain;

static void chain_done(int status, void *userdata) {
        Chain *c = userdata;
        uint8_t p[PAYLOAD_SIZE];
        int r;

        tracker_done(status, &c->tracker);
        if (status < 0 || c->next >= c->n)
                return;
        /* Submitting from a completion, i.e. from inside the engine's libuv pass. */
        payload_fill(p, c->next++);
        r = engine_submit(c->engine, p, sizeof p, chain_done, c);
        if (r < 0)
                c->submit_error = r;
}

static Chain *apply_chain;

static void chain_apply(void *userdata, const void *data, size_t size, uint64_t index) {
        uint8_t p[PAYLOAD_SIZE];
        uint64_t value;
        int r;

        fsm_apply(userdata, data, size, index);
        /* Submitting from inside apply: every even value asks for the next odd one. */
        memcpy(&value, data, sizeof value);
        if (!apply_chain || value % 2 != 0 || value + 1 >= apply_chain->n)
                return;
        payload_fill(p, value + 1);
        r = engine_submit(apply_chain->engine, p, sizeof p, tracker_done, &apply_chain->tracker);
        if (r < 0)
                apply_chain->submit_error = r;
}

static bool cond_chain(void *userdata) {
        Chain *c = userdata;
        return c->tracker.n_done >= c->n_expected || c->submit_error < 0;
}

static void test_reentrant_submit(void) {
        g_autofree char *dir = make_tmpdir();
        sd_event *event = NULL;
        Engine *e = NULL;
        TestFsm f;
        Chain c = {};
        EngineCallbacks cb = test_callbacks;
        EngineConfig config = { .dir = dir, .server_id = 1 };

        g_assert_cmpint(sd_event_new(&event), >=, 0);
        test_fsm_init(&f);
        cb.apply = chain_apply;
        g_assert_cmpint(engine_new(event, &config, &cb, &f, &e), ==, 0);
        g_assert_cmpint(engine_start(e), ==, 0);
        g_assert_true(run_until(event, cond_leader, e, WAIT_USEC));

        /* From done callbacks. */
        c = (Chain) { .engine = e, .fsm = &f, .next = 1, .n = 100, .n_expected = 99 };
        chain_done(0, &c);
        c.tracker = (Tracker) {};
        g_assert_true(run_until(event, cond_chain, &c, WAIT_USEC));
        g_assert_cmpint(c.submit_error, ==, 0);
        g_assert_cmpuint(c.tracker.n_ok, ==, 99);
        g_assert_cmpuint(f.values->len, ==, 99);
        for (unsigned i = 0; i < 99; i++)
                g_assert_cmpuint(g_array_index(f.values, uint64_t, i), ==, i + 1);

        /* From apply. */
        g_array_set_size(f.values, 0);
        c = (Chain) { .engine = e, .fsm = &f, .n = 100, .n_expected = 100 };
        apply_chain = &c;
        for (uint64_t v = 0; v < c.n; v += 2)
                submit_value(e, v, &c.tracker);
        g_assert_true(run_until(event, cond_chain, &c, WAIT_USEC));
        apply_chain = NULL;
        g_assert_cmpint(c.submit_error, ==, 0);
        g_assert_cmpuint(c.tracker.n_ok, ==, c.n);
        g_assert_cmpuint(f.values->len, ==, c.n);
        g_assert_cmpuint(f.n_bad_order, ==, 0);

        engine_free(e);
        test_fsm_done(&f);
        sd_event_unref(event);
        rm_rf(dir);
}

typedef struct Node {
        char *dir;
        char *address;
        Engine *engine;
        TestFsm fsm;
} Node;

typedef struct AnyLeader {
        Node *nodes;
        size_t n;
        Node *leader;
} AnyLeader;

static bool cond_any_leader(void *userdata) {
        AnyLeader *a = userdata;

        a->leader = NULL;
        for (size_t i = 0; i < a->n; i++)
                if (a->nodes[i].engine && engine_is_leader(a->nodes[i].engine))
                        a->leader = &a->nodes[i];
        return a->leader;
}

static bool cond_not_leader(void *userdata) {
        return !engine_is_leader(userdata);
}

/* All three bootstrap the same three-voter configuration (libraft requires that: a node without
 * a configuration never grants a vote, so one bootstrapper alone could not win); then the leader
 * goes away, a survivor takes over, and a lone survivor steps down. */
static void test_cluster_failover(void) {
        sd_event *event = NULL;
        Node nodes[3] = {};
        EngineServer servers[3];
        AnyLeader any = { nodes, 3 };
        Tracker t = {};
        uint64_t term;
        Node *old;

        g_assert_cmpint(sd_event_new(&event), >=, 0);
        for (unsigned i = 0; i < 3; i++) {
                nodes[i].dir = make_tmpdir();
                nodes[i].address = loopback_address();
                servers[i] = (EngineServer) { .id = i + 1, .address = nodes[i].address, .voter = true };
        }
        for (unsigned i = 0; i < 3; i++) {
                EngineConfig c = {
                        .dir = nodes[i].dir,
                        .server_id = i + 1,
                        .address = nodes[i].address,
                        .election_timeout_msec = 150,
                        .heartbeat_timeout_msec = 30,
                };

                test_fsm_init(&nodes[i].fsm);
                g_assert_cmpint(engine_new(event, &c, &test_callbacks, &nodes[i].fsm, &nodes[i].engine), ==, 0);
                g_assert_cmpint(engine_bootstrap(nodes[i].engine, servers, 3), ==, 0);
                g_assert_cmpint(engine_start(nodes[i].engine), ==, 0);
        }

        g_assert_true(run_until(event, cond_any_leader, &any, WAIT_USEC));
        old = any.leader;
        g_assert_cmpuint(engine_n_voters(old->engine), ==, 3);
        for (unsigned i = 0; i < 10; i++)
                submit_value(old->engine, i, &t);
        wait_tracker(event, &t, 10);
        g_assert_cmpuint(t.n_ok, ==, 10);
        for (unsigned i = 0; i < 3; i++) {
                wait_applied(event, &nodes[i].fsm, 10);
                assert_values_sequence(&nodes[i].fsm, 10);
        }

        /* The leader goes away: one of the others leads in a later term, with everything. */
        term = engine_current_term(old->engine);
        old->engine = engine_free(old->engine);
        uint64_t start = now_monotonic_usec();
        g_assert_true(run_until(event, cond_any_leader, &any, WAIT_USEC));
        printf("# failover after leader close: %.1f ms\n", (now_monotonic_usec() - start) / 1000.0);
        g_assert_true(any.leader != old);
        g_assert_cmpuint(engine_current_term(any.leader->engine), >, term);
        submit_value(any.leader->engine, 10, &t);
        wait_tracker(event, &t, 11);
        g_assert_cmpuint(t.n_ok, ==, 11);
        assert_values_sequence(&any.leader->fsm, 11);

        /* Alone, the last one cannot keep a quorum: it steps down and refuses entries. */
        Node *other = NULL;
        for (unsigned i = 0; i < 3; i++)
                if (nodes[i].engine && &nodes[i] != any.leader)
                        other = &nodes[i];
        g_assert_nonnull(other);
        old = any.leader;
        unsigned role_changes = old->fsm.n_role_changes;
        other->engine = engine_free(other->engine);
        g_assert_true(run_until(event, cond_not_leader, old->engine, WAIT_USEC));
        g_assert_cmpuint(old->fsm.n_role_changes, >, role_changes);
        g_assert_cmpstr(engine_role_name(old->engine), !=, "leader");
        g_assert_cmpint(engine_submit(old->engine, "x", 1, tracker_done, &t), ==, -ENOTCONN);

        for (unsigned i = 0; i < 3; i++) {
                engine_free(nodes[i].engine);
                test_fsm_done(&nodes[i].fsm);
                rm_rf(nodes[i].dir);
                g_free(nodes[i].dir);
                g_free(nodes[i].address);
        }
        sd_event_unref(event);
}

static void big_apply(void *userdata, const void *data, size_t size, uint64_t index) {
        GArray *sizes = userdata;
        const uint8_t *p = data;
        size_t n = size;

        /* Record the size only if the content survived: byte i is (i * 7) & 0xff. */
        for (size_t i = 0; i < size; i++)
                if (p[i] != (uint8_t) (i * 7)) {
                        n = SIZE_MAX;
                        break;
                }
        g_array_append_val(sizes, n);
}

/* Any length (libraft itself only takes multiples of 8), including entries far larger than a
 * 1 MiB segment, commits and comes back intact after a restart. */
static void test_entry_sizes(void) {
        g_autofree char *dir = make_tmpdir();
        const size_t sizes[] = { 0, 1, 7, 8, 9, 15, 16, 65535, 65536, 200001, 1 << 20, (1 << 20) + 8, 4 << 20 };
        EngineCallbacks cb = { .apply = big_apply };
        EngineConfig config = { .dir = dir, .server_id = 1 };
        sd_event *event = NULL;
        Engine *e = NULL;
        Tracker t = {};

        g_assert_cmpint(sd_event_new(&event), >=, 0);
        for (unsigned round = 0; round < 2; round++) {
                g_autoptr(GArray) applied = g_array_new(false, false, sizeof(size_t));

                g_assert_cmpint(engine_new(event, &config, &cb, applied, &e), ==, 0);
                g_assert_cmpint(engine_start(e), ==, 0);
                g_assert_true(run_until(event, cond_leader, e, WAIT_USEC));
                if (round == 0) {
                        for (size_t k = 0; k < ELEMENTSOF(sizes); k++) {
                                g_autofree uint8_t *buf = g_malloc(sizes[k]);
                                for (size_t i = 0; i < sizes[k]; i++)
                                        buf[i] = (uint8_t) (i * 7);
                                g_assert_cmpint(engine_submit(e, buf, sizes[k], tracker_done, &t), ==, 0);
                        }
                        wait_tracker(event, &t, ELEMENTSOF(sizes));
                        g_assert_cmpuint(t.n_ok, ==, ELEMENTSOF(sizes));
                }
                g_assert_cmpuint(applied->len, ==, ELEMENTSOF(sizes));
                for (size_t k = 0; k < ELEMENTSOF(sizes); k++)
                        g_assert_cmpuint(g_array_index(applied, size_t, k), ==, sizes[k]);
                e = engine_free(e);
        }

        sd_event_unref(event);
        rm_rf(dir);
}

/* A standalone node becomes the first member of a cluster without losing anything. */
static void test_standalone_to_cluster(void) {
        g_autofree char *dir1 = make_tmpdir(), *dir2 = make_tmpdir();
        g_autofree char *addr1 = loopback_address(), *addr2 = loopback_address();
        sd_event *event = NULL;
        Engine *e1 = NULL, *e2 = NULL;
        TestFsm f1, f2;
        Tracker t = {}, change = {};
        EngineServer self = { .id = 1, .address = addr1, .voter = true };
        EngineConfig c1 = { .dir = dir1, .server_id = 1, .address = addr1 };
        EngineConfig c2 = { .dir = dir2, .server_id = 2, .address = addr2 };

        g_assert_cmpint(sd_event_new(&event), >=, 0);
        test_fsm_init(&f1);
        test_fsm_init(&f2);

        (void) open_engine_leader(event, dir1, 0, &f1, &e1);
        for (unsigned i = 0; i < 20; i++)
                submit_value(e1, i, &t);
        wait_tracker(event, &t, 20);
        e1 = engine_free(e1);

        /* Same directory, now clustered: without recovery the old "standalone" member stays. */
        test_fsm_done(&f1);
        test_fsm_init(&f1);
        g_assert_cmpint(engine_new(event, &c1, &test_callbacks, &f1, &e1), ==, 0);
        g_assert_cmpint(engine_bootstrap(e1, &self, 1), ==, -EEXIST);
        g_assert_cmpint(engine_recover(e1, &self, 1), ==, 0);
        g_assert_cmpint(engine_start(e1), ==, 0);
        g_assert_cmpint(engine_recover(e1, &self, 1), ==, -EBUSY);
        g_assert_true(run_until(event, cond_leader, e1, WAIT_USEC));
        assert_values_sequence(&f1, 20);

        g_autofree EngineServer *servers = NULL;
        size_t n_servers;
        g_assert_cmpint(engine_get_servers(e1, &servers, &n_servers), ==, 0);
        g_assert_cmpuint(n_servers, ==, 1);
        g_assert_cmpstr(servers[0].address, ==, addr1);

        /* A new member gets the whole history, including what predates the cluster. */
        g_assert_cmpint(engine_new(event, &c2, &test_callbacks, &f2, &e2), ==, 0);
        g_assert_cmpint(engine_start(e2), ==, 0);
        g_assert_cmpint(engine_add_member(e1, 2, addr2, tracker_done, &change), ==, 0);
        wait_tracker(event, &change, 1);
        g_assert_cmpint(engine_assign_member(e1, 2, true, tracker_done, &change), ==, 0);
        wait_tracker(event, &change, 2);
        g_assert_cmpuint(change.n_ok, ==, 2);
        submit_value(e1, 20, &t);
        wait_tracker(event, &t, 21);
        g_assert_cmpuint(t.n_ok, ==, 21);
        wait_applied(event, &f2, 21);
        assert_values_sequence(&f2, 21);

        engine_free(e1);
        engine_free(e2);
        test_fsm_done(&f1);
        test_fsm_done(&f2);
        sd_event_unref(event);
        rm_rf(dir1);
        rm_rf(dir2);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (g_getenv("ELECTIOND_TEST_DEBUG"))
                log_set_max_level(LOG_DEBUG);

        g_test_add_func("/engine/submit-and-restart", test_submit_and_restart);
        g_test_add_func("/engine/snapshot", test_snapshot);
        g_test_add_func("/engine/crash", test_crash);
        g_test_add_func("/engine/shutdown-pending", test_shutdown_pending);
        g_test_add_func("/engine/entry-sizes", test_entry_sizes);
        g_test_add_func("/engine/idle", test_idle);
        g_test_add_func("/engine/reentrant-submit", test_reentrant_submit);
        g_test_add_func("/engine/cluster-two-nodes", test_cluster_two_nodes);
        g_test_add_func("/engine/cluster-failover", test_cluster_failover);
        g_test_add_func("/engine/standalone-to-cluster", test_standalone_to_cluster);
        return g_test_run();
}
