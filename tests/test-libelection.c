/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libelection against a real electiond; driven by tests/test_client_lib.py, which starts the bus and
 * the daemon and points DBUS_SYSTEM_BUS_ADDRESS at them.
 *
 *   test-libelection calls NAME NODE      every call and error, sync and async; exits 0 if all passed
 *   test-libelection watch NAME [ID [enter|enter-reenter]]
 *                                         prints one JSON line per watch event until SIGTERM
 *   test-libelection two-handles NAME     two clients (connections) in one process, both watching
 *   test-libelection glib NAME            the GLib helper drives a watch and an async Enter */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "election.h"
#include "election-glib.h"

static int failures = 0;

#define CHECK(expr)                                                                       \
        do {                                                                              \
                if (!(expr)) {                                                            \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        failures++;                                                       \
                }                                                                         \
        } while (0)

#define CHECK_OK(expr)                                                                    \
        do {                                                                              \
                int _r = (expr);                                                          \
                if (_r < 0) {                                                             \
                        fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", __FILE__, __LINE__, #expr, \
                                strerror(-_r), election_client_last_error_name(client) ?: "-"); \
                        failures++;                                                       \
                }                                                                         \
        } while (0)

static ElectionClient *client = NULL;

static bool term_is(const ElectionTerm *t, uint64_t id, const char *leader, const char *cands) {
        char buf[1024] = "";
        const char *const *c = election_term_get_candidates(t);

        for (size_t i = 0; c && c[i]; i++) {
                if (i > 0)
                        strcat(buf, ",");
                strncat(buf, c[i], sizeof buf - strlen(buf) - 2);
        }
        if (election_term_get_id(t) != id || strcmp(election_term_get_leader(t), leader) != 0 ||
            strcmp(buf, cands) != 0) {
                fprintf(stderr, "  term is (%" PRIu64 ", \"%s\", [%s]), expected (%" PRIu64 ", \"%s\", [%s])\n",
                        election_term_get_id(t), election_term_get_leader(t), buf, id, leader, cands);
                return false;
        }
        return true;
}

static Election *get(ElectionClient *c, const char *name, const char *id, bool persistent) {
        ElectionOptions *o = NULL;
        Election *e = NULL;
        int r;

        r = election_options_new(&o);
        if (r >= 0)
                r = election_options_set_id(o, id);
        if (r >= 0)
                r = election_options_set_persistent(o, persistent);
        if (r >= 0)
                r = election_client_get_election(c, name, o, &e);
        election_options_free(o);
        if (r < 0) {
                fprintf(stderr, "get_election(%s, %s): %s\n", name, id ?: "(default)", strerror(-r));
                exit(EXIT_FAILURE);
        }
        return e;
}

/* ---- calls ----------------------------------------------------------------------------------- */

typedef struct AsyncResult {
        int n;
        int status;
        ElectionTerm *term;
        char *error_name;
} AsyncResult;

static void on_async(Election *e, int status, const ElectionTerm *t, const char *en, const char *em, void *userdata) {
        AsyncResult *a = userdata;

        a->n++;
        a->status = status;
        election_term_unref(a->term);
        a->term = election_term_ref((ElectionTerm *) t);
        free(a->error_name);
        a->error_name = en ? strdup(en) : NULL;
}

static void async_wait(sd_event *event, AsyncResult *a) {
        int n = a->n;

        /* Iterate rather than sd_event_loop()+exit: sd-bus closes its connection when the loop exits. */
        while (a->n == n)
                if (sd_event_run(event, 10 * UINT64_C(1000000)) < 0)
                        abort();
}

static int do_calls(const char *name, const char *node) {
        ElectionClient *other = NULL;
        Election *e = NULL, *b = NULL, *bad = NULL, *stolen = NULL, *theirs = NULL, *p = NULL;
        ElectionTerm *t = NULL;
        ElectionList *l = NULL;
        sd_event *event = NULL;
        AsyncResult a = {};
        char *s = NULL, expected[600];
        int r;

        CHECK_OK(election_client_new(&client));
        CHECK_OK(election_client_get_node_name(client, &s));
        CHECK(s && strcmp(s, node) == 0);
        free(s);
        CHECK_OK(election_client_get_version(client, &s));
        CHECK(s && s[0]);
        free(s);
        /* Standalone daemon: no cluster name, always quorate. */
        CHECK_OK(election_client_get_cluster_name(client, &s));
        CHECK(s && s[0] == '\0');
        free(s);
        CHECK(election_client_is_quorate(client) == 1);
        {
                ElectionMemberList *m = NULL;
                CHECK_OK(election_client_list_members(client, &m));
                CHECK(m != NULL);
                /* Out-of-range reads are NULL, never a crash. */
                CHECK(election_member_list_get_name(m, election_member_list_size(m)) == NULL);
                CHECK(election_member_list_get_role(NULL, 0) == NULL);
                CHECK(election_member_list_free(m) == NULL);
        }

        /* Bad election name. */
        r = election_client_get_election(client, "bad\001name", NULL, &bad);
        CHECK(r == -EINVAL);
        CHECK(strcmp(election_client_last_error_name(client) ?: "", ELECTION_ERROR_INVALID_NAME) == 0);
        CHECK(election_client_last_error_message(client) != NULL);
        r = election_client_get_election(client, "", NULL, &bad);
        CHECK(r == -EINVAL);

        /* Default id = NodeName; a fresh election is term 0 with nobody. */
        e = get(client, name, NULL, false);
        CHECK(strcmp(election_get_id(e), node) == 0);
        CHECK(strcmp(election_get_name(e), name) == 0);
        CHECK_OK(election_get_term(e, &t));
        CHECK(term_is(t, 0, "", ""));
        CHECK(election_term_get_n_candidates(t) == 0);
        t = election_term_unref(t);

        CHECK(election_get_local_leader(e) == 0);
        CHECK_OK(election_enter(e, &t));
        CHECK(term_is(t, 1, node, node));
        CHECK(election_term_is_leader(t, node));
        t = election_term_unref(t);
        /* Standalone: a local candidate leads. */
        CHECK(election_get_local_leader(e) == 1);
        /* Enter again: re-bind, no change. */
        CHECK_OK(election_enter(e, &t));
        CHECK(term_is(t, 1, node, node));
        t = election_term_unref(t);

        b = get(client, name, "b", false);
        CHECK_OK(election_enter(b, &t));
        snprintf(expected, sizeof expected, "%s,b", node);
        CHECK(term_is(t, 1, node, expected));
        t = election_term_unref(t);

        CHECK_OK(election_anoint(e, "b", &t));
        CHECK(election_term_get_id(t) == 2 && election_term_is_leader(t, "b"));
        t = election_term_unref(t);
        CHECK_OK(election_promote(e, node, &t));
        CHECK(election_term_get_id(t) == 3 && election_term_is_leader(t, node));
        t = election_term_unref(t);
        /* Promote of the leader / Anoint of the leader: no-ops. */
        CHECK_OK(election_promote(e, node, &t));
        CHECK(election_term_get_id(t) == 3);
        t = election_term_unref(t);
        CHECK_OK(election_anoint(e, node, &t));
        CHECK(election_term_get_id(t) == 3);
        t = election_term_unref(t);

        /* Unknown candidates. */
        r = election_anoint(e, "nobody", NULL);
        CHECK(r == -ENOENT);
        CHECK(strcmp(election_client_last_error_name(client) ?: "", ELECTION_ERROR_NOT_CANDIDATE) == 0);
        r = election_promote(e, "nobody", NULL);
        CHECK(r == -ENOENT);
        r = election_evict(e, "nobody", NULL);
        CHECK(r == -ENOENT);
        CHECK(strcmp(election_client_last_error_name(client) ?: "", ELECTION_ERROR_NOT_CANDIDATE) == 0);
        /* A success clears the last error. */
        CHECK_OK(election_get_term(e, NULL));
        CHECK(election_client_last_error_name(client) == NULL);

        /* Bad candidate id. */
        r = election_anoint(e, "bad\nid", NULL);
        CHECK(r == -EINVAL);
        CHECK(strcmp(election_client_last_error_name(client) ?: "", ELECTION_ERROR_INVALID_ID) == 0);

        CHECK_OK(election_evict(e, "b", &t));
        CHECK(term_is(t, 3, node, node));
        t = election_term_unref(t);

        /* Leave of a candidacy another connection holds: AccessDenied. */
        CHECK_OK(election_client_new(&other));
        theirs = get(other, name, "theirs", false);
        CHECK_OK(election_enter(theirs, NULL));
        stolen = get(client, name, "theirs", false);
        r = election_leave(stolen, NULL);
        CHECK(r == -EACCES);
        CHECK(strcmp(election_client_last_error_name(client) ?: "", ELECTION_ERROR_ACCESS_DENIED) == 0);
        CHECK_OK(election_leave(theirs, &t));
        CHECK(term_is(t, 3, node, node));
        t = election_term_unref(t);

        /* Persistent candidacy (checked by the driver after we exit). */
        p = get(client, name, "persistent-one", true);
        CHECK_OK(election_enter(p, NULL));

        /* List. */
        CHECK_OK(election_client_list_elections(client, &l));
        {
                bool found = false;
                for (size_t i = 0; i < election_list_size(l); i++)
                        if (strcmp(election_list_get_name(l, i), name) == 0) {
                                found = true;
                                CHECK(election_list_get_term_id(l, i) == 3);
                                CHECK(strcmp(election_list_get_leader(l, i), node) == 0);
                        }
                CHECK(found);
                CHECK(election_list_get_name(l, election_list_size(l)) == NULL);
        }
        l = election_list_free(l);

        /* Async: needs a loop. */
        r = election_get_term_async(e, on_async, &a);
        CHECK(r == -ENXIO);
        CHECK_OK(sd_event_new(&event));
        CHECK_OK(election_client_attach_event(client, event, 0));
        CHECK(election_client_get_event(client) == event);

        CHECK_OK(election_get_term_async(e, on_async, &a));
        async_wait(event, &a);
        snprintf(expected, sizeof expected, "%s,persistent-one", node);
        CHECK(a.status == 0 && term_is(a.term, 3, node, expected));

        CHECK_OK(election_enter_async(b, on_async, &a));
        async_wait(event, &a);
        CHECK(a.status == 0 && election_term_get_n_candidates(a.term) == 3);
        CHECK_OK(election_anoint_async(e, "b", on_async, &a));
        async_wait(event, &a);
        CHECK(a.status == 0 && election_term_get_id(a.term) == 4 && election_term_is_leader(a.term, "b"));
        CHECK_OK(election_promote_async(e, node, on_async, &a));
        async_wait(event, &a);
        CHECK(a.status == 0 && election_term_get_id(a.term) == 5 && election_term_is_leader(a.term, node));
        CHECK_OK(election_evict_async(e, "nobody", on_async, &a));
        async_wait(event, &a);
        CHECK(a.status == -ENOENT && !a.term);
        CHECK(strcmp(a.error_name ?: "", ELECTION_ERROR_NOT_CANDIDATE) == 0);
        CHECK_OK(election_evict_async(e, "b", on_async, &a));
        async_wait(event, &a);
        CHECK(a.status == 0 && election_term_get_n_candidates(a.term) == 2);
        CHECK_OK(election_leave_async(e, on_async, &a));
        async_wait(event, &a);
        /* The leader left: persistent-one leads now. */
        CHECK(a.status == 0 && election_term_get_id(a.term) == 6 && election_term_is_leader(a.term, "persistent-one"));
        /* Leave of a non-candidate: no-op. */
        CHECK_OK(election_leave_async(e, on_async, &a));
        async_wait(event, &a);
        CHECK(a.status == 0 && election_term_get_id(a.term) == 6);
        /* The handle may be dropped while a call is in flight: the call keeps it alive. */
        CHECK_OK(election_get_term_async(b, on_async, &a));
        b = election_unref(b);
        async_wait(event, &a);
        CHECK(a.status == 0);

        /* NULL-tolerant destructors. */
        CHECK(election_unref(NULL) == NULL);
        CHECK(election_client_unref(NULL) == NULL);
        CHECK(election_term_unref(NULL) == NULL);
        CHECK(election_list_free(NULL) == NULL);
        CHECK(election_options_free(NULL) == NULL);

        election_term_unref(a.term);
        free(a.error_name);
        election_unref(e);
        election_unref(p);
        election_unref(stolen);
        election_unref(theirs);
        election_client_unref(other);
        election_client_unref(client);
        sd_event_unref(event);

        if (failures)
                fprintf(stderr, "%d check(s) failed\n", failures);
        else
                printf("calls: all checks passed\n");
        return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- watch ----------------------------------------------------------------------------------- */

static void print_event(const char *who, int status, const ElectionTerm *t) {
        printf("{\"who\":\"%s\",\"status\":%d", who, status);
        if (t) {
                const char *const *c = election_term_get_candidates(t);
                printf(",\"term\":[%" PRIu64 ",\"%s\",[", election_term_get_id(t), election_term_get_leader(t));
                for (size_t i = 0; c[i]; i++)
                        printf("%s\"%s\"", i ? "," : "", c[i]);
                printf("]]");
        }
        printf("}\n");
        fflush(stdout);
}

static void on_watch(Election *e, int status, const ElectionTerm *t, void *userdata) {
        print_event(userdata, status, t);
}

static void on_local_leader(Election *e, int status, int value, void *userdata) {
        printf("{\"who\":\"ll\",\"status\":%d,\"value\":%d}\n", status, value);
        fflush(stdout);
}

static int on_term_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static sd_event *setup_loop(void) {
        sd_event *event = NULL;
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if (sd_event_new(&event) < 0 ||
            sd_event_add_signal(event, NULL, SIGTERM, on_term_signal, NULL) < 0 ||
            sd_event_add_signal(event, NULL, SIGINT, on_term_signal, NULL) < 0)
                abort();
        return event;
}

static int do_watch(int argc, char **argv) {
        const char *name = argv[2], *id = argc > 3 ? argv[3] : NULL, *mode = argc > 4 ? argv[4] : "";
        ElectionOptions *o = NULL;
        Election *e = NULL;
        sd_event *event = setup_loop();
        int r;

        CHECK_OK(election_client_new(&client));
        CHECK_OK(election_client_attach_event(client, event, 0));
        CHECK_OK(election_options_new(&o));
        CHECK_OK(election_options_set_id(o, id));
        CHECK_OK(election_options_set_reenter(o, strcmp(mode, "enter-reenter") == 0));
        r = election_client_get_election(client, name, o, &e);
        if (r < 0)
                return EXIT_FAILURE;
        r = election_watch(e, on_watch, (void *) "w");
        CHECK(r >= 0);
        CHECK(election_watch(e, on_watch, (void *) "w") == -EBUSY);
        CHECK_OK(election_watch_local_leader(e, on_local_leader, NULL));
        CHECK(election_watch_local_leader(e, on_local_leader, NULL) == -EBUSY);
        if (strncmp(mode, "enter", 5) == 0)
                CHECK_OK(election_enter(e, NULL));
        if (failures)
                return EXIT_FAILURE;
        printf("{\"ready\":true}\n");
        fflush(stdout);

        r = sd_event_loop(event);
        CHECK(election_unwatch(e) == 1);
        CHECK(election_unwatch_local_leader(e) == 1);
        CHECK(election_unwatch_local_leader(e) == 0);
        election_unref(e);
        election_options_free(o);
        election_client_unref(client);
        sd_event_unref(event);
        return r < 0 || failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Two connections in one process on one loop, both watching the same election. */
static int do_two_handles(int argc, char **argv) {
        ElectionClient *c2 = NULL;
        Election *e1, *e2;
        sd_event *event = setup_loop();

        CHECK_OK(election_client_new(&client));
        CHECK_OK(election_client_new(&c2));
        CHECK_OK(election_client_attach_event(client, event, 0));
        CHECK_OK(election_client_attach_event(c2, event, 0));
        e1 = get(client, argv[2], "one", false);
        e2 = get(c2, argv[2], "two", false);
        CHECK_OK(election_watch(e1, on_watch, (void *) "one"));
        CHECK_OK(election_watch(e2, on_watch, (void *) "two"));
        CHECK_OK(election_enter(e1, NULL));
        CHECK_OK(election_enter(e2, NULL));
        if (failures)
                return EXIT_FAILURE;
        printf("{\"ready\":true}\n");
        fflush(stdout);
        if (sd_event_loop(event) < 0)
                return EXIT_FAILURE;
        election_unref(e1);
        election_unref(e2);
        election_client_unref(c2);
        election_client_unref(client);
        sd_event_unref(event);
        return EXIT_SUCCESS;
}

/* ---- GLib ------------------------------------------------------------------------------------ */

typedef struct GlibState {
        GMainLoop *loop;
        int terms;
        bool led;
        bool entered;
} GlibState;

static void on_glib_watch(Election *e, int status, const ElectionTerm *t, void *userdata) {
        GlibState *s = userdata;

        print_event("glib", status, t);
        if (status < 0)
                return;
        s->terms++;
        if (election_term_is_leader(t, election_get_id(e))) {
                s->led = true;
                if (s->entered)
                        g_main_loop_quit(s->loop);
        }
}

static void on_glib_enter(Election *e, int status, const ElectionTerm *t, const char *en, const char *em,
                          void *userdata) {
        GlibState *s = userdata;

        CHECK(status == 0);
        s->entered = true;
        if (s->led)
                g_main_loop_quit(s->loop);
}

static gboolean on_glib_timeout(gpointer userdata) {
        GlibState *s = userdata;

        fprintf(stderr, "glib: timed out\n");
        failures++;
        g_main_loop_quit(s->loop);
        return G_SOURCE_REMOVE;
}

static int do_glib(int argc, char **argv) {
        GlibState s = { .loop = g_main_loop_new(NULL, FALSE) };
        sd_event *event = NULL;
        GSource *source;
        Election *e;

        CHECK_OK(election_client_new(&client));
        CHECK_OK(sd_event_new(&event));
        CHECK_OK(election_client_attach_event(client, event, 0));
        source = election_glib_source_new(event);
        CHECK(source != NULL);
        g_source_attach(source, NULL);
        e = get(client, argv[2], "glib-id", false);
        CHECK_OK(election_watch(e, on_glib_watch, &s));
        CHECK_OK(election_enter_async(e, on_glib_enter, &s));
        g_timeout_add_seconds(20, on_glib_timeout, &s);

        g_main_loop_run(s.loop);
        /* Initial term (nobody) and the change our Enter made. */
        CHECK(s.terms >= 2);
        CHECK(s.led && s.entered);

        g_source_destroy(source);
        g_source_unref(source);
        election_unref(e);
        election_client_unref(client);
        sd_event_unref(event);
        g_main_loop_unref(s.loop);
        return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* The daemon runs with MaxCandidates=2: the third Enter hits the limit. */
static int do_limit(int argc, char **argv) {
        ElectionClient *byaddr = NULL;
        Election *e[3];
        int r;

        /* Connecting by address works like the system bus it points at. */
        CHECK_OK(election_client_new_address(getenv("DBUS_SYSTEM_BUS_ADDRESS"), &byaddr));
        client = byaddr;
        for (int i = 0; i < 3; i++) {
                char id[8];
                snprintf(id, sizeof id, "l%d", i);
                e[i] = get(byaddr, argv[2], id, false);
        }
        CHECK_OK(election_enter(e[0], NULL));
        CHECK_OK(election_enter(e[1], NULL));
        r = election_enter(e[2], NULL);
        CHECK(r == -ENOSPC);
        CHECK(strcmp(election_client_last_error_name(byaddr) ?: "", ELECTION_ERROR_LIMIT_EXCEEDED) == 0);
        for (int i = 0; i < 3; i++)
                election_unref(e[i]);
        election_client_unref(byaddr);
        if (!failures)
                printf("limit: all checks passed\n");
        return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Run as a uid other than 0 against a daemon with MaxPersistentPerUser=1: the second persistent
 * Enter is refused with -EDQUOT and its error name; a connection-bound one is not limited. */
static int do_quota(int argc, char **argv) {
        Election *p1, *p2, *bound;
        int r;

        CHECK_OK(election_client_new(&client));
        p1 = get(client, argv[2], "q1", true);
        p2 = get(client, argv[2], "q2", true);
        bound = get(client, argv[2], "q3", false);
        CHECK_OK(election_enter(p1, NULL));
        r = election_enter(p2, NULL);
        CHECK(r == -EDQUOT);
        CHECK(strcmp(election_client_last_error_name(client) ?: "", ELECTION_ERROR_QUOTA_EXCEEDED) == 0);
        CHECK_OK(election_enter(bound, NULL));
        CHECK_OK(election_leave(p1, NULL));
        CHECK_OK(election_leave(bound, NULL));
        election_unref(p1);
        election_unref(p2);
        election_unref(bound);
        if (!failures)
                printf("quota: all checks passed\n");
        return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* The lease watch on a standalone daemon: WatchLease answers "never ends" (UINT64_MAX). */
static void on_lease(ElectionClient *c, int status, uint64_t expiry, void *userdata) {
        sd_event *event = userdata;

        printf("lease %d %" PRIu64 "\n", status, expiry);
        fflush(stdout);
        CHECK(status == 0);
        CHECK(expiry == ELECTION_LEASE_INFINITE);
        (void) sd_event_exit(event, 0);
}

static int do_lease(int argc, char **argv) {
        sd_event *event = NULL;

        CHECK_OK(election_client_new(&client));
        CHECK(election_client_watch_lease(client, on_lease, NULL) == -ENXIO); /* no event loop yet */
        CHECK_OK(sd_event_new(&event));
        CHECK_OK(election_client_attach_event(client, event, 0));
        CHECK_OK(election_client_watch_lease(client, on_lease, event));
        CHECK(election_client_watch_lease(client, on_lease, event) == -EBUSY);
        CHECK_OK(sd_event_loop(event));
        CHECK(election_client_unwatch_lease(client) == 1);
        CHECK(election_client_unwatch_lease(client) == 0);
        election_client_unref(client);
        sd_event_unref(event);
        if (!failures)
                printf("lease: all checks passed\n");
        return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        if (argc >= 4 && strcmp(argv[1], "calls") == 0)
                return do_calls(argv[2], argv[3]);
        if (argc >= 3 && strcmp(argv[1], "watch") == 0)
                return do_watch(argc, argv);
        if (argc >= 3 && strcmp(argv[1], "two-handles") == 0)
                return do_two_handles(argc, argv);
        if (argc >= 3 && strcmp(argv[1], "glib") == 0)
                return do_glib(argc, argv);
        if (argc >= 3 && strcmp(argv[1], "limit") == 0)
                return do_limit(argc, argv);
        if (argc >= 2 && strcmp(argv[1], "lease") == 0)
                return do_lease(argc, argv);
        if (argc >= 3 && strcmp(argv[1], "quota") == 0)
                return do_quota(argc, argv);
        fprintf(stderr, "usage: %s calls NAME NODE | watch NAME [ID [enter|enter-reenter]] | two-handles NAME | glib NAME | limit NAME | lease | quota NAME\n",
                argv[0]);
        return 2;
}
