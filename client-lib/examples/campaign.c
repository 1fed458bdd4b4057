/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Example: enter election NAME (as ID, default: the node name) and print every term until Ctrl-C.
 *
 *     cc campaign.c $(pkg-config --cflags --libs libelection) -o campaign
 *     ./campaign my-service [my-id]
 */

#include <election.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void on_term(Election *e, int status, const ElectionTerm *t, void *userdata) {
        if (status < 0) {
                fprintf(stderr, "watch: %s\n", strerror(-status));
                return;
        }
        printf("term %" PRIu64 " leader \"%s\"%s, %zu candidate(s)\n", election_term_get_id(t),
               election_term_get_leader(t), election_term_is_leader(t, election_get_id(e)) ? " (that's us)" : "",
               election_term_get_n_candidates(t));
        fflush(stdout);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Election *election = userdata;

        /* Leave while the loop runs: its connection is closed once the loop exits. */
        if (election)
                (void) election_leave(election, NULL);
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int main(int argc, char *argv[]) {
        ElectionClient *client = NULL;
        ElectionOptions *opts = NULL;
        Election *election = NULL;
        sd_event *event = NULL;
        sigset_t mask;
        int r;

        if (argc < 2 || argc > 3) {
                fprintf(stderr, "usage: %s NAME [ID]\n", argv[0]);
                return 2;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = election_client_new(&client);
        if (r < 0) {
                fprintf(stderr, "connect: %s\n", strerror(-r));
                return 1;
        }
        r = sd_event_default(&event);
        if (r >= 0)
                r = election_client_attach_event(client, event, 0);
        if (r >= 0)
                r = election_options_new(&opts);
        if (r >= 0 && argc == 3)
                r = election_options_set_id(opts, argv[2]);
        /* Come back after a daemon restart. */
        if (r >= 0)
                r = election_options_set_reenter(opts, 1);
        if (r >= 0)
                r = election_client_get_election(client, argv[1], opts, &election);
        /* Watch first, so that the term our Enter produces is printed as a change. */
        if (r >= 0)
                r = election_watch(election, on_term, NULL);
        if (r >= 0)
                r = election_enter(election, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, on_signal, election);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, on_signal, election);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", election_client_last_error_name(client) ?: "error",
                        election_client_last_error_message(client) ?: strerror(-r));
                goto finish;
        }

        r = sd_event_loop(event);

finish:
        election_unref(election);
        election_options_free(opts);
        election_client_unref(client);
        sd_event_unref(event);
        return r < 0 ? 1 : 0;
}
