/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "electiond-elections-d.h"
#include "electiond-units.h"

#define SD_SERVICE   "org.freedesktop.systemd1"
#define SD_PATH      "/org/freedesktop/systemd1"
#define SD_MANAGER   "org.freedesktop.systemd1.Manager"
#define SD_UNIT      "org.freedesktop.systemd1.Unit"

#define RETRY_MIN_USEC   (500 * USEC_PER_MSEC)
#define RETRY_MAX_USEC   (30 * USEC_PER_SEC)
/* A safety net under the manager's notifications: re-check LocalLeader this often. While
 * something is led, demotion must not wait for an event (a lease can run out silently); while
 * nothing is, a missed event only delays a start. */
#define RECHECK_LEADING_USEC (100 * USEC_PER_MSEC)
#define RECHECK_IDLE_USEC    (1 * USEC_PER_SEC)

typedef struct UnitsElection UnitsElection;

struct Units {
        Manager *manager;
        sd_bus *bus;
        sd_event *event;
        char *leader_dir;
        GPtrArray *elections;       /* UnitsElection* */
        GHashTable *jobs;           /* job object path -> UnitsJob* */
        GHashTable *calls;          /* UnitsCall* (owns its slot) */
        GPtrArray *tickets;         /* UnitsTicket* of manager_submit() calls in flight */
        sd_bus_slot *job_removed_slot;
        sd_event_source *subscribe_retry;
        unsigned subscribe_attempts;
        sd_event_source *recheck;
        sd_event_source *exit_source;
        bool started;
        ManagerObserver observer;   /* registered with the manager for its whole life */
        unsigned leading_shown;     /* units_n_leading() as last put in STATUS= */
};

/* What the module does on the manager's notifications and questions (ManagerObserver, see
 * units_new()). */
static void units_election_changed(Units *u, const Election *e);
static void units_quorum_changed(Units *u);
/* Reload: re-reads elections_dir. New files enter, removed ones leave (and stop their units),
 * a changed Units= applies at once; elections whose file did not change are not touched (no
 * Leave/Enter, so no term change). A changed Id= or HealthUnit= of a still configured election is
 * refused with a logged reason. A directory that cannot be read keeps everything as it is. */
static int units_reload(Units *u, const char *elections_dir);
/* For STATUS= lines: configured elections, and how many this node currently leads. */
static unsigned units_n_elections(const Units *u);
static unsigned units_n_leading(const Units *u);
/* name is configured in elections.d (and not removed by a reload): never collected while so. */
static bool units_configured(const Units *u, const char *name);
/* Stop jobs of a demotion still running: this node has not fully stepped down yet. */
static bool units_stopping(const Units *u);

struct UnitsElection {
        Units *units;
        ElectionUnitConfig *config;
        char *target;               /* electiond-leader@NAME.target */
        char *flag_path;

        int acted;                  /* -1: not yet, 0: stopped, 1: started (what we last asked for) */
        uint64_t flag_term;         /* term id written to the flag file */
        unsigned generation;        /* bumped per act; replies/jobs of older ones are ignored */
        unsigned pending;           /* calls + jobs of this generation still outstanding */
        bool failed;                /* something of this generation failed: retry when settled */
        unsigned attempts;
        sd_event_source *retry;

        /* Health gating */
        char *health_path;
        char *health_state;
        sd_bus_slot *health_match;
        unsigned health_attempts;
        sd_event_source *health_retry;
        bool health_known;
        bool want_candidate;
        int candidate;              /* -1 unknown, 0 left, 1 entered (last committed by us) */
        bool candidate_busy;
        unsigned candidate_attempts;
        sd_event_source *candidate_retry;

        /* Its file left elections.d on a reload: it leaves, its units stop; it stays in the list
         * (replies and jobs may still point at it) and comes back if the file does. */
        bool removed;
};

typedef struct UnitsJob {
        UnitsElection *election;
        unsigned generation;
        char *unit;
        bool start;
} UnitsJob;

typedef enum CallKind {
        CALL_JOB,
        CALL_SUBSCRIBE,
        CALL_LOAD_HEALTH,
        CALL_GET_HEALTH,
} CallKind;

typedef struct UnitsCall {
        Units *units;
        CallKind kind;
        UnitsElection *election;
        unsigned generation;
        char *unit;
        bool start;
        sd_bus_slot *slot;
} UnitsCall;

/* manager_submit() callbacks may outlive us: they find u == NULL then. */
typedef struct UnitsTicket {
        Units *units;
        UnitsElection *election;
        bool enter;
} UnitsTicket;

static void units_job_free(void *p) {
        UnitsJob *j = p;
        if (!j)
                return;
        g_free(j->unit);
        g_free(j);
}

static void units_call_free(void *p) {
        UnitsCall *c = p;
        if (!c)
                return;
        sd_bus_slot_unref(c->slot);
        g_free(c->unit);
        g_free(c);
}

static uint64_t backoff_usec(unsigned attempts) {
        uint64_t t = RETRY_MIN_USEC;
        for (unsigned i = 1; i < attempts && t < RETRY_MAX_USEC; i++)
                t *= 2;
        return t < RETRY_MAX_USEC ? t : RETRY_MAX_USEC;
}

/* accuracy 0 = sd-event's default (250 ms), fine for retries. */
static int schedule_accurate(Units *u, sd_event_source **s, uint64_t usec, uint64_t accuracy,
                             sd_event_time_handler_t cb, void *userdata) {
        int r;

        *s = sd_event_source_disable_unref(*s);
        r = sd_event_add_time_relative(u->event, s, CLOCK_BOOTTIME, usec, accuracy, cb, userdata);
        if (r < 0)
                return log_error_errno(r, "Failed to schedule a timer: %m");
        return 0;
}

static int schedule(Units *u, sd_event_source **s, uint64_t usec, sd_event_time_handler_t cb, void *userdata) {
        return schedule_accurate(u, s, usec, 0, cb, userdata);
}

static UnitsElection *units_find(Units *u, const char *name) {
        for (unsigned i = 0; i < u->elections->len; i++) {
                UnitsElection *e = u->elections->pdata[i];
                if (streq_ptr(e->config->name, name))
                        return e;
        }
        return NULL;
}

static void units_election_free(void *p) {
        UnitsElection *e = p;
        if (!e)
                return;
        sd_event_source_disable_unref(e->retry);
        sd_event_source_disable_unref(e->health_retry);
        sd_event_source_disable_unref(e->candidate_retry);
        sd_bus_slot_unref(e->health_match);
        election_unit_config_free(e->config);
        g_free(e->target);
        g_free(e->flag_path);
        g_free(e->health_path);
        g_free(e->health_state);
        g_free(e);
}

/* ---- flag file ---- */

static int flag_write(UnitsElection *e, uint64_t term_id) {
        Units *u = e->units;
        g_autofree char *tmp = NULL;
        char buf[32];
        int n, r;

        if (g_mkdir_with_parents(u->leader_dir, 0755) < 0)
                return log_error_errno(errno, "Failed to create %s: %m", u->leader_dir);

        /* Temp file + rename: readers see no file or a complete one, never a partial term id. */
        tmp = g_build_filename(u->leader_dir, ".#flag.XXXXXX", NULL);
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create a temporary file in %s: %m", u->leader_dir);
        if (fchmod(fd, 0644) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return log_error_errno(r, "Failed to chmod %s: %m", tmp);
        }
        n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", term_id);
        if (write(fd, buf, (size_t) n) != n) {
                r = errno > 0 ? -errno : -EIO;
                (void) unlink(tmp);
                return log_error_errno(r, "Failed to write %s: %m", tmp);
        }
        if (rename(tmp, e->flag_path) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return log_error_errno(r, "Failed to rename %s to %s: %m", tmp, e->flag_path);
        }
        e->flag_term = term_id;
        return 0;
}

static void flag_remove(UnitsElection *e) {
        if (unlink(e->flag_path) < 0 && errno != ENOENT)
                log_error_errno(errno, "Failed to remove %s: %m", e->flag_path);
        e->flag_term = 0;
}

static void leader_dir_clear(Units *u) {
        g_autoptr(GDir) d = g_dir_open(u->leader_dir, 0, NULL);
        const char *de;

        /* A crashed previous run may have left flags behind: we lead nothing yet. */
        if (!d)
                return;
        while ((de = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(u->leader_dir, de, NULL);
                if (!g_file_test(p, G_FILE_TEST_IS_DIR) && unlink(p) < 0 && errno != ENOENT)
                        log_warning_errno(errno, "Failed to remove stale %s: %m", p);
        }
}

/* ---- unit jobs ---- */

static void election_settle(UnitsElection *e);

static void election_op_done(UnitsElection *e, unsigned generation, const char *unit, bool start, const char *error) {
        if (generation != e->generation)
                return; /* superseded by a later act */
        if (error) {
                log_warning("Failed to %s %s (election %s): %s", start ? "start" : "stop", unit,
                            e->config->name, error);
                e->failed = true;
        }
        if (e->pending > 0)
                e->pending--;
        election_settle(e);
}

static int job_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitsCall *c = userdata;
        Units *u = c->units;
        UnitsElection *e = c->election;
        const sd_bus_error *err = sd_bus_message_get_error(m);
        const char *job;
        int r;

        if (err && !c->start && sd_bus_error_has_name(err, "org.freedesktop.systemd1.NoSuchUnit"))
                election_op_done(e, c->generation, c->unit, c->start, NULL); /* not loaded: stopped enough */
        else if (err)
                election_op_done(e, c->generation, c->unit, c->start, err->message ? err->message : err->name);
        else {
                r = sd_bus_message_read(m, "o", &job);
                if (r < 0)
                        election_op_done(e, c->generation, c->unit, c->start, "bad reply");
                else if (c->generation == e->generation) {
                        UnitsJob *j = g_new0(UnitsJob, 1);
                        j->election = e;
                        j->generation = c->generation;
                        j->unit = g_strdup(c->unit);
                        j->start = c->start;
                        g_hash_table_replace(u->jobs, g_strdup(job), j);
                }
        }
        g_hash_table_remove(u->calls, c);
        return 0;
}

static int job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Units *u = userdata;
        const char *job, *unit, *result;
        uint32_t id;
        UnitsJob *j;
        int r;

        r = sd_bus_message_read(m, "uoss", &id, &job, &unit, &result);
        if (r < 0) {
                log_debug_errno(r, "Ignoring malformed JobRemoved signal: %m");
                return 0;
        }
        j = g_hash_table_lookup(u->jobs, job);
        if (!j)
                return 0;

        /* Stop jobs that find nothing to stop are fine; anything but "done" is a failure. */
        if (streq_ptr(result, "done"))
                election_op_done(j->election, j->generation, j->unit, j->start, NULL);
        else {
                g_autofree char *msg = g_strdup_printf("job %s", result);
                election_op_done(j->election, j->generation, j->unit, j->start, msg);
        }
        g_hash_table_remove(u->jobs, job);
        return 0;
}

static int call_start(Units *u, CallKind kind, UnitsElection *e, const char *unit, bool start, const char *member,
                      sd_bus_message_handler_t cb, const char *path, const char *iface, const char *types, ...) {
        UnitsCall *c;
        va_list ap;
        int r;

        c = g_new0(UnitsCall, 1);
        c->units = u;
        c->kind = kind;
        c->election = e;
        c->generation = e ? e->generation : 0;
        c->unit = g_strdup(unit);
        c->start = start;

        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        r = sd_bus_message_new_method_call(u->bus, &msg, SD_SERVICE, path, iface, member);
        if (r >= 0 && types) {
                va_start(ap, types);
                r = sd_bus_message_appendv(msg, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call_async(u->bus, &c->slot, msg, cb, c, 0);
        if (r < 0) {
                units_call_free(c);
                return log_error_errno(r, "Failed to call %s.%s: %m", iface, member);
        }
        g_hash_table_add(u->calls, c);
        return 0;
}

static void election_issue(UnitsElection *e) {
        Units *u = e->units;
        bool start = e->acted == 1;
        int r;

        e->generation++;
        e->pending = 0;
        e->failed = false;
        e->retry = sd_event_source_disable_unref(e->retry);

        /* The target first: leader units hang off it with WantedBy=/PartOf=. */
        for (int i = -1; i < 0 || e->config->units[i]; i++) {
                const char *unit = i < 0 ? e->target : e->config->units[i];

                r = call_start(u, CALL_JOB, e, unit, start, start ? "StartUnit" : "StopUnit", job_reply,
                               SD_PATH, SD_MANAGER, "ss", unit, "replace");
                if (r < 0)
                        e->failed = true;
                else
                        e->pending++;
        }
        election_settle(e);
}

static int election_retry_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        UnitsElection *e = userdata;

        e->retry = sd_event_source_disable_unref(e->retry);
        log_info("Retrying to %s the units of election %s.", e->acted == 1 ? "start" : "stop", e->config->name);
        election_issue(e);
        return 0;
}

static bool units_stopping(const Units *u) {
        if (!u)
                return false;
        for (unsigned i = 0; i < u->elections->len; i++) {
                const UnitsElection *e = u->elections->pdata[i];
                if (e->acted == 0 && e->pending > 0) {
                        log_debug("Election %s: %u stop operation(s) of its units still running.", e->config->name, e->pending);
                        return true;
                }
        }
        return false;
}

static void election_settle(UnitsElection *e) {
        if (e->pending > 0)
                return;
        if (e->acted == 0)
                manager_units_settled(e->units->manager);
        if (!e->failed) {
                if (e->attempts > 0)
                        log_info("Units of election %s are %s.", e->config->name, e->acted == 1 ? "started" : "stopped");
                e->attempts = 0;
                return;
        }
        e->attempts++;
        (void) schedule(e->units, &e->retry, backoff_usec(e->attempts), election_retry_cb, e);
}

/* ---- leadership ---- */

static void units_update_recheck(Units *u);

static void election_evaluate(UnitsElection *e, const Election *el) {
        Units *u = e->units;
        bool leading;

        if (!u->started)
                return;

        /* Our configured candidate leads, it is owned by this node, and we hold quorum and an
         * unexpired lease: asked now, not remembered. */
        leading = !e->removed && el && streq_ptr(election_leader(el), e->config->id) &&
                manager_local_leader(u->manager, el);

        if (leading) {
                if (e->acted != 1 || e->flag_term != el->term_id)
                        /* Written before the start jobs so ConditionPathExists= sees it. A failure
                         * is logged; the units still follow leadership. */
                        (void) flag_write(e, el->term_id);
                if (e->acted == 1)
                        return;
                log_info("This node leads election %s (term %" PRIu64 "): starting %s and %u unit(s).",
                         e->config->name, el->term_id, e->target, g_strv_length(e->config->units));
                e->acted = 1;
        } else {
                if (e->acted == 0)
                        return;
                /* Flag first, then stop at once: demotion must beat the next leader's start. */
                flag_remove(e);
                if (e->acted == 1)
                        log_info("This node no longer leads election %s: stopping its units.", e->config->name);
                e->acted = 0;
        }
        election_issue(e);
        units_update_recheck(u);
}

static void units_evaluate_all(Units *u) {
        const ElectionState *s = manager_get_state(u->manager);

        for (unsigned i = 0; i < u->elections->len; i++) {
                UnitsElection *e = u->elections->pdata[i];
                election_evaluate(e, s ? election_state_get(s, e->config->name) : NULL);
        }
}

static int recheck_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Units *u = userdata;

        u->recheck = sd_event_source_disable_unref(u->recheck);
        units_evaluate_all(u);
        units_update_recheck(u);
        return 0;
}

static void units_update_recheck(Units *u) {
        bool leading = units_n_leading(u) > 0;

        if (!u->started || u->elections->len == 0)
                return;
        /* Re-armed on every change, so that the period follows whether we lead. */
        if (schedule_accurate(u, &u->recheck, leading ? RECHECK_LEADING_USEC : RECHECK_IDLE_USEC,
                              leading ? 1 : 0, recheck_cb, u) >= 0)
                /* Lease expiry goes before ordinary work. */
                (void) sd_event_source_set_priority(u->recheck, SD_EVENT_PRIORITY_IMPORTANT);
}

static void units_election_changed(Units *u, const Election *e) {
        UnitsElection *ue;

        if (!u || !e)
                return;
        ue = units_find(u, e->name);
        if (ue)
                election_evaluate(ue, e);
}

static void units_quorum_changed(Units *u) {
        if (u)
                units_evaluate_all(u);
}

/* ---- candidacy (Enter / Leave of the configured id) ---- */

static void candidate_sync(UnitsElection *e);

static int candidate_retry_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        UnitsElection *e = userdata;

        e->candidate_retry = sd_event_source_disable_unref(e->candidate_retry);
        candidate_sync(e);
        return 0;
}

static void candidate_done(Manager *m, int status, ElectionResult result, const Term *term, void *userdata) {
        UnitsTicket *t = userdata;
        Units *u = t->units;
        UnitsElection *e = t->election;
        bool enter = t->enter;

        if (u)
                g_ptr_array_remove_fast(u->tickets, t);
        g_free(t);
        if (!u)
                return; /* we are gone */

        e->candidate_busy = false;
        /* Leaving what we are not a candidate of is done, too (a file removed before we entered). */
        if (status >= 0 && !enter && result == ELECTION_NOT_CANDIDATE)
                result = ELECTION_NOOP;
        if (status < 0 || (result != ELECTION_CHANGED && result != ELECTION_NOOP && result != ELECTION_DUPLICATE)) {
                if (status < 0)
                        log_warning_errno(status, "Failed to %s election %s as %s: %m", enter ? "enter" : "leave",
                                          e->config->name, e->config->id);
                else
                        log_warning("Failed to %s election %s as %s: result %d", enter ? "enter" : "leave",
                                    e->config->name, e->config->id, (int) result);
                e->candidate_attempts++;
                (void) schedule(u, &e->candidate_retry, backoff_usec(e->candidate_attempts), candidate_retry_cb, e);
                return;
        }
        e->candidate_attempts = 0;
        e->candidate = enter;
        log_info("%s election %s as %s.", enter ? "Entered" : "Left", e->config->name, e->config->id);
        candidate_sync(e); /* the wish may have changed meanwhile */
}

static void candidate_sync(UnitsElection *e) {
        Units *u = e->units;
        g_autoptr(Command) c = NULL;
        UnitsTicket *t;
        int r;

        if (e->removed)
                e->want_candidate = false;
        if (!u->started || e->candidate_busy || e->candidate_retry)
                return;
        if (e->config->health_unit && !e->health_known && !e->removed)
                return; /* don't stand before we know the health unit is not failed */
        if (e->candidate == (int) e->want_candidate)
                return;

        c = command_new(e->want_candidate ? COMMAND_ENTER : COMMAND_LEAVE);
        if (!c) {
                log_oom();
                return;
        }
        c->election = g_strdup(e->config->name);
        c->id = g_strdup(e->config->id);
        c->node = g_strdup(manager_node_name(u->manager));
        c->owner = g_strdup("");
        c->run = manager_run_id(u->manager);
        /* Configured by root in /etc: the daemon acts as uid 0, authorized. */
        c->uid = 0;
        c->flags = COMMAND_FLAG_AUTHORIZED | (e->want_candidate ? COMMAND_FLAG_PERSISTENT : 0);

        t = g_new0(UnitsTicket, 1);
        t->units = u;
        t->election = e;
        t->enter = e->want_candidate;
        g_ptr_array_add(u->tickets, t);
        e->candidate_busy = true;

        r = manager_submit(u->manager, g_steal_pointer(&c), candidate_done, t);
        if (r < 0) {
                /* Not queued: the done callback will not run. */
                g_ptr_array_remove_fast(u->tickets, t);
                g_free(t);
                e->candidate_busy = false;
                log_warning_errno(r, "Failed to submit for election %s: %m", e->config->name);
                e->candidate_attempts++;
                (void) schedule(u, &e->candidate_retry, backoff_usec(e->candidate_attempts), candidate_retry_cb, e);
        }
}

/* ---- health unit ---- */

static void health_lookup(UnitsElection *e);

static void health_state_update(UnitsElection *e, const char *state) {
        bool first = !e->health_known;

        if (e->removed)
                return; /* a late reply for an election no longer configured */
        if (first || !streq_ptr(state, e->health_state))
                log_info("Health unit %s of election %s is %s.", e->config->health_unit, e->config->name, state);
        g_free(e->health_state);
        e->health_state = g_strdup(state);
        e->health_known = true;

        /* Failed withdraws; only "active" re-enters. At start anything but failed counts as healthy. */
        if (streq_ptr(state, "failed"))
                e->want_candidate = false;
        else if (streq_ptr(state, "active") || first)
                e->want_candidate = true;
        candidate_sync(e);
}

static int health_retry_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        UnitsElection *e = userdata;

        e->health_retry = sd_event_source_disable_unref(e->health_retry);
        health_lookup(e);
        return 0;
}

static void health_failed(UnitsElection *e, const char *what, const sd_bus_error *err) {
        log_warning("Failed to %s health unit %s of election %s: %s", what, e->config->health_unit, e->config->name,
                    err && err->message ? err->message : "bad reply");
        e->health_attempts++;
        (void) schedule(e->units, &e->health_retry, backoff_usec(e->health_attempts), health_retry_cb, e);
}

static int health_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitsElection *e = userdata;
        const char *iface, *key, *state;
        int r;

        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0 || !streq_ptr(iface, SD_UNIT))
                return 0;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return 0;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return 0;
                if (streq_ptr(key, "ActiveState")) {
                        r = sd_bus_message_read(m, "v", "s", &state);
                        if (r < 0)
                                return 0;
                        health_state_update(e, state);
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        return 0;
}

static int health_get_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitsCall *c = userdata;
        UnitsElection *e = c->election;
        const char *state;

        if (sd_bus_message_is_method_error(m, NULL))
                health_failed(e, "read the state of", sd_bus_message_get_error(m));
        else if (sd_bus_message_read(m, "v", "s", &state) < 0)
                health_failed(e, "read the state of", NULL);
        else
                health_state_update(e, state);
        g_hash_table_remove(c->units->calls, c);
        return 0;
}

static int health_load_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitsCall *c = userdata;
        Units *u = c->units;
        UnitsElection *e = c->election;
        const char *path;
        int r;

        if (sd_bus_message_is_method_error(m, NULL)) {
                health_failed(e, "load", sd_bus_message_get_error(m));
                goto done;
        }
        if (sd_bus_message_read(m, "o", &path) < 0) {
                health_failed(e, "load", NULL);
                goto done;
        }
        if (e->removed)
                goto done;
        g_free(e->health_path);
        e->health_path = g_strdup(path);

        /* Match first, then read: no change can slip in between. */
        e->health_match = sd_bus_slot_unref(e->health_match);
        r = sd_bus_match_signal_async(u->bus, &e->health_match, SD_SERVICE, e->health_path,
                                      "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                      health_properties_changed, NULL, e);
        if (r < 0) {
                log_error_errno(r, "Failed to watch %s: %m", e->config->health_unit);
                health_failed(e, "watch", NULL);
                goto done;
        }
        r = call_start(u, CALL_GET_HEALTH, e, e->config->health_unit, false, "Get", health_get_reply,
                       e->health_path, "org.freedesktop.DBus.Properties", "ss", SD_UNIT, "ActiveState");
        if (r < 0)
                health_failed(e, "read the state of", NULL);
done:
        g_hash_table_remove(u->calls, c);
        return 0;
}

static void health_lookup(UnitsElection *e) {
        int r;

        r = call_start(e->units, CALL_LOAD_HEALTH, e, e->config->health_unit, false, "LoadUnit", health_load_reply,
                       SD_PATH, SD_MANAGER, "s", e->config->health_unit);
        if (r < 0)
                health_failed(e, "load", NULL);
}

/* ---- subscription ---- */

static void units_subscribe(Units *u);

static int subscribe_retry_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Units *u = userdata;

        u->subscribe_retry = sd_event_source_disable_unref(u->subscribe_retry);
        units_subscribe(u);
        return 0;
}

static int subscribe_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnitsCall *c = userdata;
        Units *u = c->units;

        /* Without it systemd sends us no JobRemoved and jobs would never settle. */
        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *err = sd_bus_message_get_error(m);
                log_warning("Failed to subscribe to the service manager: %s", err->message ? err->message : err->name);
                u->subscribe_attempts++;
                (void) schedule(u, &u->subscribe_retry, backoff_usec(u->subscribe_attempts), subscribe_retry_cb, u);
        } else
                u->subscribe_attempts = 0;
        g_hash_table_remove(u->calls, c);
        return 0;
}

static void units_subscribe(Units *u) {
        if (call_start(u, CALL_SUBSCRIBE, NULL, NULL, false, "Subscribe", subscribe_reply, SD_PATH, SD_MANAGER, NULL) < 0) {
                u->subscribe_attempts++;
                (void) schedule(u, &u->subscribe_retry, backoff_usec(u->subscribe_attempts), subscribe_retry_cb, u);
        }
}

/* ---- lifecycle ---- */

#define EXIT_STOP_BUDGET_USEC (5 * USEC_PER_SEC)

/* Whoever leads next must not meet our units still running: flag off, then stop. At exit we
 * wait for the replies (bounded): the manager checks the caller's credentials, and a caller
 * that is already gone gets its request refused. */
static void units_stop_all(Units *u) {
        uint64_t deadline = now_monotonic_usec() + EXIT_STOP_BUDGET_USEC;
        int r;

        for (unsigned i = 0; i < u->elections->len; i++) {
                UnitsElection *e = u->elections->pdata[i];

                if (e->acted != 1)
                        continue;
                log_info("Shutting down: stopping the units of election %s.", e->config->name);
                flag_remove(e);
                e->acted = 0;
                for (int j = -1; j < 0 || e->config->units[j]; j++) {
                        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
                        const char *unit = j < 0 ? e->target : e->config->units[j];
                        uint64_t now = now_monotonic_usec();

                        if (now >= deadline) {
                                log_warning("Out of time at exit: not stopping %s.", unit);
                                continue;
                        }
                        r = sd_bus_message_new_method_call(u->bus, &msg, SD_SERVICE, SD_PATH, SD_MANAGER, "StopUnit");
                        if (r >= 0)
                                r = sd_bus_message_append(msg, "ss", unit, "replace");
                        if (r >= 0)
                                r = sd_bus_call(u->bus, msg, deadline - now, &error, NULL);
                        if (r < 0)
                                log_warning_errno(r, "Failed to stop %s: %s", unit,
                                                  error.message ?: strerror(-r));
                }
        }
}

/* Runs before the bus's own exit handler closes the connection. */
static int units_on_exit(sd_event_source *s, void *userdata) {
        units_stop_all(userdata);
        return 0;
}


static UnitsElection *units_election_add(Units *u, ElectionUnitConfig *config) {
        UnitsElection *e = g_new0(UnitsElection, 1);

        e->units = u;
        e->config = config;
        e->target = leader_target_for_election(e->config->name);
        e->flag_path = g_build_filename(u->leader_dir, e->config->name, NULL);
        e->acted = -1;
        e->candidate = -1;
        e->want_candidate = true;
        g_ptr_array_add(u->elections, e);
        log_info("Election %s: candidate %s, %u unit(s)%s%s.", e->config->name, e->config->id,
                 g_strv_length(e->config->units), e->config->health_unit ? ", health unit " : "",
                 e->config->health_unit ?: "");
        return e;
}

/* ---- the manager's notifications (ManagerObserver) ---- */

static void observe_election_changed(void *userdata, const Election *e) {
        Units *u = userdata;

        units_election_changed(u, e);
        if (units_n_leading(u) != u->leading_shown)
                manager_status_changed(u->manager);
}

static void observe_status_changed(void *userdata) {
        units_quorum_changed(userdata);
}

static void observe_reloaded(void *userdata, const Config *config) {
        (void) units_reload(userdata, config->elections_dir);
}

static bool observe_election_pinned(void *userdata, const char *name) {
        return units_configured(userdata, name);
}

static bool observe_stopping(void *userdata) {
        return units_stopping(userdata);
}

static void observe_status_append(void *userdata, GString *s) {
        Units *u = userdata;

        u->leading_shown = units_n_leading(u);
        if (units_n_elections(u) > 0)
                g_string_append_printf(s, ", leading %u of %u configured", u->leading_shown, units_n_elections(u));
}

int units_new(Manager *m, const char *elections_dir, const char *runtime_dir, Units **ret) {
        g_autoptr(GPtrArray) configs = NULL;
        Units *u;
        int r;

        g_assert(m);
        g_assert(ret);

        if (manager_get_config(m)->witness)
                /* a witness holds no candidacies, so it drives no units: elections.d is not read */
                configs = g_ptr_array_new_with_free_func(election_unit_config_destroy);
        else {
                r = elections_d_load(elections_dir ?: ELECTIOND_DEFAULT_ELECTIONS_DIR, manager_node_name(m), &configs);
                if (r < 0)
                        return r;
        }

        u = g_new0(Units, 1);
        u->manager = m;
        u->bus = sd_bus_ref(manager_get_bus(m));
        u->event = sd_event_ref(manager_get_event(m));
        u->leader_dir = g_build_filename(runtime_dir ?: ELECTIOND_DEFAULT_RUNTIME_DIR, ELECTIOND_LEADER_SUBDIR, NULL);
        u->elections = g_ptr_array_new_with_free_func(units_election_free);
        u->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, units_job_free);
        u->calls = g_hash_table_new_full(g_direct_hash, g_direct_equal, units_call_free, NULL);
        u->tickets = g_ptr_array_new();

        for (unsigned i = 0; i < configs->len; i++)
                (void) units_election_add(u, g_steal_pointer(&configs->pdata[i]));

        leader_dir_clear(u);
        u->observer = (ManagerObserver) {
                .order = MANAGER_OBSERVER_ORDER_UNITS,
                .userdata = u,
                .election_changed = observe_election_changed,
                .status_changed = observe_status_changed,
                .reloaded = observe_reloaded,
                .election_pinned = observe_election_pinned,
                .stopping = observe_stopping,
                .status_append = observe_status_append,
        };
        manager_add_observer(m, &u->observer);
        *ret = u;
        return 0;
}

static int units_connect(Units *u);
static void election_begin(UnitsElection *e);

int units_start(Units *u) {
        int r;

        if (!u || u->started)
                return 0;
        u->started = true;
        if (u->elections->len == 0)
                return 0; /* nothing configured: never talk to the service manager */

        r = units_connect(u);
        if (r < 0)
                return r;

        for (unsigned i = 0; i < u->elections->len; i++)
                election_begin(u->elections->pdata[i]);
        /* Units left running by an earlier run are stopped unless we lead right now. */
        units_evaluate_all(u);
        units_update_recheck(u);
        return 0;
}

/* The service manager's job signals and our exit handler: once, before the first election acts. */
static int units_connect(Units *u) {
        int r;

        if (u->exit_source)
                return 0;
        r = sd_event_add_exit(u->event, &u->exit_source, units_on_exit, u);
        if (r < 0)
                return log_error_errno(r, "Failed to add exit handler: %m");
        (void) sd_event_source_set_priority(u->exit_source, SD_EVENT_PRIORITY_IMPORTANT);

        r = sd_bus_match_signal_async(u->bus, &u->job_removed_slot, SD_SERVICE, SD_PATH, SD_MANAGER, "JobRemoved",
                                      job_removed, NULL, u);
        if (r < 0)
                return log_error_errno(r, "Failed to watch systemd jobs: %m");
        units_subscribe(u);
        return 0;
}

static void election_begin(UnitsElection *e) {
        if (e->config->health_unit)
                health_lookup(e);
        else
                candidate_sync(e);
}

static unsigned units_n_elections(const Units *u) {
        unsigned n = 0;

        if (!u)
                return 0;
        for (unsigned i = 0; i < u->elections->len; i++)
                if (!((UnitsElection *) u->elections->pdata[i])->removed)
                        n++;
        return n;
}

static bool units_configured(const Units *u, const char *name) {
        for (unsigned i = 0; u && i < u->elections->len; i++) {
                const UnitsElection *e = u->elections->pdata[i];
                if (!e->removed && streq_ptr(e->config->name, name))
                        return true;
        }
        return false;
}

/* ---- reload ---- */

static void election_remove(UnitsElection *e) {
        log_info("Election %s: no longer configured: leaving as %s and stopping its units.", e->config->name,
                 e->config->id);
        e->removed = true;
        e->want_candidate = false;
        e->health_match = sd_bus_slot_unref(e->health_match);
        e->health_retry = sd_event_source_disable_unref(e->health_retry);
        e->health_known = false;
        e->health_attempts = 0;
        /* Demotes at once (flag file first) if it led; a stop of an idle election is harmless. */
        election_evaluate(e, NULL);
        candidate_sync(e);
}

/* Units= of a configured election changed: stop what left the list (if running), start the
 * rest again (a start of a running unit is a no-op job). */
static void election_units_changed(UnitsElection *e, ElectionUnitConfig *c) {
        Units *u = e->units;

        g_autofree char *list = g_strjoinv(" ", c->units);

        log_info("Election %s: Units= changed to '%s'.", c->name, list);
        if (e->acted == 1)
                for (char **old = e->config->units; *old; old++)
                        if (!g_strv_contains((const char *const *) c->units, *old)) {
                                log_info("Election %s: stopping %s, no longer in Units=.", c->name, *old);
                                /* Of the current generation's predecessor: its reply is not awaited. */
                                (void) call_start(u, CALL_JOB, e, *old, false, "StopUnit", job_reply,
                                                  SD_PATH, SD_MANAGER, "ss", *old, "replace");
                        }
        g_strfreev(e->config->units);
        e->config->units = g_steal_pointer(&c->units);
        c->units = g_new0(char *, 1);
        if (e->acted >= 0)
                election_issue(e);
}

static bool strv_equal0(char **a, char **b) {
        if (!a || !b)
                return a == b;
        return g_strv_equal((const char *const *) a, (const char *const *) b);
}

static int units_reload(Units *u, const char *elections_dir) {
        g_autoptr(GPtrArray) configs = NULL;
        unsigned added = 0, removed = 0, changed = 0;
        int r;

        g_assert(u);

        r = elections_d_load(elections_dir ?: ELECTIOND_DEFAULT_ELECTIONS_DIR, manager_node_name(u->manager), &configs);
        if (r < 0)
                return log_warning_errno(r, "Failed to reload %s, keeping the running elections: %m",
                                         elections_dir ?: ELECTIOND_DEFAULT_ELECTIONS_DIR);

        /* Gone from the directory. */
        for (unsigned i = 0; i < u->elections->len; i++) {
                UnitsElection *e = u->elections->pdata[i];
                bool present = false;

                if (e->removed)
                        continue;
                for (unsigned j = 0; j < configs->len && !present; j++)
                        present = streq_ptr(((ElectionUnitConfig *) configs->pdata[j])->name, e->config->name);
                if (!present) {
                        election_remove(e);
                        removed++;
                }
        }

        for (unsigned j = 0; j < configs->len; j++) {
                ElectionUnitConfig *c = configs->pdata[j];
                UnitsElection *e = units_find(u, c->name);

                if (!e) {
                        e = units_election_add(u, g_steal_pointer(&configs->pdata[j]));
                        added++;
                        if (u->started) {
                                if (units_connect(u) < 0)
                                        continue; /* logged; the election still counts */
                                election_begin(e);
                                election_evaluate(e, election_state_get(manager_get_state(u->manager), e->config->name));
                        }
                        continue;
                }

                if (e->removed) {
                        /* Back again: the same candidacy, possibly another id if it already left. */
                        if (!streq_ptr(c->id, e->config->id) && (e->candidate != 0 || e->candidate_busy)) {
                                log_warning("Election %s: re-added with Id=%s while %s has not left yet; "
                                            "reload again once it has.", c->name, c->id, e->config->id);
                                continue;
                        }
                        log_info("Election %s: configured again.", c->name);
                        election_unit_config_free(e->config);
                        e->config = g_steal_pointer(&configs->pdata[j]);
                        e->removed = false;
                        e->want_candidate = true;
                        added++;
                        if (u->started)
                                election_begin(e);
                        continue;
                }

                /* Still configured: only what changed is touched (no Leave/Enter: no new term). */
                if (!streq_ptr(c->id, e->config->id))
                        log_warning("Election %s: reload refused Id=%s (running as %s): changing the candidate "
                                    "id means leaving and entering again; remove the file, reload, then add it "
                                    "back with the new Id= and reload.", c->name, c->id, e->config->id);
                if (!streq_ptr(c->health_unit, e->config->health_unit))
                        log_warning("Election %s: reload refused HealthUnit=%s: restart the daemon to change it.",
                                    c->name, c->health_unit ?: "");
                if (!strv_equal0(c->units, e->config->units)) {
                        election_units_changed(e, c);
                        changed++;
                }
        }

        if (u->started) {
                units_evaluate_all(u);
                units_update_recheck(u);
        }
        log_info("Reloaded %s: %u election(s) added, %u removed, %u with changed Units=.",
                 elections_dir ?: ELECTIOND_DEFAULT_ELECTIONS_DIR, added, removed, changed);
        return 0;
}

static unsigned units_n_leading(const Units *u) {
        unsigned n = 0;

        if (!u)
                return 0;
        for (unsigned i = 0; i < u->elections->len; i++)
                if (((UnitsElection *) u->elections->pdata[i])->acted == 1)
                        n++;
        return n;
}

Units *units_free(Units *u) {
        if (!u)
                return NULL;

        manager_remove_observer(u->manager, &u->observer);
        units_stop_all(u);

        for (unsigned i = 0; i < u->tickets->len; i++)
                ((UnitsTicket *) u->tickets->pdata[i])->units = NULL;
        g_ptr_array_unref(u->tickets);

        g_hash_table_destroy(u->calls);
        g_hash_table_destroy(u->jobs);
        sd_bus_slot_unref(u->job_removed_slot);
        sd_event_source_disable_unref(u->subscribe_retry);
        sd_event_source_disable_unref(u->recheck);
        sd_event_source_disable_unref(u->exit_source);
        g_ptr_array_unref(u->elections);
        g_free(u->leader_dir);
        sd_event_unref(u->event);
        sd_bus_unref(u->bus);
        g_free(u);
        return NULL;
}
