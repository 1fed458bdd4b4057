/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Commands: what goes through the replicated log. One Raft entry holds a batch of commands
 * (concurrent D-Bus calls are batched into one append). The encoding is a versioned,
 * little-endian binary format; decoding treats input as hostile (it also arrives over the
 * network when followers forward to the leader): every length is checked, strings must be
 * NUL-free, and any error yields -EBADMSG, never a crash.
 */

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum CommandType {
        COMMAND_ENTER = 1,
        COMMAND_LEAVE,
        COMMAND_EVICT,
        COMMAND_ANOINT,
        COMMAND_PROMOTE,
        COMMAND_DROP_OWNER, /* a bus connection went away: (node, run, owner) loses its connection-bound candidacies */
        COMMAND_DROP_RUN,   /* node restarted as run R: its connection-bound candidacies with run != R go */
        COMMAND_DROP_NODE,  /* node failed (cluster): every candidacy owned by node goes (parked, see RESTORE_NODE) */
        COMMAND_RESTORE_NODE, /* node is back as run R: its parked candidacies re-enter at the back */
        COMMAND_BUMP_TERMS, /* after --force-new-cluster/--restore: every election's term id += run (the offset) */
        COMMAND_STEP_DOWN,  /* planned stop of node: its candidacies move to the back of every election */
        COMMAND_DRAIN,      /* node stays out of the lead of election ("" = every election) */
        COMMAND_UNDRAIN,    /* undoes DRAIN of election ("" = every DRAIN of the node) */
        COMMAND_SET_PROTOCOL, /* protocol 2: the cluster protocol version becomes run (every member supports it) */
        /* protocol 2 (issue 14 §1): election was empty (no candidacy, none parked) at term `run`:
         * delete it. v0.1.0 cannot decode it. */
        COMMAND_FORGET,
        _COMMAND_TYPE_MAX,
} CommandType;

enum {
        COMMAND_FLAG_PERSISTENT = 1u << 0, /* Enter: candidacy survives its connection and restarts */
        COMMAND_FLAG_AUTHORIZED = 1u << 1, /* caller passed uid 0 / polkit manage: may re-bind, Leave persistent of others */
};

typedef struct Command {
        CommandType type;
        char *origin;           /* node that submitted it */
        uint64_t origin_run;    /* that node's daemon run id */
        uint64_t request_id;    /* unique per (origin, origin_run); dedup key for retries */
        char *election;         /* election name ("" for DROP_*) */
        char *id;               /* candidate id ("" for DROP_*) */
        char *node;             /* Enter/Leave: caller's node ("" -> origin); DROP_*: the node concerned */
        char *owner;            /* Enter/Leave/DROP_OWNER: caller's bus unique name */
        uint64_t run;           /* Enter/DROP_OWNER/DROP_RUN: owner node's run id */
        uint32_t uid;           /* caller's Unix uid */
        uint32_t flags;         /* COMMAND_FLAG_* */
        uint32_t max_elections; /* limits of the submitting node, so all nodes decide alike; 0 = unlimited */
        uint32_t max_candidates;
        /* Enter (persistent, uid != 0): the caller's uid may hold at most this many persistent
         * candidacies in all elections; 0 = no quota. Protocol 2 (issue 14 §1): encoded only when
         * not 0, as the command's extension (see electiond-command.c); v0.1.0 cannot decode it. */
        uint32_t max_persistent;
} Command;

/* Protocol versions (rolling upgrade, docs/DESIGN.md "Versions"): a build speaks every version
 * from PROTOCOL_VERSION_MIN to PROTOCOL_VERSION_MAX. Version 1 is the v0.1.0 protocol (command
 * types ENTER..UNDRAIN); version 2 adds SET_PROTOCOL, FORGET, the Enter extension max_persistent
 * and snapshot version 6. A command of a newer protocol is submitted only once the cluster's
 * committed protocol version reaches it (the extension: manager_submit() clears it before). */
#define PROTOCOL_VERSION_MIN 1u
#define PROTOCOL_VERSION_MAX 2u
/* The protocol version that introduced the Enter extension max_persistent. */
#define COMMAND_MAX_PERSISTENT_PROTOCOL 2u
/* The protocol version that introduced type t (0 for an unknown type). */
unsigned command_type_protocol(CommandType t);

/* All string fields start NULL; NULL is treated (and encoded) as "". */
Command *command_new(CommandType type);
Command *command_free(Command *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Command, command_free)
Command *command_copy(const Command *c);
const char *command_type_to_string(CommandType t);

/* Codec limits: longest string field in bytes, most commands in one batch. */
#define COMMAND_STRING_MAX 4096u
#define COMMAND_BATCH_MAX 65536u

/* Append one command to a batch under construction (starts a batch when buf is empty).
 * NULL string fields encode as "". Returns -EINVAL for an unknown type or a buf that is not a
 * batch, -E2BIG for a string over COMMAND_STRING_MAX, -ENOBUFS when the batch is full (start a
 * new one). */
int command_batch_append(GByteArray *buf, const Command *c);
/* Decode a whole batch: *ret is a GPtrArray of Command* (with free func). */
int command_batch_decode(const void *data, size_t size, GPtrArray **ret);
