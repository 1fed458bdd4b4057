/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The election rules: a pure state machine, no I/O, no clocks. Every node applies the same
 * committed commands (electiond-command.h) in the same order and reaches the same state, so
 * nothing here may depend on local configuration or time: limits travel inside the commands.
 *
 * Invariant: an election has a leader iff it has candidates, and the leader is candidates[0].
 * An election that ever had a term (term_id > 0) is kept until a FORGET deletes it while it is
 * empty; the state's term floor then rises to its term id, and every election created later
 * starts at the floor, so no term id of it is ever handed out again.
 */

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "electiond-command.h"

typedef struct Candidacy {
        char *id;          /* candidate id, as given to Enter */
        char *node;        /* owner node name */
        char *owner;       /* owner's bus unique name, "" when persistent */
        uint64_t run;      /* owner node's daemon run id (connection-bound only; 0 if persistent) */
        uint32_t uid;      /* Unix uid of the caller that entered/re-bound it */
        bool persistent;
} Candidacy;

typedef struct Election {
        char *name;
        uint64_t term_id;
        GPtrArray *candidates; /* Candidacy*, owned; [0] leads when non-empty */
        /* Candidacies that DROP_NODE took from a node that may be alive (fenced, not gone): they
         * lead nothing and are not listed; RESTORE_NODE from their node re-enters them at the back,
         * Leave/Evict/a new Enter of the same id forget them. NULL when none. */
        GPtrArray *parked;
        /* Set only while ElectionChangedFn runs for the FORGET that deletes it: the last event of
         * this election (watchers drop it); the pointer is freed right after. */
        bool removed;
} Election;

typedef struct ElectionState ElectionState;

typedef enum ElectionResult {
        ELECTION_CHANGED = 0,      /* term or candidate list changed: exactly one event */
        ELECTION_NOOP,             /* nothing changed (incl. Enter re-bind): no event */
        ELECTION_NOT_CANDIDATE,    /* -> org.electiond.Election1.Error.NotCandidate */
        ELECTION_LIMIT_EXCEEDED,   /* -> org.electiond.Election1.Error.LimitExceeded */
        ELECTION_ACCESS_DENIED,    /* -> org.freedesktop.DBus.Error.AccessDenied */
        ELECTION_INVALID,          /* malformed command (bad name/id); never changes state */
        ELECTION_DUPLICATE,        /* request id already applied: ignored */
        ELECTION_QUOTA_EXCEEDED,   /* -> org.electiond.Election1.Error.QuotaExceeded (MaxPersistentPerUser=) */
} ElectionResult;

/* Called once per changed election, in commit order, while applying a command. */
typedef void (*ElectionChangedFn)(const Election *e, void *userdata);

ElectionState *election_state_new(void);
ElectionState *election_state_free(ElectionState *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ElectionState, election_state_free)

/* Apply one committed command. For commands that touch one election (Enter..Promote),
 * *ret_election (optional) is set to it (NULL if it does not exist), so the caller can copy the
 * resulting term; for bulk commands it is set to NULL. Bulk commands (DropOwner/DropRun/DropNode/RestoreNode/StepDown)
 * call changed() once per election they change, in name order. changed() is also called for
 * single-election commands that change state (result CHANGED).
 *
 * Details beyond docs/DESIGN.md "The rules":
 *  - Dedup comes first: (origin, origin_run, request_id) seen before -> DUPLICATE, nothing else
 *    checked. Every other command is recorded, whatever its result (INVALID included). Per
 *    (origin, origin_run) the ids in (max - 4096, max] are remembered one by one; older ones count
 *    as seen. Request id 0 is an ordinary id.
 *  - Unknown flag bits -> INVALID, for every command type.
 *  - Enter/Leave: the caller's node is c->node, or c->origin when c->node is "" or NULL.
 *  - A persistent candidacy is stored with owner "" and run 0.
 *  - Runs: per node the current daemon run is recorded (DROP_RUN(node, run) sets it; a
 *    connection-bound Enter learns it when none is recorded; DROP_NODE forgets it). Checked first,
 *    before dedup: a command whose origin has a recorded run != origin_run -> INVALID and not
 *    recorded in the dedup table, except that run's own DROP_RUN(node = origin, run = origin_run).
 *    A connection-bound Enter (new or re-bind) whose run differs from its node's -> INVALID.
 *    The last ELECTION_RUN_HISTORY runs a node superseded are kept too: a DROP_RUN(node, one of
 *    them) -> INVALID (a late one would otherwise bring an old run back).
 *  - Dedup pruning: DROP_RUN(node, R) forgets the windows of (node, run != R); DROP_NODE(node)
 *    those of the node's runs other than its recorded one (the node may be alive and retry).
 *  - STEP_DOWN(node), DRAIN/UNDRAIN(node, election or ""): see docs/DESIGN.md "The rules"; a
 *    drained node's candidacies always stand behind every other node's in its drained elections.
 *  - FORGET(election, term in `run`): deletes the election if it is empty and still at that
 *    term (CHANGED, changed() once with e->removed set, *ret_election NULL), else NOOP. The term
 *    floor becomes max(floor, its term id).
 *  - Enter with max_persistent > 0 (quota), persistent, uid != 0: if the uid already holds
 *    max_persistent persistent candidacies (listed or parked; the one re-bound, or the parked one
 *    of that id the Enter supersedes, not counted when it is the uid's persistent one) ->
 *    QUOTA_EXCEEDED, checked after the re-bind permission and before the other limits. */
ElectionResult election_state_apply(ElectionState *s, const Command *c,
                                    ElectionChangedFn changed, void *userdata,
                                    const Election **ret_election);

const Election *election_state_get(const ElectionState *s, const char *name);
/* The parked candidacies of node, in every election: a new array of const Candidacy* (borrowed). */
GPtrArray *election_state_parked(const ElectionState *s, const char *node);
unsigned election_state_parked_count(const ElectionState *s);
unsigned election_state_count(const ElectionState *s);
/* The sum of the BUMP_TERMS offsets, raised to the term id of every election FORGET deleted: a
 * new election's first term id is above it. */
uint64_t election_state_term_floor(const ElectionState *s);
/* Persistent candidacies (listed and parked, in every election) held by uid. */
unsigned election_state_persistent_count(const ElectionState *s, uint32_t uid);
/* Nobody stands in e: no candidacy, none parked (what FORGET deletes). */
bool election_empty(const Election *e);
/* The committed cluster protocol version (SET_PROTOCOL), PROTOCOL_VERSION_MIN until one applied. */
unsigned election_state_protocol(const ElectionState *s);
/* Sorted by name; the array is newly allocated, the elements are borrowed. */
GPtrArray *election_state_list(const ElectionState *s);

static inline const char *election_leader(const Election *e) {
        return (e && e->candidates->len > 0) ? ((Candidacy *) e->candidates->pdata[0])->id : "";
}
const Candidacy *election_find(const Election *e, const char *id, unsigned *ret_index);
/* NULL-terminated array of candidate ids, newly allocated (g_strfreev). */
char **election_candidate_ids(const Election *e);

/* Snapshots for the Raft engine: a full, versioned serialization of the state (including the
 * request-id dedup table and the per-node run table). Restore replaces the state; on a decode
 * error it returns -EBADMSG and leaves the state unchanged. Version 1 snapshots (no run table)
 * are still restored, with an empty run table; versions 1-3 with no drains (4 carries them). */
int election_state_serialize(const ElectionState *s, GBytes **ret);
int election_state_restore(ElectionState *s, const void *data, size_t size);

bool election_state_equal(const ElectionState *a, const ElectionState *b);

/* Drain (DRAIN/UNDRAIN): whether node's candidacies in election stay behind every other node's
 * (election NULL: only a drain of every election counts). */
bool election_state_drained(const ElectionState *s, const char *node, const char *election);
/* The node's drains, sorted, "" first for a drain of every election; NULL-terminated, g_strfreev. */
char **election_state_drained_names(const ElectionState *s, const char *node);

/* Superseded runs remembered per node (refused in DROP_RUN). */
#define ELECTION_RUN_HISTORY 8u

/* The recorded current run of node (see "Runs" above); false if none. */
bool election_state_node_run(const ElectionState *s, const char *node, uint64_t *ret_run);
/* Number of (origin, origin_run) dedup windows held (each ~600 bytes). */
unsigned election_state_dedup_count(const ElectionState *s);
