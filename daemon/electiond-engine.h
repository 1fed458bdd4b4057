/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The replication engine: libraft (0.22, cowsql fork) with its libuv-based storage, driven from
 * sd-event (libuv's backend fd is an sd-event io source; a prepare callback re-arms a 1 µs-accuracy
 * timer from uv_backend_timeout()). Opaque bytes in, the same bytes out in commit order on every
 * member. It knows nothing about elections.
 *
 * Standalone (no cluster): a one-voter cluster with a transport that never touches the network.
 */

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "electiond-util.h"

typedef struct Engine Engine;

typedef struct EngineCallbacks {
        /* A committed entry, in log order. index is its Raft log index. */
        void (*apply)(void *userdata, const void *data, size_t size, uint64_t index);
        /* Serialize / replace the application state (log compaction, catch-up of new members). */
        int (*snapshot)(void *userdata, GBytes **ret);
        int (*restore)(void *userdata, const void *data, size_t size);
        /* Raft role changed, or leadership became usable (after the post-election barrier). */
        void (*role_changed)(void *userdata);
} EngineCallbacks;

typedef struct EngineConfig {
        const char *dir;                 /* storage directory, created if missing */
        uint64_t server_id;              /* Raft server id (standalone: 1) */
        const char *address;             /* this server's "ip:port"; NULL = standalone, no network */
        unsigned election_timeout_msec;  /* 0 = default */
        unsigned heartbeat_timeout_msec; /* 0 = default */
        unsigned snapshot_threshold;     /* entries between snapshots; 0 = default */
} EngineConfig;

/* done(status, userdata): status 0 once the entry is committed (and applied locally),
 * or a negative errno: -ENOTCONN not leader / leadership lost, -ESHUTDOWN closing, -EIO other. */
typedef void (*EngineSubmitFn)(int status, void *userdata);

int engine_new(sd_event *event, const EngineConfig *config, const EngineCallbacks *cb, void *userdata, Engine **ret);
/* Standalone: bootstrap a one-voter configuration if the directory holds no state, then start. */
int engine_start(Engine *e);
/* Only valid on the leader; copies data. */
int engine_submit(Engine *e, const void *data, size_t size, EngineSubmitFn done, void *userdata);
bool engine_is_leader(const Engine *e);          /* leader and post-election barrier done */
uint64_t engine_last_applied(const Engine *e);
const char *engine_role_name(const Engine *e);   /* "leader", "follower", "candidate", "unavailable" */
/* Closes raft and the libuv loop synchronously enough for exit (runs the uv loop until closed). */
Engine *engine_free(Engine *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Engine *, engine_free)
