/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* electionctl: query and control electiond's elections, systemd-style (verbs, --json, exit codes). */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libintl.h>
#include <locale.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "election.h"
#include "metrics-text.h"

#define _(s) gettext(s)
#define N_(s) s

#define _cleanup_(f) __attribute__((cleanup(f)))
#define USEC_PER_SEC UINT64_C(1000000)

/* Exit codes (documented in electionctl(1)). */
enum {
        EXIT_OK = 0,
        EXIT_NO = 1,            /* is-leader: the candidate does not lead */
        EXIT_USAGE = 2,         /* bad command line, invalid election name or candidate id */
        EXIT_NOT_RUNNING = 3,   /* the bus or electiond cannot be reached */
        EXIT_DENIED = 4,        /* access denied */
        EXIT_NOT_CANDIDATE = 5, /* the id is not a candidate (also: run/enter was evicted) */
        EXIT_ERROR = 6,         /* anything else (limit exceeded, no quorum, I/O, ...) */
        EXIT_OUTCOME_UNKNOWN = 7, /* submitted, not seen committed in time: it may still take effect */
};

static bool arg_user = false;
static bool arg_json = false;
static bool arg_persistent = false;
static const char *arg_id = NULL;
static uint64_t arg_stop_timeout_usec = 10 * USEC_PER_SEC;
static const char *arg_output = NULL;
static bool arg_http = false;
static int arg_format = -1; /* MetricsTextFormat; -1: OpenMetrics, Prometheus text for --output */

static inline void election_client_unrefp(ElectionClient **c) {
        election_client_unref(*c);
}
static inline void election_unrefp(Election **e) {
        election_unref(*e);
}
static inline void election_term_unrefp(ElectionTerm **t) {
        election_term_unref(*t);
}
static inline void election_list_freep(ElectionList **l) {
        election_list_free(*l);
}
static inline void election_member_list_freep(ElectionMemberList **l) {
        election_member_list_free(*l);
}
static inline void election_options_freep(ElectionOptions **o) {
        election_options_free(*o);
}
static inline void sd_event_unrefp_(sd_event **e) {
        sd_event_unref(*e);
}
static inline void freep(void *p) {
        free(*(void **) p);
}

static void strv_free_(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
}

static inline void strv_freep_(char ***l) {
        strv_free_(*l);
}

static bool streq_ptr(const char *a, const char *b) {
        return a && b ? strcmp(a, b) == 0 : a == b;
}

/* ---- messages and exit codes ----------------------------------------------------------------- */

static int error_exit_code(ElectionClient *c, int r) {
        const char *n = c ? election_client_last_error_name(c) : NULL;

        if (!n)
                return r == -ENOENT || r == -ECONNREFUSED ? EXIT_NOT_RUNNING : EXIT_ERROR;
        if (streq_ptr(n, "org.freedesktop.DBus.Error.ServiceUnknown") ||
            streq_ptr(n, "org.freedesktop.DBus.Error.NameHasNoOwner") ||
            strncmp(n, "org.freedesktop.DBus.Error.Spawn.", 33) == 0)
                return EXIT_NOT_RUNNING;
        if (streq_ptr(n, ELECTION_ERROR_ACCESS_DENIED))
                return EXIT_DENIED;
        if (streq_ptr(n, ELECTION_ERROR_NOT_CANDIDATE))
                return EXIT_NOT_CANDIDATE;
        if (streq_ptr(n, ELECTION_ERROR_OUTCOME_UNKNOWN))
                return EXIT_OUTCOME_UNKNOWN;
        if (streq_ptr(n, ELECTION_ERROR_INVALID_NAME) || streq_ptr(n, ELECTION_ERROR_INVALID_ID) ||
            streq_ptr(n, "org.freedesktop.DBus.Error.InvalidArgs"))
                return EXIT_USAGE;
        return EXIT_ERROR;
}

/* Prints a clear message for the failure R of a call on C (about election NAME, candidate ID, either
 * may be NULL) and returns the matching exit code. */
static int report(ElectionClient *c, int r, const char *name, const char *id) {
        const char *n = c ? election_client_last_error_name(c) : NULL;
        const char *m = c ? election_client_last_error_message(c) : NULL;
        int code = error_exit_code(c, r);

        if (code == EXIT_NOT_RUNNING)
                fprintf(stderr, _("electiond is not running (nothing owns org.electiond.Election1 on the %s bus).\n"),
                        arg_user ? _("session") : _("system"));
        else if (code == EXIT_DENIED)
                fprintf(stderr,
                        _("Access denied. Anoint, promote, evict and taking over another user's candidacy need root "
                          "or the polkit authorization org.electiond.Election1.manage; a connection-bound candidacy "
                          "can only be left by the connection that holds it.\n"));
        else if (code == EXIT_NOT_CANDIDATE)
                fprintf(stderr, _("\"%s\" is not a candidate in election \"%s\".\n"), id ?: "", name ?: "");
        else if (streq_ptr(n, ELECTION_ERROR_INVALID_NAME))
                fprintf(stderr, _("Invalid election name \"%s\": names are 1 to 255 bytes of UTF-8 without control "
                                  "characters.\n"), name ?: "");
        else if (streq_ptr(n, ELECTION_ERROR_INVALID_ID))
                fprintf(stderr, _("Invalid candidate id \"%s\": ids are 1 to 255 bytes of UTF-8 without control "
                                  "characters.\n"), id ?: "");
        else if (streq_ptr(n, ELECTION_ERROR_LIMIT_EXCEEDED))
                fprintf(stderr, _("Limit exceeded: electiond allows no more elections or candidates.\n"));
        else if (streq_ptr(n, ELECTION_ERROR_QUOTA_EXCEEDED))
                fprintf(stderr, _("Quota exceeded: this user holds as many persistent candidacies as allowed "
                                  "(MaxPersistentPerUser=). Leave one, enter without --persistent, or get the polkit "
                                  "authorization org.electiond.Election1.enter-persistent.\n"));
        else if (streq_ptr(n, ELECTION_ERROR_NO_QUORUM))
                /* the daemon says which: a change not applied, or no terms to show yet */
                fprintf(stderr, _("No quorum: %s\n"), m ?: _("the change was not applied."));
        else if (streq_ptr(n, ELECTION_ERROR_OUTCOME_UNKNOWN))
                fprintf(stderr, _("Outcome unknown: the change was submitted but not seen committed in time; it may "
                                  "still take effect. Check with \"electionctl term %s\".\n"), name ?: "");
        else if (n)
                fprintf(stderr, _("Operation failed: %s (%s)\n"), m ?: "", n);
        else
                fprintf(stderr, _("Operation failed: %s\n"), strerror(-r));
        return code;
}

/* ---- output ---------------------------------------------------------------------------------- */

static void json_string(const char *s) {
        putchar('"');
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        printf("\\%c", *p);
                else if (*p < 0x20)
                        printf("\\u%04x", *p);
                else
                        putchar(*p);
        }
        putchar('"');
}

static void print_term_json(const char *name, const ElectionTerm *t) {
        const char *const *c = election_term_get_candidates(t);

        printf("{\"name\":");
        json_string(name);
        printf(",\"term\":%" PRIu64 ",\"leader\":", election_term_get_id(t));
        json_string(election_term_get_leader(t));
        printf(",\"candidates\":[");
        for (size_t i = 0; c && c[i]; i++) {
                if (i > 0)
                        putchar(',');
                json_string(c[i]);
        }
        printf("]}\n");
        fflush(stdout);
}

static void print_candidates(const ElectionTerm *t) {
        const char *const *c = election_term_get_candidates(t);

        if (!c || !c[0]) {
                fputs(_("(none)"), stdout);
                return;
        }
        for (size_t i = 0; c[i]; i++)
                printf("%s%s", i > 0 ? ", " : "", c[i]);
}

static const char *leader_or_none(const char *leader) {
        return leader && leader[0] ? leader : _("(none)");
}

static void print_term(const char *name, const ElectionTerm *t) {
        if (arg_json) {
                print_term_json(name, t);
                return;
        }
        printf(_("  Election: %s\n"), name);
        printf(_("      Term: %" PRIu64 "\n"), election_term_get_id(t));
        printf(_("    Leader: %s\n"), leader_or_none(election_term_get_leader(t)));
        fputs(_("Candidates: "), stdout);
        print_candidates(t);
        putchar('\n');
        fflush(stdout);
}

/* One line per term, for watch. */
static void print_term_line(const char *name, const ElectionTerm *t) {
        if (arg_json) {
                print_term_json(name, t);
                return;
        }
        printf(_("term %" PRIu64 ", leader %s, candidates: "), election_term_get_id(t),
               leader_or_none(election_term_get_leader(t)));
        print_candidates(t);
        putchar('\n');
        fflush(stdout);
}

/* ---- plumbing -------------------------------------------------------------------------------- */

static int connect_client(ElectionClient **ret) {
        int r;

        r = arg_user ? election_client_new_user(ret) : election_client_new(ret);
        if (r < 0) {
                fprintf(stderr, _("Cannot connect to the %s bus: %s\n"), arg_user ? _("session") : _("system"),
                        strerror(-r));
                return EXIT_NOT_RUNNING;
        }
        return EXIT_OK;
}

/* Connects and gets election NAME with the command-line options applied. */
static int open_election(const char *name, bool reenter, ElectionClient **ret_client, Election **ret) {
        _cleanup_(election_options_freep) ElectionOptions *o = NULL;
        int r, code;

        code = connect_client(ret_client);
        if (code != EXIT_OK)
                return code;

        r = election_options_new(&o);
        if (r >= 0)
                r = election_options_set_id(o, arg_id);
        if (r >= 0)
                r = election_options_set_persistent(o, arg_persistent);
        if (r >= 0)
                r = election_options_set_reenter(o, reenter);
        if (r < 0) {
                fprintf(stderr, _("Out of memory.\n"));
                return EXIT_ERROR;
        }

        r = election_client_get_election(*ret_client, name, o, ret);
        if (r < 0)
                return report(*ret_client, r, name, arg_id);
        return EXIT_OK;
}

static int setup_event(ElectionClient *c, sd_event **ret) {
        sigset_t mask;
        int r;

        /* sd-event needs these blocked to deliver them as events; children get a clean mask back. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;

        r = sd_event_new(ret);
        if (r < 0)
                return r;
        r = election_client_attach_event(c, *ret, 0);
        if (r < 0)
                return r;
        return 0;
}

/* ---- verbs ----------------------------------------------------------------------------------- */

/* Raft voters among the members (the Raft leader is one) and how many of them may fail with the
 * cluster still quorate: floor((voters - 1) / 2). */
static unsigned count_member_voters(const ElectionMemberList *members) {
        unsigned n = 0;

        for (size_t i = 0; i < election_member_list_size(members); i++) {
                const char *role = election_member_list_get_role(members, i);
                if (streq_ptr(role, "voter") || streq_ptr(role, "leader"))
                        n++;
        }
        return n;
}

static unsigned fault_tolerance(unsigned voters) {
        return voters > 0 ? (voters - 1) / 2 : 0;
}

static int verb_status(int argc, char **argv) {
        _cleanup_(election_client_unrefp) ElectionClient *c = NULL;
        _cleanup_(election_list_freep) ElectionList *l = NULL;
        _cleanup_(election_member_list_freep) ElectionMemberList *members = NULL;
        _cleanup_(freep) char *node = NULL, *version = NULL, *cluster = NULL;
        _cleanup_(strv_freep_) char **drained = NULL;
        int r, code, quorate = 0;
        unsigned voters, protocol = 0, max_protocol = 0;

        code = connect_client(&c);
        if (code != EXIT_OK)
                return code;
        r = election_client_get_node_name(c, &node);
        if (r >= 0)
                r = election_client_get_version(c, &version);
        if (r >= 0)
                r = election_client_get_cluster_name(c, &cluster);
        if (r >= 0)
                r = quorate = election_client_is_quorate(c);
        if (r >= 0)
                r = election_client_list_members(c, &members);
        if (r >= 0)
                r = election_client_list_elections(c, &l);
        if (r >= 0)
                r = election_client_get_drained(c, &drained);
        if (r >= 0)
                r = election_client_get_protocol_version(c, &protocol, &max_protocol);
        if (r < 0)
                return report(c, r, NULL, NULL);
        voters = count_member_voters(members);

        if (arg_json) {
                printf("{\"node\":");
                json_string(node);
                printf(",\"version\":");
                json_string(version);
                printf(",\"cluster\":");
                json_string(cluster);
                printf(",\"quorate\":%s,\"protocol\":%u,\"max_protocol\":%u,\"drained\":[",
                       quorate ? "true" : "false", protocol, max_protocol);
                for (size_t i = 0; drained && drained[i]; i++) {
                        if (i > 0)
                                putchar(',');
                        json_string(drained[i]);
                }
                printf("]");
                if (election_member_list_size(members) > 0)
                        printf(",\"voters\":%u,\"fault_tolerance\":%u", voters, fault_tolerance(voters));
                printf(",\"members\":[");
                for (size_t i = 0; i < election_member_list_size(members); i++) {
                        printf("%s{\"name\":", i > 0 ? "," : "");
                        json_string(election_member_list_get_name(members, i));
                        printf(",\"address\":");
                        json_string(election_member_list_get_address(members, i));
                        printf(",\"state\":");
                        json_string(election_member_list_get_state(members, i));
                        printf(",\"role\":");
                        json_string(election_member_list_get_role(members, i));
                        putchar('}');
                }
                printf("],\"elections\":[");
                for (size_t i = 0; i < election_list_size(l); i++) {
                        printf("%s{\"name\":", i > 0 ? "," : "");
                        json_string(election_list_get_name(l, i));
                        printf(",\"term\":%" PRIu64 ",\"leader\":", election_list_get_term_id(l, i));
                        json_string(election_list_get_leader(l, i));
                        printf("}");
                }
                printf("]}\n");
                return EXIT_OK;
        }

        printf(_("     Node: %s\n"), node);
        printf(_("  Version: %s\n"), version);
        printf(_("  Cluster: %s\n"), cluster[0] ? cluster : _("(standalone)"));
        printf(_("  Quorate: %s\n"), quorate ? _("yes") : _("no"));
        printf(_(" Protocol: %u (this node speaks up to %u)\n"), protocol, max_protocol);
        if (drained && drained[0]) {
                /* "" is a drain of every election */
                printf(_("  Drained: %s"), drained[0][0] ? drained[0] : _("all elections"));
                for (size_t i = 1; drained[i]; i++)
                        printf(", %s", drained[i]);
                putchar('\n');
        }
        if (election_member_list_size(members) > 0) {
                printf(_("  Members: %zu\n"), election_member_list_size(members));
                for (size_t i = 0; i < election_member_list_size(members); i++)
                        printf("           %s %s %s %s\n", election_member_list_get_name(members, i),
                               election_member_list_get_address(members, i),
                               election_member_list_get_state(members, i),
                               election_member_list_get_role(members, i));
                printf(_("Tolerates: %u failure%s (%u voters)%s\n"), fault_tolerance(voters),
                       fault_tolerance(voters) == 1 ? "" : "s", voters,
                       fault_tolerance(voters) == 0 && election_member_list_size(members) > 1
                       ? _(" - warning: losing any voter stops the cluster; add a witness") : "");
        }
        printf(_("Elections: %zu\n"), election_list_size(l));
        for (size_t i = 0; i < election_list_size(l); i++) {
                const char *leader = election_list_get_leader(l, i);
                printf(_("           %s: term %" PRIu64 ", leader %s\n"), election_list_get_name(l, i),
                       election_list_get_term_id(l, i), leader_or_none(leader));
        }
        return EXIT_OK;
}

/* drain/undrain [NAME...]: no names = every election. */
static int drain_op(int argc, char **argv, int (*op)(ElectionClient *, char **)) {
        _cleanup_(election_client_unrefp) ElectionClient *c = NULL;
        int r, code;

        code = connect_client(&c);
        if (code != EXIT_OK)
                return code;
        r = op(c, argv + 1);
        if (r < 0) {
                if (error_exit_code(c, r) == EXIT_DENIED) {
                        fprintf(stderr, _("Access denied. Draining needs root or the polkit authorization "
                                          "org.electiond.Election1.drain.\n"));
                        return EXIT_DENIED;
                }
                return report(c, r, argc > 1 ? argv[1] : NULL, NULL);
        }
        return EXIT_OK;
}

static int verb_drain(int argc, char **argv) {
        return drain_op(argc, argv, election_client_drain);
}

static int verb_undrain(int argc, char **argv) {
        return drain_op(argc, argv, election_client_undrain);
}

static int verb_list(int argc, char **argv) {
        _cleanup_(election_client_unrefp) ElectionClient *c = NULL;
        _cleanup_(election_list_freep) ElectionList *l = NULL;
        int r, code;

        code = connect_client(&c);
        if (code != EXIT_OK)
                return code;
        r = election_client_list_elections(c, &l);
        if (r < 0)
                return report(c, r, NULL, NULL);

        if (arg_json) {
                putchar('[');
                for (size_t i = 0; i < election_list_size(l); i++) {
                        printf("%s{\"name\":", i > 0 ? "," : "");
                        json_string(election_list_get_name(l, i));
                        printf(",\"term\":%" PRIu64 ",\"leader\":", election_list_get_term_id(l, i));
                        json_string(election_list_get_leader(l, i));
                        putchar('}');
                }
                printf("]\n");
                return EXIT_OK;
        }

        if (election_list_size(l) == 0) {
                printf(_("No elections.\n"));
                return EXIT_OK;
        }
        printf("%-30s %10s  %s\n", _("NAME"), _("TERM"), _("LEADER"));
        for (size_t i = 0; i < election_list_size(l); i++)
                printf("%-30s %10" PRIu64 "  %s\n", election_list_get_name(l, i), election_list_get_term_id(l, i),
                       election_list_get_leader(l, i));
        return EXIT_OK;
}

static int verb_term(int argc, char **argv) {
        _cleanup_(election_client_unrefp) ElectionClient *c = NULL;
        _cleanup_(election_unrefp) Election *e = NULL;
        _cleanup_(election_term_unrefp) ElectionTerm *t = NULL;
        int r, code;

        code = open_election(argv[1], false, &c, &e);
        if (code != EXIT_OK)
                return code;
        r = election_get_term(e, &t);
        if (r < 0)
                return report(c, r, argv[1], NULL);
        print_term(argv[1], t);
        return EXIT_OK;
}

static int verb_is_leader(int argc, char **argv) {
        _cleanup_(election_client_unrefp) ElectionClient *c = NULL;
        _cleanup_(election_unrefp) Election *e = NULL;
        _cleanup_(election_term_unrefp) ElectionTerm *t = NULL;
        int r, code;

        code = open_election(argv[1], false, &c, &e);
        if (code != EXIT_OK)
                return code == EXIT_NO ? EXIT_ERROR : code;
        r = election_get_term(e, &t);
        if (r < 0)
                return report(c, r, argv[1], NULL);
        /* "That candidate leads" = the term's Leader is the id (default: the node name) — and,
         * since callers act on the answer (ExecCondition=), this node holds that lead right now:
         * LocalLeader, evaluated by the daemon at this moment (quorum, unexpired lease). */
        if (!election_term_is_leader(t, election_get_id(e)))
                return EXIT_NO;
        r = election_get_local_leader(e);
        if (r < 0)
                return report(c, r, argv[1], NULL);
        return r > 0 ? EXIT_OK : EXIT_NO;
}

typedef int (*election_op_t)(Election *e, const char *id, ElectionTerm **ret);

static int op_leave(Election *e, const char *id, ElectionTerm **ret) {
        return election_leave(e, ret);
}

static int op_enter(Election *e, const char *id, ElectionTerm **ret) {
        return election_enter(e, ret);
}

static int run_op(const char *name, const char *id, election_op_t op) {
        _cleanup_(election_client_unrefp) ElectionClient *c = NULL;
        _cleanup_(election_unrefp) Election *e = NULL;
        _cleanup_(election_term_unrefp) ElectionTerm *t = NULL;
        int r, code;

        code = open_election(name, false, &c, &e);
        if (code != EXIT_OK)
                return code;
        r = op(e, id, &t);
        if (r < 0)
                return report(c, r, name, id ?: election_get_id(e));
        if (arg_json)
                print_term_json(name, t);
        return EXIT_OK;
}

static int verb_leave(int argc, char **argv) {
        return run_op(argv[1], NULL, op_leave);
}

static int verb_anoint(int argc, char **argv) {
        return run_op(argv[1], argv[2], election_anoint);
}

static int verb_promote(int argc, char **argv) {
        return run_op(argv[1], argv[2], election_promote);
}

static int verb_evict(int argc, char **argv) {
        return run_op(argv[1], argv[2], election_evict);
}

/* watch and enter share this: a loop that ends on SIGINT/SIGTERM or a lost bus. */
typedef struct Loop {
        sd_event *event;
        const char *name;
        Election *leave; /* enter: the candidacy to give up when stopped */
        bool print;
        int code;
} Loop;

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Loop *l = userdata;
        int r;

        /* Leave now: once the loop exits, sd-bus closes the connection attached to it. */
        if (l->leave) {
                r = election_leave(l->leave, NULL);
                if (r < 0)
                        l->code = report(election_get_client(l->leave), r, l->name, election_get_id(l->leave));
        }
        return sd_event_exit(l->event, 0);
}

static void on_watch(Election *e, int status, const ElectionTerm *t, void *userdata) {
        Loop *l = userdata;

        if (status == -ESHUTDOWN) {
                fprintf(stderr, _("electiond went away; waiting for it to come back.\n"));
                return;
        }
        if (status == -ECONNRESET) {
                fprintf(stderr, _("Lost the connection to the bus.\n"));
                l->code = EXIT_NOT_RUNNING;
                (void) sd_event_exit(l->event, 0);
                return;
        }
        if (status < 0) {
                /* Daemon not there at the start: say so once, keep waiting as watch is meant to. */
                l->code = report(election_get_client(e), status, l->name, NULL);
                if (l->code != EXIT_NOT_RUNNING)
                        (void) sd_event_exit(l->event, 0);
                return;
        }
        l->code = EXIT_OK;
        if (l->print)
                print_term_line(l->name, t);
}

static int loop_run(Loop *l, ElectionClient *c, Election *e) {
        int r;

        r = sd_event_add_signal(l->event, NULL, SIGINT, on_exit_signal, l);
        if (r >= 0)
                r = sd_event_add_signal(l->event, NULL, SIGTERM, on_exit_signal, l);
        if (r >= 0)
                r = election_watch(e, on_watch, l);
        if (r < 0)
                return report(c, r, l->name, NULL);
        r = sd_event_loop(l->event);
        if (r < 0)
                return report(c, r, l->name, NULL);
        election_unwatch(e);
        return l->code;
}

static int verb_watch(int argc, char **argv) {
        _cleanup_(election_client_unrefp) ElectionClient *c = NULL;
        _cleanup_(election_unrefp) Election *e = NULL;
        _cleanup_(sd_event_unrefp_) sd_event *event = NULL;
        Loop l = { .name = argv[1], .print = true };
        int r, code;

        code = open_election(argv[1], false, &c, &e);
        if (code != EXIT_OK)
                return code;
        r = setup_event(c, &event);
        if (r < 0)
                return report(NULL, r, argv[1], NULL);
        l.event = event;
        return loop_run(&l, c, e);
}

static int verb_enter(int argc, char **argv) {
        _cleanup_(election_client_unrefp) ElectionClient *c = NULL;
        _cleanup_(election_unrefp) Election *e = NULL;
        _cleanup_(election_term_unrefp) ElectionTerm *t = NULL;
        _cleanup_(sd_event_unrefp_) sd_event *event = NULL;
        Loop l = { .name = argv[1] };
        int r, code;

        if (arg_persistent)
                return run_op(argv[1], NULL, op_enter);

        /* Connection-bound: hold the candidacy (and re-enter after a daemon restart) until told to stop. */
        code = open_election(argv[1], true, &c, &e);
        if (code != EXIT_OK)
                return code;
        r = setup_event(c, &event);
        if (r < 0)
                return report(NULL, r, argv[1], NULL);
        r = election_enter(e, &t);
        if (r < 0)
                return report(c, r, argv[1], election_get_id(e));
        if (arg_json)
                print_term_json(argv[1], t);

        l.event = event;
        l.leave = e;
        return loop_run(&l, c, e);
}

/* ---- run ------------------------------------------------------------------------------------- */

typedef struct Runner {
        sd_event *event;
        Election *election;
        const char *name;
        char **argv;

        ElectionTerm *term;        /* current term, NULL while the daemon is away */
        bool local_leader;         /* LocalLeader: a local candidate leads, quorate, lease valid */
        bool rejoining;            /* daemon restarted: our candidacy may briefly be missing */
        pid_t pid;                 /* running COMMAND, 0 if none */
        uint64_t child_term;       /* the term COMMAND was started in */
        bool stopping;             /* we sent SIGTERM */
        sd_event_source *child_source;
        sd_event_source *kill_timer;

        /* Our own copy of the node's lease (WatchLease/LeaseRenewed), asked for once we lead: COMMAND
         * runs only before it ends, and a timer stops COMMAND at the expiry even if the daemon is
         * stopped or stalled and never says so. */
        bool lease_watching;
        int lease_state;           /* LEASE_* */
        uint64_t lease_expiry;     /* CLOCK_BOOTTIME µs, while LEASE_KNOWN (UINT64_MAX: never ends) */
        sd_event_source *lease_timer;

        bool interrupted;
        bool bus_lost;
        bool evicted;
        bool finished;
        int code;
} Runner;

enum {
        LEASE_UNKNOWN,     /* not asked yet, or the daemon is away: COMMAND may not run */
        LEASE_KNOWN,       /* lease_expiry holds */
        LEASE_UNSUPPORTED, /* an older daemon without WatchLease: LocalLeader alone decides */
};

static void runner_update(Runner *r);

static void on_final_leave(Election *e, int status, const ElectionTerm *t, const char *error_name,
                           const char *error_message, void *userdata) {
        Runner *r = userdata;
        ElectionClient *c = election_get_client(e);

        if (status < 0 && error_exit_code(c, status) != EXIT_NOT_RUNNING)
                (void) report(c, status, r->name, election_get_id(e));
        (void) sd_event_exit(r->event, 0);
}

static void runner_finish(Runner *r, int code) {
        if (r->finished)
                return;
        r->finished = true;
        r->code = code;
        r->lease_timer = sd_event_source_disable_unref(r->lease_timer);
        /* Leave before the loop ends: sd-bus closes the connection when its event loop exits. A daemon
         * that is gone has dropped the candidacy already. Asynchronously: nothing in this loop may wait
         * for a daemon that may be stopped. */
        if (!r->evicted && !r->bus_lost && election_leave_async(r->election, on_final_leave, r) >= 0)
                return;
        (void) sd_event_exit(r->event, 0);
}

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Runner *r = userdata;

        if (r->pid > 0) {
                fprintf(stderr, _("Command did not stop in time, killing it.\n"));
                (void) kill(r->pid, SIGKILL);
        }
        return 0;
}

static void runner_stop_child(Runner *r) {
        uint64_t now;

        if (r->pid <= 0 || r->stopping)
                return;
        r->stopping = true;
        (void) kill(r->pid, SIGTERM);
        (void) sd_event_now(r->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_add_time(r->event, &r->kill_timer, CLOCK_MONOTONIC, now + arg_stop_timeout_usec, 0,
                                 on_kill_timer, r);
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Runner *r = userdata;
        bool stopped_by_us = r->stopping;
        int status;

        status = si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
        r->pid = 0;
        r->stopping = false;
        r->child_source = sd_event_source_unref(r->child_source);
        r->kill_timer = sd_event_source_disable_unref(r->kill_timer);

        if (r->bus_lost) {
                /* Not COMMAND's failure, but ours: let a supervisor restart us. */
                runner_finish(r, EXIT_NOT_RUNNING);
                return 0;
        }
        if (!stopped_by_us || r->interrupted) {
                /* COMMAND ended on its own (or we are shutting down): leave and pass its status on. */
                runner_finish(r, status);
                return 0;
        }
        if (r->evicted) {
                runner_finish(r, EXIT_NOT_CANDIDATE);
                return 0;
        }
        runner_update(r); /* leadership was lost; maybe it is back already */
        return 0;
}

static int runner_start_child(Runner *r) {
        char term[32];
        pid_t pid;
        int ret;

        snprintf(term, sizeof term, "%" PRIu64, election_term_get_id(r->term));
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                sigset_t mask;

                /* Don't outlive electionctl: a leader's command must not run unsupervised. */
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                /* Give COMMAND the defaults back: we ignore SIGPIPE and block what sd-event handles. */
                (void) signal(SIGPIPE, SIG_DFL);
                sigemptyset(&mask);
                (void) sigprocmask(SIG_SETMASK, &mask, NULL);
                if (setenv("ELECTION_NAME", r->name, 1) < 0 ||
                    setenv("ELECTION_ID", election_get_id(r->election), 1) < 0 ||
                    setenv("ELECTION_TERM", term, 1) < 0)
                        _exit(127);
                execvp(r->argv[0], r->argv);
                fprintf(stderr, _("Failed to execute %s: %s\n"), r->argv[0], strerror(errno));
                _exit(127);
        }

        r->pid = pid;
        r->child_term = election_term_get_id(r->term);
        ret = sd_event_add_child(r->event, &r->child_source, pid, WEXITED, on_child, r);
        if (ret < 0) {
                (void) kill(pid, SIGKILL);
                return ret;
        }
        return 0;
}

static uint64_t now_boottime(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_BOOTTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* Our copy of the lease runs now (evaluated now, like the daemon's LocalLeader). */
static bool runner_lease_valid(Runner *r) {
        if (r->lease_state == LEASE_UNSUPPORTED)
                return true;
        if (r->lease_state != LEASE_KNOWN || r->lease_expiry == 0)
                return false;
        return r->lease_expiry == UINT64_MAX || now_boottime() < r->lease_expiry;
}

static void runner_watch_lease(Runner *r);

static void runner_update(Runner *r) {
        const char *id = election_get_id(r->election);
        /* Our id must be the leader, and the daemon must vouch for it now (quorum and lease). */
        bool leads = r->term && election_term_is_leader(r->term, id) && r->local_leader;

        if (r->finished)
                return;
        if (leads && !r->lease_watching)
                runner_watch_lease(r); /* may answer at once (a local failure) */
        /* ... and until our own copy of its lease ends: a stopped daemon says nothing. */
        leads = leads && runner_lease_valid(r);

        if (r->pid > 0) {
                if (!leads || election_term_get_id(r->term) != r->child_term || r->interrupted || r->evicted ||
                    r->bus_lost)
                        runner_stop_child(r);
                return;
        }
        if (r->bus_lost) {
                runner_finish(r, EXIT_NOT_RUNNING);
                return;
        }
        if (r->interrupted) {
                runner_finish(r, EXIT_OK);
                return;
        }
        if (r->evicted) {
                runner_finish(r, EXIT_NOT_CANDIDATE);
                return;
        }
        if (leads) {
                int ret = runner_start_child(r);
                if (ret < 0) {
                        fprintf(stderr, _("Failed to start the command: %s\n"), strerror(-ret));
                        runner_finish(r, EXIT_ERROR);
                }
        }
}

static int on_lease_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Runner *r = userdata;

        if (r->pid > 0 && !r->stopping && !runner_lease_valid(r))
                fprintf(stderr, _("lease expired without renewal (daemon not responding?): stopping COMMAND\n"));
        runner_update(r);
        return 0;
}

static void runner_arm_lease_timer(Runner *r) {
        int ret;

        if (r->lease_state != LEASE_KNOWN || r->lease_expiry == 0 || r->lease_expiry == UINT64_MAX) {
                if (r->lease_timer)
                        (void) sd_event_source_set_enabled(r->lease_timer, SD_EVENT_OFF);
                return;
        }
        if (r->lease_timer) {
                ret = sd_event_source_set_time(r->lease_timer, r->lease_expiry);
                if (ret >= 0)
                        ret = sd_event_source_set_enabled(r->lease_timer, SD_EVENT_ONESHOT);
        } else {
                /* CLOCK_BOOTTIME, the daemon's clock (counts suspend); 1 ms accuracy, first in line. */
                ret = sd_event_add_time(r->event, &r->lease_timer, CLOCK_BOOTTIME, r->lease_expiry, USEC_PER_SEC / 1000,
                                        on_lease_timer, r);
                if (ret >= 0)
                        ret = sd_event_source_set_priority(r->lease_timer, SD_EVENT_PRIORITY_IMPORTANT);
        }
        if (ret < 0) {
                /* Without the timer we cannot keep the promise: treat the lease as ended. */
                fprintf(stderr, _("Failed to set the lease timer: %s\n"), strerror(-ret));
                r->lease_state = LEASE_UNKNOWN;
        }
}

static void on_run_lease(ElectionClient *c, int status, uint64_t expiry, void *userdata) {
        Runner *r = userdata;

        if (status == -EOPNOTSUPP || (status < 0 && status != -ESHUTDOWN)) {
                if (r->lease_state != LEASE_UNSUPPORTED) {
                        if (status == -EOPNOTSUPP)
                                fprintf(stderr, _("Warning: electiond has no WatchLease (an older version): COMMAND "
                                                  "is stopped only when electiond reports the end of the lead, not "
                                                  "when electiond stops responding.\n"));
                        else
                                fprintf(stderr, _("Warning: cannot watch the lease (%s): COMMAND is stopped only "
                                                  "when electiond reports the end of the lead.\n"),
                                        election_client_last_error_message(c) ?: strerror(-status));
                }
                r->lease_state = LEASE_UNSUPPORTED;
        } else if (status < 0)
                r->lease_state = LEASE_UNKNOWN; /* the daemon is away or not answering */
        else {
                r->lease_state = LEASE_KNOWN;
                r->lease_expiry = expiry;
        }
        runner_arm_lease_timer(r);
        runner_update(r);
}

static void runner_watch_lease(Runner *r) {
        int ret;

        r->lease_watching = true;
        ret = election_client_watch_lease(election_get_client(r->election), on_run_lease, r);
        if (ret < 0)
                on_run_lease(election_get_client(r->election), ret, 0, r);
}

static void on_run_watch(Election *e, int status, const ElectionTerm *t, void *userdata) {
        Runner *r = userdata;
        const char *id = election_get_id(e);
        bool member = false;

        /* Our own final Leave is on its way: what follows is its echo. */
        if (r->finished)
                return;
        if (status < 0) {
                /* Leadership is unknown without the daemon: stop COMMAND, wait for a restart. */
                r->term = election_term_unref(r->term);
                r->rejoining = true;
                if (status == -ECONNRESET) {
                        fprintf(stderr, _("Lost the connection to the bus.\n"));
                        r->bus_lost = true;
                } else if (status == -ESHUTDOWN)
                        fprintf(stderr, _("electiond went away; waiting for it to come back.\n"));
                runner_update(r);
                return;
        }

        election_term_unref(r->term);
        r->term = election_term_ref((ElectionTerm *) t);
        for (const char *const *c = election_term_get_candidates(t); c && *c; c++)
                if (strcmp(*c, id) == 0)
                        member = true;
        if (member)
                r->rejoining = false;
        else if (!r->rejoining && !r->evicted) {
                fprintf(stderr, _("\"%s\" is no longer a candidate in election \"%s\" (evicted).\n"), id, r->name);
                r->evicted = true;
        }
        runner_update(r);
}

static void on_run_local_leader(Election *e, int status, int local_leader, void *userdata) {
        Runner *r = userdata;

        r->local_leader = status >= 0 && local_leader > 0;
        runner_update(r);
}

static int on_run_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Runner *r = userdata;

        r->interrupted = true;
        runner_update(r);
        return 0;
}

static int verb_run(int argc, char **argv) {
        _cleanup_(election_client_unrefp) ElectionClient *c = NULL;
        _cleanup_(election_unrefp) Election *e = NULL;
        _cleanup_(sd_event_unrefp_) sd_event *event = NULL;
        Runner runner = {};
        int r, code;

        if (argc < 3) {
                fprintf(stderr, _("Missing command: electionctl run NAME [--id ID] -- COMMAND...\n"));
                return EXIT_USAGE;
        }
        if (arg_persistent) {
                fprintf(stderr, _("--persistent cannot be used with run.\n"));
                return EXIT_USAGE;
        }

        code = open_election(argv[1], true, &c, &e);
        if (code != EXIT_OK)
                return code;
        r = setup_event(c, &event);
        if (r < 0)
                return report(NULL, r, argv[1], NULL);

        runner = (Runner) {
                .event = event,
                .election = e,
                .name = argv[1],
                .argv = argv + 2,
        };
        r = sd_event_add_signal(event, NULL, SIGINT, on_run_signal, &runner);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, on_run_signal, &runner);
        if (r < 0)
                return report(NULL, r, argv[1], NULL);

        r = election_enter(e, NULL);
        if (r < 0)
                return report(c, r, argv[1], election_get_id(e));
        r = election_watch_local_leader(e, on_run_local_leader, &runner);
        if (r >= 0)
                r = election_watch(e, on_run_watch, &runner);
        if (r < 0)
                return report(c, r, argv[1], NULL);

        r = sd_event_loop(event);
        election_unwatch(e);
        election_unwatch_local_leader(e);
        if (runner.pid > 0) /* only on a loop failure */
                (void) kill(runner.pid, SIGKILL);
        sd_event_source_unref(runner.child_source);
        sd_event_source_disable_unref(runner.kill_timer);
        sd_event_source_disable_unref(runner.lease_timer);
        election_client_unwatch_lease(c);
        election_term_unref(runner.term);
        if (r < 0)
                return report(NULL, r, argv[1], NULL);
        return runner.code;
}

/* ---- command line ---------------------------------------------------------------------------- */


/* ---- metrics --------------------------------------------------------------------------------- */

static inline void sd_bus_unrefp_(sd_bus **b) {
        sd_bus_unref(*b);
}
static inline void sd_bus_message_unrefp_(sd_bus_message **m) {
        sd_bus_message_unref(*m);
}
static inline void sd_bus_error_freep_(sd_bus_error *e) {
        sd_bus_error_free(e);
}
static inline void fclosep_(FILE **f) {
        if (*f)
                fclose(*f);
}

/* Calls GetMetrics() and formats the samples into *ret (malloc'd, NUL-terminated). */
static int collect_metrics(MetricsTextFormat format, char **ret, size_t *ret_size, int *ret_code) {
        _cleanup_(sd_bus_unrefp_) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp_) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_freep_) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(fclosep_) FILE *f = NULL;
        MetricsText t;
        char *buf = NULL;
        size_t size = 0;
        int r;

        *ret_code = EXIT_ERROR;
        r = arg_user ? sd_bus_open_user(&bus) : sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, _("Cannot connect to the %s bus: %s\n"), arg_user ? _("session") : _("system"),
                        strerror(-r));
                *ret_code = EXIT_NOT_RUNNING;
                return r;
        }
        r = sd_bus_call_method(bus, "org.electiond.Election1", "/org/electiond/Election1",
                               "org.electiond.Election1.Manager", "GetMetrics", &error, &reply, "");
        if (r < 0) {
                if (sd_bus_error_has_names(&error, "org.freedesktop.DBus.Error.ServiceUnknown",
                                           "org.freedesktop.DBus.Error.NameHasNoOwner"))
                        *ret_code = EXIT_NOT_RUNNING;
                else if (sd_bus_error_has_name(&error, "org.freedesktop.DBus.Error.AccessDenied"))
                        *ret_code = EXIT_DENIED;
                fprintf(stderr, _("Cannot read the metrics: %s\n"), error.message ?: strerror(-r));
                return r;
        }

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        metrics_text_init(&t, format);
        r = sd_bus_message_enter_container(reply, 'a', "(sa{ss}d)");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', "sa{ss}d")) > 0) {
                const char *name, *labels[2 * 8];
                size_t n = 0;
                bool too_many = false;
                double value;

                r = sd_bus_message_read(reply, "s", &name);
                if (r >= 0)
                        r = sd_bus_message_enter_container(reply, 'a', "{ss}");
                while (r >= 0) {
                        const char *k, *v;

                        r = sd_bus_message_read(reply, "{ss}", &k, &v);
                        if (r <= 0)
                                break;
                        if (n < sizeof labels / sizeof labels[0] / 2) {
                                labels[2 * n] = k;
                                labels[2 * n + 1] = v;
                                n++;
                        } else
                                too_many = true;
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "d", &value);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0 && (too_many || metrics_text_sample(&t, f, name, labels, n, value) < 0))
                        fprintf(stderr, _("Skipping an invalid metric: %s\n"), name);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0) {
                fprintf(stderr, _("Cannot parse the metrics: %s\n"), strerror(-r));
                return r;
        }
        r = metrics_text_end(&t, f);
        if (r < 0 || fclose(f) != 0) {
                f = NULL;
                free(buf);
                return -EIO;
        }
        f = NULL;
        *ret = buf;
        *ret_size = size;
        *ret_code = EXIT_OK;
        return 0;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* tmp file in the same directory, fsync, rename: the textfile collector never sees half a file. */
static int write_atomically(const char *path, const char *data, size_t size) {
        _cleanup_(freep) char *tmp = NULL;
        int fd, r;

        if (asprintf(&tmp, "%s.%ld.tmp", path, (long) getpid()) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        r = write_all(fd, data, size);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

#define HTTP_REQUEST_MAX 8192

/* After an early answer: read and discard what the client still sends (bounded), so that closing
 * with unread data does not reset the connection before the client read the answer. */
static void drain_input(int fd) {
        char buf[4096];
        size_t total = 0;

        while (total < 64 * 1024) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t k;

                if (poll(&p, 1, 1000) <= 0)
                        return;
                k = read(fd, buf, sizeof buf);
                if (k <= 0)
                        return;
                total += (size_t) k;
        }
}

static bool header_contains(const char *req, const char *header, const char *needle) {
        size_t hn = strlen(header);

        for (const char *l = strstr(req, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
                const char *line = l + 2, *end = strstr(line, "\r\n");

                if (!end || end == line)
                        break;
                if (strncasecmp(line, header, hn) == 0 && line[hn] == ':') {
                        _cleanup_(freep) char *v = strndup(line + hn + 1, (size_t) (end - line - hn - 1));
                        if (v && strstr(v, needle))
                                return true;
                }
        }
        return false;
}

static int http_reply(int fd, const char *status, const char *type, const char *body, size_t size, bool head) {
        _cleanup_(freep) char *h = NULL;
        int r;

        if (asprintf(&h, "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, type, size) < 0)
                return -ENOMEM;
        r = write_all(fd, h, strlen(h));
        if (r >= 0 && !head)
                r = write_all(fd, body, size);
        (void) shutdown(fd, SHUT_WR);
        return r;
}

/* One HTTP/1.0 exchange on stdin/stdout (a socket-activated unit with Accept=yes and
 * StandardInput=socket): read the request head (bounded in size and time), answer GET/HEAD. */
static int serve_http(void) {
        char req[HTTP_REQUEST_MAX + 1];
        size_t n = 0;
        const int in = STDIN_FILENO, out = STDOUT_FILENO;
        struct timespec start;
        MetricsTextFormat format;
        _cleanup_(freep) char *body = NULL;
        size_t size = 0;
        bool head;
        int code, r;

        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                struct pollfd p = { .fd = in, .events = POLLIN };
                struct timespec now;
                long left;
                ssize_t k;

                req[n] = 0;
                if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
                        break;
                if (n >= HTTP_REQUEST_MAX) {
                        (void) http_reply(out, "431 Request Header Fields Too Large", "text/plain", "", 0, false);
                        drain_input(in);
                        return EXIT_USAGE;
                }
                clock_gettime(CLOCK_MONOTONIC, &now);
                left = 10000 - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
                if (left <= 0) {
                        (void) http_reply(out, "408 Request Timeout", "text/plain", "", 0, false);
                        return EXIT_ERROR;
                }
                r = poll(&p, 1, (int) left);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return EXIT_ERROR;
                if (r == 0)
                        continue;
                k = read(in, req + n, HTTP_REQUEST_MAX - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k == 0 && memchr(req, '\n', n))
                        break; /* the client half-closed after its request line: answer that */
                if (k <= 0)
                        return EXIT_ERROR; /* the client went away before a full request */
                n += (size_t) k;
        }

        head = strncmp(req, "HEAD ", 5) == 0;
        if (!head && strncmp(req, "GET ", 4) != 0) {
                static const char msg[] = "Only GET and HEAD are supported.\n";
                (void) http_reply(out, "405 Method Not Allowed", "text/plain; charset=utf-8", msg, strlen(msg), false);
                return EXIT_USAGE;
        }
        {
                const char *path = req + (head ? 5 : 4);
                size_t len = strcspn(path, " ?\r\n");

                if (!((len == 1 && path[0] == '/') || (len == 8 && strncmp(path, "/metrics", 8) == 0))) {
                        static const char msg[] = "Not found: try /metrics.\n";
                        (void) http_reply(out, "404 Not Found", "text/plain; charset=utf-8", msg, strlen(msg), head);
                        return EXIT_USAGE;
                }
        }

        /* content negotiation as Prometheus does it: OpenMetrics only when asked for */
        format = arg_format >= 0 ? (MetricsTextFormat) arg_format
                 : header_contains(req, "Accept", "application/openmetrics-text") ? METRICS_TEXT_OPENMETRICS
                                                                                   : METRICS_TEXT_PROMETHEUS;
        r = collect_metrics(format, &body, &size, &code);
        if (r < 0) {
                static const char msg[] = "electiond cannot be reached.\n";
                (void) http_reply(out, "503 Service Unavailable", "text/plain; charset=utf-8", msg, strlen(msg), head);
                return code;
        }
        r = http_reply(out, "200 OK", metrics_text_content_type(format), body, size, head);
        return r < 0 ? EXIT_ERROR : EXIT_OK;
}

static int verb_metrics(int argc, char **argv) {
        _cleanup_(freep) char *text = NULL;
        MetricsTextFormat format;
        size_t size = 0;
        int code, r;

        if (arg_http)
                return serve_http();

        format = arg_format >= 0 ? (MetricsTextFormat) arg_format
                 : arg_output ? METRICS_TEXT_PROMETHEUS : METRICS_TEXT_OPENMETRICS;
        r = collect_metrics(format, &text, &size, &code);
        if (r < 0)
                return code;
        if (arg_output) {
                r = write_atomically(arg_output, text, size);
                if (r < 0) {
                        fprintf(stderr, _("Cannot write %s: %s\n"), arg_output, strerror(-r));
                        return EXIT_ERROR;
                }
                return EXIT_OK;
        }
        r = write_all(STDOUT_FILENO, text, size);
        return r < 0 ? EXIT_ERROR : EXIT_OK;
}

static void help(void) {
        printf(_("%s [OPTIONS...] COMMAND ...\n\n"
                 "Query and control the elections of electiond.\n\n"
                 "Commands:\n"
                 "  status                     Show this node and its elections\n"
                 "  list                       List the elections\n"
                 "  term NAME                  Show the current term of an election\n"
                 "  watch NAME                 Print the term and then every change\n"
                 "  enter NAME                 Become a candidate (held until interrupted,\n"
                 "                             unless --persistent)\n"
                 "  leave NAME                 Stop being a candidate\n"
                 "  anoint NAME ID             Make a candidate the leader\n"
                 "  promote NAME ID            Move a candidate one place up\n"
                 "  evict NAME ID              Remove a candidate\n"
                 "  is-leader NAME             Exit 0 if the candidate leads, 1 if not\n"
                 "  drain [NAME...]            Keep this node out of the lead (of every\n"
                 "                             election, or the named ones)\n"
                 "  undrain [NAME...]          Undo drain\n"
                 "  run NAME -- COMMAND...     Campaign and run COMMAND while leading\n"
                 "  metrics                    Print the daemon's metrics (OpenMetrics text)\n\n"
                 "Options:\n"
                 "  -h --help                  Show this help\n"
                 "     --version               Show the version\n"
                 "     --user                  Talk to the daemon on the session bus\n"
                 "     --json                  Print JSON\n"
                 "     --id=ID                 Candidate id (default: the node name)\n"
                 "     --persistent            enter: keep the candidacy until left or evicted\n"
                 "     --stop-timeout=SEC      run: seconds from SIGTERM to SIGKILL (default 10)\n"
                 "     --output=FILE           metrics: write FILE atomically (Prometheus text)\n"
                 "     --format=FORMAT         metrics: openmetrics or prometheus\n"
                 "     --http                  metrics: answer one HTTP request on stdin/stdout\n\n"
                 "See the electionctl(1) man page for details and exit codes.\n"),
               program_invocation_short_name);
}

typedef struct Verb {
        const char *name;
        int min_args, max_args; /* including the verb; -1 = unlimited */
        int (*run)(int argc, char **argv);
} Verb;

static const Verb verbs[] = {
        { "status",    1, 1,  verb_status },
        { "list",      1, 1,  verb_list },
        { "term",      2, 2,  verb_term },
        { "watch",     2, 2,  verb_watch },
        { "enter",     2, 2,  verb_enter },
        { "leave",     2, 2,  verb_leave },
        { "anoint",    3, 3,  verb_anoint },
        { "promote",   3, 3,  verb_promote },
        { "evict",     3, 3,  verb_evict },
        { "is-leader", 2, 2,  verb_is_leader },
        { "drain",     1, -1, verb_drain },
        { "undrain",   1, -1, verb_undrain },
        { "run",       2, -1, verb_run },
        { "metrics",   1, 1,  verb_metrics },
};

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_USER,
                ARG_JSON,
                ARG_ID,
                ARG_PERSISTENT,
                ARG_STOP_TIMEOUT,
                ARG_OUTPUT,
                ARG_FORMAT,
                ARG_HTTP,
        };
        static const struct option options[] = {
                { "help",         no_argument,       NULL, 'h' },
                { "version",      no_argument,       NULL, ARG_VERSION },
                { "user",         no_argument,       NULL, ARG_USER },
                { "system",       no_argument,       NULL, ARG_USER + 0x100 },
                { "json",         no_argument,       NULL, ARG_JSON },
                { "id",           required_argument, NULL, ARG_ID },
                { "persistent",   no_argument,       NULL, ARG_PERSISTENT },
                { "stop-timeout", required_argument, NULL, ARG_STOP_TIMEOUT },
                { "output",       required_argument, NULL, ARG_OUTPUT },
                { "format",       required_argument, NULL, ARG_FORMAT },
                { "http",         no_argument,       NULL, ARG_HTTP },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("electionctl %s\n", ELECTIOND_VERSION);
                        return 0;
                case ARG_USER:
                        arg_user = true;
                        break;
                case ARG_USER + 0x100:
                        arg_user = false;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_ID:
                        if (!optarg[0]) {
                                fprintf(stderr, _("The candidate id must not be empty.\n"));
                                return -EINVAL;
                        }
                        arg_id = optarg;
                        break;
                case ARG_PERSISTENT:
                        arg_persistent = true;
                        break;
                case ARG_STOP_TIMEOUT: {
                        char *end = NULL;
                        double sec;

                        errno = 0;
                        sec = strtod(optarg, &end);
                        if (errno != 0 || !end || *end || end == optarg || !(sec >= 0) || sec > 86400.0 * 365) {
                                fprintf(stderr, _("Invalid --stop-timeout value: %s\n"), optarg);
                                return -EINVAL;
                        }
                        arg_stop_timeout_usec = (uint64_t) (sec * (double) USEC_PER_SEC);
                        break;
                }
                case ARG_OUTPUT:
                        if (!optarg[0]) {
                                fprintf(stderr, _("The output file name must not be empty.\n"));
                                return -EINVAL;
                        }
                        arg_output = optarg;
                        break;
                case ARG_FORMAT:
                        if (strcmp(optarg, "openmetrics") == 0)
                                arg_format = METRICS_TEXT_OPENMETRICS;
                        else if (strcmp(optarg, "prometheus") == 0)
                                arg_format = METRICS_TEXT_PROMETHEUS;
                        else {
                                fprintf(stderr, _("Invalid --format value: %s\n"), optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_HTTP:
                        arg_http = true;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
        return 1;
}

int main(int argc, char *argv[]) {
        const char *localedir;
        int r;

        setlocale(LC_ALL, "");
        /* Lets the test suite use the catalogues in the build tree; harmless for a non-setuid tool. */
        localedir = secure_getenv("ELECTIONCTL_LOCALEDIR");
        bindtextdomain(GETTEXT_PACKAGE, localedir && localedir[0] ? localedir : LOCALEDIR);
        bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
        textdomain(GETTEXT_PACKAGE);

        /* A vanished reader of our stdout must not kill a supervising `run`. */
        signal(SIGPIPE, SIG_IGN);

        r = parse_argv(argc, argv);
        if (r < 0)
                return EXIT_USAGE;
        if (r == 0)
                return EXIT_OK;

        if (optind >= argc) {
                fprintf(stderr, _("Missing command. See %s --help.\n"), program_invocation_short_name);
                return EXIT_USAGE;
        }

        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
                const Verb *v = &verbs[i];
                int n = argc - optind;

                if (strcmp(v->name, argv[optind]) != 0)
                        continue;
                if (n < v->min_args) {
                        fprintf(stderr, _("Too few arguments for \"%s\". See %s --help.\n"), v->name,
                                program_invocation_short_name);
                        return EXIT_USAGE;
                }
                if (v->max_args >= 0 && n > v->max_args) {
                        fprintf(stderr, _("Too many arguments for \"%s\". See %s --help.\n"), v->name,
                                program_invocation_short_name);
                        return EXIT_USAGE;
                }
                return v->run(n, argv + optind);
        }

        fprintf(stderr, _("Unknown command \"%s\". See %s --help.\n"), argv[optind], program_invocation_short_name);
        return EXIT_USAGE;
}
