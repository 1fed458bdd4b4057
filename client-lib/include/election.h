/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* libelection: the client side of electiond's D-Bus API (org.electiond.Election1).
 *
 * Installed as <election-1/election.h>; `pkg-config --cflags libelection` puts that directory on the
 * include path, so programs write #include <election.h>.
 *
 * Conventions: functions return 0 (or a positive value where documented) on success and a negative
 * errno-style value on failure. When the daemon answered with a D-Bus error, its name and message
 * are kept on the client (election_client_last_error_name()/_message()) until the next call.
 * Every _unref()/_free() function accepts NULL and returns NULL. Objects are not thread-safe: use one
 * client from one thread. */

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ElectionClient ElectionClient;
typedef struct Election Election;
typedef struct ElectionTerm ElectionTerm;
typedef struct ElectionOptions ElectionOptions;
typedef struct ElectionList ElectionList;
typedef struct ElectionMemberList ElectionMemberList;

/* D-Bus error names the daemon uses, and the errno values the library maps them to. */
#define ELECTION_ERROR_NOT_CANDIDATE  "org.electiond.Election1.Error.NotCandidate"   /* -ENOENT */
#define ELECTION_ERROR_INVALID_NAME   "org.electiond.Election1.Error.InvalidName"    /* -EINVAL */
#define ELECTION_ERROR_INVALID_ID     "org.electiond.Election1.Error.InvalidId"      /* -EINVAL */
#define ELECTION_ERROR_LIMIT_EXCEEDED "org.electiond.Election1.Error.LimitExceeded"  /* -ENOSPC */
/* a persistent Enter beyond [Node] MaxPersistentPerUser= (not for uid 0) */
#define ELECTION_ERROR_QUOTA_EXCEEDED "org.electiond.Election1.Error.QuotaExceeded"  /* -EDQUOT */
#define ELECTION_ERROR_NO_QUORUM      "org.electiond.Election1.Error.NoQuorum"       /* -ETIMEDOUT */
/* submitted but not seen committed in time: it may still take effect (read the term) */
#define ELECTION_ERROR_OUTCOME_UNKNOWN "org.electiond.Election1.Error.OutcomeUnknown" /* -EINPROGRESS */
#define ELECTION_ERROR_ACCESS_DENIED  "org.freedesktop.DBus.Error.AccessDenied"      /* -EACCES */

/* ---- client ---------------------------------------------------------------------------------- */

/* Connects to the system bus (honours DBUS_SYSTEM_BUS_ADDRESS). */
int election_client_new(ElectionClient **ret);
/* Connects to the session bus (the daemon started with --user). */
int election_client_new_user(ElectionClient **ret);
/* Connects to the bus at ADDRESS (a D-Bus address string). */
int election_client_new_address(const char *address, ElectionClient **ret);
ElectionClient *election_client_ref(ElectionClient *c);
ElectionClient *election_client_unref(ElectionClient *c);

/* Asynchronous calls and Watch run on an sd-event loop. Pass NULL to use the thread's default loop.
 * Note: like every sd_bus attached to a loop, the client's connection is flushed and closed when
 * that loop exits (sd_event_exit()); do final calls such as Leave before exiting the loop. */
int election_client_attach_event(ElectionClient *c, sd_event *e, int64_t priority);
int election_client_detach_event(ElectionClient *c);
sd_event *election_client_get_event(ElectionClient *c);

/* D-Bus error name/message of the last failed call on this client (NULL if it was not a D-Bus error). */
const char *election_client_last_error_name(ElectionClient *c);
const char *election_client_last_error_message(ElectionClient *c);

/* The daemon's node name (the default candidate id) and version; the caller frees *ret. */
int election_client_get_node_name(ElectionClient *c, char **ret);
int election_client_get_version(ElectionClient *c, char **ret);
/* The cluster's name, "" when the daemon is standalone; the caller frees *ret. */
int election_client_get_cluster_name(ElectionClient *c, char **ret);
/* 1 if the node has heard from a quorum of voters within the lease (always standalone), 0 if not. */
int election_client_is_quorate(ElectionClient *c);
/* Rolling upgrade: the cluster protocol version (what every member speaks and the cluster uses)
 * and the highest one the daemon speaks; both 1 from a daemon older than these properties
 * (electiond 0.1.0). Either pointer may be NULL. */
int election_client_get_protocol_version(ElectionClient *c, unsigned *ret_cluster, unsigned *ret_max);

/* Maintenance (polkit org.electiond.Election1.drain or uid 0): this node stays out of the lead of
 * the named elections (NULL or empty: every election) until undrained; see
 * org.electiond.Election1(5), Drain. Undrain with NULL or empty lifts every drain of the node. */
int election_client_drain(ElectionClient *c, char **names);
int election_client_undrain(ElectionClient *c, char **names);
/* This node's drains, sorted; "" stands for a drain of every election. NULL-terminated; the caller
 * frees each string and the array. */
int election_client_get_drained(ElectionClient *c, char ***ret);

/* Every election that had a term and was not removed for being empty since. */
int election_client_list_elections(ElectionClient *c, ElectionList **ret);
size_t election_list_size(const ElectionList *l);
const char *election_list_get_name(const ElectionList *l, size_t i);
uint64_t election_list_get_term_id(const ElectionList *l, size_t i);
const char *election_list_get_leader(const ElectionList *l, size_t i);
ElectionList *election_list_free(ElectionList *l);

/* Known cluster members (empty when standalone): node name, address, state (alive, suspect, dead,
 * left) and role (leader, voter, standby, spare, none). */
int election_client_list_members(ElectionClient *c, ElectionMemberList **ret);
size_t election_member_list_size(const ElectionMemberList *l);
const char *election_member_list_get_name(const ElectionMemberList *l, size_t i);
const char *election_member_list_get_address(const ElectionMemberList *l, size_t i);
const char *election_member_list_get_state(const ElectionMemberList *l, size_t i);
const char *election_member_list_get_role(const ElectionMemberList *l, size_t i);
ElectionMemberList *election_member_list_free(ElectionMemberList *l);

/* ---- options (the seed's Option) ------------------------------------------------------------- */

int election_options_new(ElectionOptions **ret);
ElectionOptions *election_options_free(ElectionOptions *o);
/* Instance (candidate) id; default: the daemon's NodeName. */
int election_options_set_id(ElectionOptions *o, const char *id);
/* Persistent candidacy: it survives this connection and daemon restarts until Leave/Evict. */
int election_options_set_persistent(ElectionOptions *o, int persistent);
/* After the daemon restarted, enter again if this handle had entered (connection-bound only). */
int election_options_set_reenter(ElectionOptions *o, int reenter);

/* ---- election -------------------------------------------------------------------------------- */

/* Gets the election NAME (it need not exist yet). OPTS may be NULL. Synchronous. */
int election_client_get_election(ElectionClient *c, const char *name, const ElectionOptions *opts, Election **ret);
Election *election_ref(Election *e);
Election *election_unref(Election *e);
ElectionClient *election_get_client(Election *e);
const char *election_get_name(Election *e);
/* This instance's candidate id (the seed's ID()). */
const char *election_get_id(Election *e);

/* Synchronous calls. RET may be NULL; otherwise it receives a new reference to the resulting term. */
int election_get_term(Election *e, ElectionTerm **ret);
int election_enter(Election *e, ElectionTerm **ret);
int election_leave(Election *e, ElectionTerm **ret);
int election_anoint(Election *e, const char *id, ElectionTerm **ret);
int election_promote(Election *e, const char *id, ElectionTerm **ret);
int election_evict(Election *e, const char *id, ElectionTerm **ret);

/* Asynchronous calls (need an attached event loop). The handler runs once with status 0 and the
 * term, or a negative status, TERM NULL and the D-Bus error name/message (which may be NULL).
 * The handle stays alive until the handler has run. */
typedef void (*election_term_handler_t)(Election *e, int status, const ElectionTerm *term,
                                        const char *error_name, const char *error_message, void *userdata);
int election_get_term_async(Election *e, election_term_handler_t handler, void *userdata);
int election_enter_async(Election *e, election_term_handler_t handler, void *userdata);
int election_leave_async(Election *e, election_term_handler_t handler, void *userdata);
int election_anoint_async(Election *e, const char *id, election_term_handler_t handler, void *userdata);
int election_promote_async(Election *e, const char *id, election_term_handler_t handler, void *userdata);
int election_evict_async(Election *e, const char *id, election_term_handler_t handler, void *userdata);

/* Watch (needs an attached event loop). The handler first receives the current term, then every
 * change in commit order, without gaps or duplicates (status 0, TERM set).
 * If the daemon goes away (or is not there when the term is read) the handler gets status
 * -ESHUTDOWN with TERM NULL, once; when it is back the current term is delivered again (after
 * re-entering, if the reenter option is set). Other failures to read the term are passed on with
 * their status. If the bus connection itself is lost the handler gets -ECONNRESET and the watch ends.
 * Only one watch per handle; -EBUSY if one is active. */
typedef void (*election_watch_handler_t)(Election *e, int status, const ElectionTerm *term, void *userdata);
int election_watch(Election *e, election_watch_handler_t handler, void *userdata);
int election_unwatch(Election *e);

/* LocalLeader: a candidate owned by this node leads, the node is quorate and its lease has not
 * expired (always the former alone on a standalone daemon). Act on leadership only while this holds.
 * election_get_local_leader() returns 1, 0 or a negative errno. The watch (needs an event loop)
 * delivers the current value, then every change; while the daemon is away, or the value cannot be
 * read, it delivers 0. A negative status means a local failure. -EBUSY if one is active. */
typedef void (*election_local_leader_handler_t)(Election *e, int status, int local_leader, void *userdata);
int election_get_local_leader(Election *e);
int election_watch_local_leader(Election *e, election_local_leader_handler_t handler, void *userdata);
int election_unwatch_local_leader(Election *e);

/* The node's lease (WatchLease, LeaseRenewed): the instant until which this node may act as a
 * leader, in CLOCK_BOOTTIME microseconds (the clock of clock_gettime(CLOCK_BOOTTIME), which counts
 * suspend). 0 = no lease now; ELECTION_LEASE_INFINITE = a standalone node, whose lease never ends.
 * Keep a timer at the expiry and stop acting as a leader when it passes without a renewal: that
 * works even while the daemon itself is stopped or stalled and sends nothing.
 * The watch (needs an event loop, never blocks) calls WatchLease and delivers its answer (status 0),
 * then every move of the expiry (status 0). While the daemon is away or does not answer the handler
 * gets status -ESHUTDOWN with expiry 0 (the watch asks again when the daemon is back, and retries
 * every second otherwise). A daemon without WatchLease (an older electiond) gives -EOPNOTSUPP,
 * once per daemon start. Other failures are passed on with their status and expiry 0.
 * One watch per client; -EBUSY if one is active. The daemon emits LeaseRenewed only while some
 * client watches, and stops once the watching connection closes (unwatching keeps it a watcher). */
#define ELECTION_LEASE_INFINITE UINT64_MAX
typedef void (*election_lease_handler_t)(ElectionClient *c, int status, uint64_t expiry, void *userdata);
int election_client_watch_lease(ElectionClient *c, election_lease_handler_t handler, void *userdata);
int election_client_unwatch_lease(ElectionClient *c);

/* ---- terms ----------------------------------------------------------------------------------- */

ElectionTerm *election_term_ref(ElectionTerm *t);
ElectionTerm *election_term_unref(ElectionTerm *t);
/* The term id: monotonically increasing, never reused — usable as a fencing token. */
uint64_t election_term_get_id(const ElectionTerm *t);
/* The leader's id, "" when there is none. */
const char *election_term_get_leader(const ElectionTerm *t);
size_t election_term_get_n_candidates(const ElectionTerm *t);
/* NULL-terminated array of candidate ids, leader first. */
const char *const *election_term_get_candidates(const ElectionTerm *t);
/* 1 if ID leads in T, else 0. */
int election_term_is_leader(const ElectionTerm *t, const char *id);
/* 1 if both terms have the same id, leader and candidates (in order), else 0. */
int election_term_equal(const ElectionTerm *a, const ElectionTerm *b);

#ifdef __cplusplus
}
#endif
