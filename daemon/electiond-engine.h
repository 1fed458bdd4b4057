/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The replication engine: libraft (0.22, cowsql fork) with its libuv-based storage, driven from
 * sd-event (libuv's backend fd is an sd-event io source; a prepare callback re-arms a 1 µs-accuracy
 * timer from uv_backend_timeout()). Opaque bytes in, the same bytes out in commit order on every
 * member. It knows nothing about elections.
 *
 * Standalone (no cluster): a one-voter cluster with a transport that never touches the network.
 *
 * Nothing of the application's state is stored apart from the log: on every start the engine
 * calls restore() with the last snapshot (if any), then apply() for each later entry, before
 * engine_is_leader() turns true. The application starts from an empty state.
 *
 * Entries may have any length; on disk each is padded to a multiple of 8 (libraft's rule).
 * Its sd-event sources run at priority SD_EVENT_PRIORITY_NORMAL - 10.
 *
 * Callbacks (apply, snapshot, restore, done) run from inside the engine's event handlers; they may
 * submit new entries but must not call engine_free(). Pending done callbacks are completed with
 * -ESHUTDOWN from within engine_free().
 */

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "electiond-util.h"

typedef struct Engine Engine;

struct uv_loop_s;
struct raft_uv_transport;

typedef struct EngineCallbacks {
        /* A committed entry, in log order. index is its Raft log index. */
        void (*apply)(void *userdata, const void *data, size_t size, uint64_t index);
        /* Serialize / replace the application state (log compaction, catch-up of new members). */
        int (*snapshot)(void *userdata, GBytes **ret);
        int (*restore)(void *userdata, const void *data, size_t size);
        /* Raft role changed, leadership became usable (after the post-election barrier), or the
         * leader this node knows of changed. */
        void (*role_changed)(void *userdata);
} EngineCallbacks;

typedef struct EngineConfig {
        const char *dir;                 /* storage directory, created (0700) if missing */
        uint64_t server_id;              /* Raft server id (standalone: 1) */
        const char *address;             /* this server's "ip:port"; NULL = standalone, no network */
        unsigned election_timeout_msec;  /* 0 = default (standalone 1000, clustered 150) */
        unsigned heartbeat_timeout_msec; /* 0 = default (standalone 250, clustered 30) */
        unsigned snapshot_threshold;     /* entries between snapshots; 0 = default (4096) */

        /* Clustered only, optional: builds the Raft transport (e.g. TCP wrapped in an authenticated
         * handshake). NULL = libraft's plain TCP transport bound to address. transport_free() is
         * called once the transport has been closed by the engine. */
        int (*transport_new)(void *userdata, struct uv_loop_s *loop, struct raft_uv_transport **ret);
        void (*transport_free)(void *userdata, struct raft_uv_transport *t);
        void *transport_userdata;
} EngineConfig;

/* done(status, userdata): status 0 once the entry is committed (and applied locally),
 * or a negative errno: -ENOTCONN not leader / leadership lost, -ESHUTDOWN closing, -EIO other. */
typedef void (*EngineSubmitFn)(int status, void *userdata);
typedef EngineSubmitFn EngineDoneFn;

int engine_new(sd_event *event, const EngineConfig *config, const EngineCallbacks *cb, void *userdata, Engine **ret);
/* Standalone: bootstrap a one-voter configuration if the directory holds no state, then start.
 * Clustered: start with whatever the directory holds (call engine_bootstrap() first to create a
 * new cluster; an empty node waits to be added by a leader). */
int engine_start(Engine *e);
/* Only valid on the leader; copies data. On a negative return done is never called. */
int engine_submit(Engine *e, const void *data, size_t size, EngineSubmitFn done, void *userdata);
bool engine_is_leader(const Engine *e);          /* leader and post-election barrier done */
uint64_t engine_last_applied(const Engine *e);
/* Leader only: append an empty internal entry so that followers learn the commit index at once
 * (they apply only what they know is committed). */
int engine_nudge(Engine *e);
uint64_t engine_last_stored(const Engine *e);   /* highest log index durably on this node's disk */
const char *engine_role_name(const Engine *e);   /* "leader", "follower", "candidate", "unavailable" */
/* Closes raft and the libuv loop synchronously enough for exit (runs the uv loop until closed). */
Engine *engine_free(Engine *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Engine *, engine_free)

/* --- cluster groundwork --- */

typedef struct EngineServer {
        uint64_t id;
        const char *address;
        bool voter; /* false: stand-by (replicates the log, does not vote) */
} EngineServer;

/* Before engine_start(), on a directory without state: write the initial configuration.
 * -EEXIST if the directory already holds Raft state, -EBUSY once started.
 * Every voter of a new multi-voter cluster must bootstrap with the SAME list (same ids,
 * addresses, order): libraft never grants a vote from a node without a configuration, so a lone
 * bootstrapper listing other voters could never be elected. The alternative is to bootstrap one
 * node as the only voter and grow with engine_add_member() + engine_assign_member(). */
int engine_bootstrap(Engine *e, const EngineServer *servers, size_t n);
/* Before engine_start(), on a directory WITH state: replace the membership by appending a new
 * configuration to the log, keeping every entry (libraft's raft_recover()). For leaving
 * standalone mode (whose only voter is at address "standalone") or recovering from a lost
 * quorum; only ever on one node, whose directory then seeds the others. */
int engine_recover(Engine *e, const EngineServer *servers, size_t n);
/* Leader only. Membership changes complete asynchronously with done(status): 0 once the new
 * configuration is committed, -ENOTCONN leadership lost, -EBUSY another change in progress,
 * -EEXIST duplicate id/address, -ENOENT unknown id, -EHOSTUNREACH new member failed to catch up,
 * -ESHUTDOWN closing, -EIO other. A negative return means done will not be called. */
int engine_add_member(Engine *e, uint64_t id, const char *address, EngineDoneFn done, void *userdata);
int engine_assign_member(Engine *e, uint64_t id, bool voter, EngineDoneFn done, void *userdata);
int engine_remove_member(Engine *e, uint64_t id, EngineDoneFn done, void *userdata);
/* id 0 picks a voting follower. done(0) if the target (or, for 0, someone else) leads afterwards,
 * -ETIMEDOUT otherwise. */
int engine_transfer_leadership(Engine *e, uint64_t id, EngineDoneFn done, void *userdata);
/* The leader as far as this node knows: id 0 and address NULL if unknown. The address is
 * borrowed, valid until the engine runs again. */
void engine_leader(Engine *e, uint64_t *ret_id, const char **ret_address);
/* Current (possibly uncommitted) configuration: a g_free()-able array; addresses are borrowed,
 * valid until the engine runs again. */
int engine_get_servers(Engine *e, EngineServer **ret, size_t *ret_n);
size_t engine_n_voters(Engine *e);
uint64_t engine_current_term(const Engine *e); /* Raft term (not an election's term id) */
