/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The manager owns configuration, the election state, the engine, submit and apply. It knows no
 * edge: the bus edge and the units module read it through manager_*() and hear of its changes as
 * ManagerObservers (docs/DESIGN.md "Layering").
 */

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "electiond-command.h"
#include "electiond-config.h"
#include "electiond-election.h"
#include "electiond-engine.h"

typedef struct Term {
        uint64_t id;
        char *leader;
        char **candidates; /* NULL-terminated */
} Term;

Term *term_new_from_election(const Election *e); /* e may be NULL: term 0, no leader */
Term *term_free(Term *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Term, term_free)

typedef struct Manager Manager;

/* result: the rules' verdict; term: the election's term right after this command applied
 * (borrowed, valid during the call); status < 0: no result, result/term are then meaningless:
 *   -ETIMEDOUT            the deadline passed before the command ever left this node: it was
 *                         never submitted to Raft, so it is definitely not applied (-> NoQuorum);
 *   MANAGER_OUTCOME_UNKNOWN  it was handed to Raft (appended here, or forwarded to the leader)
 *                         but not seen applied before the deadline (or the daemon stopped): it
 *                         may still commit (-> OutcomeUnknown);
 *   -ESHUTDOWN, ...       refused before it was submitted. */
#define MANAGER_OUTCOME_UNKNOWN (-EINPROGRESS)
typedef void (*ManagerDoneFn)(Manager *m, int status, ElectionResult result, const Term *term, void *userdata);

typedef struct ManagerOptions {
        const char *config_path;
        bool config_required;   /* given explicitly: a missing file is an error */
        const char *state_dir;
        bool user_bus;
        bool force_new_cluster; /* --force-new-cluster: become the only voter of a new cluster (cluster only) */
        bool restore;           /* --restore: the same, for a restored backup, under a new node id */
} ManagerOptions;

/* Start and shutdown order is the composition's (electiond-daemon.c):
 *   manager_new()           configuration, state, event loop, signals, bus connection;
 *   (units_new())           elections.d, before the engine exists;
 *   manager_setup_engine()  the cluster (which brings the engine once a member) or the engine;
 *   manager_start()         starts them; observers' serve() brings up the bus edge (cluster: at
 *                           once, standalone: once this run's DROP_RUN committed);
 *   (event loop)
 *   manager_begin_shutdown() answers every waiting caller while the edges can still reply;
 *   (units_free(), bus_edge_free()) while the bus is open;
 *   manager_free()          cluster, engine, bus, state. */
int manager_new(const ManagerOptions *opts, Manager **ret);
int manager_setup_engine(Manager *m, const ManagerOptions *opts);
int manager_start(Manager *m);
void manager_begin_shutdown(Manager *m);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free)
bool manager_shutting_down(Manager *m);
/* The bus name is ours (or, for a witness, need not be): READY=1 and STATUS= from now on. */
void manager_set_serving(Manager *m);

/* Takes ownership of c; fills in origin, origin_run, request_id and limits. */
int manager_submit(Manager *m, Command *c, ManagerDoneFn done, void *userdata);

typedef struct Cluster Cluster;
/* NULL when standalone. */
Cluster *manager_get_cluster(Manager *m);
sd_event *manager_get_event(Manager *m);
Engine *manager_get_engine(Manager *m); /* NULL before the engine exists */
/* The units module finished the stop jobs of a demotion. */
void manager_units_settled(Manager *m);
sd_bus *manager_get_bus(Manager *m);
const Config *manager_get_config(Manager *m);
const ElectionState *manager_get_state(Manager *m);
const char *manager_node_name(Manager *m);
uint64_t manager_run_id(Manager *m);
bool manager_quorate(Manager *m);
/* Standalone: always. Clustered: once this run's DROP_RUN has committed, i.e. the node has applied
 * everything committed before it started. Until then its copy of the state may be older than what
 * it showed before a restart: the bus edge shows no terms (term ids never go back). */
bool manager_caught_up(Manager *m);
/* The cluster protocol version (committed SET_PROTOCOL; PROTOCOL_VERSION_MAX standalone): commands
 * of a newer protocol are refused by manager_submit() with -EPROTONOSUPPORT. */
unsigned manager_protocol_version(Manager *m);
/* A candidate owned by this node leads e, and this node is quorate with an unexpired lease.
 * Evaluated at the moment of the call (never a cached flag). */
bool manager_local_leader(Manager *m, const Election *e);
/* This node's lease expiry for clients (WatchLease): CLOCK_BOOTTIME µs, 0 = no lease now,
 * UINT64_MAX = standalone (never ends). */
uint64_t manager_lease_expiry(Manager *m);

/* Someone who reacts to the manager's changes (the bus edge, the units module, the composition).
 * Every callback is optional. The struct is the subscriber's (usually embedded in its object) and
 * must stay valid until manager_remove_observer(). */
typedef struct ManagerObserver {
        /* lower first; ties in registration order */
        int order;
        void *userdata;
        /* e changed (a CHANGED command, or a snapshot moved it), in commit order; e->removed: it
         * is gone (FORGET, or absent from a snapshot) */
        void (*election_changed)(void *userdata, const Election *e);
        /* quorum, membership or lease moved (manager_cluster_changed()) */
        void (*status_changed)(void *userdata);
        /* manager_caught_up() became true (cluster) */
        void (*caught_up)(void *userdata);
        /* this node's drained elections may have changed */
        void (*drained_changed)(void *userdata);
        /* the cluster protocol version moved */
        void (*protocol_changed)(void *userdata);
        /* the lease may have moved (called often: compare with the last value) */
        void (*lease_renewed)(void *userdata);
        /* the configuration was reloaded (after config_apply_reload()) */
        void (*reloaded)(void *userdata, const Config *config);

        /* Questions; the manager takes any observer's true. */
        /* Is this bus connection (unique name) still tracked as an owner of candidacies? */
        bool (*owner_tracked)(void *userdata, const char *owner);
        /* name must never be collected while empty (configured in elections.d) */
        bool (*election_pinned)(void *userdata, const char *name);
        /* stop jobs of a demotion still running: not fully stepped down yet */
        bool (*stopping)(void *userdata);
        /* Serving starts: bring up the bus edge (and, with drive_units, the leader units); < 0
         * stops the daemon. */
        int (*serve)(void *userdata, bool drive_units);
        /* append this observer's part of STATUS= (", leading 1 of 2 configured") to s */
        void (*status_append)(void *userdata, GString *s);
} ManagerObserver;

#define MANAGER_OBSERVER_ORDER_DAEMON 0
#define MANAGER_OBSERVER_ORDER_BUS    10
#define MANAGER_OBSERVER_ORDER_UNITS  20

void manager_add_observer(Manager *m, const ManagerObserver *o);
void manager_remove_observer(Manager *m, const ManagerObserver *o);
/* An observer's part of STATUS= moved: send STATUS= again. */
void manager_status_changed(Manager *m);
