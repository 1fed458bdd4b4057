/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <raft.h>
#include <raft/uv.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <uv.h>

#include "electiond-engine.h"

#define STANDALONE_ADDRESS "standalone"

/* A lone voter needs no heartbeats (it elects itself at start), so a slow tick only saves idle
 * wakeups. Clustered defaults follow the LAN figures in the design notes. */
#define STANDALONE_ELECTION_TIMEOUT_MSEC  1000u
#define STANDALONE_HEARTBEAT_TIMEOUT_MSEC 250u
#define CLUSTER_ELECTION_TIMEOUT_MSEC     150u
#define CLUSTER_HEARTBEAT_TIMEOUT_MSEC    30u
#define DEFAULT_SNAPSHOT_THRESHOLD        4096u
#define DEFAULT_SNAPSHOT_TRAILING         1024u
/* With the 8 MiB default every apply failed with a no-space error in a trial on this kind of
 * machine (that was the capacity threshold, below). Closing a full segment destroys its kernel AIO
 * context, and io_destroy() blocks the event loop for an RCU grace period (30-50 ms measured,
 * issue 12): with 64 KiB segments that happened several times a second under load and set the
 * p99 of every client. 1 MiB makes it 16 times rarer for 3 MiB of preallocated files. */
#define SEGMENT_SIZE                      (1024u * 1024u)
/* Raft's ticks and heartbeats decide leadership: serve them before ordinary (D-Bus) work, but
 * after anything that must preempt them (lease expiry uses a higher priority still). */
#define ENGINE_EVENT_PRIORITY             (SD_EVENT_PRIORITY_NORMAL - 10)

typedef enum EngineRequestType {
        ENGINE_REQUEST_APPLY,
        ENGINE_REQUEST_CHANGE,
        ENGINE_REQUEST_TRANSFER,
} EngineRequestType;

/* One in-flight libraft request with the caller's completion. req.data points back to it. */
typedef struct EngineRequest {
        union {
                struct raft_apply apply;
                struct raft_change change;
                struct raft_transfer transfer;
        };
        EngineRequestType type;
        Engine *engine;
        uint64_t target; /* transfer: requested server id */
        EngineDoneFn done;
        void *userdata;
} EngineRequest;

/* Not raft_barrier(): libraft leaves its payload uninitialized, which valgrind reports on every
 * election; our own no-op entry has the same effect once applied. */
static void storage_checks_install(Engine *e);

typedef struct EngineBarrier {
        struct raft_apply req;
        Engine *engine;
        uint64_t term;
} EngineBarrier;

struct Engine {
        sd_event *event;
        sd_event_source *io_source;
        sd_event_source *timer_source;

        char *dir;
        char *address; /* NULL = standalone */
        uint64_t server_id;
        unsigned election_timeout;
        unsigned heartbeat_timeout;
        unsigned snapshot_threshold;
        int (*transport_new)(void *userdata, struct uv_loop_s *loop, struct raft_uv_transport **ret);
        void (*transport_free)(void *userdata, struct raft_uv_transport *t);
        void *transport_userdata;

        EngineCallbacks cb;
        void *userdata;

        uv_loop_t loop;
        bool loop_initialized;

        struct raft_uv_transport standalone_transport;
        struct raft_uv_transport *transport;
        bool transport_is_builtin_tcp;

        struct raft_io io;
        struct raft_io io_base;  /* raft_uv's own methods: io's storage methods check their results */
        bool io_initialized;
        struct raft_fsm fsm;
        struct raft raft;
        bool raft_initialized;
        bool started;
        bool closing;
        bool storage_failed;   /* an append failed: libraft's state is not to be trusted any more */
        bool raft_closed;
        bool in_uv_run;

        EngineBarrier *barrier;       /* in flight, or NULL */
        uint64_t barrier_done_term;   /* Raft term whose barrier completed, 0 = none */

        unsigned last_state;          /* as last reported through role_changed */
        bool last_usable;
        uint64_t last_leader;

        unsigned n_requests;          /* in flight, for the shutdown sanity check */
};

static int errno_from_raft(int rv) {
        switch (rv) {
        case 0:
                return 0;
        case RAFT_NOMEM:
                return -ENOMEM;
        case RAFT_NOTLEADER:
        case RAFT_LEADERSHIPLOST:
                return -ENOTCONN;
        case RAFT_SHUTDOWN:
        case RAFT_CANCELED:
                return -ESHUTDOWN;
        case RAFT_BADID:
        case RAFT_NOTFOUND:
                return -ENOENT;
        case RAFT_DUPLICATEID:
        case RAFT_DUPLICATEADDRESS:
        case RAFT_CANTBOOTSTRAP:
                return -EEXIST;
        case RAFT_BADROLE:
        case RAFT_INVALID:
        case RAFT_MALFORMED:
                return -EINVAL;
        case RAFT_CANTCHANGE:
        case RAFT_BUSY:
                return -EBUSY;
        case RAFT_NOCONNECTION:
                return -EHOSTUNREACH;
        case RAFT_TOOBIG:
                return -E2BIG;
        case RAFT_NOSPACE:
                return -ENOSPC;
        case RAFT_NAMETOOLONG:
                return -ENAMETOOLONG;
        case RAFT_UNAUTHORIZED:
                return -EACCES;
        case RAFT_TOOMANY:
                return -EMFILE;
        default:
                return -EIO;
        }
}

/* --- entry framing ---
 *
 * libraft's disk format only takes entries whose length is a multiple of 8, so every entry is
 * the caller's bytes, then 1-8 padding bytes; the last byte says how many (zeros before it).
 * With ENTRY_INTERNAL set in that byte the entry is the engine's own (the post-election no-op)
 * and never reaches the application. */

#define ENTRY_INTERNAL 0x80u

static size_t entry_framed_size(size_t size) {
        return (size / 8 + 1) * 8;
}

static void entry_frame(void *dest, const void *data, size_t size, bool internal) {
        size_t total = entry_framed_size(size);
        uint8_t *p = dest;

        if (size > 0)
                memcpy(p, data, size);
        memset(p + size, 0, total - size);
        p[total - 1] = (uint8_t) ((total - size) | (internal ? ENTRY_INTERNAL : 0));
}

static int entry_unframe(const void *data, size_t size, size_t *ret_size, bool *ret_internal) {
        const uint8_t *p = data;
        size_t pad;

        if (size < 8 || size % 8 != 0)
                return -EBADMSG;
        pad = p[size - 1] & ~ENTRY_INTERNAL;
        if (pad < 1 || pad > 8)
                return -EBADMSG;
        for (size_t i = size - pad; i < size - 1; i++)
                if (p[i] != 0)
                        return -EBADMSG;
        *ret_size = size - pad;
        *ret_internal = p[size - 1] & ENTRY_INTERNAL;
        return 0;
}

/* --- standalone transport: never opens a socket --- */

static int standalone_transport_init(struct raft_uv_transport *t, raft_id id, const char *address) {
        return 0;
}

static int standalone_transport_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb) {
        return 0;
}

static int standalone_transport_connect(
                struct raft_uv_transport *t,
                struct raft_uv_connect *req,
                raft_id id,
                const char *address,
                raft_uv_connect_cb cb) {

        /* A one-voter cluster never has anyone to talk to. */
        snprintf(t->errmsg, sizeof t->errmsg, "standalone node does not connect to %llu", id);
        return RAFT_NOCONNECTION;
}

static void standalone_transport_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb) {
        /* Nothing to release asynchronously; raft_uv copes with a synchronous callback. */
        if (cb)
                cb(t);
}

/* All transport creation lives here, so the cluster can swap in an authenticated one. */
static int engine_transport_new(Engine *e) {
        int r;

        if (!e->address) {
                e->standalone_transport = (struct raft_uv_transport) {
                        .version = 1,
                        .init = standalone_transport_init,
                        .listen = standalone_transport_listen,
                        .connect = standalone_transport_connect,
                        .close = standalone_transport_close,
                };
                e->transport = &e->standalone_transport;
                return 0;
        }

        if (e->transport_new) {
                r = e->transport_new(e->transport_userdata, &e->loop, &e->transport);
                if (r < 0)
                        return log_error_errno(r, "Failed to create Raft transport: %m");
                return 0;
        }

        struct raft_uv_transport *t = g_new0(struct raft_uv_transport, 1);
        t->version = 1;
        r = raft_uv_tcp_init(t, &e->loop);
        if (r != 0) {
                log_error("Failed to set up Raft TCP transport: %s", raft_strerror(r));
                g_free(t);
                return errno_from_raft(r);
        }
        e->transport = t;
        e->transport_is_builtin_tcp = true;
        return 0;
}

/* Only once raft_uv has closed the transport (or it was never used). */
static void engine_transport_free(Engine *e) {
        if (!e->transport || e->transport == &e->standalone_transport) {
                e->transport = NULL;
                return;
        }

        if (e->transport_is_builtin_tcp) {
                raft_uv_tcp_close(e->transport);
                g_free(e->transport);
        } else if (e->transport_free)
                e->transport_free(e->transport_userdata, e->transport);
        e->transport = NULL;
}

/* --- FSM --- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result) {
        Engine *e = fsm->data;
        /* libraft bumps last_applied only after apply returns, so this entry is the next one. */
        uint64_t index = (uint64_t) e->raft.last_applied + 1;
        bool internal;
        size_t size;
        int r;

        *result = NULL;

        r = entry_unframe(buf->base, buf->len, &size, &internal);
        if (r < 0) {
                /* Every member sees the same bytes, so skipping keeps them all alike. */
                log_error_errno(r, "Skipping malformed Raft entry %" PRIu64 " (%zu bytes).", index, buf->len);
                return 0;
        }

        if (!internal && e->cb.apply)
                e->cb.apply(e->userdata, buf->base, size, index);
        return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs) {
        Engine *e = fsm->data;
        g_autoptr(GBytes) bytes = NULL;
        struct raft_buffer *b;
        const void *data;
        size_t size;
        int r;

        if (!e->cb.snapshot)
                return RAFT_INVALID; /* no snapshots: the log just keeps growing */

        r = e->cb.snapshot(e->userdata, &bytes);
        if (r < 0) {
                log_warning_errno(r, "Failed to serialize state for a snapshot: %m");
                return r == -ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
        }

        data = g_bytes_get_data(bytes, &size);

        /* libraft frees both the array and the data with raft_free(). */
        b = raft_malloc(sizeof *b);
        if (!b)
                return RAFT_NOMEM;
        b->len = size;
        b->base = raft_malloc(size > 0 ? size : 1);
        if (!b->base) {
                raft_free(b);
                return RAFT_NOMEM;
        }
        if (size > 0)
                memcpy(b->base, data, size);

        *bufs = b;
        *n_bufs = 1;
        log_debug("Snapshot of %zu bytes at index %llu.", size, e->raft.last_applied);
        return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
        Engine *e = fsm->data;
        int r;

        if (!e->cb.restore)
                return RAFT_INVALID;

        r = e->cb.restore(e->userdata, buf->base, buf->len);
        if (r < 0) {
                log_error_errno(r, "Failed to restore state from snapshot: %m");
                return RAFT_CORRUPT;
        }

        /* On success the buffer is ours to release. */
        raft_free(buf->base);
        return 0;
}

/* --- leadership --- */

/* raft_state_name() has no name for "unavailable". */
static const char *state_to_string(unsigned state) {
        switch (state) {
        case RAFT_LEADER:
                return "leader";
        case RAFT_FOLLOWER:
                return "follower";
        case RAFT_CANDIDATE:
                return "candidate";
        default:
                return "unavailable";
        }
}

static unsigned engine_state(const Engine *e) {
        /* libraft says "follower" right after raft_init(); nothing runs before raft_start(). */
        return e->raft_initialized && e->started ? e->raft.state : RAFT_UNAVAILABLE;
}

static bool engine_usable(const Engine *e) {
        return engine_state(e) == RAFT_LEADER &&
                e->barrier_done_term != 0 &&
                e->barrier_done_term == e->raft.current_term;
}

static void barrier_cb(struct raft_apply *req, int status, void *result) {
        EngineBarrier *b = req->data;
        Engine *e = b->engine;

        if (e) {
                if (status == 0 && e->raft.state == RAFT_LEADER && e->raft.current_term == b->term)
                        e->barrier_done_term = b->term;
                else if (status != 0 && !e->closing)
                        log_debug("Post-election barrier failed: %s", raft_strerror(status));
                if (e->barrier == b)
                        e->barrier = NULL;
        }
        g_free(b);
}

static void engine_maybe_start_barrier(Engine *e) {
        struct raft_buffer buf;
        EngineBarrier *b;
        int r;

        if (e->closing || engine_state(e) != RAFT_LEADER)
                return;
        if (e->barrier || e->barrier_done_term == e->raft.current_term)
                return;

        /* Entries of earlier terms are only known applied once an entry of ours commits. */
        b = g_new0(EngineBarrier, 1);
        b->engine = e;
        b->term = e->raft.current_term;
        b->req.data = b;
        buf.len = entry_framed_size(0);
        buf.base = raft_malloc(buf.len);
        if (!buf.base) {
                log_oom();
                g_free(b);
                return;
        }
        entry_frame(buf.base, NULL, 0, true);

        r = raft_apply(&e->raft, &b->req, &buf, 1, barrier_cb);
        if (r != 0) {
                if (r == RAFT_NOTLEADER || r == RAFT_NOSPACE)
                        raft_free(buf.base);
                log_warning("Failed to start post-election barrier: %s (%s)", raft_strerror(r), raft_errmsg(&e->raft));
                g_free(b);
                return;
        }
        e->barrier = b;
}

static void nudge_cb(struct raft_apply *req, int status, void *result) {
        g_free(req);
}

int engine_nudge(Engine *e) {
        struct raft_apply *req;
        struct raft_buffer buf;
        int r;

        if (!engine_is_leader(e))
                return -ENOTCONN;
        /* An empty internal entry: replicating it carries the new commit index to the followers
         * now, instead of with the next heartbeat tick (up to two heartbeat intervals later). */
        buf.len = entry_framed_size(0);
        buf.base = raft_malloc(buf.len);
        if (!buf.base)
                return -ENOMEM;
        entry_frame(buf.base, NULL, 0, true);
        req = g_new0(struct raft_apply, 1);
        r = raft_apply(&e->raft, req, &buf, 1, nudge_cb);
        if (r != 0) {
                if (r == RAFT_NOTLEADER || r == RAFT_NOSPACE)
                        raft_free(buf.base);
                g_free(req);
                return errno_from_raft(r);
        }
        return 0;
}

/* After every pass through libuv: start the barrier if we just won, tell the owner if anything moved. */
static void engine_after_run(Engine *e) {
        uint64_t leader;
        unsigned state;
        bool usable;

        engine_maybe_start_barrier(e);

        state = engine_state(e);
        usable = engine_usable(e);
        engine_leader(e, &leader, NULL);
        if (state == e->last_state && usable == e->last_usable && leader == e->last_leader)
                return;

        log_debug("Raft state %s -> %s%s (term %llu, leader %" PRIu64 ").",
                  state_to_string(e->last_state), state_to_string(state),
                  usable ? ", usable" : "", e->raft.current_term, leader);
        e->last_state = state;
        e->last_usable = usable;
        e->last_leader = leader;
        if (e->cb.role_changed)
                e->cb.role_changed(e->userdata);
}

/* --- libuv inside sd-event --- */

static void engine_run_uv(Engine *e) {
        assert(!e->in_uv_run);

        e->in_uv_run = true;
        (void) uv_run(&e->loop, UV_RUN_NOWAIT);
        e->in_uv_run = false;

        if (!e->closing)
                engine_after_run(e);
}

static int on_uv_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        engine_run_uv(userdata);
        return 0;
}

static int on_uv_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        engine_run_uv(userdata);
        return 0;
}

/* Runs before sd-event polls: follow libuv's next timer with ours. Always returns 0, since a
 * failing prepare callback would get the io source disabled and the engine would stall. */
static int on_prepare(sd_event_source *s, void *userdata) {
        Engine *e = userdata;
        int timeout, r;

        /* The cached loop time may be stale; libuv computes the timeout against it. */
        uv_update_time(&e->loop);
        timeout = uv_backend_timeout(&e->loop);
        if (timeout < 0) {
                r = sd_event_source_set_enabled(e->timer_source, SD_EVENT_OFF);
                if (r < 0)
                        log_error_errno(r, "Failed to disable libuv timer: %m");
                return 0;
        }

        r = sd_event_source_set_time(e->timer_source, now_monotonic_usec() + (uint64_t) timeout * USEC_PER_MSEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(e->timer_source, SD_EVENT_ONESHOT);
        if (r < 0)
                log_error_errno(r, "Failed to re-arm libuv timer: %m");
        return 0;
}

/* --- life cycle --- */

int engine_new(sd_event *event, const EngineConfig *config, const EngineCallbacks *cb, void *userdata, Engine **ret) {
        _cleanup_(engine_freep) Engine *e = NULL;
        int r;

        assert(event);
        assert(config);
        assert(config->dir);
        assert(ret);

        /* A peer closing a Raft connection must not kill the daemon. */
        (void) signal(SIGPIPE, SIG_IGN);

        e = g_new0(Engine, 1);
        e->event = sd_event_ref(event);
        e->dir = g_strdup(config->dir);
        e->address = g_strdup(config->address);
        e->server_id = config->server_id ?: 1;
        e->election_timeout = config->election_timeout_msec ?:
                (e->address ? CLUSTER_ELECTION_TIMEOUT_MSEC : STANDALONE_ELECTION_TIMEOUT_MSEC);
        e->heartbeat_timeout = config->heartbeat_timeout_msec ?:
                (e->address ? CLUSTER_HEARTBEAT_TIMEOUT_MSEC : STANDALONE_HEARTBEAT_TIMEOUT_MSEC);
        e->snapshot_threshold = config->snapshot_threshold ?: DEFAULT_SNAPSHOT_THRESHOLD;
        /* raft_start() aborts otherwise. */
        if (e->heartbeat_timeout >= e->election_timeout)
                return log_error_errno(EINVAL, "Raft heartbeat timeout (%u ms) must be below the election timeout (%u ms).",
                                       e->heartbeat_timeout, e->election_timeout);
        e->transport_new = config->transport_new;
        e->transport_free = config->transport_free;
        e->transport_userdata = config->transport_userdata;
        if (cb)
                e->cb = *cb;
        e->userdata = userdata;
        e->last_state = RAFT_UNAVAILABLE;

        if (g_mkdir_with_parents(e->dir, 0700) < 0)
                return log_error_errno(errno, "Failed to create state directory %s: %m", e->dir);

        r = uv_loop_init(&e->loop);
        if (r < 0)
                return log_error_errno(-r, "Failed to initialize libuv loop: %s", uv_strerror(r));
        e->loop_initialized = true;

        r = sd_event_add_io(event, &e->io_source, uv_backend_fd(&e->loop), EPOLLIN, on_uv_io, e);
        if (r < 0)
                return log_error_errno(r, "Failed to watch libuv backend fd: %m");
        (void) sd_event_source_set_description(e->io_source, "engine-uv-io");
        r = sd_event_source_set_priority(e->io_source, ENGINE_EVENT_PRIORITY);
        if (r < 0)
                return log_error_errno(r, "Failed to set libuv io priority: %m");

        r = sd_event_source_set_prepare(e->io_source, on_prepare);
        if (r < 0)
                return log_error_errno(r, "Failed to set prepare callback: %m");

        /* 1 µs accuracy: with the 250 ms default the leader misses its own ticks and steps down. */
        r = sd_event_add_time(event, &e->timer_source, CLOCK_MONOTONIC, 0, 1, on_uv_timer, e);
        if (r < 0)
                return log_error_errno(r, "Failed to add libuv timer: %m");
        (void) sd_event_source_set_description(e->timer_source, "engine-uv-timer");
        r = sd_event_source_set_priority(e->timer_source, ENGINE_EVENT_PRIORITY);
        if (r < 0)
                return log_error_errno(r, "Failed to set libuv timer priority: %m");
        r = sd_event_source_set_enabled(e->timer_source, SD_EVENT_OFF);
        if (r < 0)
                return log_error_errno(r, "Failed to disable libuv timer: %m");

        r = engine_transport_new(e);
        if (r < 0)
                return r;

        r = raft_uv_init(&e->io, &e->loop, e->dir, e->transport);
        if (r != 0) {
                log_error("Failed to initialize Raft storage in %s: %s (%s)", e->dir, raft_strerror(r), e->io.errmsg);
                return errno_from_raft(r);
        }
        e->io_initialized = true;
        raft_uv_set_segment_size(&e->io, SEGMENT_SIZE);
        storage_checks_install(e);

        e->fsm = (struct raft_fsm) {
                .version = 1,
                .data = e,
                .apply = fsm_apply,
                .snapshot = fsm_snapshot,
                .restore = fsm_restore,
        };

        r = raft_init(&e->raft, &e->io, &e->fsm, e->server_id, e->address ?: STANDALONE_ADDRESS);
        if (r != 0) {
                log_error("Failed to initialize Raft: %s (%s)", raft_strerror(r), raft_errmsg(&e->raft));
                return errno_from_raft(r);
        }
        e->raft_initialized = true;
        e->raft.data = e;

        raft_set_election_timeout(&e->raft, e->election_timeout);
        raft_set_heartbeat_timeout(&e->raft, e->heartbeat_timeout);
        raft_set_snapshot_threshold(&e->raft, e->snapshot_threshold);
        raft_set_snapshot_trailing(&e->raft, MIN(DEFAULT_SNAPSHOT_TRAILING, e->snapshot_threshold / 4));
        /* We do not report disk capacity to libraft; a non-zero threshold refuses every entry. */
        raft_set_capacity_threshold(&e->raft, 0);
        if (e->address)
                raft_set_pre_vote(&e->raft, true);

        *ret = g_steal_pointer(&e);
        return 0;
}

/* ---- storage checks ----
 *
 * libraft is not safe to drive after a failed write of its storage: besides the leader's own
 * appends (apply_cb), a follower's append, the term or vote, a truncation or a snapshot that
 * fail ended it in SIGABRT/SIGSEGV (the nemesis's failing disk). Every such write goes through
 * these wrappers; a failure stops the process at once, with a reason: what it acknowledged is on
 * disk (each reply waits for its entry to be synced), and libraft never runs again on state it
 * could not store. */

static bool storage_error(int rv) {
        return rv == RAFT_IOERR || rv == RAFT_NOSPACE || rv == RAFT_CORRUPT;
}

__attribute__((noreturn)) static void storage_fatal(Engine *e, const char *what, int status) {
        log_error("Writing the Raft log in %s failed (%s: %s: %s): stopping at once, so that nothing is "
                  "acknowledged that is not on disk.", e->dir ?: "the state directory", what,
                  raft_strerror(status), e->io.errmsg);
        _exit(EXIT_FAILURE);
}

/* In-flight asynchronous writes: request -> (engine, libraft's callback). */
typedef struct StoragePending {
        Engine *engine;
        void (*cb)(void *req, int status);
} StoragePending;

static GHashTable *storage_pending;

static void storage_pending_add(void *req, Engine *e, void (*cb)(void *req, int status)) {
        StoragePending *p = g_new(StoragePending, 1);

        if (!storage_pending)
                storage_pending = g_hash_table_new_full(NULL, NULL, NULL, g_free);
        *p = (StoragePending) { .engine = e, .cb = cb };
        g_hash_table_insert(storage_pending, req, p);
}

static StoragePending storage_pending_take(void *req) {
        StoragePending *p = storage_pending ? g_hash_table_lookup(storage_pending, req) : NULL;
        StoragePending copy = {};

        assert(p);
        copy = *p;
        g_hash_table_remove(storage_pending, req);
        if (g_hash_table_size(storage_pending) == 0)
                g_clear_pointer(&storage_pending, g_hash_table_unref);
        return copy;
}

/* libraft calls our methods with the raft_io we gave it: the one inside Engine (io->data is its). */
static Engine *engine_of_io(struct raft_io *io) {
        return (Engine *) ((char *) io - offsetof(Engine, io));
}

static int io_set_term(struct raft_io *io, raft_term term) {
        Engine *e = engine_of_io(io);
        int rv = e->io_base.set_term(io, term);

        if (storage_error(rv))
                storage_fatal(e, "storing the term", rv);
        return rv;
}

static int io_set_vote(struct raft_io *io, raft_id server_id) {
        Engine *e = engine_of_io(io);
        int rv = e->io_base.set_vote(io, server_id);

        if (storage_error(rv))
                storage_fatal(e, "storing the vote", rv);
        return rv;
}

static int io_truncate(struct raft_io *io, raft_index index) {
        Engine *e = engine_of_io(io);
        int rv = e->io_base.truncate(io, index);

        if (storage_error(rv))
                storage_fatal(e, "truncating the log", rv);
        return rv;
}

static void io_append_done(struct raft_io_append *req, int status) {
        StoragePending p = storage_pending_take(req);

        if (status != 0 && status != RAFT_CANCELED)
                storage_fatal(p.engine, "appending entries", status);
        ((raft_io_append_cb) p.cb)(req, status);
}

static int io_append(struct raft_io *io, struct raft_io_append *req, const struct raft_entry entries[], unsigned n,
                     raft_io_append_cb cb) {
        Engine *e = engine_of_io(io);
        int rv;

        storage_pending_add(req, e, (void (*)(void *, int)) cb);
        rv = e->io_base.append(io, req, entries, n, io_append_done);
        if (rv != 0) {
                (void) storage_pending_take(req);
                if (storage_error(rv))
                        storage_fatal(e, "appending entries", rv);
        }
        return rv;
}

static void io_snapshot_put_done(struct raft_io_snapshot_put *req, int status) {
        StoragePending p = storage_pending_take(req);

        if (status != 0 && status != RAFT_CANCELED)
                storage_fatal(p.engine, "writing a snapshot", status);
        ((raft_io_snapshot_put_cb) p.cb)(req, status);
}

static int io_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                           const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb) {
        Engine *e = engine_of_io(io);
        int rv;

        storage_pending_add(req, e, (void (*)(void *, int)) cb);
        rv = e->io_base.snapshot_put(io, trailing, req, snapshot, io_snapshot_put_done);
        if (rv != 0) {
                (void) storage_pending_take(req);
                if (storage_error(rv))
                        storage_fatal(e, "writing a snapshot", rv);
        }
        return rv;
}

static void storage_checks_install(Engine *e) {
        e->io_base = e->io;
        e->io.set_term = io_set_term;
        e->io.set_vote = io_set_vote;
        e->io.truncate = io_truncate;
        e->io.append = io_append;
        e->io.snapshot_put = io_snapshot_put;
}

static int configuration_from_servers(const EngineServer *servers, size_t n, struct raft_configuration *ret) {
        int r;

        raft_configuration_init(ret);
        for (size_t i = 0; i < n; i++) {
                if (servers[i].id == 0 || !servers[i].address) {
                        raft_configuration_close(ret);
                        return log_error_errno(EINVAL, "Raft server %zu lacks an id or address.", i);
                }
                r = raft_configuration_add(ret, servers[i].id, servers[i].address,
                                           servers[i].voter ? RAFT_VOTER : RAFT_STANDBY);
                if (r != 0) {
                        raft_configuration_close(ret);
                        log_error("Invalid Raft server %" PRIu64 " (%s): %s",
                                  servers[i].id, servers[i].address, raft_strerror(r));
                        return errno_from_raft(r);
                }
        }
        return 0;
}

int engine_bootstrap(Engine *e, const EngineServer *servers, size_t n) {
        struct raft_configuration conf;
        int r;

        assert(e);
        assert(servers || n == 0);

        if (e->started)
                return -EBUSY;
        if (n == 0)
                return -EINVAL;

        r = configuration_from_servers(servers, n, &conf);
        if (r < 0)
                return r;

        r = raft_bootstrap(&e->raft, &conf);
        raft_configuration_close(&conf);
        if (r == RAFT_CANTBOOTSTRAP)
                return -EEXIST;
        if (r != 0) {
                log_error("Failed to bootstrap Raft: %s (%s)", raft_strerror(r), raft_errmsg(&e->raft));
                return errno_from_raft(r);
        }
        if (n > 1)
                /* The classic mistake: one node bootstraps everyone, the others start empty. */
                log_info("Bootstrapped a Raft configuration of %zu servers: each voter in it must bootstrap the "
                         "same list, since libraft never votes without a configuration.", n);
        else
                log_debug("Bootstrapped a one-server Raft configuration.");
        return 0;
}

int engine_recover(Engine *e, const EngineServer *servers, size_t n) {
        struct raft_configuration conf;
        int r;

        assert(e);
        assert(servers || n == 0);

        if (e->started)
                return -EBUSY;
        if (n == 0)
                return -EINVAL;

        r = configuration_from_servers(servers, n, &conf);
        if (r < 0)
                return r;

        /* Appends the configuration to the log on disk; the state machine is kept. */
        r = raft_recover(&e->raft, &conf);
        raft_configuration_close(&conf);
        if (r != 0) {
                log_error("Failed to force Raft configuration: %s (%s)", raft_strerror(r), raft_errmsg(&e->raft));
                return errno_from_raft(r);
        }
        log_info("Forced a new Raft configuration with %zu servers.", n);
        return 0;
}

int engine_start(Engine *e) {
        int r;

        assert(e);

        if (e->started)
                return -EALREADY;

        if (!e->address) {
                EngineServer self = { .id = e->server_id, .address = STANDALONE_ADDRESS, .voter = true };

                r = engine_bootstrap(e, &self, 1);
                if (r < 0 && r != -EEXIST)
                        return r;
        }

        r = raft_start(&e->raft);
        if (r != 0) {
                log_error("Failed to start Raft: %s (%s)", raft_strerror(r), raft_errmsg(&e->raft));
                return errno_from_raft(r);
        }
        e->started = true;

        /* A lone voter elects itself inside raft_start(); the role change is reported from the loop. */
        engine_maybe_start_barrier(e);
        return 0;
}

static void engine_close_cb(struct raft *raft) {
        Engine *e = raft->data;
        e->raft_closed = true;
}

Engine *engine_free(Engine *e) {
        if (!e)
                return NULL;

        /* Closing from inside libuv would re-enter uv_run(). */
        assert(!e->in_uv_run);

        e->closing = true;

        /* After a failed write libraft's close never completes: leave it all to the process exit
         * (nothing more is written; the log is as it was last synced). */
        if (e->storage_failed) {
                log_warning("Not closing the Raft log after the storage failure.");
                return NULL;
        }

        if (e->barrier) {
                /* Its callback still fires during close; it must not touch us afterwards. */
                e->barrier->engine = NULL;
                e->barrier = NULL;
        }

        if (e->raft_initialized) {
                raft_close(&e->raft, engine_close_cb);
                while (!e->raft_closed)
                        if (uv_run(&e->loop, UV_RUN_ONCE) == 0 && !e->raft_closed) {
                                log_error("libuv loop ran dry before Raft closed.");
                                break;
                        }
        }

        if (e->n_requests > 0)
                log_warning("%u Raft requests still pending after close.", e->n_requests);

        if (e->io_initialized)
                raft_uv_close(&e->io);
        engine_transport_free(e);

        if (e->loop_initialized) {
                int r;

                /* Let close callbacks of any remaining handles run. */
                (void) uv_run(&e->loop, UV_RUN_DEFAULT);
                r = uv_loop_close(&e->loop);
                if (r < 0)
                        log_warning("Failed to close libuv loop: %s", uv_strerror(r));
        }

        sd_event_source_disable_unref(e->io_source);
        sd_event_source_disable_unref(e->timer_source);
        sd_event_unref(e->event);
        g_free(e->dir);
        g_free(e->address);
        g_free(e);
        return NULL;
}

/* --- requests --- */

static EngineRequest *engine_request_new(Engine *e, EngineRequestType type, EngineDoneFn done, void *userdata) {
        EngineRequest *q = g_new0(EngineRequest, 1);

        q->type = type;
        q->engine = e;
        q->done = done;
        q->userdata = userdata;
        switch (type) {
        case ENGINE_REQUEST_APPLY:
                q->apply.data = q;
                break;
        case ENGINE_REQUEST_CHANGE:
                q->change.data = q;
                break;
        case ENGINE_REQUEST_TRANSFER:
                q->transfer.data = q;
                break;
        }
        e->n_requests++;
        return q;
}

static void engine_request_complete(EngineRequest *q, int status) {
        Engine *e = q->engine;

        assert(e->n_requests > 0);
        e->n_requests--;

        /* While closing libraft reports leadership lost; callers want to know it is shutdown. */
        if (status < 0 && e->closing)
                status = -ESHUTDOWN;

        if (q->done)
                q->done(status, q->userdata);
        g_free(q);
}

static void engine_request_abandon(EngineRequest *q) {
        q->engine->n_requests--;
        g_free(q);
}

/* The log could not be written. libraft is not safe to drive after that (a later apply crashed in
 * it), and what we acknowledged is on disk: stop here, with a clear reason, and let the service
 * manager restart us on the log as it was last synced. */
static void engine_storage_failed(Engine *e, int status) {
        if (e->storage_failed)
                return;
        e->storage_failed = true;
        log_error("Writing the Raft log in %s failed (%s: %s): stopping, so that nothing is acknowledged "
                  "that is not on disk.", e->dir ?: "the state directory", raft_strerror(status), raft_errmsg(&e->raft));
        (void) sd_event_exit(e->event, EXIT_FAILURE);
}

static void apply_cb(struct raft_apply *req, int status, void *result) {
        EngineRequest *q = req->data;
        Engine *e = q->engine;
        int r = 0;

        if (status != 0) {
                if (status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST)
                        r = -ENOTCONN;
                else if (status == RAFT_SHUTDOWN)
                        r = -ESHUTDOWN;
                else {
                        log_warning("Raft entry failed: %s (%s)", raft_strerror(status), raft_errmsg(&e->raft));
                        r = -EIO;
                        if (status == RAFT_IOERR || status == RAFT_CORRUPT || status == RAFT_NOSPACE)
                                engine_storage_failed(e, status);
                }
        }
        engine_request_complete(q, r);
}

int engine_submit(Engine *e, const void *data, size_t size, EngineSubmitFn done, void *userdata) {
        struct raft_buffer buf;
        EngineRequest *q;
        int r;

        assert(e);
        assert(data || size == 0);

        if (e->closing)
                return -ESHUTDOWN;
        if (e->storage_failed)
                return -EIO;
        if (!e->started || engine_state(e) != RAFT_LEADER)
                return -ENOTCONN;

        /* libraft takes ownership of the buffer on success. */
        buf.len = entry_framed_size(size);
        buf.base = raft_malloc(buf.len);
        if (!buf.base)
                return log_oom();
        entry_frame(buf.base, data, size, false);

        q = engine_request_new(e, ENGINE_REQUEST_APPLY, done, userdata);
        r = raft_apply(&e->raft, &q->apply, &buf, 1, apply_cb);
        if (r != 0) {
                /* Refusals before libraft looked at the entry leave the buffer ours; after that
                 * it may already have released it, so leaking beats freeing twice. */
                if (r == RAFT_NOTLEADER || r == RAFT_NOSPACE)
                        raft_free(buf.base);
                engine_request_abandon(q);
                log_debug("Raft apply refused: %s (%s)", raft_strerror(r), raft_errmsg(&e->raft));
                if (r == RAFT_IOERR || r == RAFT_CORRUPT)
                        engine_storage_failed(e, r);
                return errno_from_raft(r);
        }
        return 0;
}

/* --- membership (cluster groundwork) --- */

static void change_cb(struct raft_change *req, int status) {
        EngineRequest *q = req->data;

        if (status != 0 && !q->engine->closing)
                log_debug("Raft configuration change failed: %s", raft_strerror(status));
        engine_request_complete(q, errno_from_raft(status));
}

int engine_add_member(Engine *e, uint64_t id, const char *address, EngineDoneFn done, void *userdata) {
        EngineRequest *q;
        int r;

        assert(e);
        assert(address);

        if (e->closing)
                return -ESHUTDOWN;
        if (id == 0)
                return -EINVAL;

        q = engine_request_new(e, ENGINE_REQUEST_CHANGE, done, userdata);
        r = raft_add(&e->raft, &q->change, id, address, change_cb);
        if (r != 0) {
                engine_request_abandon(q);
                log_debug("Raft add of %" PRIu64 " refused: %s (%s)", id, raft_strerror(r), raft_errmsg(&e->raft));
                return errno_from_raft(r);
        }
        return 0;
}

int engine_assign_member(Engine *e, uint64_t id, bool voter, EngineDoneFn done, void *userdata) {
        EngineRequest *q;
        int r;

        assert(e);

        if (e->closing)
                return -ESHUTDOWN;

        q = engine_request_new(e, ENGINE_REQUEST_CHANGE, done, userdata);
        r = raft_assign(&e->raft, &q->change, id, voter ? RAFT_VOTER : RAFT_STANDBY, change_cb);
        if (r != 0) {
                engine_request_abandon(q);
                log_debug("Raft assign of %" PRIu64 " refused: %s (%s)", id, raft_strerror(r), raft_errmsg(&e->raft));
                return errno_from_raft(r);
        }
        return 0;
}

int engine_remove_member(Engine *e, uint64_t id, EngineDoneFn done, void *userdata) {
        EngineRequest *q;
        int r;

        assert(e);

        if (e->closing)
                return -ESHUTDOWN;

        q = engine_request_new(e, ENGINE_REQUEST_CHANGE, done, userdata);
        r = raft_remove(&e->raft, &q->change, id, change_cb);
        if (r != 0) {
                engine_request_abandon(q);
                log_debug("Raft remove of %" PRIu64 " refused: %s (%s)", id, raft_strerror(r), raft_errmsg(&e->raft));
                return errno_from_raft(r);
        }
        return 0;
}

static void transfer_cb(struct raft_transfer *req) {
        EngineRequest *q = req->data;
        Engine *e = q->engine;
        raft_id leader = 0;
        const char *address = NULL;
        bool ok;

        /* libraft gives no status: success is "someone else, ideally the target, leads now". */
        if (!e->closing)
                raft_leader(&e->raft, &leader, &address);
        ok = leader != 0 && leader != e->server_id && (q->target == 0 || leader == q->target);
        engine_request_complete(q, ok ? 0 : -ETIMEDOUT);
}

int engine_transfer_leadership(Engine *e, uint64_t id, EngineDoneFn done, void *userdata) {
        EngineRequest *q;
        int r;

        assert(e);

        if (e->closing)
                return -ESHUTDOWN;

        q = engine_request_new(e, ENGINE_REQUEST_TRANSFER, done, userdata);
        q->target = id;
        r = raft_transfer(&e->raft, &q->transfer, id, transfer_cb);
        if (r != 0) {
                engine_request_abandon(q);
                log_debug("Raft transfer to %" PRIu64 " refused: %s (%s)", id, raft_strerror(r), raft_errmsg(&e->raft));
                return errno_from_raft(r);
        }
        return 0;
}

/* --- queries --- */

bool engine_is_leader(const Engine *e) {
        return e && !e->closing && engine_usable(e);
}

uint64_t engine_last_applied(const Engine *e) {
        return e && e->raft_initialized ? e->raft.last_applied : 0;
}

uint64_t engine_last_stored(const Engine *e) {
        /* What this server has persisted: the lease rules need it, not the commit index. */
        return e && e->raft_initialized && e->started ? e->raft.last_stored : 0;
}

const char *engine_role_name(const Engine *e) {
        return state_to_string(e ? engine_state(e) : RAFT_UNAVAILABLE);
}

void engine_leader(Engine *e, uint64_t *ret_id, const char **ret_address) {
        raft_id id = 0;
        const char *address = NULL;

        assert(e);

        if (e->raft_initialized && e->started && !e->closing)
                raft_leader(&e->raft, &id, &address);
        if (ret_id)
                *ret_id = id;
        if (ret_address)
                *ret_address = id != 0 ? address : NULL;
}

int engine_get_servers(Engine *e, EngineServer **ret, size_t *ret_n) {
        const struct raft_configuration *conf;
        EngineServer *servers;

        assert(e);
        assert(ret);
        assert(ret_n);

        if (!e->raft_initialized)
                return -ENOTCONN;

        conf = &e->raft.configuration;
        servers = g_new0(EngineServer, conf->n + 1);
        for (unsigned i = 0; i < conf->n; i++)
                servers[i] = (EngineServer) {
                        .id = conf->servers[i].id,
                        .address = conf->servers[i].address,
                        .voter = conf->servers[i].role == RAFT_VOTER,
                };
        *ret = servers;
        *ret_n = conf->n;
        return 0;
}

size_t engine_n_voters(Engine *e) {
        size_t n = 0;

        assert(e);

        if (!e->raft_initialized)
                return 0;
        for (unsigned i = 0; i < e->raft.configuration.n; i++)
                if (e->raft.configuration.servers[i].role == RAFT_VOTER)
                        n++;
        return n;
}

uint64_t engine_current_term(const Engine *e) {
        return e && e->raft_initialized ? e->raft.current_term : 0;
}
