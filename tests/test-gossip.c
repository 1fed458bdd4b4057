/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Three gossip instances in one process, each with its own sd-event loop, on 127.0.0.1 with
 * ephemeral ports and Peers= only (no multicast, nothing leaves loopback). "Pausing" an
 * instance means not running its loop: its timers fire late and packets queue in its socket. */
#include <arpa/inet.h>
#include <glib.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>

#include "electiond-gossip.h"
#include "electiond-util.h"

#define MSEC USEC_PER_MSEC
#define SEC USEC_PER_SEC

static const char key[] = "gossip-test-key-0123456789";
static const char wrong_key[] = "gossip-test-key-0123456780";

typedef struct Inst {
        char name[16];
        uint64_t node_id;
        sd_event *event;
        Gossip *gossip;
        bool paused;
        unsigned n_dead, n_suspect, n_links;
        uint64_t dead_at[4];
} Inst;

static Inst insts[4];

static void on_member(Gossip *g, MembershipEvent e, const Member *m, void *userdata) {
        Inst *in = userdata;
        int j = m->name[0] - 'a';

        if (e == MEMBERSHIP_EVENT_DEAD) {
                in->n_dead++;
                if (j >= 0 && j < 4)
                        in->dead_at[j] = now_boottime_usec();
        } else if (e == MEMBERSHIP_EVENT_SUSPECT)
                in->n_suspect++;
        /* everybody is a voter in a 3-node cluster */
        if (e == MEMBERSHIP_EVENT_JOINED)
                (void) gossip_set_watched(g, m->name, true);
}

static void on_links(Gossip *g, bool up, void *userdata) {
        ((Inst *) userdata)->n_links++;
}

static void inst_start(Inst *in, const char *name, uint64_t node_id, const char *k, uint16_t seed_port) {
        Config c;
        GossipCallbacks cb = { .member_event = on_member, .links_changed = on_links };
        char peer[32];

        g_assert_null(in->gossip);
        in->paused = false;
        g_strlcpy(in->name, name, sizeof in->name);
        in->node_id = node_id;
        config_init_defaults(&c);
        g_free(c.node_name);
        c.node_name = g_strdup(name);
        g_free(c.cluster_name);
        c.cluster_name = g_strdup("gossip-test");
        c.port = 0; /* ephemeral */
        c.interfaces = g_strsplit("lo", ";", 0);
        if (seed_port) {
                snprintf(peer, sizeof peer, "127.0.0.1:%u", seed_port);
                c.peers = g_strsplit(peer, ";", 0);
        }
        if (!in->event)
                g_assert_cmpint(sd_event_new(&in->event), >=, 0);
        g_assert_cmpint(gossip_new(in->event, &c, node_id, k, strlen(k), "tags", 4, &cb, in, &in->gossip), ==, 0);
        g_assert_null(gossip_get_membership(in->gossip)); /* nothing before start */
        g_assert_cmpint(gossip_start(in->gossip), ==, 0);
        g_assert_cmpuint(gossip_get_port(in->gossip), >, 0);
        config_done(&c);
}

static void inst_stop(Inst *in) {
        in->gossip = gossip_free(in->gossip);
}

/* Runs every unpaused loop until cond() or the deadline (then fails). */
static uint64_t run_until(bool (*cond)(void), uint64_t timeout, const char *what) {
        uint64_t start = now_boottime_usec();

        for (;;) {
                struct pollfd p[4];
                nfds_t n = 0;

                if (cond())
                        return now_boottime_usec() - start;
                if (now_boottime_usec() - start > timeout) {
                        fprintf(stderr, "timed out waiting for: %s\n", what);
                        g_assert_not_reached();
                }
                for (int i = 0; i < 4; i++) {
                        if (!insts[i].gossip || insts[i].paused)
                                continue;
                        while (sd_event_run(insts[i].event, 0) > 0)
                                ;
                        p[n++] = (struct pollfd) { .fd = sd_event_get_fd(insts[i].event), .events = POLLIN };
                }
                /* timers re-armed in callbacks are only seen by the next prepare: poll briefly */
                (void) poll(p, n, 1);
        }
}

static const Member *view(int i, const char *name) {
        return insts[i].gossip ? membership_get(gossip_get_membership(insts[i].gossip), name) : NULL;
}

static bool sees(int i, const char *name, MemberState state) {
        const Member *m = view(i, name);
        return m && m->state == state;
}

static bool all_three_alive(void) {
        for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                        if (!sees(i, insts[j].name, MEMBER_ALIVE))
                                return false;
        return true;
}

static bool c_dead_for_ab(void) {
        return sees(0, "c", MEMBER_DEAD) && sees(1, "c", MEMBER_DEAD);
}

static bool b_dead_for_ac(void) {
        return sees(0, "b", MEMBER_DEAD) && sees(2, "b", MEMBER_DEAD);
}

static bool wrong_key_rejected_twice(void) {
        return wire_drop_count(gossip_get_wire(insts[0].gossip), WIRE_DROP_AUTH) >= 2;
}

static bool garbage_counted(void) {
        const Wire *w = gossip_get_wire(insts[0].gossip);
        return wire_drop_count(w, WIRE_DROP_MAGIC) >= 1 && wire_drop_count(w, WIRE_DROP_MALFORMED) >= 1;
}

static bool c_left(void) {
        return sees(0, "c", MEMBER_LEFT) && sees(1, "c", MEMBER_LEFT);
}

static uint64_t settle_start;

static bool settled(void) {
        return now_boottime_usec() - settle_start > 500 * MSEC;
}

static void send_raw(uint16_t port, const void *data, size_t size) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(sendto(fd, data, size, 0, (struct sockaddr *) &sa, sizeof sa), ==, (ssize_t) size);
        close(fd);
}

static void test_loopback_cluster(void) {
        const char *voters[] = { "a", "b", "c" };
        uint64_t t, anchor, now;
        uint16_t seed;

        inst_start(&insts[0], "a", 0xA, key, 0);
        seed = gossip_get_port(insts[0].gossip);
        inst_start(&insts[1], "b", 0xB, key, seed);
        inst_start(&insts[2], "c", 0xC, key, seed);

        t = run_until(all_three_alive, 5 * SEC, "discovery");
        printf("# discovery through one seed: %" PRIu64 " ms\n", t / MSEC);
        /* settle, then the lease anchor must be fresh on every node */
        settle_start = now_boottime_usec();
        run_until(settled, SEC, "settle");
        now = now_boottime_usec();
        for (int i = 0; i < 3; i++) {
                anchor = gossip_quorum_contact_usec(insts[i].gossip, voters, 3, 2, now);
                g_assert_cmpuint(anchor, >, 0);
                g_assert_cmpuint(now - anchor, <, 300 * MSEC);
        }

        /* Pause c: a and b declare it dead after NodeTimeout, not before. */
        insts[2].paused = true;
        uint64_t paused_at = now_boottime_usec();
        t = run_until(c_dead_for_ab, 3 * SEC, "c dead");
        printf("# paused node declared dead after %" PRIu64 " ms\n", t / MSEC);
        for (int i = 0; i < 2; i++)
                g_assert_cmpuint(insts[i].dead_at[2] - paused_at, >=, 400 * MSEC);
        g_assert_true(sees(0, "b", MEMBER_ALIVE));
        g_assert_cmpuint(insts[0].n_dead + insts[1].n_dead, ==, 2);
        /* c's lease, as c itself would compute it, has run out while it was paused */
        now = now_boottime_usec();
        anchor = gossip_quorum_contact_usec(insts[2].gossip, voters, 3, 2, now);
        g_assert_cmpuint(anchor + 300 * MSEC, <, now);

        /* Resume c: it refutes, declares nobody dead, and is alive everywhere again. */
        insts[2].paused = false;
        t = run_until(all_three_alive, 3 * SEC, "c back");
        printf("# resumed node alive again after %" PRIu64 " ms\n", t / MSEC);
        g_assert_cmpuint(insts[2].n_dead, ==, 0);

        /* Kill b, then restart it with the same identity: it rejoins. */
        inst_stop(&insts[1]);
        run_until(b_dead_for_ac, 3 * SEC, "b dead");
        inst_start(&insts[1], "b", 0xB, key, seed);
        t = run_until(all_three_alive, 5 * SEC, "b rejoined");
        printf("# restarted node rejoined after %" PRIu64 " ms\n", t / MSEC);

        /* A node with the wrong key never joins, and its packets are counted as such. */
        inst_start(&insts[3], "d", 0xD, wrong_key, seed);
        run_until(wrong_key_rejected_twice, 3 * SEC, "wrong key dropped");
        g_assert_null(view(0, "d"));
        g_assert_null(view(1, "d"));
        g_assert_cmpuint(membership_size(gossip_get_membership(insts[3].gossip)), ==, 1);
        inst_stop(&insts[3]);

        /* Garbage is dropped and counted; the cluster carries on. */
        send_raw(seed, "hello", 5);
        send_raw(seed, "ELGP\x01\x05", 6);
        run_until(garbage_counted, 2 * SEC, "garbage counted");
        g_assert_true(all_three_alive());

        /* No spurious suspicion happened among the live ones except around the pause/kill. */
        printf("# suspect events: a %u, b %u, c %u\n", insts[0].n_suspect, insts[1].n_suspect, insts[2].n_suspect);

        /* Graceful leave is seen as left, not dead. */
        g_assert_cmpint(gossip_leave(insts[2].gossip), ==, 0);
        run_until(c_left, 2 * SEC, "c left");

        for (int i = 0; i < 4; i++) {
                inst_stop(&insts[i]);
                insts[i].event = sd_event_unref(insts[i].event);
        }
}

static void test_not_started(void) {
        Config c;
        Gossip *g = NULL;
        sd_event *e = NULL;

        config_init_defaults(&c);
        g_assert_cmpint(sd_event_new(&e), >=, 0);
        /* too short a key */
        g_assert_cmpint(gossip_new(e, &c, 1, "short", 5, NULL, 0, NULL, NULL, &g), ==, -EINVAL);
        g_assert_cmpint(gossip_new(e, &c, 1, key, strlen(key), NULL, 0, NULL, NULL, &g), ==, 0);
        /* no socket, no membership until started */
        g_assert_null(gossip_get_membership(g));
        g_assert_cmpuint(gossip_get_port(g), ==, 0);
        g_assert_cmpint(gossip_leave(g), ==, -EINVAL);
        gossip_free(g);
        sd_event_unref(e);
        config_done(&c);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        log_set_max_level(LOG_WARNING);
        g_test_add_func("/gossip/not-started", test_not_started);
        g_test_add_func("/gossip/loopback-cluster", test_loopback_cluster);
        return g_test_run();
}
