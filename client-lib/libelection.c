/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libelection: a thin, typed client of org.electiond.Election1 on sd-bus. */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "election.h"

#define BUS_NAME           "org.electiond.Election1"
/* The daemon coming or going: every watch re-syncs on it. */
#define OWNER_CHANGED_MATCH                                                                        \
        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"                \
        "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" BUS_NAME "'"
#define MANAGER_PATH       "/org/electiond/Election1"
#define MANAGER_INTERFACE  "org.electiond.Election1.Manager"
#define ELECTION_INTERFACE "org.electiond.Election1.Election"

#define _public_ __attribute__((visibility("default")))
#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void sd_bus_message_unrefp_(sd_bus_message **m) {
        sd_bus_message_unref(*m);
}
#define _cleanup_msg_ _cleanup_(sd_bus_message_unrefp_)

#define _cleanup_bus_error_ _cleanup_(sd_bus_error_free)

struct ElectionClient {
        unsigned n_ref;
        sd_bus *bus;
        char *error_name;
        char *error_message;

        /* Lease watch (WatchLease + LeaseRenewed). */
        election_lease_handler_t lease_handler;
        void *lease_userdata;
        sd_bus_slot *lease_signal_slot;
        sd_bus_slot *lease_owner_slot;
        sd_bus_slot *lease_call_slot;  /* the WatchLease in flight */
        sd_event_source *lease_retry;
        bool lease_synced;             /* WatchLease answered since the daemon (re)appeared */
};

static void lease_stop(ElectionClient *c);

struct ElectionOptions {
        char *id;
        bool persistent;
        bool reenter;
};

struct ElectionTerm {
        unsigned n_ref;
        uint64_t id;
        char *leader;
        size_t n_candidates;
        char **candidates; /* NULL-terminated */
};

struct ElectionMemberList {
        size_t n;
        char **fields; /* 4 per member: name, address, state, role */
};

struct ElectionList {
        size_t n;
        char **names;
        uint64_t *term_ids;
        char **leaders;
};

struct Election {
        unsigned n_ref;
        ElectionClient *client;
        char *name;
        char *id;
        char *path;
        bool persistent;
        bool reenter;

        /* We hold a connection-bound candidacy that we entered ourselves; drives re-entering. */
        bool entered;
        unsigned enters_pending;

        /* Watch state. */
        election_watch_handler_t watch_handler;
        void *watch_userdata;
        sd_bus_slot *term_slot;
        sd_bus_slot *owner_slot;
        sd_bus_slot *disconnect_slot;
        sd_bus_slot *sync_slot;     /* the GetTerm that (re)synchronizes the watch */
        bool synced;                /* the current term was delivered since the daemon (re)appeared */
        bool seen_self;             /* a term delivered since then listed our id */
        bool gone;                  /* the handler was told -ESHUTDOWN and has had no term since */
        sd_event_source *retry;     /* re-reads the term after a failed read */

        /* LocalLeader watch. */
        election_local_leader_handler_t ll_handler;
        void *ll_userdata;
        sd_bus_slot *ll_props_slot;
        sd_bus_slot *ll_owner_slot;
        sd_bus_slot *ll_sync_slot;
        bool ll_synced;
        int ll_value;               /* last delivered, -1 = none */
        ElectionTerm *last;         /* last delivered term */
};

/* Errors of the daemon's API, mapped to errno values (documented in election.h). */
static const sd_bus_error_map election_error_map[] = {
        SD_BUS_ERROR_MAP(ELECTION_ERROR_NOT_CANDIDATE, ENOENT),
        SD_BUS_ERROR_MAP(ELECTION_ERROR_INVALID_NAME, EINVAL),
        SD_BUS_ERROR_MAP(ELECTION_ERROR_INVALID_ID, EINVAL),
        SD_BUS_ERROR_MAP(ELECTION_ERROR_LIMIT_EXCEEDED, ENOSPC),
        SD_BUS_ERROR_MAP(ELECTION_ERROR_QUOTA_EXCEEDED, EDQUOT),
        SD_BUS_ERROR_MAP(ELECTION_ERROR_NO_QUORUM, ETIMEDOUT),
        SD_BUS_ERROR_MAP(ELECTION_ERROR_OUTCOME_UNKNOWN, EINPROGRESS),
        SD_BUS_ERROR_MAP_END,
};

/* ---- errors ---------------------------------------------------------------------------------- */

static void client_clear_error(ElectionClient *c) {
        free(c->error_name);
        free(c->error_message);
        c->error_name = c->error_message = NULL;
}

/* Remembers a D-Bus error and returns its negative errno (or R when it carries none). */
static int client_set_error(ElectionClient *c, const sd_bus_error *error, int r) {
        client_clear_error(c);
        if (error && sd_bus_error_is_set(error)) {
                c->error_name = strdup(error->name);
                c->error_message = error->message ? strdup(error->message) : NULL;
                r = -sd_bus_error_get_errno(error);
        }
        return r < 0 ? r : -EIO;
}

_public_ const char *election_client_last_error_name(ElectionClient *c) {
        return c ? c->error_name : NULL;
}

_public_ const char *election_client_last_error_message(ElectionClient *c) {
        return c ? c->error_message : NULL;
}

/* ---- terms ----------------------------------------------------------------------------------- */

static ElectionTerm *term_free(ElectionTerm *t) {
        if (!t)
                return NULL;
        free(t->leader);
        for (size_t i = 0; i < t->n_candidates; i++)
                free(t->candidates[i]);
        free(t->candidates);
        free(t);
        return NULL;
}

_public_ ElectionTerm *election_term_ref(ElectionTerm *t) {
        if (t)
                t->n_ref++;
        return t;
}

_public_ ElectionTerm *election_term_unref(ElectionTerm *t) {
        if (!t)
                return NULL;
        if (--t->n_ref > 0)
                return NULL;
        return term_free(t);
}

static inline void election_term_unrefp(ElectionTerm **t) {
        election_term_unref(*t);
}

_public_ uint64_t election_term_get_id(const ElectionTerm *t) {
        return t ? t->id : 0;
}

_public_ const char *election_term_get_leader(const ElectionTerm *t) {
        return t ? t->leader : NULL;
}

_public_ size_t election_term_get_n_candidates(const ElectionTerm *t) {
        return t ? t->n_candidates : 0;
}

_public_ const char *const *election_term_get_candidates(const ElectionTerm *t) {
        return t ? (const char *const *) t->candidates : NULL;
}

_public_ int election_term_is_leader(const ElectionTerm *t, const char *id) {
        if (!t || !id || t->leader[0] == '\0')
                return 0;
        return strcmp(t->leader, id) == 0;
}

static bool term_has_candidate(const ElectionTerm *t, const char *id) {
        for (size_t i = 0; i < t->n_candidates; i++)
                if (strcmp(t->candidates[i], id) == 0)
                        return true;
        return false;
}

_public_ int election_term_equal(const ElectionTerm *a, const ElectionTerm *b) {
        if (!a || !b)
                return a == b;
        if (a->id != b->id || strcmp(a->leader, b->leader) != 0 || a->n_candidates != b->n_candidates)
                return 0;
        for (size_t i = 0; i < a->n_candidates; i++)
                if (strcmp(a->candidates[i], b->candidates[i]) != 0)
                        return 0;
        return 1;
}

/* Reads a (t s as) term from M's current position. */
static int term_read(sd_bus_message *m, ElectionTerm **ret) {
        _cleanup_(election_term_unrefp) ElectionTerm *t = NULL;
        const char *leader, *s;
        int r;

        t = calloc(1, sizeof(ElectionTerm));
        if (!t)
                return -ENOMEM;
        t->n_ref = 1;

        r = sd_bus_message_read(m, "ts", &t->id, &leader);
        if (r < 0)
                return r;
        t->leader = strdup(leader);
        if (!t->leader)
                return -ENOMEM;

        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "s", &s)) > 0) {
                char **n = realloc(t->candidates, (t->n_candidates + 2) * sizeof(char *));
                if (!n)
                        return -ENOMEM;
                t->candidates = n;
                t->candidates[t->n_candidates] = strdup(s);
                if (!t->candidates[t->n_candidates])
                        return -ENOMEM;
                t->candidates[++t->n_candidates] = NULL;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;

        if (!t->candidates) {
                t->candidates = calloc(1, sizeof(char *));
                if (!t->candidates)
                        return -ENOMEM;
        }

        *ret = t;
        t = NULL;
        return 0;
}

/* ---- client ---------------------------------------------------------------------------------- */

static int client_new(sd_bus *bus, ElectionClient **ret) {
        ElectionClient *c;
        int r;

        /* Registers our error names once per process; repeated calls are no-ops. */
        r = sd_bus_error_add_map(election_error_map);
        if (r < 0)
                return r;

        c = calloc(1, sizeof(ElectionClient));
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->bus = bus;
        *ret = c;
        return 0;
}

_public_ int election_client_new(ElectionClient **ret) {
        sd_bus *bus = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        r = sd_bus_open_system_with_description(&bus, "libelection");
        if (r < 0)
                return r;
        r = client_new(bus, ret);
        if (r < 0)
                sd_bus_flush_close_unref(bus);
        return r;
}

_public_ int election_client_new_user(ElectionClient **ret) {
        sd_bus *bus = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        r = sd_bus_open_user_with_description(&bus, "libelection");
        if (r < 0)
                return r;
        r = client_new(bus, ret);
        if (r < 0)
                sd_bus_flush_close_unref(bus);
        return r;
}

_public_ int election_client_new_address(const char *address, ElectionClient **ret) {
        sd_bus *bus = NULL;
        int r;

        if (!address || !ret)
                return -EINVAL;
        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_set_description(bus, "libelection");
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = client_new(bus, ret);
        if (r < 0)
                sd_bus_flush_close_unref(bus);
        return r;
}

_public_ ElectionClient *election_client_ref(ElectionClient *c) {
        if (c)
                c->n_ref++;
        return c;
}

_public_ ElectionClient *election_client_unref(ElectionClient *c) {
        if (!c)
                return NULL;
        if (--c->n_ref > 0)
                return NULL;
        lease_stop(c);
        sd_bus_flush_close_unref(c->bus);
        client_clear_error(c);
        free(c);
        return NULL;
}

_public_ int election_client_attach_event(ElectionClient *c, sd_event *e, int64_t priority) {
        if (!c)
                return -EINVAL;
        return sd_bus_attach_event(c->bus, e, (int) priority);
}

_public_ int election_client_detach_event(ElectionClient *c) {
        if (!c)
                return -EINVAL;
        return sd_bus_detach_event(c->bus);
}

_public_ sd_event *election_client_get_event(ElectionClient *c) {
        return c ? sd_bus_get_event(c->bus) : NULL;
}

static int client_get_string_property(ElectionClient *c, const char *property, char **ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        char *s = NULL;
        int r;

        if (!c || !ret)
                return -EINVAL;
        r = sd_bus_get_property_string(c->bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, property,
                                       &error, &s);
        if (r < 0)
                return client_set_error(c, &error, r);
        client_clear_error(c);
        *ret = s;
        return 0;
}

_public_ int election_client_get_node_name(ElectionClient *c, char **ret) {
        return client_get_string_property(c, "NodeName", ret);
}

_public_ int election_client_get_version(ElectionClient *c, char **ret) {
        return client_get_string_property(c, "Version", ret);
}

_public_ int election_client_get_cluster_name(ElectionClient *c, char **ret) {
        return client_get_string_property(c, "ClusterName", ret);
}

_public_ int election_client_is_quorate(ElectionClient *c) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int b = 0, r;

        if (!c)
                return -EINVAL;
        r = sd_bus_get_property_trivial(c->bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "Quorate", &error, 'b', &b);
        if (r < 0)
                return client_set_error(c, &error, r);
        client_clear_error(c);
        return !!b;
}

static int client_get_u32_property(ElectionClient *c, const char *name, unsigned *ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t u = 0;
        int r;

        r = sd_bus_get_property_trivial(c->bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, name, &error, 'u', &u);
        if (r < 0 && sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_PROPERTY))
                u = 1; /* electiond 0.1.0 had no protocol record: it speaks version 1 */
        else if (r < 0)
                return client_set_error(c, &error, r);
        *ret = u;
        return 0;
}

_public_ int election_client_get_protocol_version(ElectionClient *c, unsigned *ret_cluster, unsigned *ret_max) {
        unsigned cluster = 0, max = 0;
        int r;

        if (!c)
                return -EINVAL;
        r = client_get_u32_property(c, "ProtocolVersion", &cluster);
        if (r >= 0)
                r = client_get_u32_property(c, "MaxProtocolVersion", &max);
        if (r < 0)
                return r;
        client_clear_error(c);
        if (ret_cluster)
                *ret_cluster = cluster;
        if (ret_max)
                *ret_max = max;
        return 0;
}

/* ---- drain ----------------------------------------------------------------------------------- */

static int client_drain_call(ElectionClient *c, const char *method, char **names) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        int r;

        if (!c)
                return -EINVAL;
        r = sd_bus_message_new_method_call(c->bus, &m, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, method);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, names);
        if (r >= 0)
                r = sd_bus_call(c->bus, m, 0, &error, &reply);
        sd_bus_message_unref(m);
        sd_bus_message_unref(reply);
        if (r < 0)
                return client_set_error(c, &error, r);
        client_clear_error(c);
        return 0;
}

_public_ int election_client_drain(ElectionClient *c, char **names) {
        return client_drain_call(c, "Drain", names);
}

_public_ int election_client_undrain(ElectionClient *c, char **names) {
        return client_drain_call(c, "Undrain", names);
}

_public_ int election_client_get_drained(ElectionClient *c, char ***ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        char **l = NULL;
        int r;

        if (!c || !ret)
                return -EINVAL;
        r = sd_bus_get_property_strv(c->bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "Drained", &error, &l);
        if (r < 0)
                return client_set_error(c, &error, r);
        client_clear_error(c);
        *ret = l;
        return 0;
}

/* ---- list ------------------------------------------------------------------------------------ */

_public_ ElectionList *election_list_free(ElectionList *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n; i++) {
                free(l->names[i]);
                free(l->leaders[i]);
        }
        free(l->names);
        free(l->leaders);
        free(l->term_ids);
        free(l);
        return NULL;
}

static inline void election_list_freep(ElectionList **l) {
        election_list_free(*l);
}

static int list_append(ElectionList *l, const char *name, uint64_t id, const char *leader) {
        char **names, **leaders;
        uint64_t *ids;

        names = realloc(l->names, (l->n + 1) * sizeof(char *));
        if (!names)
                return -ENOMEM;
        l->names = names;
        leaders = realloc(l->leaders, (l->n + 1) * sizeof(char *));
        if (!leaders)
                return -ENOMEM;
        l->leaders = leaders;
        ids = realloc(l->term_ids, (l->n + 1) * sizeof(uint64_t));
        if (!ids)
                return -ENOMEM;
        l->term_ids = ids;

        l->names[l->n] = strdup(name);
        l->leaders[l->n] = strdup(leader);
        l->term_ids[l->n] = id;
        if (!l->names[l->n] || !l->leaders[l->n]) {
                free(l->names[l->n]);
                free(l->leaders[l->n]);
                return -ENOMEM;
        }
        l->n++;
        return 0;
}

_public_ int election_client_list_elections(ElectionClient *c, ElectionList **ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_msg_ sd_bus_message *reply = NULL;
        _cleanup_(election_list_freep) ElectionList *l = NULL;
        const char *name, *leader, *path;
        uint64_t id;
        int r;

        if (!c || !ret)
                return -EINVAL;

        r = sd_bus_call_method(c->bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "ListElections",
                               &error, &reply, NULL);
        if (r < 0)
                return client_set_error(c, &error, r);
        client_clear_error(c);

        l = calloc(1, sizeof(ElectionList));
        if (!l)
                return -ENOMEM;

        r = sd_bus_message_enter_container(reply, 'a', "(stso)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(stso)", &name, &id, &leader, &path)) > 0) {
                r = list_append(l, name, id, leader);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;

        *ret = l;
        l = NULL;
        return 0;
}

_public_ size_t election_list_size(const ElectionList *l) {
        return l ? l->n : 0;
}

_public_ const char *election_list_get_name(const ElectionList *l, size_t i) {
        return l && i < l->n ? l->names[i] : NULL;
}

_public_ uint64_t election_list_get_term_id(const ElectionList *l, size_t i) {
        return l && i < l->n ? l->term_ids[i] : 0;
}

_public_ const char *election_list_get_leader(const ElectionList *l, size_t i) {
        return l && i < l->n ? l->leaders[i] : NULL;
}

/* ---- members --------------------------------------------------------------------------------- */

_public_ ElectionMemberList *election_member_list_free(ElectionMemberList *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n * 4; i++)
                free(l->fields[i]);
        free(l->fields);
        free(l);
        return NULL;
}

static inline void election_member_list_freep(ElectionMemberList **l) {
        election_member_list_free(*l);
}

_public_ int election_client_list_members(ElectionClient *c, ElectionMemberList **ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_msg_ sd_bus_message *reply = NULL;
        _cleanup_(election_member_list_freep) ElectionMemberList *l = NULL;
        const char *f[4];
        int r;

        if (!c || !ret)
                return -EINVAL;
        r = sd_bus_get_property(c->bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "Members", &error, &reply,
                                "a(ssss)");
        if (r < 0)
                return client_set_error(c, &error, r);
        client_clear_error(c);

        l = calloc(1, sizeof(ElectionMemberList));
        if (!l)
                return -ENOMEM;
        r = sd_bus_message_enter_container(reply, 'a', "(ssss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(ssss)", &f[0], &f[1], &f[2], &f[3])) > 0) {
                char **n = realloc(l->fields, (l->n + 1) * 4 * sizeof(char *));
                if (!n)
                        return -ENOMEM;
                l->fields = n;
                for (size_t k = 0; k < 4; k++)
                        l->fields[l->n * 4 + k] = NULL;
                l->n++;
                for (size_t k = 0; k < 4; k++) {
                        l->fields[(l->n - 1) * 4 + k] = strdup(f[k]);
                        if (!l->fields[(l->n - 1) * 4 + k])
                                return -ENOMEM;
                }
        }
        if (r < 0)
                return r;

        *ret = l;
        l = NULL;
        return 0;
}

_public_ size_t election_member_list_size(const ElectionMemberList *l) {
        return l ? l->n : 0;
}

static const char *member_field(const ElectionMemberList *l, size_t i, size_t k) {
        return l && i < l->n ? l->fields[i * 4 + k] : NULL;
}

_public_ const char *election_member_list_get_name(const ElectionMemberList *l, size_t i) {
        return member_field(l, i, 0);
}

_public_ const char *election_member_list_get_address(const ElectionMemberList *l, size_t i) {
        return member_field(l, i, 1);
}

_public_ const char *election_member_list_get_state(const ElectionMemberList *l, size_t i) {
        return member_field(l, i, 2);
}

_public_ const char *election_member_list_get_role(const ElectionMemberList *l, size_t i) {
        return member_field(l, i, 3);
}

/* ---- options --------------------------------------------------------------------------------- */

_public_ int election_options_new(ElectionOptions **ret) {
        if (!ret)
                return -EINVAL;
        *ret = calloc(1, sizeof(ElectionOptions));
        return *ret ? 0 : -ENOMEM;
}

_public_ ElectionOptions *election_options_free(ElectionOptions *o) {
        if (!o)
                return NULL;
        free(o->id);
        free(o);
        return NULL;
}

_public_ int election_options_set_id(ElectionOptions *o, const char *id) {
        char *s = NULL;

        if (!o)
                return -EINVAL;
        /* NULL or "" both mean "the node's default id". */
        if (id && id[0]) {
                s = strdup(id);
                if (!s)
                        return -ENOMEM;
        }
        free(o->id);
        o->id = s;
        return 0;
}

_public_ int election_options_set_persistent(ElectionOptions *o, int persistent) {
        if (!o)
                return -EINVAL;
        o->persistent = persistent;
        return 0;
}

_public_ int election_options_set_reenter(ElectionOptions *o, int reenter) {
        if (!o)
                return -EINVAL;
        o->reenter = reenter;
        return 0;
}

/* ---- election -------------------------------------------------------------------------------- */

static void ll_stop(Election *e);

static void watch_stop(Election *e) {
        e->term_slot = sd_bus_slot_unref(e->term_slot);
        e->owner_slot = sd_bus_slot_unref(e->owner_slot);
        e->disconnect_slot = sd_bus_slot_unref(e->disconnect_slot);
        e->sync_slot = sd_bus_slot_unref(e->sync_slot);
        e->retry = sd_event_source_disable_unref(e->retry);
        e->last = election_term_unref(e->last);
        e->watch_handler = NULL;
        e->watch_userdata = NULL;
        e->synced = false;
        e->gone = false;
}

_public_ int election_client_get_election(ElectionClient *c, const char *name, const ElectionOptions *opts,
                                          Election **ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_msg_ sd_bus_message *reply = NULL;
        _cleanup_free_ char *node = NULL;
        const char *path;
        Election *e;
        int r;

        if (!c || !name || !ret)
                return -EINVAL;

        /* The daemon validates the name, so callers see InvalidName here rather than on first use. */
        r = sd_bus_call_method(c->bus, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "GetElection",
                               &error, &reply, "s", name);
        if (r < 0)
                return client_set_error(c, &error, r);
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;

        if (!opts || !opts->id) {
                r = election_client_get_node_name(c, &node);
                if (r < 0)
                        return r;
        }
        client_clear_error(c);

        e = calloc(1, sizeof(Election));
        if (!e)
                return -ENOMEM;
        e->n_ref = 1;
        e->name = strdup(name);
        e->path = strdup(path);
        e->id = strdup(opts && opts->id ? opts->id : node);
        if (!e->name || !e->path || !e->id) {
                free(e->name);
                free(e->path);
                free(e->id);
                free(e);
                return -ENOMEM;
        }
        e->persistent = opts && opts->persistent;
        e->reenter = opts && opts->reenter;
        e->client = election_client_ref(c);
        *ret = e;
        return 0;
}

_public_ Election *election_ref(Election *e) {
        if (e)
                e->n_ref++;
        return e;
}

_public_ Election *election_unref(Election *e) {
        if (!e)
                return NULL;
        if (--e->n_ref > 0)
                return NULL;
        watch_stop(e);
        ll_stop(e);
        election_client_unref(e->client);
        free(e->name);
        free(e->id);
        free(e->path);
        free(e);
        return NULL;
}

static inline void election_unrefp(Election **e) {
        election_unref(*e);
}

_public_ ElectionClient *election_get_client(Election *e) {
        return e ? e->client : NULL;
}

_public_ const char *election_get_name(Election *e) {
        return e ? e->name : NULL;
}

_public_ const char *election_get_id(Election *e) {
        return e ? e->id : NULL;
}

/* Builds the method call for OP on E; ARG is the id for Anoint/Promote/Evict. */
static int election_new_call(Election *e, const char *method, const char *arg, sd_bus_message **ret) {
        _cleanup_msg_ sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(e->client->bus, &m, BUS_NAME, e->path, ELECTION_INTERFACE, method);
        if (r < 0)
                return r;
        if (strcmp(method, "Enter") == 0)
                r = sd_bus_message_append(m, "st", e->id, (uint64_t) (e->persistent ? 1 : 0));
        else if (strcmp(method, "Leave") == 0)
                r = sd_bus_message_append(m, "s", e->id);
        else if (arg)
                r = sd_bus_message_append(m, "s", arg);
        if (r < 0)
                return r;
        *ret = m;
        m = NULL;
        return 0;
}

/* Bookkeeping for re-entering after a daemon restart. */
static void election_note_result(Election *e, const char *method, bool ok) {
        if (strcmp(method, "Enter") == 0) {
                if (e->enters_pending > 0)
                        e->enters_pending--;
                if (ok)
                        e->entered = !e->persistent;
        } else if (strcmp(method, "Leave") == 0 && ok)
                e->entered = false;
}

static int election_call(Election *e, const char *method, const char *arg, ElectionTerm **ret) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_msg_ sd_bus_message *m = NULL, *reply = NULL;
        ElectionTerm *t = NULL;
        int r;

        if (!e)
                return -EINVAL;
        if (arg && !arg[0] && strcmp(method, "GetTerm") != 0)
                arg = e->id;

        r = election_new_call(e, method, arg, &m);
        if (r < 0)
                return r;
        if (strcmp(method, "Enter") == 0)
                e->enters_pending++;
        r = sd_bus_call(e->client->bus, m, 0, &error, &reply);
        if (r < 0) {
                election_note_result(e, method, false);
                return client_set_error(e->client, &error, r);
        }
        election_note_result(e, method, true);
        client_clear_error(e->client);

        r = term_read(reply, &t);
        if (r < 0)
                return r;
        if (ret)
                *ret = t;
        else
                election_term_unref(t);
        return 0;
}

_public_ int election_get_term(Election *e, ElectionTerm **ret) {
        return election_call(e, "GetTerm", NULL, ret);
}

_public_ int election_enter(Election *e, ElectionTerm **ret) {
        return election_call(e, "Enter", NULL, ret);
}

_public_ int election_leave(Election *e, ElectionTerm **ret) {
        return election_call(e, "Leave", NULL, ret);
}

_public_ int election_anoint(Election *e, const char *id, ElectionTerm **ret) {
        return id ? election_call(e, "Anoint", id, ret) : -EINVAL;
}

_public_ int election_promote(Election *e, const char *id, ElectionTerm **ret) {
        return id ? election_call(e, "Promote", id, ret) : -EINVAL;
}

_public_ int election_evict(Election *e, const char *id, ElectionTerm **ret) {
        return id ? election_call(e, "Evict", id, ret) : -EINVAL;
}

/* ---- async ----------------------------------------------------------------------------------- */

typedef struct AsyncCall {
        Election *election;
        const char *method; /* static string */
        election_term_handler_t handler;
        void *userdata;
} AsyncCall;

static void async_call_destroy(void *userdata) {
        AsyncCall *a = userdata;

        election_unref(a->election);
        free(a);
}

static int async_call_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(election_term_unrefp) ElectionTerm *t = NULL;
        AsyncCall *a = userdata;
        Election *e = a->election;
        const sd_bus_error *error;
        int r;

        error = sd_bus_message_get_error(reply);
        if (error) {
                election_note_result(e, a->method, false);
                r = client_set_error(e->client, error, -sd_bus_message_get_errno(reply));
                if (a->handler)
                        a->handler(e, r, NULL, e->client->error_name, e->client->error_message, a->userdata);
                return 0;
        }

        election_note_result(e, a->method, true);
        r = term_read(reply, &t);
        if (a->handler)
                a->handler(e, r, r < 0 ? NULL : t, NULL, NULL, a->userdata);
        return 0;
}

static int election_call_async(Election *e, const char *method, const char *arg,
                               election_term_handler_t handler, void *userdata) {
        _cleanup_msg_ sd_bus_message *m = NULL;
        _cleanup_free_ AsyncCall *a = NULL;
        sd_bus_slot *slot = NULL;
        int r;

        if (!e)
                return -EINVAL;
        if (!sd_bus_get_event(e->client->bus))
                return -ENXIO;
        if (arg && !arg[0])
                arg = e->id;

        r = election_new_call(e, method, arg, &m);
        if (r < 0)
                return r;

        a = calloc(1, sizeof(AsyncCall));
        if (!a)
                return -ENOMEM;
        *a = (AsyncCall) {
                .election = e,
                .method = method,
                .handler = handler,
                .userdata = userdata,
        };

        r = sd_bus_call_async(e->client->bus, &slot, m, async_call_reply, a, 0);
        if (r < 0)
                return r;
        /* The slot owns the call record (and through it a reference on the handle) until the reply. */
        sd_bus_slot_set_destroy_callback(slot, async_call_destroy);
        /* Floating: the bus takes its own reference on the slot, so drop ours. */
        sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
        election_ref(e);
        if (strcmp(method, "Enter") == 0)
                e->enters_pending++;
        a = NULL;
        return 0;
}

_public_ int election_get_term_async(Election *e, election_term_handler_t handler, void *userdata) {
        return election_call_async(e, "GetTerm", NULL, handler, userdata);
}

_public_ int election_enter_async(Election *e, election_term_handler_t handler, void *userdata) {
        return election_call_async(e, "Enter", NULL, handler, userdata);
}

_public_ int election_leave_async(Election *e, election_term_handler_t handler, void *userdata) {
        return election_call_async(e, "Leave", NULL, handler, userdata);
}

_public_ int election_anoint_async(Election *e, const char *id, election_term_handler_t handler, void *userdata) {
        return id ? election_call_async(e, "Anoint", id, handler, userdata) : -EINVAL;
}

_public_ int election_promote_async(Election *e, const char *id, election_term_handler_t handler, void *userdata) {
        return id ? election_call_async(e, "Promote", id, handler, userdata) : -EINVAL;
}

_public_ int election_evict_async(Election *e, const char *id, election_term_handler_t handler, void *userdata) {
        return id ? election_call_async(e, "Evict", id, handler, userdata) : -EINVAL;
}

/* ---- watch ----------------------------------------------------------------------------------- */

#define WATCH_RETRY_USEC (1000 * UINT64_C(1000))

static int watch_sync(Election *e);
static void watch_arm_retry(Election *e);

/* Hands T to the watcher unless it equals the last delivered term (a signal that raced the GetTerm
 * that synchronized us). Returns the handler's effect on E's lifetime via a temporary reference. */
static void watch_deliver(Election *e, ElectionTerm *t) {
        _cleanup_(election_unrefp) Election *keep = election_ref(e);

        if (e->last && election_term_equal(e->last, t))
                return;
        /* Our candidacy went away (evicted, left elsewhere): don't resurrect it after a restart. Only a
         * term seen after one that listed us counts: a sync Enter can overtake queued older terms. */
        if (term_has_candidate(t, e->id))
                e->seen_self = true;
        else if (e->seen_self) {
                e->seen_self = false;
                if (e->enters_pending == 0)
                        e->entered = false;
        }

        election_term_unref(e->last);
        e->last = election_term_ref(t);
        e->gone = false;
        if (e->watch_handler)
                e->watch_handler(e, 0, t, e->watch_userdata);
}

static void watch_fail(Election *e, int status) {
        _cleanup_(election_unrefp) Election *keep = election_ref(e);

        if (e->watch_handler)
                e->watch_handler(e, status, NULL, e->watch_userdata);
}

/* Tells the handler once that the daemon is away, however many ways we notice it. */
static void watch_gone(Election *e) {
        if (e->gone)
                return;
        e->gone = true;
        watch_fail(e, -ESHUTDOWN);
}

static int on_term_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(election_term_unrefp) ElectionTerm *t = NULL;
        Election *e = userdata;
        int r;

        /* Signals that arrive before the GetTerm reply happened before it: that reply covers them. */
        if (!e->synced)
                return 0;

        r = term_read(m, &t);
        if (r < 0)
                return 0; /* malformed signal: nothing to deliver */
        watch_deliver(e, t);
        return 0;
}

static int on_sync_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(election_term_unrefp) ElectionTerm *t = NULL;
        Election *e = userdata;
        const sd_bus_error *error;
        int r;

        e->sync_slot = sd_bus_slot_unref(e->sync_slot);

        error = sd_bus_message_get_error(reply);
        if (error) {
                r = client_set_error(e->client, error, -sd_bus_message_get_errno(reply));
                if (sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                           SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED, SD_BUS_ERROR_TIMEOUT) ||
                    strncmp(error->name, "org.freedesktop.DBus.Error.Spawn.", 33) == 0) {
                        /* The daemon died under us or is not there: NameOwnerChanged triggers the next
                         * read, and a slow retry covers a hung daemon or a change we saw earlier. */
                        watch_gone(e);
                        watch_arm_retry(e);
                } else
                        watch_fail(e, r);
                return 0;
        }

        r = term_read(reply, &t);
        if (r < 0) {
                watch_fail(e, r);
                return 0;
        }
        e->synced = true;
        watch_deliver(e, t);
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Election *e = userdata;
        int r;

        e->retry = sd_event_source_disable_unref(e->retry);
        if (e->synced || e->sync_slot)
                return 0;
        r = watch_sync(e);
        if (r < 0)
                watch_fail(e, r);
        return 0;
}

static void watch_arm_retry(Election *e) {
        sd_event *event = sd_bus_get_event(e->client->bus);

        if (!event || e->retry)
                return;
        (void) sd_event_add_time_relative(event, &e->retry, CLOCK_MONOTONIC, WATCH_RETRY_USEC, 0, on_retry, e);
}

static int watch_sync(Election *e) {
        e->retry = sd_event_source_disable_unref(e->retry);
        e->synced = false;
        e->seen_self = false;
        e->sync_slot = sd_bus_slot_unref(e->sync_slot);
        return sd_bus_call_method_async(e->client->bus, &e->sync_slot, BUS_NAME, e->path, ELECTION_INTERFACE,
                                        "GetTerm", on_sync_reply, e, NULL);
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        /* The handler may drop the last reference to the handle. */
        _cleanup_(election_unrefp) Election *e = election_ref(userdata);
        const char *name, *old_owner, *new_owner;
        int r;

        r = sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner);
        if (r < 0 || strcmp(name, BUS_NAME) != 0)
                return 0;

        if (old_owner[0]) {
                /* The daemon is gone: forget the last term so that the restart re-delivers it. */
                e->synced = false;
                e->sync_slot = sd_bus_slot_unref(e->sync_slot);
                e->last = election_term_unref(e->last);
                watch_gone(e);
                if (!e->watch_handler)
                        return 0;
        }

        if (new_owner[0]) {
                e->last = election_term_unref(e->last);
                /* Re-enter first: the daemon answers in order, and the watch reports what follows. */
                if (e->reenter && e->entered && !e->persistent)
                        (void) election_enter_async(e, NULL, NULL);
                r = watch_sync(e);
                if (r < 0)
                        watch_fail(e, r);
        }
        return 0;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Election *e = userdata;

        watch_fail(e, -ECONNRESET);
        return 0;
}

_public_ int election_watch(Election *e, election_watch_handler_t handler, void *userdata) {
        sd_bus *bus;
        int r;

        if (!e || !handler)
                return -EINVAL;
        if (e->watch_handler)
                return -EBUSY;
        bus = e->client->bus;
        if (!sd_bus_get_event(bus))
                return -ENXIO;

        e->watch_handler = handler;
        e->watch_userdata = userdata;

        /* Subscribe before reading the term: the dbus-daemon handles our AddMatch calls before it
         * forwards the GetTerm sent after them, so no change can fall between the two. */
        r = sd_bus_match_signal_async(bus, &e->term_slot, BUS_NAME, e->path, ELECTION_INTERFACE, "TermChanged",
                                      on_term_changed, NULL, e);
        if (r < 0)
                goto fail;
        r = sd_bus_add_match_async(bus, &e->owner_slot,
                                   OWNER_CHANGED_MATCH,
                                   on_owner_changed, NULL, e);
        if (r < 0)
                goto fail;
        r = sd_bus_match_signal(bus, &e->disconnect_slot, NULL, "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, e);
        if (r < 0)
                goto fail;
        r = watch_sync(e);
        if (r < 0)
                goto fail;
        return 0;

fail:
        watch_stop(e);
        return r;
}

_public_ int election_unwatch(Election *e) {
        if (!e)
                return -EINVAL;
        if (!e->watch_handler)
                return 0;
        watch_stop(e);
        return 1;
}

/* ---- LocalLeader ----------------------------------------------------------------------------- */

_public_ int election_get_local_leader(Election *e) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int b = 0, r;

        if (!e)
                return -EINVAL;
        r = sd_bus_get_property_trivial(e->client->bus, BUS_NAME, e->path, ELECTION_INTERFACE, "LocalLeader",
                                        &error, 'b', &b);
        if (r < 0)
                return client_set_error(e->client, &error, r);
        client_clear_error(e->client);
        return !!b;
}

static void ll_stop(Election *e) {
        e->ll_props_slot = sd_bus_slot_unref(e->ll_props_slot);
        e->ll_owner_slot = sd_bus_slot_unref(e->ll_owner_slot);
        e->ll_sync_slot = sd_bus_slot_unref(e->ll_sync_slot);
        e->ll_handler = NULL;
        e->ll_userdata = NULL;
        e->ll_synced = false;
        e->ll_value = -1;
}

static void ll_deliver(Election *e, int status, int value) {
        _cleanup_(election_unrefp) Election *keep = election_ref(e);

        if (status >= 0 && value == e->ll_value)
                return;
        e->ll_value = status < 0 ? -1 : value;
        if (e->ll_handler)
                e->ll_handler(e, status, value, e->ll_userdata);
}

static int ll_sync(Election *e);

static int on_ll_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Election *e = userdata;
        const sd_bus_error *error;
        int b = 0, r;

        e->ll_sync_slot = sd_bus_slot_unref(e->ll_sync_slot);
        error = sd_bus_message_get_error(reply);
        if (error) {
                /* Unknown leadership counts as not leading; NameOwnerChanged brings the next read. */
                r = client_set_error(e->client, error, -sd_bus_message_get_errno(reply));
                ll_deliver(e, 0, 0);
                return 0;
        }
        r = sd_bus_message_read(reply, "v", "b", &b);
        if (r < 0) {
                ll_deliver(e, r, 0);
                return 0;
        }
        e->ll_synced = true;
        ll_deliver(e, 0, !!b);
        return 0;
}

static int ll_sync(Election *e) {
        e->ll_synced = false;
        e->ll_sync_slot = sd_bus_slot_unref(e->ll_sync_slot);
        return sd_bus_call_method_async(e->client->bus, &e->ll_sync_slot, BUS_NAME, e->path,
                                        "org.freedesktop.DBus.Properties", "Get", on_ll_reply, e, "ss",
                                        ELECTION_INTERFACE, "LocalLeader");
}

static int on_ll_properties(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Election *e = userdata;
        const char *iface, *key;
        int r, value = -1;

        /* Older than the value the pending Get will return. */
        if (!e->ll_synced)
                return 0;

        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0)
                return 0;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return 0;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return 0;
                if (strcmp(key, "LocalLeader") == 0) {
                        int b = 0;
                        r = sd_bus_message_read(m, "v", "b", &b);
                        if (r < 0)
                                return 0;
                        value = !!b;
                } else {
                        r = sd_bus_message_skip(m, "v");
                        if (r < 0)
                                return 0;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return 0;
        }
        if (r < 0)
                return 0;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return 0;

        if (value >= 0) {
                ll_deliver(e, 0, value);
                return 0;
        }

        /* Invalidated without a value: read it. */
        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return 0;
        while ((r = sd_bus_message_read(m, "s", &key)) > 0)
                if (strcmp(key, "LocalLeader") == 0) {
                        r = ll_sync(e);
                        if (r < 0)
                                ll_deliver(e, r, 0);
                        break;
                }
        return 0;
}

static int on_ll_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(election_unrefp) Election *e = election_ref(userdata);
        const char *name, *old_owner, *new_owner;
        int r;

        r = sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner);
        if (r < 0 || strcmp(name, BUS_NAME) != 0)
                return 0;
        if (old_owner[0]) {
                e->ll_synced = false;
                e->ll_sync_slot = sd_bus_slot_unref(e->ll_sync_slot);
                ll_deliver(e, 0, 0);
        }
        if (new_owner[0] && e->ll_handler) {
                r = ll_sync(e);
                if (r < 0)
                        ll_deliver(e, r, 0);
        }
        return 0;
}

_public_ int election_watch_local_leader(Election *e, election_local_leader_handler_t handler, void *userdata) {
        _cleanup_free_ char *match = NULL;
        sd_bus *bus;
        int r;

        if (!e || !handler)
                return -EINVAL;
        if (e->ll_handler)
                return -EBUSY;
        bus = e->client->bus;
        if (!sd_bus_get_event(bus))
                return -ENXIO;

        if (asprintf(&match,
                     "type='signal',sender='" BUS_NAME "',path='%s',interface='org.freedesktop.DBus.Properties',"
                     "member='PropertiesChanged',arg0='" ELECTION_INTERFACE "'", e->path) < 0)
                return -ENOMEM;

        e->ll_handler = handler;
        e->ll_userdata = userdata;
        e->ll_value = -1;

        /* Same order as the term watch: subscribe, then read. */
        r = sd_bus_add_match_async(bus, &e->ll_props_slot, match, on_ll_properties, NULL, e);
        if (r < 0)
                goto fail;
        r = sd_bus_add_match_async(bus, &e->ll_owner_slot,
                                   OWNER_CHANGED_MATCH,
                                   on_ll_owner_changed, NULL, e);
        if (r < 0)
                goto fail;
        r = ll_sync(e);
        if (r < 0)
                goto fail;
        return 0;

fail:
        ll_stop(e);
        return r;
}

_public_ int election_unwatch_local_leader(Election *e) {
        if (!e)
                return -EINVAL;
        if (!e->ll_handler)
                return 0;
        ll_stop(e);
        return 1;
}

/* ---- lease ----------------------------------------------------------------------------------- */

#define LEASE_RETRY_USEC (1000 * UINT64_C(1000))

static inline void election_client_unrefp(ElectionClient **c) {
        election_client_unref(*c);
}

static void lease_stop(ElectionClient *c) {
        c->lease_signal_slot = sd_bus_slot_unref(c->lease_signal_slot);
        c->lease_owner_slot = sd_bus_slot_unref(c->lease_owner_slot);
        c->lease_call_slot = sd_bus_slot_unref(c->lease_call_slot);
        c->lease_retry = sd_event_source_disable_unref(c->lease_retry);
        c->lease_handler = NULL;
        c->lease_userdata = NULL;
        c->lease_synced = false;
}

static void lease_deliver(ElectionClient *c, int status, uint64_t expiry) {
        _cleanup_(election_client_unrefp) ElectionClient *keep = election_client_ref(c);

        if (c->lease_handler)
                c->lease_handler(c, status, status < 0 ? 0 : expiry, c->lease_userdata);
}

static int lease_call(ElectionClient *c);

static int on_lease_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        ElectionClient *c = userdata;
        int r;

        c->lease_retry = sd_event_source_disable_unref(c->lease_retry);
        if (c->lease_synced || c->lease_call_slot)
                return 0;
        r = lease_call(c);
        if (r < 0)
                lease_deliver(c, r, 0);
        return 0;
}

static int on_lease_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        ElectionClient *c = userdata;
        const sd_bus_error *error;
        uint64_t expiry = 0;
        int r;

        c->lease_call_slot = sd_bus_slot_unref(c->lease_call_slot);
        error = sd_bus_message_get_error(reply);
        if (error) {
                r = client_set_error(c, error, -sd_bus_message_get_errno(reply));
                if (sd_bus_error_has_names(error, SD_BUS_ERROR_UNKNOWN_METHOD, SD_BUS_ERROR_UNKNOWN_INTERFACE,
                                           SD_BUS_ERROR_UNKNOWN_OBJECT)) {
                        /* An older daemon: NameOwnerChanged asks its successor. */
                        lease_deliver(c, -EOPNOTSUPP, 0);
                        return 0;
                }
                if (sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                           SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED, SD_BUS_ERROR_TIMEOUT) ||
                    strncmp(error->name, "org.freedesktop.DBus.Error.Spawn.", 33) == 0) {
                        /* Gone or not answering (stopped, stalled): ask again later. */
                        lease_deliver(c, -ESHUTDOWN, 0);
                        if (!c->lease_retry && c->lease_handler)
                                (void) sd_event_add_time_relative(sd_bus_get_event(c->bus), &c->lease_retry,
                                                                  CLOCK_MONOTONIC, LEASE_RETRY_USEC, 0,
                                                                  on_lease_retry, c);
                        return 0;
                }
                lease_deliver(c, r, 0);
                return 0;
        }
        r = sd_bus_message_read(reply, "t", &expiry);
        if (r < 0) {
                lease_deliver(c, r, 0);
                return 0;
        }
        client_clear_error(c);
        c->lease_synced = true;
        lease_deliver(c, 0, expiry);
        return 0;
}

static int lease_call(ElectionClient *c) {
        c->lease_synced = false;
        c->lease_call_slot = sd_bus_slot_unref(c->lease_call_slot);
        return sd_bus_call_method_async(c->bus, &c->lease_call_slot, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE,
                                        "WatchLease", on_lease_reply, c, NULL);
}

static int on_lease_renewed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        ElectionClient *c = userdata;
        uint64_t expiry;

        /* Older than the answer of the WatchLease in flight. */
        if (!c->lease_synced)
                return 0;
        if (sd_bus_message_read(m, "t", &expiry) < 0)
                return 0;
        lease_deliver(c, 0, expiry);
        return 0;
}

static int on_lease_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(election_client_unrefp) ElectionClient *c = election_client_ref(userdata);
        const char *name, *old_owner, *new_owner;
        int r;

        r = sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner);
        if (r < 0 || strcmp(name, BUS_NAME) != 0)
                return 0;
        if (old_owner[0]) {
                /* A new daemon knows nothing of our watch: ask it when it is there. */
                c->lease_synced = false;
                c->lease_call_slot = sd_bus_slot_unref(c->lease_call_slot);
                lease_deliver(c, -ESHUTDOWN, 0);
        }
        if (new_owner[0] && c->lease_handler) {
                r = lease_call(c);
                if (r < 0)
                        lease_deliver(c, r, 0);
        }
        return 0;
}

_public_ int election_client_watch_lease(ElectionClient *c, election_lease_handler_t handler, void *userdata) {
        int r;

        if (!c || !handler)
                return -EINVAL;
        if (c->lease_handler)
                return -EBUSY;
        if (!sd_bus_get_event(c->bus))
                return -ENXIO;

        c->lease_handler = handler;
        c->lease_userdata = userdata;

        /* Subscribe, then ask: the answer is newer than any signal that arrives before it. */
        r = sd_bus_match_signal_async(c->bus, &c->lease_signal_slot, BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE,
                                      "LeaseRenewed", on_lease_renewed, NULL, c);
        if (r < 0)
                goto fail;
        r = sd_bus_add_match_async(c->bus, &c->lease_owner_slot,
                                   OWNER_CHANGED_MATCH,
                                   on_lease_owner_changed, NULL, c);
        if (r < 0)
                goto fail;
        r = lease_call(c);
        if (r < 0)
                goto fail;
        return 0;

fail:
        lease_stop(c);
        return r;
}

_public_ int election_client_unwatch_lease(ElectionClient *c) {
        if (!c)
                return -EINVAL;
        if (!c->lease_handler)
                return 0;
        lease_stop(c);
        return 1;
}
