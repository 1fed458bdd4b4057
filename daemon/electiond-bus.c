/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <inttypes.h>

#include "electiond-bus.h"
#include "electiond-cluster.h"
#include "electiond-metrics.h"
#include "electiond-util.h"

#define POLKIT_NAME      "org.freedesktop.PolicyKit1"
#define POLKIT_PATH      "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"

/* One bus connection that owns connection-bound candidacies: when it goes, so do they. Nothing
 * here waits for the bus: the NameOwnerChanged match and the GetNameOwner check are both
 * asynchronous (sd_bus_track_add_name() would ask GetNameOwner synchronously, stalling the whole
 * event loop, lease deadline included, for as long as the bus takes to answer). */
typedef struct TrackedOwner {
        BusEdge *edge;
        char *owner;
        sd_bus_slot *match_slot;  /* NameOwnerChanged(owner, ...): the connection left */
        sd_bus_slot *check_slot;  /* GetNameOwner: catches a caller that left before the match existed */
} TrackedOwner;

/* A mutating method call between its arrival and its reply. */
typedef struct Call {
        BusEdge *edge;
        sd_bus_message *message;
        Command *command;         /* until submitted */
        uint32_t uid;             /* the caller's, once known */
        sd_bus_slot *slot;        /* while waiting for the bus: the caller's uid, or polkit */
        GList link;               /* in BusEdge.waiting while slot is set */
} Call;

struct BusEdge {
        Manager *manager;
        sd_bus *bus;
        sd_bus_slot *manager_slot;
        sd_bus_slot *object_manager_slot;
        sd_bus_slot *election_slot;
        sd_bus_slot *enumerator_slot;
        GHashTable *tracks;       /* owner -> TrackedOwner* */
        GHashTable *local_leader; /* election name -> LocalLeaderSeen, as last announced */
        GQueue waiting;           /* Call*, waiting for the bus driver (uid) or polkit */
        GHashTable *uids;         /* unique name -> uid + 1: unique names are never reused */
        int last_quorate;         /* -1 unknown; else as last announced */
        char *last_members;       /* fingerprint of Members as last announced */
        GHashTable *lease_watchers; /* unique name -> LeaseWatcher*: WatchLease callers still connected */
        uint64_t lease_sent;      /* expiry as last sent to the watchers */
        GQueue draining;          /* DrainCall*, Drain/Undrain calls not yet answered */
        ManagerObserver observer; /* registered with the manager for the edge's whole life */
};

/* What the edge does on the manager's notifications (ManagerObserver, see bus_edge_new()). */
/* Called by the manager once per change, in commit order. */
static void bus_edge_term_changed(BusEdge *b, const Election *e);
/* Quorum / membership / lease changes: re-evaluate and emit PropertiesChanged where values moved. */
static void bus_edge_cluster_changed(BusEdge *b);
/* manager_caught_up() became true: announce every election as it is now. */
static void bus_edge_caught_up(BusEdge *b);
/* This node's drained elections (Manager.Drained) may have changed. */
static void bus_edge_drained_changed(BusEdge *b);
/* The cluster protocol version moved (Manager.ProtocolVersion). */
static void bus_edge_protocol_changed(BusEdge *b);
/* Is this bus connection (unique name) still tracked as an owner of candidacies? */
static bool bus_edge_owner_tracked(BusEdge *b, const char *owner);
/* The lease may have moved: emit LeaseRenewed if it did and someone called WatchLease. */
static void bus_edge_lease_renewed(BusEdge *b);

/* A WatchLease caller, watched without waiting for the bus (as TrackedOwner). */
typedef struct LeaseWatcher {
        BusEdge *edge;
        char *name;
        sd_bus_slot *match_slot;  /* NameOwnerChanged(name, ...): it left */
        sd_bus_slot *check_slot;  /* GetNameOwner: catches a caller that left before the match existed */
} LeaseWatcher;

/* LocalLeader as last announced, and when it last flipped (CLOCK_MONOTONIC µs): observers see the
 * signal late, so histories take the node's own step-down instant from LocalLeaderChanged. */
typedef struct LocalLeaderSeen {
        bool value;
        uint64_t changed;
} LocalLeaderSeen;

/* Records the current value; true if it differs from the last one announced (unknown = false). */
static bool local_leader_update(BusEdge *b, const Election *e, bool *ret_known) {
        bool local = manager_local_leader(b->manager, e);
        LocalLeaderSeen *seen = g_hash_table_lookup(b->local_leader, e->name);

        if (ret_known)
                *ret_known = seen != NULL;
        if (!seen) {
                seen = g_new0(LocalLeaderSeen, 1);
                g_hash_table_insert(b->local_leader, g_strdup(e->name), seen);
        }
        if (seen->value == local)
                return false;
        if (seen->value && !local)
                metrics_get()->step_downs++;
        seen->value = local;
        seen->changed = now_monotonic_usec();
        return true;
}

/* Querying the bus for a sender's uid is a synchronous round trip; do it once per connection. */
#define UID_CACHE_MAX 4096

char *bus_election_path(const char *name) {
        _cleanup_free_ char *p = NULL;

        if (sd_bus_path_encode(ELECTIOND_ELECTION_PREFIX, name, &p) < 0)
                return NULL;
        return g_strdup(p);
}

/* The election name of an object path, or NULL if the path is not the canonical path of a valid
 * name (so each election has exactly one object). */
static char *election_name_from_path(const char *path) {
        _cleanup_free_ char *name = NULL;
        g_autofree char *canonical = NULL;

        if (sd_bus_path_decode(path, ELECTIOND_ELECTION_PREFIX, &name) <= 0)
                return NULL;
        if (!election_string_valid(name))
                return NULL;
        canonical = bus_election_path(name);
        if (!streq_ptr(canonical, path))
                return NULL;
        return g_strdup(name);
}

static const Election *edge_election(BusEdge *b, const char *name) {
        return election_state_get(manager_get_state(b->manager), name);
}

static int append_term(sd_bus_message *reply, const Term *t) {
        int r;

        r = sd_bus_message_append(reply, "ts", t->id, t->leader);
        if (r < 0)
                return r;
        return sd_bus_message_append_strv(reply, t->candidates);
}

static int reply_term(sd_bus_message *call, const Term *t) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(call, &reply);
        if (r < 0)
                return r;
        r = append_term(reply, t);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ---- Calls ---- */

static Call *call_free(Call *c) {
        if (!c)
                return NULL;
        if (c->slot) {
                c->slot = sd_bus_slot_unref(c->slot);
                g_queue_unlink(&c->edge->waiting, &c->link);
        }
        sd_bus_message_unref(c->message);
        command_free(c->command);
        g_free(c);
        return NULL;
}

static void call_reply_errno(Call *c, int error) {
        int r = sd_bus_reply_method_errnof(c->message, error, "Request failed: %m");
        if (r < 0)
                log_debug_errno(r, "Failed to send error reply: %m");
}

static int reply_quota_exceeded(Call *c, Manager *m) {
        return sd_bus_reply_method_errorf(c->message, ELECTIOND_ERROR_QUOTA_EXCEEDED,
                                          "User %" PRIu32 " holds as many persistent candidacies as allowed "
                                          "(MaxPersistentPerUser=%u); more need uid 0 or polkit action %s.",
                                          c->uid, manager_get_config(m)->max_persistent_per_user,
                                          ELECTIOND_POLKIT_ACTION_ENTER_PERSISTENT);
}

static void on_call_done(Manager *m, int status, ElectionResult result, const Term *term, void *userdata) {
        Call *c = userdata;
        const char *name = sd_bus_message_get_member(c->message);
        int r;

        if (status == -ETIMEDOUT)
                /* never left this node: definitely not applied */
                r = sd_bus_reply_method_errorf(c->message, ELECTIOND_ERROR_NO_QUORUM,
                                               "The change could not be committed in time; it was not applied.");
        else if (status == MANAGER_OUTCOME_UNKNOWN)
                r = sd_bus_reply_method_errorf(c->message, ELECTIOND_ERROR_OUTCOME_UNKNOWN,
                                               "The change was submitted but not seen committed in time; "
                                               "it may still take effect: read the term to learn the outcome.");
        else if (status < 0) {
                call_reply_errno(c, status);
                r = 0;
        } else
                switch (result) {
                case ELECTION_CHANGED:
                case ELECTION_NOOP:
                case ELECTION_DUPLICATE:
                        r = reply_term(c->message, term);
                        break;
                case ELECTION_NOT_CANDIDATE:
                        r = sd_bus_reply_method_errorf(c->message, ELECTIOND_ERROR_NOT_CANDIDATE,
                                                       "Not a candidate of this election.");
                        break;
                case ELECTION_LIMIT_EXCEEDED:
                        /* An election that does not exist yet is still at term 0. */
                        r = sd_bus_reply_method_errorf(c->message, ELECTIOND_ERROR_LIMIT_EXCEEDED,
                                                       term->id == 0 ? "Too many elections (MaxElections=%u)."
                                                                     : "Too many candidates (MaxCandidates=%u).",
                                                       term->id == 0 ? manager_get_config(m)->max_elections
                                                                     : manager_get_config(m)->max_candidates);
                        break;
                case ELECTION_ACCESS_DENIED:
                        r = sd_bus_reply_method_errorf(c->message, SD_BUS_ERROR_ACCESS_DENIED,
                                                       "Not allowed to change this candidacy.");
                        break;
                case ELECTION_QUOTA_EXCEEDED:
                        r = reply_quota_exceeded(c, m);
                        break;
                case ELECTION_INVALID:
                default:
                        r = sd_bus_reply_method_errorf(c->message, SD_BUS_ERROR_INVALID_ARGS,
                                                       "Invalid request.");
                        break;
                }
        if (r < 0)
                log_debug_errno(r, "Failed to reply to %s(): %m", name);

        call_free(c);
}

static void call_submit(Call *c) {
        Command *cmd;
        int r;

        /* Without a lease this node is cut off (or just resuming) and may be fenced: a change it
         * got acknowledged could be undone by the cluster's removal of its candidacies at once. */
        if (!manager_quorate(c->edge->manager)) {
                r = sd_bus_reply_method_errorf(c->message, ELECTIOND_ERROR_NO_QUORUM,
                                               "This node has no quorum: no change is accepted here now.");
                if (r < 0)
                        log_debug_errno(r, "Failed to reply: %m");
                call_free(c);
                return;
        }

        cmd = g_steal_pointer(&c->command);
        r = manager_submit(c->edge->manager, cmd, on_call_done, c);
        if (r < 0) {
                call_reply_errno(c, r);
                call_free(c);
        }
}

/* polkit's answer: true if authorized. Failures deny. */
static bool polkit_reply_authorized(sd_bus_message *reply) {
        const sd_bus_error *e;
        int authorized = false, challenge = false, r;

        e = sd_bus_message_get_error(reply);
        if (e) {
                log_debug("polkit check failed (%s: %s), denying.", e->name, e->message ?: "");
                return false;
        }
        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                log_debug_errno(r, "Failed to parse polkit reply, denying: %m");
                return false;
        }
        return authorized;
}

static void call_check_manage(Call *c);

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        int r;

        c->slot = sd_bus_slot_unref(c->slot);
        g_queue_unlink(&c->edge->waiting, &c->link);

        if (!polkit_reply_authorized(reply)) {
                r = sd_bus_reply_method_errorf(c->message, SD_BUS_ERROR_ACCESS_DENIED,
                                               "Not authorized: this needs uid 0 or polkit action %s.",
                                               ELECTIOND_POLKIT_ACTION);
                if (r < 0)
                        log_debug_errno(r, "Failed to send reply: %m");
                call_free(c);
                return 0;
        }

        c->command->flags |= COMMAND_FLAG_AUTHORIZED;
        call_submit(c);
        return 0;
}

/* enter-persistent: authorized, the Enter goes without the quota; else QuotaExceeded. */
static int on_quota_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        int r;

        c->slot = sd_bus_slot_unref(c->slot);
        g_queue_unlink(&c->edge->waiting, &c->link);

        if (!polkit_reply_authorized(reply)) {
                r = reply_quota_exceeded(c, c->edge->manager);
                if (r < 0)
                        log_debug_errno(r, "Failed to send reply: %m");
                call_free(c);
                return 0;
        }

        c->command->max_persistent = 0;
        call_check_manage(c);
        return 0;
}

/* Asks polkit whether the sender of msg may do action, without blocking: callback gets the reply. */
static int polkit_check_async(sd_bus *bus, sd_bus_slot **ret_slot, sd_bus_message *msg, const char *action,
                              sd_bus_message_handler_t callback, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *req = NULL;
        const char *sender = sd_bus_message_get_sender(msg);
        int r;

        if (!sender)
                return -EPERM;
        r = sd_bus_message_new_method_call(bus, &req, POLKIT_NAME, POLKIT_PATH, POLKIT_INTERFACE, "CheckAuthorization");
        if (r < 0)
                return r;
        r = sd_bus_message_append(req, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name", "s", sender, action, 0,
                                  UINT32_C(1) /* AllowUserInteraction */, "");
        if (r < 0)
                return r;
        return sd_bus_call_async(bus, ret_slot, req, callback, userdata, 0);
}

/* Asks polkit about action without blocking; the call continues in callback. */
static int call_authorize(Call *c, const char *action, sd_bus_message_handler_t callback) {
        int r;

        r = polkit_check_async(c->edge->bus, &c->slot, c->message, action, callback, c);
        if (r < 0)
                return r;
        g_queue_push_tail_link(&c->edge->waiting, &c->link);
        return 0;
}

/* ---- Connection tracking ---- */

static TrackedOwner *tracked_owner_free(TrackedOwner *o) {
        if (!o)
                return NULL;
        sd_bus_slot_unref(o->check_slot);
        sd_bus_slot_unref(o->match_slot);
        g_free(o->owner);
        g_free(o);
        return NULL;
}

static void tracked_owner_destroy(void *p) {
        tracked_owner_free(p);
}

static void on_drop_owner_done(Manager *m, int status, ElectionResult result, const Term *term, void *userdata) {
        g_autofree char *owner = userdata;

        if (status < 0)
                log_warning_errno(status, "Failed to remove candidacies of departed connection %s: %m", owner);
        else
                log_debug("Candidacies of departed connection %s removed.", owner);
}

static void tracked_owner_gone(TrackedOwner *o) {
        BusEdge *b = o->edge;
        char *owner;
        Command *c;
        int r;

        log_debug("Bus connection %s went away.", o->owner);
        g_hash_table_remove(b->uids, o->owner);

        c = command_new(COMMAND_DROP_OWNER);
        c->election = g_strdup("");
        c->id = g_strdup("");
        c->node = g_strdup(manager_node_name(b->manager));
        c->owner = g_strdup(o->owner);
        c->run = manager_run_id(b->manager);
        owner = g_strdup(o->owner);
        r = manager_submit(b->manager, c, on_drop_owner_done, owner);
        if (r < 0) {
                log_warning_errno(r, "Failed to submit removal of %s's candidacies: %m", o->owner);
                g_free(owner);
        }

        g_hash_table_remove(b->tracks, o->owner); /* frees o */
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        TrackedOwner *o = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        /* a unique name is never owned again once it is gone */
        if (g_str_equal(name, o->owner) && (!new_owner || !*new_owner))
                tracked_owner_gone(o); /* frees o and its match (sd-bus holds the slot meanwhile) */
        return 0;
}

static int on_match_installed(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        TrackedOwner *o = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        /* Not fatal for the daemon; the candidacies of this connection stay until it re-enters
         * or the daemon restarts. */
        if (e)
                log_warning("Cannot watch bus connection %s (%s: %s): its candidacies are not removed when it leaves.",
                            o->owner, e->name, e->message ?: "");
        return 0;
}

static int on_name_owner_checked(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        TrackedOwner *o = userdata;

        o->check_slot = sd_bus_slot_unref(o->check_slot);
        /* Only a definite "no such name" means gone; a slow bus is no reason to drop anyone. */
        if (sd_bus_message_is_method_error(reply, "org.freedesktop.DBus.Error.NameHasNoOwner"))
                tracked_owner_gone(o);
        return 0;
}

static int edge_track_owner(BusEdge *b, const char *owner) {
        g_autofree char *match = NULL;
        TrackedOwner *o;
        int r;

        if (g_hash_table_contains(b->tracks, owner))
                return 0;

        o = g_new0(TrackedOwner, 1);
        o->edge = b;
        o->owner = g_strdup(owner);

        match = g_strdup_printf("type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'", owner);
        r = sd_bus_add_match_async(b->bus, &o->match_slot, match, on_name_owner_changed, on_match_installed, o);
        if (r < 0)
                goto fail;
        /* The bus handles our messages in order: the match is installed before this query is
         * answered, so a connection that left earlier is caught here and one that leaves later by
         * the match. */
        r = sd_bus_call_method_async(b->bus, &o->check_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetNameOwner", on_name_owner_checked, o, "s", owner);
        if (r < 0)
                goto fail;

        g_hash_table_insert(b->tracks, o->owner, o);
        return 0;

fail:
        tracked_owner_free(o);
        return log_error_errno(r, "Failed to track bus connection %s: %m", owner);
}

/* ---- Election object ---- */

static int election_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                         void **ret_found, sd_bus_error *error) {
        g_autofree char *name = election_name_from_path(path);

        if (!name)
                return 0;
        *ret_found = userdata;
        return 1;
}

static int election_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes, sd_bus_error *error) {
        BusEdge *b = userdata;
        g_autoptr(GPtrArray) list = election_state_list(manager_get_state(b->manager));
        char **nodes;
        unsigned n = 0;

        if (!manager_caught_up(b->manager))
                g_ptr_array_set_size(list, 0); /* announced with InterfacesAdded once caught up */

        /* sd-bus frees this with free(). */
        nodes = calloc(list->len + 1, sizeof(char *));
        if (!nodes)
                return -ENOMEM;
        for (unsigned i = 0; i < list->len; i++) {
                const Election *e = list->pdata[i];
                char *p = NULL;

                if (sd_bus_path_encode(ELECTIOND_ELECTION_PREFIX, e->name, &p) < 0)
                        continue;
                nodes[n++] = p;
        }
        *ret_nodes = nodes;
        return 1;
}

/* A clustered node that has not caught up since it started may hold an older state than it
 * showed before: it shows no terms until then. */
static int edge_check_caught_up(BusEdge *b, sd_bus_error *error) {
        if (manager_caught_up(b->manager))
                return 0;
        return sd_bus_error_setf(error, ELECTIOND_ERROR_NO_QUORUM,
                                 "This node has not caught up with its cluster since it started: no terms to show yet.");
}

static int method_get_term(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusEdge *b = userdata;
        g_autofree char *name = election_name_from_path(sd_bus_message_get_path(msg));
        g_autoptr(Term) t = NULL;
        int r;

        if (!name)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No such election object.");
        r = edge_check_caught_up(b, error);
        if (r < 0)
                return r;
        t = term_new_from_election(edge_election(b, name));
        return reply_term(msg, t);
}

/* The caller's uid if known (unique names are never reused, so it cannot change). */
static bool edge_cached_uid(BusEdge *b, const char *sender, uid_t *ret) {
        gpointer v;

        if (!sender || !(v = g_hash_table_lookup(b->uids, sender)))
                return false;
        *ret = (uid_t) (GPOINTER_TO_SIZE(v) - 1);
        return true;
}

static void edge_cache_uid(BusEdge *b, const char *sender, uid_t uid) {
        if (g_hash_table_size(b->uids) >= UID_CACHE_MAX)
                g_hash_table_remove_all(b->uids);
        g_hash_table_insert(b->uids, g_strdup(sender), GSIZE_TO_POINTER((gsize) uid + 1));
}

static bool command_needs_authorization(BusEdge *b, const Command *c) {
        const Candidacy *cand;

        if (c->uid == 0)
                return false;

        switch (c->type) {
        case COMMAND_ANOINT:
        case COMMAND_PROMOTE:
        case COMMAND_EVICT:
                return true;
        case COMMAND_ENTER:
                /* Re-binding a candidacy another user holds. */
                cand = election_find(edge_election(b, c->election), c->id, NULL);
                return cand && cand->uid != c->uid;
        case COMMAND_LEAVE:
                /* Leaving another user's persistent candidacy. */
                cand = election_find(edge_election(b, c->election), c->id, NULL);
                return cand && cand->persistent && cand->uid != c->uid;
        default:
                return false;
        }
}

/* Whether a persistent Enter by a non-root caller would go beyond MaxPersistentPerUser= in the
 * committed state as this node has it (the rules decide again at apply: concurrent Enters). */
static bool call_over_quota(BusEdge *b, const Command *cmd, unsigned quota) {
        const ElectionState *s = manager_get_state(b->manager);
        const Candidacy *cand;

        cand = election_find(edge_election(b, cmd->election), cmd->id, NULL);
        if (cand && cand->persistent && cand->uid == cmd->uid)
                return false; /* a re-bind of its own: no new one */
        return election_state_persistent_count(s, cmd->uid) >= quota;
}

/* Anoint/Promote/Evict, a re-bind or Leave of another user's candidacy: root or polkit manage.
 * Then submits. Replies on every failure. */
static void call_check_manage(Call *c) {
        int r;

        if (!command_needs_authorization(c->edge, c->command)) {
                call_submit(c);
                return;
        }
        r = call_authorize(c, ELECTIOND_POLKIT_ACTION, on_polkit_reply);
        if (r < 0) {
                log_debug_errno(r, "Cannot ask polkit, denying: %m");
                r = sd_bus_reply_method_errorf(c->message, SD_BUS_ERROR_ACCESS_DENIED,
                                               "Not authorized: this needs uid 0 or polkit action %s.",
                                               ELECTIOND_POLKIT_ACTION);
                if (r < 0)
                        log_debug_errno(r, "Failed to send reply: %m");
                call_free(c);
        }
}

/* The call's uid is known: the quota of persistent Enters, authorization, then submit. Replies
 * on every failure. */
static void call_continue(Call *c, uid_t uid) {
        BusEdge *b = c->edge;
        Command *cmd = c->command;
        unsigned quota = manager_get_config(b->manager)->max_persistent_per_user;
        int r;

        c->uid = cmd->uid = (uint32_t) uid;
        if (uid == 0)
                cmd->flags |= COMMAND_FLAG_AUTHORIZED;

        /* Watch the caller's connection before the candidacy exists, so that its departure is
         * queued after the Enter and cannot be missed. */
        if (cmd->type == COMMAND_ENTER && !(cmd->flags & COMMAND_FLAG_PERSISTENT) && *cmd->owner) {
                r = edge_track_owner(b, cmd->owner);
                if (r < 0) {
                        call_reply_errno(c, r);
                        call_free(c);
                        return;
                }
        }

        /* Persistent candidacies outlive their caller: a non-root uid holds at most `quota` of
         * them, unless polkit lets it have more (then the command carries no quota). */
        if (cmd->type == COMMAND_ENTER && (cmd->flags & COMMAND_FLAG_PERSISTENT) && uid != 0 && quota > 0) {
                cmd->max_persistent = quota;
                if (call_over_quota(b, cmd, quota)) {
                        r = call_authorize(c, ELECTIOND_POLKIT_ACTION_ENTER_PERSISTENT, on_quota_polkit_reply);
                        if (r < 0) {
                                log_debug_errno(r, "Cannot ask polkit, refusing beyond the quota: %m");
                                r = reply_quota_exceeded(c, b->manager);
                                if (r < 0)
                                        log_debug_errno(r, "Failed to send reply: %m");
                                call_free(c);
                        }
                        return;
                }
        }

        call_check_manage(c);
}

static int on_uid_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const sd_bus_error *e;
        uint32_t uid;
        int r;

        c->slot = sd_bus_slot_unref(c->slot);
        g_queue_unlink(&c->edge->waiting, &c->link);

        e = sd_bus_message_get_error(reply);
        if (e) {
                /* typically the caller is gone already */
                log_debug("Cannot learn the uid of %s (%s: %s).", c->command->owner, e->name, e->message ?: "");
                call_reply_errno(c, -sd_bus_error_get_errno(e) ?: -EPERM);
                call_free(c);
                return 0;
        }
        r = sd_bus_message_read(reply, "u", &uid);
        if (r < 0) {
                log_debug_errno(r, "Failed to parse GetConnectionUnixUser reply: %m");
                call_reply_errno(c, r);
                call_free(c);
                return 0;
        }
        edge_cache_uid(c->edge, c->command->owner, (uid_t) uid);
        call_continue(c, (uid_t) uid);
        return 0;
}

static int election_mutate(sd_bus_message *msg, BusEdge *b, CommandType type, sd_bus_error *error) {
        g_autofree char *name = election_name_from_path(sd_bus_message_get_path(msg));
        g_autoptr(Command) cmd = NULL;
        const char *id, *sender;
        uint64_t flags = 0;
        uid_t uid;
        Call *c;
        int r;

        if (!name)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No such election object.");

        if (type == COMMAND_ENTER)
                r = sd_bus_message_read(msg, "st", &id, &flags);
        else
                r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;

        if (!*id)
                id = manager_node_name(b->manager);
        if (!election_string_valid(id))
                return sd_bus_error_setf(error, ELECTIOND_ERROR_INVALID_ID,
                                         "Candidate ids are 1-255 bytes of UTF-8 without control characters.");
        if (flags & ~UINT64_C(1))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown flags 0x%" PRIx64 " (only 1 = persistent is defined).", flags & ~UINT64_C(1));

        /* Every caller on a bus has a unique name; without one we cannot tell who it is. */
        sender = sd_bus_message_get_sender(msg);
        if (!sender)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "Caller without a bus name.");

        cmd = command_new(type);
        cmd->election = g_steal_pointer(&name);
        cmd->id = g_strdup(id);
        cmd->node = g_strdup(manager_node_name(b->manager));
        cmd->owner = g_strdup(sender);
        cmd->run = manager_run_id(b->manager);
        if (flags & 1)
                cmd->flags |= COMMAND_FLAG_PERSISTENT;

        c = g_new0(Call, 1);
        c->edge = b;
        c->message = sd_bus_message_ref(msg);
        c->link.data = c;
        c->command = g_steal_pointer(&cmd);

        if (edge_cached_uid(b, sender, &uid)) {
                call_continue(c, uid);
                return 1;
        }

        /* Ask the bus for the caller's uid without waiting for it: the answer continues the call
         * in on_uid_reply(). (sd_bus_query_sender_creds() would wait synchronously.) */
        r = sd_bus_call_method_async(b->bus, &c->slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetConnectionUnixUser", on_uid_reply, c, "s", sender);
        if (r < 0) {
                call_free(c);
                return r;
        }
        g_queue_push_tail_link(&b->waiting, &c->link);
        return 1;
}

static int method_enter(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusEdge *b = userdata;

        if (manager_get_config(b->manager)->witness)
                return sd_bus_error_setf(error, ELECTIOND_ERROR_WITNESS,
                                         "Node '%s' is a witness ([Node] Witness=yes): it votes but holds no candidacies.",
                                         manager_node_name(b->manager));
        return election_mutate(msg, userdata, COMMAND_ENTER, error);
}

static int method_leave(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return election_mutate(msg, userdata, COMMAND_LEAVE, error);
}

static int method_anoint(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return election_mutate(msg, userdata, COMMAND_ANOINT, error);
}

static int method_promote(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return election_mutate(msg, userdata, COMMAND_PROMOTE, error);
}

static int method_evict(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return election_mutate(msg, userdata, COMMAND_EVICT, error);
}

static int property_election(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusEdge *b = userdata;
        g_autofree char *name = election_name_from_path(path);
        const Election *e;
        g_autoptr(Term) t = NULL;
        int r;

        if (!name)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No such election object.");
        e = edge_election(b, name);

        if (streq_ptr(property, "Name"))
                return sd_bus_message_append(reply, "s", name);
        if (streq_ptr(property, "LocalLeaderChanged")) {
                const LocalLeaderSeen *seen = g_hash_table_lookup(b->local_leader, name);
                return sd_bus_message_append(reply, "t", seen ? seen->changed : UINT64_C(0));
        }
        if (streq_ptr(property, "LocalLeader"))
                return sd_bus_message_append(reply, "b", manager_local_leader(b->manager, e));

        r = edge_check_caught_up(b, error);
        if (r < 0)
                return r;
        t = term_new_from_election(e);
        if (streq_ptr(property, "TermId"))
                return sd_bus_message_append(reply, "t", t->id);
        if (streq_ptr(property, "Leader"))
                return sd_bus_message_append(reply, "s", t->leader);
        if (streq_ptr(property, "Candidates"))
                return sd_bus_message_append_strv(reply, t->candidates);
        if (streq_ptr(property, "Term")) {
                r = sd_bus_message_open_container(reply, 'r', "tsas");
                if (r < 0)
                        return r;
                r = append_term(reply, t);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(reply);
        }
        return -ENOENT;
}

static const sd_bus_vtable election_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("GetTerm",
                                 NULL, ,
                                 "tsas", SD_BUS_PARAM(id) SD_BUS_PARAM(leader) SD_BUS_PARAM(candidates),
                                 method_get_term, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Enter",
                                 "st", SD_BUS_PARAM(id) SD_BUS_PARAM(flags),
                                 "tsas", SD_BUS_PARAM(term_id) SD_BUS_PARAM(leader) SD_BUS_PARAM(candidates),
                                 method_enter, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Leave",
                                 "s", SD_BUS_PARAM(id),
                                 "tsas", SD_BUS_PARAM(term_id) SD_BUS_PARAM(leader) SD_BUS_PARAM(candidates),
                                 method_leave, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Anoint",
                                 "s", SD_BUS_PARAM(id),
                                 "tsas", SD_BUS_PARAM(term_id) SD_BUS_PARAM(leader) SD_BUS_PARAM(candidates),
                                 method_anoint, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Promote",
                                 "s", SD_BUS_PARAM(id),
                                 "tsas", SD_BUS_PARAM(term_id) SD_BUS_PARAM(leader) SD_BUS_PARAM(candidates),
                                 method_promote, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Evict",
                                 "s", SD_BUS_PARAM(id),
                                 "tsas", SD_BUS_PARAM(term_id) SD_BUS_PARAM(leader) SD_BUS_PARAM(candidates),
                                 method_evict, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("TermChanged", "tsas",
                                 SD_BUS_PARAM(id) SD_BUS_PARAM(leader) SD_BUS_PARAM(candidates), 0),
        SD_BUS_PROPERTY("Name", "s", property_election, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Term", "(tsas)", property_election, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("TermId", "t", property_election, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Leader", "s", property_election, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Candidates", "as", property_election, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LocalLeader", "b", property_election, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LocalLeaderChanged", "t", property_election, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END
};

/* ---- Manager object ---- */

/* ---- WatchLease / LeaseRenewed ---- */

static void lease_watcher_free(void *p) {
        LeaseWatcher *w = p;

        if (!w)
                return;
        sd_bus_slot_unref(w->check_slot);
        sd_bus_slot_unref(w->match_slot);
        g_free(w->name);
        g_free(w);
}

static void lease_watcher_gone(LeaseWatcher *w) {
        BusEdge *b = w->edge;

        g_hash_table_remove(b->lease_watchers, w->name); /* frees w */
        if (g_hash_table_size(b->lease_watchers) == 0)
                log_debug("The last WatchLease caller is gone: LeaseRenewed stops.");
}

static int on_lease_watcher_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        LeaseWatcher *w = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (g_str_equal(name, w->name) && (!new_owner || !*new_owner))
                lease_watcher_gone(w);
        return 0;
}

static int on_lease_watcher_checked(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        LeaseWatcher *w = userdata;

        w->check_slot = sd_bus_slot_unref(w->check_slot);
        /* Only a definite "no such name" means gone; the match catches everything later. */
        if (sd_bus_message_is_method_error(reply, "org.freedesktop.DBus.Error.NameHasNoOwner"))
                lease_watcher_gone(w);
        return 0;
}

static int method_watch_lease(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusEdge *b = userdata;
        const char *sender = sd_bus_message_get_sender(msg);
        g_autofree char *match = NULL;
        LeaseWatcher *w;
        int r;

        if (!sender)
                return sd_bus_reply_method_return(msg, "t", manager_lease_expiry(b->manager));

        if (g_hash_table_size(b->lease_watchers) > 0)
                bus_edge_lease_renewed(b); /* the others hear of any move first */
        else
                log_debug("First WatchLease caller %s: LeaseRenewed starts.", sender);

        if (!g_hash_table_contains(b->lease_watchers, sender)) {
                /* No sd_bus_track: its add_name() asks GetNameOwner synchronously. The bus handles
                 * our messages in order, so the match is in place before the check is answered. */
                w = g_new0(LeaseWatcher, 1);
                w->edge = b;
                w->name = g_strdup(sender);
                match = g_strdup_printf("type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                        "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'", sender);
                r = sd_bus_add_match_async(b->bus, &w->match_slot, match, on_lease_watcher_owner_changed, NULL, w);
                if (r >= 0)
                        r = sd_bus_call_method_async(b->bus, &w->check_slot, "org.freedesktop.DBus",
                                                     "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner",
                                                     on_lease_watcher_checked, w, "s", sender);
                if (r < 0) {
                        lease_watcher_free(w);
                        return r;
                }
                g_hash_table_insert(b->lease_watchers, w->name, w);
        }

        b->lease_sent = manager_lease_expiry(b->manager);
        return sd_bus_reply_method_return(msg, "t", b->lease_sent);
}

static void bus_edge_lease_renewed(BusEdge *b) {
        uint64_t expiry;
        int r;

        g_assert(b);

        /* Nobody asked: an idle bus sees nothing. */
        if (g_hash_table_size(b->lease_watchers) == 0)
                return;
        expiry = manager_lease_expiry(b->manager);
        if (expiry == b->lease_sent)
                return;
        b->lease_sent = expiry;
        r = sd_bus_emit_signal(b->bus, ELECTIOND_MANAGER_PATH, ELECTIOND_MANAGER_INTERFACE, "LeaseRenewed", "t",
                               expiry);
        if (r < 0)
                log_warning_errno(r, "Failed to emit LeaseRenewed: %m");
}

static int method_get_election(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        g_autofree char *path = NULL;
        const char *name;
        int r;

        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        if (!election_string_valid(name))
                return sd_bus_error_setf(error, ELECTIOND_ERROR_INVALID_NAME,
                                         "Election names are 1-255 bytes of UTF-8 without control characters.");
        path = bus_election_path(name);
        if (!path)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "o", path);
}

static int method_list_elections(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusEdge *b = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GPtrArray) list = election_state_list(manager_get_state(b->manager));
        int r;

        r = edge_check_caught_up(b, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(stso)");
        if (r < 0)
                return r;
        for (unsigned i = 0; i < list->len; i++) {
                const Election *e = list->pdata[i];
                g_autofree char *path = bus_election_path(e->name);

                if (!path)
                        return -ENOMEM;
                r = sd_bus_message_append(reply, "(stso)", e->name, e->term_id, election_leader(e), path);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* Standalone: no cluster, no members. ret_fingerprint (optional): the list as text, to spot changes. */
static int append_members(sd_bus_message *reply, Manager *m, char **ret_fingerprint) {
        Cluster *c = manager_get_cluster(m);
        ClusterMember *members = NULL;
        size_t n = 0;
        GString *f = g_string_new(NULL);
        int r = 0;

        if (c)
                (void) cluster_get_members(c, &members, &n);
        if (reply)
                r = sd_bus_message_open_container(reply, 'a', "(ssss)");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                g_string_append_printf(f, "%s %s %s %s\n", members[i].name, members[i].address, members[i].state,
                                       members[i].role);
                if (reply)
                        r = sd_bus_message_append(reply, "(ssss)", members[i].name, members[i].address,
                                                  members[i].state, members[i].role);
        }
        if (r >= 0 && reply)
                r = sd_bus_message_close_container(reply);
        cluster_members_free(members, n);
        if (ret_fingerprint)
                *ret_fingerprint = g_string_free(f, false);
        else
                g_string_free(f, true);
        return r;
}

/* ---- Drain / Undrain (maintenance) ----
 * Drain(as elections) / Undrain(as elections) on the Manager: this node's candidacies stay behind
 * every other node's in the named elections (empty list: every election) until undrained. Needs
 * uid 0 or polkit action org.electiond.Election1.drain. One DRAIN/UNDRAIN command per name
 * ("" for all), replied to once all of them committed. */

typedef struct DrainCall {
        BusEdge *edge;
        sd_bus_message *message;
        CommandType type;
        char **names;             /* as given; empty: every election */
        uint32_t uid;
        sd_bus_slot *polkit_slot;
        unsigned waiting;         /* commands submitted and not yet done */
        int status;               /* first failure (negative errno), 0 */
        bool invalid;             /* the rules refused one */
        GList link;               /* in BusEdge.draining */
} DrainCall;

static DrainCall *drain_call_free(DrainCall *d) {
        if (!d)
                return NULL;
        g_queue_unlink(&d->edge->draining, &d->link);
        sd_bus_slot_unref(d->polkit_slot);
        sd_bus_message_unref(d->message);
        g_strfreev(d->names);
        g_free(d);
        return NULL;
}

static void drain_call_reply(DrainCall *d) {
        int r;

        if (d->status == -ETIMEDOUT)
                r = sd_bus_reply_method_errorf(d->message, ELECTIOND_ERROR_NO_QUORUM,
                                               "The change could not be committed in time.");
        else if (d->status < 0)
                r = sd_bus_reply_method_errnof(d->message, d->status, "Request failed: %m");
        else if (d->invalid)
                r = sd_bus_reply_method_errorf(d->message, SD_BUS_ERROR_INVALID_ARGS, "Invalid request.");
        else
                r = sd_bus_reply_method_return(d->message, NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to reply to %s(): %m", sd_bus_message_get_member(d->message));
}

/* On shutdown: answer the calls still waiting for polkit (submitted ones complete through the
 * manager, which fails its pending commands first). */
static void drain_calls_fail(BusEdge *b) {
        while (!g_queue_is_empty(&b->draining)) {
                DrainCall *d = g_queue_peek_head(&b->draining);
                if (d->status == 0)
                        d->status = -ESHUTDOWN;
                drain_call_reply(d);
                drain_call_free(d);
        }
}

static void on_drain_done(Manager *m, int status, ElectionResult result, const Term *term, void *userdata) {
        DrainCall *d = userdata;

        if (status < 0 && d->status == 0)
                d->status = status;
        else if (status >= 0 && result != ELECTION_CHANGED && result != ELECTION_NOOP && result != ELECTION_DUPLICATE)
                d->invalid = true;
        if (--d->waiting > 0)
                return;
        drain_call_reply(d);
        drain_call_free(d);
}

static void drain_call_submit(DrainCall *d) {
        BusEdge *b = d->edge;
        unsigned n = g_strv_length(d->names);
        int r;

        if (!manager_quorate(b->manager)) {
                r = sd_bus_reply_method_errorf(d->message, ELECTIOND_ERROR_NO_QUORUM,
                                               "This node has no quorum: no change is accepted here now.");
                if (r < 0)
                        log_debug_errno(r, "Failed to reply: %m");
                drain_call_free(d);
                return;
        }

        /* waiting counts one extra until every command is queued: a done() cannot reply early */
        d->waiting = 1;
        for (unsigned i = 0; i < MAX(n, 1u); i++) {
                Command *c = command_new(d->type);

                c->election = g_strdup(n > 0 ? d->names[i] : "");
                c->id = g_strdup("");
                c->owner = g_strdup("");
                c->node = g_strdup(manager_node_name(b->manager));
                c->run = manager_run_id(b->manager);
                c->uid = d->uid;
                c->flags = COMMAND_FLAG_AUTHORIZED;
                r = manager_submit(b->manager, c, on_drain_done, d);
                if (r < 0) {
                        if (d->status == 0)
                                d->status = r;
                        break;
                }
                d->waiting++;
        }
        on_drain_done(b->manager, 0, ELECTION_NOOP, NULL, d);
}

static int on_drain_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        DrainCall *d = userdata;
        const sd_bus_error *e;
        int authorized = false, challenge = false, r;

        d->polkit_slot = sd_bus_slot_unref(d->polkit_slot);
        e = sd_bus_message_get_error(reply);
        if (e)
                log_debug("polkit check failed (%s: %s), denying.", e->name, e->message ?: "");
        else {
                r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
                if (r < 0)
                        authorized = false;
        }
        if (!authorized) {
                r = sd_bus_reply_method_errorf(d->message, SD_BUS_ERROR_ACCESS_DENIED,
                                               "Not authorized: this needs uid 0 or polkit action %s.",
                                               ELECTIOND_POLKIT_ACTION_DRAIN);
                if (r < 0)
                        log_debug_errno(r, "Failed to send reply: %m");
                drain_call_free(d);
                return 0;
        }
        drain_call_submit(d);
        return 0;
}

static int drain_call_authorize(DrainCall *d) {
        return polkit_check_async(d->edge->bus, &d->polkit_slot, d->message, ELECTIOND_POLKIT_ACTION_DRAIN,
                                  on_drain_polkit_reply, d);
}

/* The caller's uid is known: root submits, anyone else asks polkit. Replies on failure. */
static void drain_call_continue(DrainCall *d, uid_t uid) {
        int r;

        d->uid = (uint32_t) uid;
        if (uid == 0) {
                drain_call_submit(d);
                return;
        }
        r = drain_call_authorize(d);
        if (r < 0) {
                log_debug_errno(r, "Cannot ask polkit, denying: %m");
                r = sd_bus_reply_method_errorf(d->message, SD_BUS_ERROR_ACCESS_DENIED,
                                               "Not authorized: this needs uid 0 or polkit action %s.",
                                               ELECTIOND_POLKIT_ACTION_DRAIN);
                if (r < 0)
                        log_debug_errno(r, "Failed to send reply: %m");
                drain_call_free(d);
        }
}

static int on_drain_uid_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        DrainCall *d = userdata;
        const sd_bus_error *e;
        uint32_t uid;
        int r;

        d->polkit_slot = sd_bus_slot_unref(d->polkit_slot);
        e = sd_bus_message_get_error(reply);
        r = e ? -(sd_bus_error_get_errno(e) ?: EPERM) : sd_bus_message_read(reply, "u", &uid);
        if (r < 0) {
                log_debug_errno(r, "Cannot learn the uid of a Drain caller: %m");
                r = sd_bus_reply_method_errno(d->message, r, NULL);
                if (r < 0)
                        log_debug_errno(r, "Failed to send reply: %m");
                drain_call_free(d);
                return 0;
        }
        edge_cache_uid(d->edge, sd_bus_message_get_sender(d->message), (uid_t) uid);
        drain_call_continue(d, (uid_t) uid);
        return 0;
}

static int manager_drain(sd_bus_message *msg, BusEdge *b, CommandType type, sd_bus_error *error) {
        g_auto(GStrv) names = NULL;
        DrainCall *d;
        uid_t uid;
        int r;

        r = sd_bus_message_read_strv(msg, &names);
        if (r < 0)
                return r;
        for (char **n = names; n && *n; n++)
                if (!election_string_valid(*n))
                        return sd_bus_error_setf(error, ELECTIOND_ERROR_INVALID_NAME,
                                                 "Election names are 1-255 bytes of UTF-8 without control characters.");
        d = g_new0(DrainCall, 1);
        d->edge = b;
        d->message = sd_bus_message_ref(msg);
        d->type = type;
        d->names = names ? g_steal_pointer(&names) : g_new0(char *, 1);
        d->link.data = d;
        g_queue_push_tail_link(&b->draining, &d->link);

        /* never a synchronous round trip to the bus driver: the loop must keep running */
        if (edge_cached_uid(b, sd_bus_message_get_sender(msg), &uid)) {
                drain_call_continue(d, uid);
                return 1;
        }
        r = sd_bus_call_method_async(b->bus, &d->polkit_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetConnectionUnixUser", on_drain_uid_reply, d, "s",
                                     sd_bus_message_get_sender(msg));
        if (r < 0) {
                drain_call_free(d);
                return r;
        }
        return 1;
}

static int method_drain(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return manager_drain(msg, userdata, COMMAND_DRAIN, error);
}

static int method_undrain(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return manager_drain(msg, userdata, COMMAND_UNDRAIN, error);
}

static int property_drained(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusEdge *b = userdata;
        g_auto(GStrv) names = election_state_drained_names(manager_get_state(b->manager), manager_node_name(b->manager));

        return sd_bus_message_append_strv(reply, names);
}

static void bus_edge_drained_changed(BusEdge *b) {
        int r;

        if (!b)
                return;
        r = sd_bus_emit_properties_changed(b->bus, ELECTIOND_MANAGER_PATH, ELECTIOND_MANAGER_INTERFACE, "Drained", NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to emit PropertiesChanged(Drained): %m");
}

static void bus_edge_protocol_changed(BusEdge *b) {
        int r;

        g_assert(b);
        r = sd_bus_emit_properties_changed(b->bus, ELECTIOND_MANAGER_PATH, ELECTIOND_MANAGER_INTERFACE,
                                           "ProtocolVersion", NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to emit PropertiesChanged(ProtocolVersion): %m");
}

static int property_manager(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusEdge *b = userdata;
        const Config *c = manager_get_config(b->manager);

        if (streq_ptr(property, "NodeName"))
                return sd_bus_message_append(reply, "s", manager_node_name(b->manager));
        if (streq_ptr(property, "Version"))
                return sd_bus_message_append(reply, "s", ELECTIOND_VERSION);
        if (streq_ptr(property, "ClusterName"))
                return sd_bus_message_append(reply, "s", config_is_clustered(c) ? c->cluster_name : "");
        if (streq_ptr(property, "Quorate"))
                return sd_bus_message_append(reply, "b", manager_quorate(b->manager));
        if (streq_ptr(property, "Members"))
                return append_members(reply, b->manager, NULL);
        if (streq_ptr(property, "ProtocolVersion"))
                return sd_bus_message_append(reply, "u", manager_protocol_version(b->manager));
        if (streq_ptr(property, "MaxProtocolVersion"))
                return sd_bus_message_append(reply, "u", PROTOCOL_VERSION_MAX);
        return -ENOENT;
}

static int method_get_metrics(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BusEdge *b = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = metrics_append(reply, b->manager);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("GetElection",
                                 "s", SD_BUS_PARAM(name),
                                 "o", SD_BUS_PARAM(path),
                                 method_get_election, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListElections",
                                 NULL, ,
                                 "a(stso)", SD_BUS_PARAM(elections),
                                 method_list_elections, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("WatchLease",
                                 NULL, ,
                                 "t", SD_BUS_PARAM(expiry),
                                 method_watch_lease, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetMetrics",
                                 NULL, ,
                                 "a(sa{ss}d)", SD_BUS_PARAM(metrics),
                                 method_get_metrics, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("NodeName", "s", property_manager, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Version", "s", property_manager, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ClusterName", "s", property_manager, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Quorate", "b", property_manager, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Members", "a(ssss)", property_manager, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_NAMES("Drain",
                                 "as", SD_BUS_PARAM(elections),
                                 NULL, ,
                                 method_drain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Undrain",
                                 "as", SD_BUS_PARAM(elections),
                                 NULL, ,
                                 method_undrain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Drained", "as", property_drained, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ProtocolVersion", "u", property_manager, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MaxProtocolVersion", "u", property_manager, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_SIGNAL_WITH_NAMES("LeaseRenewed", "t", SD_BUS_PARAM(expiry), 0),
        SD_BUS_VTABLE_END
};

/* ---- Signals ---- */

static void emit_term_changed(BusEdge *b, const char *path, const Election *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        g_autoptr(Term) t = term_new_from_election(e);
        int r;

        r = sd_bus_message_new_signal(b->bus, &s, path, ELECTIOND_ELECTION_INTERFACE, "TermChanged");
        if (r >= 0)
                r = append_term(s, t);
        if (r >= 0)
                r = sd_bus_send(b->bus, s, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to emit TermChanged for election '%s': %m", e->name);
}

static void bus_edge_term_changed(BusEdge *b, const Election *e) {
        g_autofree char *path = NULL;
        bool known, moved;
        int r;

        g_assert(b);
        g_assert(e);

        if (!manager_caught_up(b->manager))
                return; /* replaying what was committed before we started: announced once caught up */

        path = bus_election_path(e->name);
        if (!path)
                return (void) log_oom();

        /* FORGET deleted it (it was empty): its object goes from the enumeration and the object
         * manager; the path still answers, as for any election that does not exist (term 0). */
        if (e->removed) {
                if (!g_hash_table_remove(b->local_leader, e->name))
                        return; /* never announced */
                r = sd_bus_emit_object_removed(b->bus, path);
                if (r < 0)
                        log_warning_errno(r, "Failed to emit InterfacesRemoved for election '%s': %m", e->name);
                return;
        }

        /* An election not seen before read LocalLeader=false until now. */
        moved = local_leader_update(b, e, &known);

        if (!known) {
                r = sd_bus_emit_object_added(b->bus, path);
                if (r < 0)
                        log_warning_errno(r, "Failed to emit InterfacesAdded for election '%s': %m", e->name);
        }

        emit_term_changed(b, path, e);

        r = sd_bus_emit_properties_changed(b->bus, path, ELECTIOND_ELECTION_INTERFACE,
                                           "Term", "TermId", "Leader", "Candidates",
                                           moved ? "LocalLeader" : NULL, "LocalLeaderChanged", NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to emit PropertiesChanged for election '%s': %m", e->name);
}

static void bus_edge_caught_up(BusEdge *b) {
        g_autoptr(GPtrArray) list = NULL;

        g_assert(b);

        /* forget what was noted before (LocalLeader read false): every election is new now */
        g_hash_table_remove_all(b->local_leader);
        list = election_state_list(manager_get_state(b->manager));
        for (unsigned i = 0; i < list->len; i++)
                bus_edge_term_changed(b, list->pdata[i]);
}

static void bus_edge_cluster_changed(BusEdge *b) {
        g_autoptr(GPtrArray) list = NULL;
        int r;

        g_assert(b);

        {
                /* announce only what moved: watchers and history recorders count these */
                int quorate = manager_quorate(b->manager);
                g_autofree char *members = NULL;
                bool q_moved = quorate != b->last_quorate, m_moved;

                (void) append_members(NULL, b->manager, &members);
                m_moved = !streq_ptr(members, b->last_members);
                b->last_quorate = quorate;
                if (m_moved) {
                        g_free(b->last_members);
                        b->last_members = g_steal_pointer(&members);
                }
                if (q_moved || m_moved) {
                        r = sd_bus_emit_properties_changed(b->bus, ELECTIOND_MANAGER_PATH, ELECTIOND_MANAGER_INTERFACE,
                                                           q_moved ? "Quorate" : "Members", q_moved && m_moved ? "Members" : NULL,
                                                           NULL);
                        if (r < 0)
                                log_warning_errno(r, "Failed to emit PropertiesChanged on the manager: %m");
                }
        }

        list = election_state_list(manager_get_state(b->manager));
        for (unsigned i = 0; i < list->len; i++) {
                const Election *e = list->pdata[i];
                g_autofree char *path = NULL;

                if (!local_leader_update(b, e, NULL))
                        continue;

                path = bus_election_path(e->name);
                if (!path)
                        continue;
                r = sd_bus_emit_properties_changed(b->bus, path, ELECTIOND_ELECTION_INTERFACE, "LocalLeader",
                                                   "LocalLeaderChanged", NULL);
                if (r < 0)
                        log_warning_errno(r, "Failed to emit PropertiesChanged for election '%s': %m", e->name);
        }
}

/* ---- Life cycle ---- */

/* ---- the manager's notifications (ManagerObserver) ---- */

static void observe_election_changed(void *userdata, const Election *e) {
        bus_edge_term_changed(userdata, e);
}

static void observe_status_changed(void *userdata) {
        bus_edge_cluster_changed(userdata);
}

static void observe_caught_up(void *userdata) {
        bus_edge_caught_up(userdata);
}

static void observe_drained_changed(void *userdata) {
        bus_edge_drained_changed(userdata);
}

static void observe_protocol_changed(void *userdata) {
        bus_edge_protocol_changed(userdata);
}

static void observe_lease_renewed(void *userdata) {
        bus_edge_lease_renewed(userdata);
}

static bool observe_owner_tracked(void *userdata, const char *owner) {
        return bus_edge_owner_tracked(userdata, owner);
}

int bus_edge_new(Manager *m, sd_bus *bus, BusEdge **ret) {
        _cleanup_(bus_edge_freep) BusEdge *b = NULL;
        g_autoptr(GPtrArray) list = NULL;
        int r;

        g_assert(m);
        g_assert(bus);
        g_assert(ret);

        b = g_new0(BusEdge, 1);
        b->manager = m;
        b->bus = sd_bus_ref(bus);
        b->last_quorate = -1;
        b->tracks = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, tracked_owner_destroy);
        b->local_leader = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_queue_init(&b->waiting);
        b->lease_watchers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, lease_watcher_free);
        g_queue_init(&b->draining);
        b->uids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

        /* Elections restored from disk are not "new": no InterfacesAdded for them. */
        list = election_state_list(manager_get_state(m));
        for (unsigned i = 0; i < list->len; i++) {
                (void) local_leader_update(b, list->pdata[i], NULL);
        }

        r = sd_bus_add_object_vtable(bus, &b->manager_slot, ELECTIOND_MANAGER_PATH, ELECTIOND_MANAGER_INTERFACE,
                                     manager_vtable, b);
        if (r < 0)
                return log_error_errno(r, "Failed to add manager object: %m");
        r = sd_bus_add_object_manager(bus, &b->object_manager_slot, ELECTIOND_MANAGER_PATH);
        if (r < 0)
                return log_error_errno(r, "Failed to add object manager: %m");
        r = sd_bus_add_fallback_vtable(bus, &b->election_slot, ELECTIOND_ELECTION_PREFIX,
                                       ELECTIOND_ELECTION_INTERFACE, election_vtable, election_object_find, b);
        if (r < 0)
                return log_error_errno(r, "Failed to add election objects: %m");
        r = sd_bus_add_node_enumerator(bus, &b->enumerator_slot, ELECTIOND_ELECTION_PREFIX, election_enumerate, b);
        if (r < 0)
                return log_error_errno(r, "Failed to add election enumerator: %m");

        b->observer = (ManagerObserver) {
                .order = MANAGER_OBSERVER_ORDER_BUS,
                .userdata = b,
                .election_changed = observe_election_changed,
                .status_changed = observe_status_changed,
                .caught_up = observe_caught_up,
                .drained_changed = observe_drained_changed,
                .protocol_changed = observe_protocol_changed,
                .lease_renewed = observe_lease_renewed,
                .owner_tracked = observe_owner_tracked,
        };
        manager_add_observer(m, &b->observer);
        *ret = g_steal_pointer(&b);
        return 0;
}

BusEdge *bus_edge_free(BusEdge *b) {
        GList *l;

        if (!b)
                return NULL;

        manager_remove_observer(b->manager, &b->observer);
        /* Calls still waiting for the bus or polkit get an answer rather than silence. */
        while ((l = g_queue_peek_head_link(&b->waiting))) {
                Call *c = l->data;
                call_reply_errno(c, -ESHUTDOWN);
                call_free(c);
        }
        drain_calls_fail(b);

        g_clear_pointer(&b->lease_watchers, g_hash_table_destroy);
        g_clear_pointer(&b->tracks, g_hash_table_destroy);
        g_clear_pointer(&b->local_leader, g_hash_table_destroy);
        g_clear_pointer(&b->uids, g_hash_table_destroy);
        sd_bus_slot_unref(b->enumerator_slot);
        sd_bus_slot_unref(b->election_slot);
        sd_bus_slot_unref(b->object_manager_slot);
        sd_bus_slot_unref(b->manager_slot);
        sd_bus_unref(b->bus);
        g_free(b->last_members);
        g_free(b);
        return NULL;
}

static bool bus_edge_owner_tracked(BusEdge *b, const char *owner) {
        return b && owner && g_hash_table_contains(b->tracks, owner);
}
