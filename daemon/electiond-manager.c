/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <glib/gi18n.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/random.h>
#include <systemd/sd-daemon.h>

#include "electiond-cluster.h"
#include "electiond-manager.h"
#include "electiond-metrics.h"
#include "electiond-submit.h"
#include "electiond-util.h"

struct Manager {
        Config config;
        char *config_path;       /* re-read on reload (SIGHUP) */
        bool config_required;
        char *state_dir;
        char *engine_dir;
        bool user_bus;

        sd_event *event;
        sd_bus *bus;
        Engine *engine;
        ElectionState *state;
        GPtrArray *observers;    /* const ManagerObserver*, sorted by order */

        uint64_t run_id;
        Submit *submit;          /* pending records, batches, forwarding (electiond-submit.c) */

        bool drop_run_submitted;
        bool drop_run_committed;
        uint64_t name_in_use_logged; /* when we last warned that the Raft leader refused our name */
        uint64_t name_in_use_first;  /* the first refusal of the current run of refusals (0: none) */
        uint64_t name_in_use_last;   /* the latest refusal */
        bool serve_requested;    /* observers were asked to serve (the bus edge is up) */
        bool serving;            /* the bus name is ours (manager_set_serving()) */
        bool shutting_down;

        /* clustered (KeyFile=) only */
        Cluster *cluster;
        GHashTable *leaders;     /* election name → "node\nid" of its leader as last applied */
        uint64_t applying_index;
        bool applying_leader_changed;
        sd_event_source *restore_event; /* checks for our parked candidacies (after applies, quorum) */
        bool restore_in_flight;

        /* planned stop (SIGTERM/SIGINT, clustered): hand our leads on before leaving */
        bool stepping_down;
        uint64_t step_down_index;        /* entry that applied our STEP_DOWN and moved a lead */
        sd_event_source *step_down_timer; /* polls for our confirmation until the deadline */
        uint64_t step_down_deadline;     /* CLOCK_MONOTONIC µs */
        bool step_down_transferring;     /* as Raft leader: handing the Raft lead on too */
        bool step_down_finished;
        /* empty elections (issue 14 §1): name → EmptySeen*, as this node saw them while it may
         * collect; the timer looks every RemoveEmptyElectionsSec / 4 */
        GHashTable *empty_seen;
        sd_event_source *collect_timer;
        sd_event_source *startup_timer; /* standalone: the start-up entry must reach the disk */
        int fault_tolerance_logged; /* as last logged, -1 = not yet */
        bool fault_tolerance_warned; /* the last log was the 0-tolerance warning */
};

/* Reload (SIGHUP): re-reads the configuration file, applies the settings that can change live
 * (config_apply_reload()), reloads elections.d (units_reload()) and the cluster keys
 * (cluster_reload_keys()); refused settings are logged and keep their running value. Sends
 * RELOADING=1 … READY=1. 1: all applied, 0: something refused, < 0: the file could not be used. */
static int manager_reload(Manager *m);
/* Quorum, membership or lease moved (cluster): re-announce Quorate/Members/LocalLeader and
 * re-evaluate leader units. Call at the moment it happens. */
static void manager_cluster_changed(Manager *m);
/* The cluster's lease may have moved: the bus edge announces it if it did (LeaseRenewed). */
static void manager_lease_renewed(Manager *m);

/* ---- observers ---- */

static gint observer_compare(gconstpointer a, gconstpointer b) {
        const ManagerObserver *x = *(const ManagerObserver *const *) a, *y = *(const ManagerObserver *const *) b;

        return x->order < y->order ? -1 : x->order > y->order;
}

void manager_add_observer(Manager *m, const ManagerObserver *o) {
        g_assert(m);
        g_assert(o);

        g_ptr_array_add(m->observers, (gpointer) o);
        /* stable: ties keep their registration order */
        g_ptr_array_sort(m->observers, observer_compare);
}

void manager_remove_observer(Manager *m, const ManagerObserver *o) {
        if (m && m->observers)
                (void) g_ptr_array_remove(m->observers, (gpointer) o);
}

/* Calls the callback `cb` (no arguments but userdata) of every observer that has it. */
#define NOTIFY(m, cb)                                                                   \
        do {                                                                            \
                for (unsigned _i = 0; _i < (m)->observers->len; _i++) {                 \
                        const ManagerObserver *_o = (m)->observers->pdata[_i];           \
                        if (_o->cb)                                                     \
                                _o->cb(_o->userdata);                                   \
                }                                                                       \
        } while (false)

static bool observers_owner_tracked(Manager *m, const char *owner) {
        for (unsigned i = 0; i < m->observers->len; i++) {
                const ManagerObserver *o = m->observers->pdata[i];
                if (o->owner_tracked && o->owner_tracked(o->userdata, owner))
                        return true;
        }
        return false;
}

static bool observers_election_pinned(Manager *m, const char *name) {
        for (unsigned i = 0; i < m->observers->len; i++) {
                const ManagerObserver *o = m->observers->pdata[i];
                if (o->election_pinned && o->election_pinned(o->userdata, name))
                        return true;
        }
        return false;
}

static bool observers_stopping(Manager *m) {
        for (unsigned i = 0; i < m->observers->len; i++) {
                const ManagerObserver *o = m->observers->pdata[i];
                if (o->stopping && o->stopping(o->userdata))
                        return true;
        }
        return false;
}

Term *term_new_from_election(const Election *e) {
        Term *t = g_new0(Term, 1);

        t->id = e ? e->term_id : 0;
        t->leader = g_strdup(election_leader(e));
        t->candidates = e ? election_candidate_ids(e) : g_new0(char *, 1);
        return t;
}

static gint string_compare_ptr(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

Term *term_free(Term *t) {
        if (!t)
                return NULL;
        g_free(t->leader);
        g_strfreev(t->candidates);
        g_free(t);
        return NULL;
}

/* timeout_usec == 0: no deadline (only for our own housekeeping commands). */
static int manager_submit_full(Manager *m, Command *c, uint64_t timeout_usec, ManagerDoneFn done, void *userdata) {
        return submit_command(m->submit, c, timeout_usec, done, userdata);
}

int manager_submit(Manager *m, Command *c, ManagerDoneFn done, void *userdata) {
        return manager_submit_full(m, c, m->config.commit_timeout_usec, done, userdata);
}

static void manager_update_status(Manager *m, bool ready);
static int on_restore_check(sd_event_source *s, void *userdata);

/* Everyone who reacts to a changed election, in commit order. */
static void manager_election_changed(Manager *m, const Election *e) {
        log_debug("Election '%s' now at term %" PRIu64 ", leader '%s', %u candidates%s.",
                  e->name, e->term_id, election_leader(e), e->candidates->len, e->removed ? ", removed" : "");
        metrics_election_changed(metrics_get(), e->name, e->term_id, e->removed);
        for (unsigned i = 0; i < m->observers->len; i++) {
                const ManagerObserver *o = m->observers->pdata[i];
                if (o->election_changed)
                        o->election_changed(o->userdata, e);
        }
}

/* Clustered: spot every change of an election's leading candidacy, for the hand-over rules. */
static void track_leader(Manager *m, const Election *e) {
        const Candidacy *lead = e->candidates->len > 0 ? e->candidates->pdata[0] : NULL;
        g_autofree char *now = lead ? g_strdup_printf("%s\n%s", lead->node, lead->id) : g_strdup("");
        const char *before = g_hash_table_lookup(m->leaders, e->name) ?: "";
        g_autofree char *prev_node = NULL;

        if (streq_ptr(before, now))
                return;
        prev_node = g_strndup(before, strcspn(before, "\n"));
        m->applying_leader_changed = true;
        cluster_lead_changed(m->cluster, e, prev_node, m->applying_index);
        g_hash_table_insert(m->leaders, g_strdup(e->name), g_steal_pointer(&now));
}

static void on_election_changed(const Election *e, void *userdata) {
        Manager *m = userdata;

        if (e->removed) {
                /* empty, so it led nothing: no hand-over; the next one of that name starts afresh */
                if (m->leaders)
                        g_hash_table_remove(m->leaders, e->name);
                log_info("Election '%s' was empty and is removed (its next term id is above %" PRIu64 ").",
                         e->name, election_state_term_floor(m->state));
                manager_election_changed(m, e);
                return;
        }
        /* before anyone reads LocalLeader for this change */
        if (m->cluster)
                track_leader(m, e);
        manager_election_changed(m, e);
}

/* A snapshot did not have name any more (a FORGET we did not apply one by one): tell everyone
 * as for an applied one. */
static void manager_election_gone(Manager *m, const char *name) {
        g_autoptr(GPtrArray) none = g_ptr_array_new();
        Election gone = { .name = (char *) name, .candidates = none, .removed = true };

        on_election_changed(&gone, m);
}

/* DRAIN/UNDRAIN of this node changed the drained table: Manager.Drained moved. */
static void manager_note_drain(Manager *m, const Command *c, ElectionResult result) {
        if ((c->type == COMMAND_DRAIN || c->type == COMMAND_UNDRAIN) && result == ELECTION_CHANGED &&
            streq_ptr(c->node, m->config.node_name))
                NOTIFY(m, drained_changed);
}

static void on_engine_apply(void *userdata, const void *data, size_t size, uint64_t index) {
        Manager *m = userdata;
        g_autoptr(GPtrArray) cmds = NULL;
        const void *batch = NULL;
        size_t batch_size = 0;
        int r;

        r = submit_entry_unframe(data, size, &batch, &batch_size);
        if (r >= 0)
                r = command_batch_decode(batch, batch_size, &cmds);
        if (r < 0) {
                /* Every node skips the same undecodable entry, so states stay equal. */
                log_error_errno(r, "Failed to decode log entry %" PRIu64 " (%zu bytes), skipping it: %m", index, size);
                return;
        }

        m->applying_index = index;
        m->applying_leader_changed = false;
        for (unsigned i = 0; i < cmds->len; i++) {
                const Command *c = cmds->pdata[i];
                const Election *e = NULL;
                ElectionResult result;

                result = election_state_apply(m->state, c, on_election_changed, m, &e);
                if (m->cluster && c->type == COMMAND_DROP_NODE && result == ELECTION_CHANGED)
                        cluster_node_dropped(m->cluster, c->node, index);
                manager_note_drain(m, c, result);
                if (c->type == COMMAND_SET_PROTOCOL && result == ELECTION_CHANGED) {
                        log_notice("Cluster protocol version is now %u (this node speaks %u to %u).",
                                   election_state_protocol(m->state), PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX);
                        NOTIFY(m, protocol_changed);
                }
                log_debug("Applied entry %" PRIu64 " request %s/%" PRIu64 ": %s election='%s' id='%s' -> %d",
                          index, c->origin ?: "", c->request_id, command_type_to_string(c->type),
                          c->election ?: "", c->id ?: "", (int) result);

                if (!streq_ptr(c->origin, m->config.node_name) || c->origin_run != m->run_id)
                        continue;
                submit_applied(m->submit, c->request_id, result, e);
        }
        if (m->cluster) {
                cluster_entry_applied(m->cluster, index, m->applying_leader_changed);
                if (election_state_parked_count(m->state) > 0)
                        (void) sd_event_source_set_enabled(m->restore_event, SD_EVENT_ONESHOT);
        }
}

static int on_engine_snapshot(void *userdata, GBytes **ret) {
        Manager *m = userdata;

        return election_state_serialize(m->state, ret);
}

/* A compact fingerprint of an election's term, to spot what a snapshot changed. */
static char *term_fingerprint(const Election *e) {
        g_auto(GStrv) ids = election_candidate_ids(e);
        g_autofree char *joined = g_strjoinv("\n", ids);

        return g_strdup_printf("%" PRIu64 "\n%s", e->term_id, joined);
}

static int on_engine_restore(void *userdata, const void *data, size_t size) {
        Manager *m = userdata;
        g_autoptr(GHashTable) before = NULL;
        g_autoptr(GPtrArray) list = NULL;
        int r;

        /* A snapshot replaces the state wholesale (catch-up in a cluster): remember the terms
         * so that watchers hear about every election it moved. */
        if (m->observers->len > 0) {
                before = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
                list = election_state_list(m->state);
                for (unsigned i = 0; i < list->len; i++) {
                        const Election *e = list->pdata[i];
                        g_hash_table_insert(before, g_strdup(e->name), term_fingerprint(e));
                }
                g_clear_pointer(&list, g_ptr_array_unref);
        }

        r = election_state_restore(m->state, data, size);
        if (r < 0)
                return log_error_errno(r, "Failed to restore a snapshot of %zu bytes: %m", size);
        NOTIFY(m, drained_changed); /* the snapshot may carry another drain table */
        log_debug("Restored a snapshot: %u elections.", election_state_count(m->state));

        if (m->cluster) {
                /* The snapshot's log index is not known here: a lead it gives us waits out the
                 * whole hand-over delay (no confirmation can reach this index). */
                g_autoptr(GPtrArray) all = election_state_list(m->state);
                m->applying_index = UINT64_MAX - 1;
                for (unsigned i = 0; i < all->len; i++)
                        track_leader(m, all->pdata[i]);
        }

        if (!before)
                return 0;
        list = election_state_list(m->state);
        for (unsigned i = 0; i < list->len; i++) {
                const Election *e = list->pdata[i];
                g_autofree char *now = term_fingerprint(e);

                if (!streq_ptr(g_hash_table_lookup(before, e->name), now))
                        manager_election_changed(m, e);
                g_hash_table_remove(before, e->name);
        }
        {
                /* what is left in before is gone */
                g_autoptr(GPtrArray) gone = g_ptr_array_new();
                GHashTableIter it;
                gpointer k;

                g_hash_table_iter_init(&it, before);
                while (g_hash_table_iter_next(&it, &k, NULL))
                        g_ptr_array_add(gone, k);
                g_ptr_array_sort(gone, string_compare_ptr);
                for (unsigned i = 0; i < gone->len; i++)
                        manager_election_gone(m, gone->pdata[i]);
        }
        return 0;
}

static void start_drop_run(Manager *m);
#define STARTUP_COMMIT_TIMEOUT_USEC (15 * USEC_PER_SEC)

/* At start: a plan for two voters tolerates no failure (issue 11 §6). */
static void warn_fault_tolerance_config(const Config *c) {
        if (c->witness && !config_is_clustered(c))
                log_warning("[Node] Witness=yes without [Cluster] KeyFile=: a standalone witness only refuses Enter.");
        else if (c->witness)
                log_info("This node is a witness: it votes and grants leases but holds no candidacies and drives no units.");
        if (config_is_clustered(c) && c->bootstrap_expect == 2)
                log_warning("[Cluster] BootstrapExpect=2: a 2-node cluster tolerates 0 failures (no majority after "
                            "either fails); add a witness ([Node] Witness=yes on a third, small machine).");
}

/* ", tolerates N failures" (cluster members only) for STATUS=; logs a warning whenever a cluster
 * of more than one voter can lose none of them (a plain 2-node cluster: add a witness). */
static char *fault_tolerance_status(Manager *m) {
        unsigned voters = 0, servers = 0;
        bool warn;
        int ft;

        if (!m->cluster)
                return NULL;
        ft = cluster_fault_tolerance(m->cluster, &voters, &servers);
        if (ft < 0)
                return NULL;
        /* not while a new cluster is still growing to BootstrapExpect= voters; but when it
         * shrank to no tolerance (dead members removed) */
        warn = ft == 0 && servers > 1 &&
               (voters >= m->config.bootstrap_expect || m->fault_tolerance_logged > 0);
        if (ft != m->fault_tolerance_logged || (warn && !m->fault_tolerance_warned)) {
                m->fault_tolerance_logged = ft;
                m->fault_tolerance_warned = warn;
                if (warn)
                        log_warning("The cluster has %u voter%s of %u members and tolerates 0 failures: losing any voter "
                                    "stops it. Add a node or a witness ([Node] Witness=yes, see electiond(8)).",
                                    voters, voters == 1 ? "" : "s", servers);
                else
                        log_info("The cluster has %u voters of %u members and tolerates %d failure%s.", voters, servers,
                                 ft, ft == 1 ? "" : "s");
        }
        return g_strdup_printf(", %u voters, tolerates %d failure%s%s", voters, ft, ft == 1 ? "" : "s",
                               ft == 0 && servers > 1 ? " (add a witness)" : "");
}

/* STATUS= for systemctl status: node, engine role, quorum, and how much state we hold. */
static void manager_update_status(Manager *m, bool ready) {
        g_autoptr(GString) units = g_string_new(NULL);
        g_autofree char *ft = NULL;

        for (unsigned i = 0; i < m->observers->len; i++) {
                const ManagerObserver *o = m->observers->pdata[i];
                if (o->status_append)
                        o->status_append(o->userdata, units);
        }
        if (!m->serving)
                return;
        ft = fault_tolerance_status(m);
        (void) sd_notifyf(false, "%sSTATUS=Node %s%s: %s, %s%s, elections: %u%s",
                          ready ? "READY=1\n" : "", m->config.node_name, m->config.witness ? " (witness)" : "",
                          engine_role_name(m->engine), manager_quorate(m) ? "quorate" : "no quorum", ft ?: "",
                          election_state_count(m->state), units->str);
}

void manager_set_serving(Manager *m) {
        m->serving = true;
        manager_update_status(m, true);
}

/* The bus edge may come up now (the composition brings it); drive_units: and the leader units. */
static int manager_begin_serving(Manager *m, bool drive_units) {
        int r;

        m->serve_requested = true;
        for (unsigned i = 0; i < m->observers->len; i++) {
                const ManagerObserver *o = m->observers->pdata[i];
                if (!o->serve)
                        continue;
                r = o->serve(o->userdata, drive_units);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void on_drop_run_done(Manager *m, int status, ElectionResult result, const Term *term, void *userdata) {

        if (status < 0) {
                log_warning_errno(status, "Failed to commit removal of the previous run's candidacies: %m");
                /* Lost leadership or the like: role_changed() submits it again. */
                m->drop_run_submitted = false;
                return;
        }

        log_debug("Previous runs' connection-bound candidacies removed.");
        m->drop_run_committed = true;
        m->startup_timer = sd_event_source_disable_unref(m->startup_timer);
        if (m->cluster) {
                /* served since start-up; terms are shown, changes are accepted (and Quorate,
                 * LocalLeader can be true) from now on, and leader units are driven once the node
                 * holds a lease */
                NOTIFY(m, caught_up);
                manager_cluster_changed(m);
                return;
        }
        if (!m->serve_requested && manager_begin_serving(m, true) < 0)
                (void) sd_event_exit(m->event, EXIT_FAILURE);
}

/* A bulk command about this node's own run (DROP_RUN, DROP_OWNER, RESTORE_NODE). */
static Command *self_command_new(Manager *m, CommandType type, const char *owner) {
        Command *c = command_new(type);

        c->election = g_strdup("");
        c->id = g_strdup("");
        c->owner = g_strdup(owner ?: "");
        c->node = g_strdup(m->config.node_name);
        c->run = m->run_id;
        return c;
}

/* ---- empty elections (issue 14 §1) ----
 * An election nobody stands in (no candidacy, none parked) still counts against MaxElections.
 * The node that decides for the cluster — the Raft leader, or the standalone node — submits
 * FORGET(name, term) once it has seen the election empty at the same term for
 * RemoveEmptyElectionsSec; the rules delete it only if it is still empty at that term, so a
 * decision overtaken by an Enter does nothing. Elections in this node's elections.d are never
 * collected. What this node saw is forgotten whenever it stops deciding: a new Raft leader waits
 * the whole time again. FORGET is protocol 2 (v0.1.0 cannot decode it): nothing is collected
 * while the cluster is below it. */

typedef struct EmptySeen {
        uint64_t term;     /* the term it was empty at */
        uint64_t since;    /* CLOCK_MONOTONIC µs: first seen empty at that term */
        bool submitted;    /* FORGET in flight */
} EmptySeen;

static bool manager_may_collect(Manager *m) {
        if (m->shutting_down || m->config.remove_empty_usec == 0 || !m->engine || !engine_is_leader(m->engine))
                return false;
        /* every member must be able to decode FORGET (docs/DESIGN.md "Versions") */
        if (command_type_protocol(COMMAND_FORGET) > manager_protocol_version(m))
                return false;
        return m->drop_run_committed && manager_quorate(m);
}

static uint64_t collect_interval(const Manager *m) {
        if (m->config.remove_empty_usec == 0)
                return 10 * USEC_PER_SEC; /* off: only looks whether a reload turned it on */
        return CLAMP(m->config.remove_empty_usec / 4, 50 * USEC_PER_MSEC, 10 * USEC_PER_SEC);
}

static void on_forget_done(Manager *m, int status, ElectionResult result, const Term *term, void *userdata) {
        g_autofree char *name = userdata;
        EmptySeen *seen;

        if (status < 0)
                log_debug_errno(status, "Removing empty election '%s' did not commit (tried again later): %m", name);
        else if (result != ELECTION_CHANGED)
                log_debug("Election '%s' was not removed: no longer empty at that term.", name);
        seen = m->empty_seen ? g_hash_table_lookup(m->empty_seen, name) : NULL;
        if (seen)
                seen->submitted = false;
}

static int collect_submit(Manager *m, const char *name, uint64_t term) {
        Command *c = self_command_new(m, COMMAND_FORGET, NULL);
        char *userdata = g_strdup(name);
        int r;

        g_free(c->election);
        c->election = g_strdup(name);
        c->run = term;
        r = manager_submit_full(m, c, m->config.commit_timeout_usec, on_forget_done, userdata);
        if (r < 0) {
                log_debug_errno(r, "Failed to submit the removal of empty election '%s': %m", name);
                g_free(userdata);
        }
        return r;
}

static void collect_empty(Manager *m) {
        g_autoptr(GHashTable) seen = NULL;
        g_autoptr(GPtrArray) list = NULL, due = NULL;
        uint64_t now = now_monotonic_usec();

        if (!manager_may_collect(m)) {
                g_hash_table_remove_all(m->empty_seen);
                return;
        }

        /* rebuilt each round: what is not empty (at the same term) any more drops out */
        seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        due = g_ptr_array_new();
        list = election_state_list(m->state);
        for (unsigned i = 0; i < list->len; i++) {
                const Election *e = list->pdata[i];
                EmptySeen *old, *n;

                if (!election_empty(e) || observers_election_pinned(m, e->name))
                        continue;
                old = g_hash_table_lookup(m->empty_seen, e->name);
                n = g_new0(EmptySeen, 1);
                n->term = e->term_id;
                n->since = now;
                if (old && old->term == e->term_id) {
                        n->since = old->since;
                        n->submitted = old->submitted;
                }
                if (!n->submitted && now - n->since >= m->config.remove_empty_usec) {
                        n->submitted = true;
                        g_ptr_array_add(due, (gpointer) e); /* submitting applies nothing yet */
                }
                g_hash_table_insert(seen, g_strdup(e->name), n);
        }
        g_hash_table_unref(m->empty_seen);
        m->empty_seen = g_steal_pointer(&seen);

        for (unsigned i = 0; i < due->len; i++) {
                const Election *e = due->pdata[i];

                if (collect_submit(m, e->name, e->term_id) < 0) {
                        EmptySeen *n = g_hash_table_lookup(m->empty_seen, e->name);
                        n->submitted = false; /* the next round tries again */
                }
        }
}

static int on_collect_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        collect_empty(m);
        (void) sd_event_source_set_time_relative(s, collect_interval(m));
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static void on_bump_terms_done(Manager *m, int status, ElectionResult result, const Term *term, void *userdata) {
        g_autofree char *marker = g_build_filename(m->state_dir, CLUSTER_FORCE_BUMP_MARKER, NULL);

        if (status < 0) {
                /* the marker stays: the next start bumps again (ids only grow, so that is harmless) */
                log_warning_errno(status, "Failed to commit the term id bump of the forced cluster: %m");
                return;
        }
        log_notice("Term ids of every election moved up by %" PRIu64 " after forcing a new cluster.",
                   (uint64_t) CLUSTER_FORCE_TERM_OFFSET);
        if (unlink(marker) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Failed to remove %s: %m", marker);
}

/* After --force-new-cluster/--restore (the marker survives a crash until the bump is applied):
 * BUMP_TERMS goes in the same batch as DROP_RUN, right after it, so before anything is served. */
static void start_bump_terms(Manager *m) {
        g_autofree char *marker = NULL;
        Command *c;
        int r;

        if (!m->cluster)
                return;
        marker = g_build_filename(m->state_dir, CLUSTER_FORCE_BUMP_MARKER, NULL);
        if (!g_file_test(marker, G_FILE_TEST_EXISTS))
                return;
        c = self_command_new(m, COMMAND_BUMP_TERMS, NULL);
        c->run = CLUSTER_FORCE_TERM_OFFSET;
        r = manager_submit_full(m, c, 0, on_bump_terms_done, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to submit the term id bump of the forced cluster: %m");
                (void) sd_event_exit(m->event, EXIT_FAILURE);
        }
}

/* Standalone, nothing but our own disk stands between start-up and the first commit: if that
 * entry has not completed by now, the state directory does not take writes (libraft may never
 * report a failed write of it), so stop with a reason instead of never serving. */
static int on_startup_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        if (m->drop_run_committed)
                return 0;
        log_error("The start-up entry was not written to the Raft log in %s within %u s (a failing or "
                  "read-only disk?): stopping.", m->state_dir ?: "the state directory",
                  (unsigned) (STARTUP_COMMIT_TIMEOUT_USEC / USEC_PER_SEC));
        return sd_event_exit(m->event, EXIT_FAILURE);
}

/* Candidacies bound to connections of an earlier run of this daemon are gone with it. */
static void start_drop_run(Manager *m) {
        Command *c;
        int r;

        if (m->drop_run_submitted || m->shutting_down)
                return;

        c = self_command_new(m, COMMAND_DROP_RUN, NULL);

        /* No deadline: nothing is served before it commits, and a retry would only pile up copies. */
        r = manager_submit_full(m, c, 0, on_drop_run_done, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to submit removal of the previous run's candidacies: %m");
                (void) sd_event_exit(m->event, EXIT_FAILURE);
                return;
        }
        m->drop_run_submitted = true;
        start_bump_terms(m);
}

static void on_engine_role_changed(void *userdata) {
        Manager *m = userdata;

        log_debug("Engine role: %s%s", engine_role_name(m->engine), engine_is_leader(m->engine) ? " (ready)" : "");
        manager_update_status(m, false);
        if (m->shutting_down)
                return;
        if (m->cluster && m->engine) {
                /* a follower forwards it; the leader appends it */
                start_drop_run(m);
                submit_role_changed(m->submit);
                return;
        }
        if (!engine_is_leader(m->engine))
                return;

        start_drop_run(m);
        submit_role_changed(m->submit);
}

static void on_cluster_engine_started(void *userdata, Engine *engine) {
        Manager *m = userdata;

        m->engine = engine;
        submit_set_engine(m->submit, engine);
        on_engine_role_changed(m);
}

static void on_cluster_status_changed(void *userdata) {
        manager_cluster_changed(userdata);
}

static void on_cluster_lease_renewed(void *userdata) {
        manager_lease_renewed(userdata);
}

static bool on_cluster_units_stopping(void *userdata) {
        return observers_stopping(userdata);
}

/* sender_id 0: our own batch, appended now that we lead. */
static bool on_remote_batch(void *userdata, uint64_t sender_id, const void *batch, size_t size) {
        Manager *m = userdata;

        return submit_remote_batch(m->submit, sender_id, batch, size);
}

/* Refusals this long in a row (resends come every 100 ms) before a newcomer gives up: the
 * leader's gossip may still hold the name's previous holder that just stopped (a node restarted
 * at once after a copy of another one ran under its name) until it declares it dead, which can
 * take a few seconds when the copy was of the leader itself (its peers drop its packets as the
 * older twin's until it takes a new epoch, 3 s after the copy went silent). */
#define NAME_IN_USE_GRACE_USEC (6 * USEC_PER_SEC)
#define NAME_IN_USE_GAP_USEC (1 * USEC_PER_SEC)

/* The Raft leader refuses our commands: gossip knows our name by another node id. Before our
 * DROP_RUN committed we are the newcomer (a second machine with this name, or a copy whose
 * peers cannot hear us apart): refuse to run, as the direct gossip check does, once the
 * refusals have lasted NAME_IN_USE_GRACE_USEC. Once serving, the leader's view is stale (a
 * restart it has not heard yet): only warn. */
static void on_name_in_use(void *userdata, const char *leader_name) {
        Manager *m = userdata;
        uint64_t now = now_boottime_usec();

        if (m->name_in_use_last == 0 || now - m->name_in_use_last > NAME_IN_USE_GAP_USEC)
                m->name_in_use_first = now;
        m->name_in_use_last = now;
        if (!m->drop_run_committed && now - m->name_in_use_first < NAME_IN_USE_GRACE_USEC) {
                if (m->name_in_use_first == now)
                        log_notice("The Raft leader (%s) refuses this node's commands under the name '%s': "
                                   "waiting up to %.0f s for its view of the name to change.", leader_name,
                                   m->config.node_name, (double) NAME_IN_USE_GRACE_USEC / USEC_PER_SEC);
                return;
        }
        if (!m->drop_run_committed) {
                log_error("Duplicate identity: the Raft leader (%s) refuses this node's commands, its peers know the "
                          "name '%s' as another node's. Refusing to run: give each machine its own [Node] Name= "
                          "(or host name), and each its own state directory.", leader_name, m->config.node_name);
                (void) sd_event_exit(m->event, EXIT_FAILURE);
                return;
        }
        if (m->name_in_use_logged != 0 && now - m->name_in_use_logged < 10 * USEC_PER_SEC)
                return;
        m->name_in_use_logged = now;
        log_warning("The Raft leader (%s) refused this node's commands under the name '%s' (its view of the "
                    "name is stale or another process uses it); they are resent.", leader_name, m->config.node_name);
}

void manager_units_settled(Manager *m) {
        if (m->cluster)
                cluster_units_settled(m->cluster);
}

static void on_drop_node_done(Manager *m, int status, ElectionResult result, const Term *term, void *userdata) {
        if (status < 0)
                log_debug_errno(status, "DROP_NODE not committed (will be retried): %m");
}

static void submit_drop_node(void *userdata, const char *node) {
        Manager *m = userdata;
        Command *c = command_new(COMMAND_DROP_NODE);
        int r;

        c->election = g_strdup("");
        c->id = g_strdup("");
        c->owner = g_strdup("");
        c->node = g_strdup(node);
        r = manager_submit(m, c, on_drop_node_done, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to submit the removal of node %s: %m", node);
}

static void on_set_protocol_done(Manager *m, int status, ElectionResult result, const Term *term, void *userdata) {
        if (status < 0)
                log_debug_errno(status, "SET_PROTOCOL not committed (will be retried): %m");
}

/* The cluster saw every member advertise `version` (we are the Raft leader). */
static void submit_set_protocol(void *userdata, unsigned version) {
        Manager *m = userdata;
        Command *c;
        int r;

        if (!manager_caught_up(m))
                return; /* the cluster asks again */
        c = self_command_new(m, COMMAND_SET_PROTOCOL, NULL);
        c->run = version;
        r = manager_submit(m, c, on_set_protocol_done, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to submit protocol version %u: %m", version);
}

unsigned manager_protocol_version(Manager *m) {
        /* standalone, this node is every member */
        return m->cluster ? election_state_protocol(m->state) : PROTOCOL_VERSION_MAX;
}

/* ---- reload (SIGHUP, systemctl reload) ---- */

static int manager_reload(Manager *m) {
        g_autofree char *error = NULL;
        Config loaded;
        unsigned refused;
        int r;

        g_assert(m);

        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=Reloading %s",
                          now_monotonic_usec(), m->config_path);
        log_info("Reloading the configuration from %s.", m->config_path);

        config_init_defaults(&loaded);
        r = config_load(&loaded, m->config_path, !m->config_required, &error);
        if (r < 0) {
                log_error(_("Reload refused: %s. Keeping the running configuration."),
                          error ?: "cannot load the configuration");
                goto done;
        }

        /* In place: only what may change live changes; the cluster keeps &m->config. */
        refused = config_apply_reload(&m->config, &loaded, m->config_path);

        for (unsigned i = 0; i < m->observers->len; i++) {
                const ManagerObserver *o = m->observers->pdata[i];
                if (o->reloaded)
                        o->reloaded(o->userdata, &m->config);
        }
        if (m->cluster)
                (void) cluster_reload_keys(m->cluster);

        log_info("Reload done%s.", refused > 0 ? ", some settings refused (see above)" : "");
        r = refused > 0 ? 0 : 1;
done:
        config_done(&loaded);
        /* Back to READY=1 whatever happened: the daemon runs on with what it has. */
        manager_update_status(m, true); /* nothing before we serve: start-up sends READY=1 then */
        return r;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) manager_reload(userdata);
        return 0;
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata);

int manager_new(const ManagerOptions *opts, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        g_autofree char *error = NULL;
        sigset_t mask;
        int r;

        g_assert(opts);
        g_assert(ret);

        m = g_new0(Manager, 1);
        config_init_defaults(&m->config);
        m->leaders = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        m->observers = g_ptr_array_new();
        m->user_bus = opts->user_bus;
        m->state_dir = g_strdup(opts->state_dir ?: ELECTIOND_DEFAULT_STATE_DIR);
        m->config_path = g_strdup(opts->config_path ?: ELECTIOND_DEFAULT_CONFIG);
        m->config_required = opts->config_required;
        m->engine_dir = g_build_filename(m->state_dir, "raft", NULL);

        r = config_load(&m->config, opts->config_path ?: ELECTIOND_DEFAULT_CONFIG, !opts->config_required, &error);
        if (r < 0) {
                log_error("%s", error ?: "Failed to load the configuration.");
                return r;
        }
        if (!election_string_valid(m->config.node_name)) {
                log_error(_("The host name is not a valid node name; set [Node] Name= in %s."),
                          opts->config_path ?: ELECTIOND_DEFAULT_CONFIG);
                return -EINVAL;
        }
        m->fault_tolerance_logged = -1;
        warn_fault_tolerance_config(&m->config);

        /* A fresh run id per start: connection-bound candidacies of earlier runs are recognisable. */
        do {
                if (getrandom(&m->run_id, sizeof m->run_id, 0) != sizeof m->run_id)
                        return log_error_errno(errno, "Failed to get a random run id: %m");
        } while (m->run_id == 0);

        m->state = election_state_new();

        if (g_mkdir_with_parents(m->state_dir, 0755) < 0)
                return log_error_errno(errno, "Failed to create state directory %s: %m", m->state_dir);

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate event loop: %m");

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");
        /* A planned stop hands this node's leads on first (cluster), then exits with status 0. */
        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_stop_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGTERM: %m");
        r = sd_event_add_signal(m->event, NULL, SIGINT, on_stop_signal, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGINT: %m");
        r = sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGHUP: %m");
        /* Writes to a peer that went away must fail with EPIPE, not kill us. */
        (void) signal(SIGPIPE, SIG_IGN);

        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog, ignoring: %m");

        r = submit_new(m, m->event, &m->config, m->run_id, &m->submit);
        if (r < 0)
                return r;
        r = sd_event_add_defer(m->event, &m->restore_event, on_restore_check, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the restore check: %m");
        (void) sd_event_source_set_enabled(m->restore_event, SD_EVENT_OFF);
        m->empty_seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        r = sd_event_add_time_relative(m->event, &m->collect_timer, CLOCK_MONOTONIC, collect_interval(m),
                                       10 * USEC_PER_MSEC, on_collect_timer, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the timer for empty elections: %m");
        (void) sd_event_source_set_description(m->collect_timer, "collect-empty");

        r = m->user_bus ? sd_bus_open_user(&m->bus) : sd_bus_open_system(&m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the %s bus: %m", m->user_bus ? "session" : "system");
        r = sd_bus_set_exit_on_disconnect(m->bus, true);
        if (r < 0)
                return log_error_errno(r, "Failed to set exit-on-disconnect: %m");
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");

        *ret = g_steal_pointer(&m);
        return 0;
}

int manager_setup_engine(Manager *m, const ManagerOptions *opts) {
        int r;

        g_assert(m);
        g_assert(opts);

        EngineConfig ec = {
                .dir = m->engine_dir,
                .server_id = 1,
        };
        static const EngineCallbacks callbacks = {
                .apply = on_engine_apply,
                .snapshot = on_engine_snapshot,
                .restore = on_engine_restore,
                .role_changed = on_engine_role_changed,
        };
        if (config_is_clustered(&m->config)) {
                static const ClusterHooks hooks = {
                        .engine_started = on_cluster_engine_started,
                        .status_changed = on_cluster_status_changed,
                        .remote_batch = on_remote_batch,
                        .name_in_use = on_name_in_use,
                        .units_stopping = on_cluster_units_stopping,
                        .lease_renewed = on_cluster_lease_renewed,
                };
                r = cluster_new(m->event, &m->config, m->state_dir, m->config.node_name, &callbacks, m, &hooks, m,
                                &m->cluster);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up cluster '%s': %m", m->config.cluster_name);
                cluster_set_state(m->cluster, m->state, submit_drop_node);
                cluster_set_protocol_hook(m->cluster, submit_set_protocol);
                if (opts->force_new_cluster || opts->restore) {
                        r = cluster_set_force_new(m->cluster, opts->restore);
                        if (r < 0)
                                return r;
                }
                r = submit_set_cluster(m->submit, m->cluster);
                if (r < 0)
                        return r;
        } else {
                if (opts->force_new_cluster || opts->restore)
                        return log_error_errno(EINVAL, "--force-new-cluster and --restore need a cluster ([Cluster] KeyFile=).");
                r = engine_new(m->event, &ec, &callbacks, m, &m->engine);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up the replication engine in %s: %m", m->engine_dir);
                submit_set_engine(m->submit, m->engine);
        }

        log_info("electiond %s starting: node '%s', state directory %s, %s bus.", ELECTIOND_VERSION,
                 m->config.node_name, m->state_dir, m->user_bus ? "session" : "system");
        return 0;
}

int manager_start(Manager *m) {
        int r;

        g_assert(m);

        if (m->cluster) {
                /* the engine comes once we bootstrap or join (on_cluster_engine_started) */
                r = cluster_start(m->cluster);
                if (r < 0)
                        return r;
                /* Serve at once, quorate or not (READY=1 once the name is ours): a node that boots
                 * before its peers must not fail its start job. Until this run's DROP_RUN has
                 * committed and while it holds no lease, Quorate and LocalLeader are false and
                 * changes fail with NoQuorum (manager_quorate()). Leader units wait for a lease
                 * (manager_cluster_changed()). */
                r = manager_begin_serving(m, false);
                if (r < 0)
                        return r;
        } else {
                r = engine_start(m->engine);
                if (r < 0)
                        return log_error_errno(r, "Failed to start the replication engine: %m");
                r = sd_event_add_time_relative(m->event, &m->startup_timer, CLOCK_MONOTONIC,
                                               STARTUP_COMMIT_TIMEOUT_USEC, 0, on_startup_timeout, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to add the start-up timer: %m");
                on_engine_role_changed(m);
        }
        return 0;
}

void manager_begin_shutdown(Manager *m) {
        if (!m)
                return;

        m->shutting_down = true;

        /* Answer every caller still waiting, while the bus edge can still reply. */
        submit_begin_shutdown(m->submit);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        /* the composition freed the edges (units, bus edge) after manager_begin_shutdown() */
        manager_begin_shutdown(m);
        m->restore_event = sd_event_source_disable_unref(m->restore_event);
        m->collect_timer = sd_event_source_disable_unref(m->collect_timer);
        m->startup_timer = sd_event_source_disable_unref(m->startup_timer);
        g_clear_pointer(&m->empty_seen, g_hash_table_unref);
        m->step_down_timer = sd_event_source_disable_unref(m->step_down_timer);

        /* The cluster stops gossip and its timers first; the engine it started is ours to free. */
        m->cluster = cluster_free(m->cluster);
        if (m->submit)
                (void) submit_set_cluster(m->submit, NULL);
        if (m->leaders)
                g_hash_table_destroy(m->leaders);

        /* The engine may still report batches (as failed) while closing. */
        m->engine = engine_free(m->engine);
        /* then the forwarded and failed batches and what is left of the records */
        m->submit = submit_free(m->submit);

        if (m->observers)
                g_assert(m->observers->len == 0);
        g_clear_pointer(&m->observers, g_ptr_array_unref);
        m->bus = sd_bus_flush_close_unref(m->bus);
        m->state = election_state_free(m->state);
        m->event = sd_event_unref(m->event);

        config_done(&m->config);
        g_free(m->config_path);
        g_free(m->state_dir);
        g_free(m->engine_dir);
        g_free(m);
        return NULL;
}

sd_event *manager_get_event(Manager *m) {
        return m->event;
}

sd_bus *manager_get_bus(Manager *m) {
        return m->bus;
}

const Config *manager_get_config(Manager *m) {
        return &m->config;
}

const ElectionState *manager_get_state(Manager *m) {
        return m->state;
}

const char *manager_node_name(Manager *m) {
        return m->config.node_name;
}

uint64_t manager_run_id(Manager *m) {
        return m->run_id;
}

bool manager_shutting_down(Manager *m) {
        return m->shutting_down;
}

bool manager_caught_up(Manager *m) {
        return !m->cluster || m->drop_run_committed;
}

bool manager_quorate(Manager *m) {
        /* In a cluster: holds a lease, and this run's DROP_RUN has committed (before it, every
         * change of this run would be refused as coming from an unknown run). */
        if (m->cluster)
                return m->drop_run_committed && cluster_quorate(m->cluster, now_boottime_usec());
        /* Standalone: this node is the whole cluster. */
        return true;
}

static void on_restore_done(Manager *m, int status, ElectionResult result, const Term *term, void *userdata) {
        m->restore_in_flight = false;
        if (status < 0)
                log_warning_errno(status, "Failed to restore this node's parked candidacies (will retry): %m");
        else if (result == ELECTION_CHANGED)
                log_notice("This node's candidacies are back (at the back of their elections).");
        (void) sd_event_source_set_enabled(m->restore_event, SD_EVENT_ONESHOT);
}

/* DROP_NODE parked our candidacies while we were cut off or paused. Once we hold a lease again,
 * bring back the persistent ones and those of connections that are still here: first drop the
 * owners that left meanwhile (their DROP_OWNER may have failed without quorum), then restore. */
static int on_restore_check(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        g_autoptr(GPtrArray) parked = NULL;
        g_autoptr(GHashTable) gone = NULL;
        int r;

        if (!m->cluster || m->shutting_down || m->restore_in_flight || !m->drop_run_committed || !manager_quorate(m))
                return 0;
        parked = election_state_parked(m->state, m->config.node_name);
        if (parked->len == 0)
                return 0;

        gone = g_hash_table_new(g_str_hash, g_str_equal);
        for (unsigned i = 0; i < parked->len; i++) {
                const Candidacy *cd = parked->pdata[i];
                if (cd->persistent || cd->run != m->run_id || observers_owner_tracked(m, cd->owner) ||
                    g_hash_table_contains(gone, cd->owner))
                        continue;
                g_hash_table_add(gone, cd->owner);
                r = manager_submit(m, self_command_new(m, COMMAND_DROP_OWNER, cd->owner), NULL, NULL);
                if (r < 0)
                        return log_warning_errno(r, "Failed to submit removal of departed %s: %m", cd->owner);
        }

        log_info("Restoring %u parked candidacies of this node.", parked->len);
        r = manager_submit(m, self_command_new(m, COMMAND_RESTORE_NODE, NULL), on_restore_done, NULL);
        if (r < 0)
                return log_warning_errno(r, "Failed to submit the restore of parked candidacies: %m");
        m->restore_in_flight = true;
        return 0;
}

bool manager_local_leader(Manager *m, const Election *e) {
        const Candidacy *leader;

        if (!e || e->candidates->len == 0)
                return false;
        if (m->cluster)
                return m->drop_run_committed && cluster_local_leader(m->cluster, e, now_boottime_usec());
        leader = e->candidates->pdata[0];
        return streq_ptr(leader->node, m->config.node_name) && manager_quorate(m);
}

static void manager_cluster_changed(Manager *m) {
        g_assert(m);

        /* (the composition observes first: it starts the leader units once this node holds a lease) */
        NOTIFY(m, status_changed);
        if (m->restore_event && election_state_parked_count(m->state) > 0)
                (void) sd_event_source_set_enabled(m->restore_event, SD_EVENT_ONESHOT);
        manager_update_status(m, false);
}

Cluster *manager_get_cluster(Manager *m) {
        return m->cluster;
}

uint64_t manager_lease_expiry(Manager *m) {
        uint64_t expiry;

        if (!m->cluster)
                return UINT64_MAX; /* standalone: the lease never ends */
        if (!m->drop_run_committed)
                return 0; /* not caught up since start: not quorate (manager_quorate()) */
        expiry = cluster_lease_expiry(m->cluster);
        return expiry > now_boottime_usec() ? expiry : 0;
}

static void manager_lease_renewed(Manager *m) {
        NOTIFY(m, lease_renewed);
}

void manager_status_changed(Manager *m) {
        manager_update_status(m, false);
}

/* ---- planned stop: hand over, then leave ----
 * On SIGTERM/SIGINT a quorate cluster node commits STEP_DOWN(self): every lead it holds moves to
 * the next candidate (term + 1) and its candidacies wait at the back for its return. The
 * successor acts once every other member confirmed the entry with APPLIED ("applied, and my
 * leader units stopped"), so the loop runs until our own confirmation of that entry is out, at
 * most STEP_DOWN_TIMEOUT_USEC; then the normal shutdown follows. Without quorum, standalone, or
 * a second signal: exit at once, as before. */

#define STEP_DOWN_TIMEOUT_USEC (1 * USEC_PER_SEC)
#define STEP_DOWN_POLL_USEC (2 * USEC_PER_MSEC)

static void step_down_finish(Manager *m, const char *why) {
        if (m->shutting_down || m->step_down_finished)
                return; /* (a transfer reported while the engine closes) */
        m->step_down_finished = true;
        if (m->cluster)
                cluster_repeat_confirmation(m->cluster);
        log_info("Planned stop: %s; shutting down.", why);
        (void) sd_event_exit(m->event, 0);
}

static void on_step_down_transfer_done(int status, void *userdata) {
        Manager *m = userdata;

        if (status < 0)
                log_debug_errno(status, "Planned stop: Raft leadership transfer failed: %m");
        step_down_finish(m, "leads handed over");
}

/* Polls until the deadline: for our confirmation of the STEP_DOWN entry, then for every live
 * member's (the Raft leader's commit reaches followers with its next append, which must go out
 * before we do), then, as Raft leader, for the leadership transfer (so that the others commit
 * on without waiting for an election timeout). */
static int on_step_down_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        if (m->step_down_transferring) {
                if (usec >= m->step_down_deadline)
                        step_down_finish(m, "leads handed over, Raft leadership transfer not done in time");
                return 0;
        }
        if (m->step_down_index > 0 && cluster_confirmed_index(m->cluster) >= m->step_down_index &&
            cluster_peers_applied(m->cluster, m->step_down_index)) {
                if (!engine_is_leader(m->engine)) {
                        step_down_finish(m, "leads handed over");
                        return 0;
                }
                r = engine_transfer_leadership(m->engine, 0, on_step_down_transfer_done, m);
                if (r < 0) {
                        log_debug_errno(r, "Planned stop: Raft leadership transfer refused: %m");
                        step_down_finish(m, "leads handed over");
                        return 0;
                }
                m->step_down_transferring = true;
                (void) sd_event_source_set_time(s, m->step_down_deadline);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        if (usec >= m->step_down_deadline) {
                step_down_finish(m, "hand-over not confirmed in time");
                return 0;
        }
        /* not applied yet, or our leader units are still stopping (the cluster confirms after) */
        (void) sd_event_source_set_time(s, MIN(usec + STEP_DOWN_POLL_USEC, m->step_down_deadline));
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static void on_step_down_done(Manager *m, int status, ElectionResult result, const Term *term, void *userdata) {
        if (status < 0) {
                log_warning_errno(status, "Planned stop: STEP_DOWN not committed (%m); shutting down without hand-over.");
                (void) sd_event_exit(m->event, 0);
                return;
        }
        /* Called while its entry applies: the cluster confirms the entry right after (or once our
         * units stopped) only if a lead moved in it. */
        if (result != ELECTION_CHANGED || !m->applying_leader_changed) {
                step_down_finish(m, "no lead to hand over");
                return;
        }
        m->step_down_index = m->applying_index;
        log_debug("Planned stop: STEP_DOWN applied at index %" PRIu64 ", waiting for our confirmation.", m->step_down_index);
        (void) sd_event_source_set_time(m->step_down_timer, 0); /* check at the next iteration */
        (void) sd_event_source_set_enabled(m->step_down_timer, SD_EVENT_ONESHOT);
}

/* Whether one of our candidacies stands ahead of another node's anywhere. */
static bool step_down_needed(Manager *m) {
        g_autoptr(GPtrArray) list = election_state_list(m->state);

        for (unsigned i = 0; i < list->len; i++) {
                const Election *e = list->pdata[i];
                bool ours_seen = false;

                for (unsigned j = 0; j < e->candidates->len; j++) {
                        bool ours = streq_ptr(((const Candidacy *) e->candidates->pdata[j])->node, m->config.node_name);
                        if (ours)
                                ours_seen = true;
                        else if (ours_seen)
                                return true;
                }
        }
        return false;
}

/* No lead to hand over, but we lead Raft: transfer that first (bounded like a hand-over), or
 * the others wait out an election timeout, and their granters refuse every lease meanwhile (our
 * last entries are stored, not known committed: rule 3), which ends every node's lease. */
/* The bound of a planned stop's wait: STEP_DOWN_TIMEOUT_USEC from now, polled by on_step_down_timer. */
static int step_down_arm_deadline(Manager *m) {
        uint64_t now;
        int r;

        r = sd_event_now(m->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return log_warning_errno(r, "Failed to read the clock: %m");
        m->step_down_deadline = now + STEP_DOWN_TIMEOUT_USEC;
        r = sd_event_add_time(m->event, &m->step_down_timer, CLOCK_MONOTONIC, m->step_down_deadline, 0,
                              on_step_down_timer, m);
        if (r < 0)
                return log_warning_errno(r, "Failed to add the hand-over deadline: %m");
        return 0;
}

static int raft_hand_over_begin(Manager *m) {
        int r;

        if (!m->engine || !engine_is_leader(m->engine))
                return 0;
        r = step_down_arm_deadline(m);
        if (r < 0)
                return r;
        r = engine_transfer_leadership(m->engine, 0, on_step_down_transfer_done, m);
        if (r < 0) {
                log_debug_errno(r, "Planned stop: Raft leadership transfer refused: %m");
                m->step_down_timer = sd_event_source_disable_unref(m->step_down_timer);
                return 0;
        }
        m->step_down_transferring = true;
        m->stepping_down = true;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Handing the Raft leadership over before stopping");
        log_info("Planned stop: handing the Raft leadership over first.");
        return 1;
}

/* Returns > 0 if a hand-over started (the loop goes on), 0 if there is nothing to hand over. */
static int step_down_begin(Manager *m) {
        int r;

        if (!m->cluster || m->shutting_down || !m->drop_run_committed || !manager_quorate(m))
                return 0;
        if (!step_down_needed(m))
                return raft_hand_over_begin(m);

        r = step_down_arm_deadline(m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_priority(m->step_down_timer, SD_EVENT_PRIORITY_IDLE);

        r = manager_submit_full(m, self_command_new(m, COMMAND_STEP_DOWN, NULL), STEP_DOWN_TIMEOUT_USEC,
                                on_step_down_done, NULL);
        if (r < 0)
                return log_warning_errno(r, "Failed to submit STEP_DOWN: %m");

        m->stepping_down = true;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Handing over leads before stopping");
        log_info("Planned stop: handing this node's leads over first.");
        return 1;
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        /* a second signal while handing over: leave now */
        if (m->stepping_down || step_down_begin(m) <= 0)
                (void) sd_event_exit(m->event, 0);
        return 0;
}

/* For GetMetrics(): the Raft role. NULL before the engine exists. */
Engine *manager_get_engine(Manager *m) {
        return m ? m->engine : NULL;
}
