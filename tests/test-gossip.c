/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Three gossip instances in one process, each with its own sd-event loop, on 127.0.0.1 with
 * ephemeral ports and Peers= only (no multicast, nothing leaves loopback). "Pausing" an
 * instance means not running its loop: its timers fire late and packets queue in its socket. */
#include <arpa/inet.h>
#include <glib.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "electiond-gossip.h"
#include "electiond-netlink.h"
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
/* how inst_start() configures the next instance */
static unsigned inst_family = CONFIG_FAMILY_ANY;
static const char *inst_peer_format = "127.0.0.1:%u";

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
        char peer[64];

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
                snprintf(peer, sizeof peer, inst_peer_format, seed_port);
                c.peers = g_strsplit(peer, ";", 0);
        }
        c.address_family = inst_family;
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

/* The shortest pause after which a member may be declared dead: NodeTimeout (the defaults the
 * instances run with) less one probe interval, by which the last contact may precede the pause. */
static uint64_t min_silence(void) {
        Config c;
        uint64_t r;

        config_init_defaults(&c);
        r = c.node_timeout_usec - c.probe_interval_usec;
        config_done(&c);
        return r;
}

static void send_raw(uint16_t port, const void *data, size_t size) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(sendto(fd, data, size, 0, (struct sockaddr *) &sa, sizeof sa), ==, (ssize_t) size);
        close(fd);
}

static void test_loopback_cluster(void) {
        uint64_t t;
        uint16_t seed;

        inst_start(&insts[0], "a", 0xA, key, 0);
        seed = gossip_get_port(insts[0].gossip);
        inst_start(&insts[1], "b", 0xB, key, seed);
        inst_start(&insts[2], "c", 0xC, key, seed);

        t = run_until(all_three_alive, 5 * SEC, "discovery");
        printf("# discovery through one seed: %" PRIu64 " ms\n", t / MSEC);
        settle_start = now_boottime_usec();
        run_until(settled, SEC, "settle");

        /* Pause c: a and b declare it dead after NodeTimeout, not before (their last contact
         * with c precedes the pause by at most one probe interval). */
        insts[2].paused = true;
        uint64_t paused_at = now_boottime_usec();
        t = run_until(c_dead_for_ab, 3 * SEC, "c dead");
        printf("# paused node declared dead after %" PRIu64 " ms\n", t / MSEC);
        for (int i = 0; i < 2; i++)
                g_assert_cmpuint(insts[i].dead_at[2] - paused_at, >=, min_silence());
        g_assert_true(sees(0, "b", MEMBER_ALIVE));
        g_assert_cmpuint(insts[0].n_dead + insts[1].n_dead, ==, 2);

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

        /* a second daemon on a port in use fails instead of sharing it; loopback only, so that
         * no multicast group is joined on the host's real interfaces */
        Gossip *g1 = NULL, *g2 = NULL;
        g_free(c.node_name);
        c.node_name = g_strdup("x");
        c.interfaces = g_strsplit("lo", ";", 0);
        c.port = 0;
        g_assert_cmpint(gossip_new(e, &c, 1, key, strlen(key), NULL, 0, NULL, NULL, &g1), ==, 0);
        g_assert_cmpint(gossip_start(g1), ==, 0);
        c.port = gossip_get_port(g1);
        g_assert_cmpint(gossip_new(e, &c, 2, key, strlen(key), NULL, 0, NULL, NULL, &g2), ==, 0);
        g_assert_cmpint(gossip_start(g2), ==, -EADDRINUSE);
        gossip_free(g2);
        gossip_free(g1);
        sd_event_unref(e);
        config_done(&c);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Real timers: how long after a node stops (its loop is no longer run) do both others see it
 * dead? Never before NodeTimeout minus one probe interval (the last contact precedes the
 * pause by at most that), and not much after NodeTimeout. */
static void test_detection_latency(void) {
        enum { TRIALS = 8 };
        uint64_t lat[TRIALS];
        uint16_t seed;

        memset(insts, 0, sizeof insts);
        inst_start(&insts[0], "a", 0xA, key, 0);
        seed = gossip_get_port(insts[0].gossip);
        inst_start(&insts[1], "b", 0xB, key, seed);
        inst_start(&insts[2], "c", 0xC, key, seed);
        run_until(all_three_alive, 5 * SEC, "discovery");

        for (int t = 0; t < TRIALS; t++) {
                settle_start = now_boottime_usec() - (uint64_t) (t * 37 % 100) * MSEC; /* vary the phase */
                run_until(settled, SEC, "settle");
                insts[2].paused = true;
                uint64_t paused_at = now_boottime_usec();
                run_until(c_dead_for_ab, 3 * SEC, "c dead");
                lat[t] = MAX(insts[0].dead_at[2], insts[1].dead_at[2]) - paused_at;
                g_assert_cmpuint(MIN(insts[0].dead_at[2], insts[1].dead_at[2]) - paused_at, >=, min_silence());
                insts[2].paused = false;
                run_until(all_three_alive, 3 * SEC, "c back");
        }
        qsort(lat, TRIALS, sizeof lat[0], cmp_u64);
        printf("# real timers, 3 nodes on loopback: stop → dead on both others, %d trials: p50 %" PRIu64
               " ms, max %" PRIu64 " ms\n", TRIALS, lat[TRIALS / 2] / MSEC, lat[TRIALS - 1] / MSEC);
        g_assert_cmpuint(lat[TRIALS - 1], <, 1 * SEC);
        g_assert_cmpuint(insts[0].n_dead + insts[1].n_dead, ==, 2 * TRIALS); /* c each time, nobody else */
        g_assert_cmpuint(insts[2].n_dead, ==, 0);

        for (int i = 0; i < 4; i++) {
                inst_stop(&insts[i]);
                insts[i].event = sd_event_unref(insts[i].event);
        }
}

static bool ipv6_loopback_usable(void) {
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        bool ok = fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof sa) == 0;

        if (fd >= 0)
                close(fd);
        return ok;
}

/* AddressFamily=ipv6 on loopback: no IPv4 socket at all, the seed given as "[::1]:port"; ::1
 * is not advertised (host scope), so members are known by where their packets come from. */
static void test_ipv6_loopback(void) {
        uint16_t seed;

        if (!ipv6_loopback_usable()) {
                g_test_skip("no IPv6 on loopback");
                return;
        }
        memset(insts, 0, sizeof insts);
        inst_family = CONFIG_FAMILY_IPV6;
        inst_peer_format = "[::1]:%u";
        inst_start(&insts[0], "a", 0xA, key, 0);
        seed = gossip_get_port(insts[0].gossip);
        inst_start(&insts[1], "b", 0xB, key, seed);
        inst_start(&insts[2], "c", 0xC, key, seed);
        run_until(all_three_alive, 5 * SEC, "discovery over IPv6");
        for (int i = 0; i < 3; i++) {
                g_assert_false(gossip_has_family(insts[i].gossip, AF_INET));
                for (int j = 0; j < 3; j++) {
                        const Member *m = view(i, insts[j].name);
                        struct sockaddr_storage ss;

                        g_assert_nonnull(m);
                        if (m->is_self)
                                continue;
                        /* the source address of a member heard directly (the seed at least) */
                        g_assert_cmpuint(m->n_addresses, <=, 1);
                        if (j == 0)
                                g_assert_cmpuint(m->n_addresses, ==, 1);
                        if (m->n_addresses == 0)
                                continue;
                        g_assert_cmpint(m->addresses[0].family, ==, AF_INET6);
                        g_assert_cmpint(gossip_resolve(insts[i].gossip, &m->addresses[0], &ss, NULL), ==, 0);
                        g_assert_cmpint(ss.ss_family, ==, AF_INET6);
                }
        }

        for (int i = 0; i < 4; i++) {
                inst_stop(&insts[i]);
                insts[i].event = sd_event_unref(insts[i].event);
        }
        memset(insts, 0, sizeof insts);
        inst_family = CONFIG_FAMILY_ANY;
        inst_peer_format = "127.0.0.1:%u";
}

/* Packets that arrive on an interface not configured (and not from Peers=) are not taken. */
static void test_foreign_interface(void) {
        Config c;
        sd_event *e = NULL;
        Gossip *elsewhere = NULL, *sender = NULL;
        char peer[32];
        uint64_t deadline = now_boottime_usec() + 3 * SEC;

        g_assert_cmpint(sd_event_new(&e), >=, 0);
        config_init_defaults(&c);
        g_free(c.node_name);
        c.node_name = g_strdup("elsewhere");
        c.port = 0;
        c.interfaces = g_strsplit("nonexistent0", ";", 0);
        g_assert_cmpint(gossip_new(e, &c, 1, key, strlen(key), NULL, 0, NULL, NULL, &elsewhere), ==, 0);
        g_assert_cmpint(gossip_start(elsewhere), ==, 0);

        g_free(c.node_name);
        c.node_name = g_strdup("sender");
        g_strfreev(c.interfaces);
        c.interfaces = g_strsplit("lo", ";", 0);
        snprintf(peer, sizeof peer, "127.0.0.1:%u", gossip_get_port(elsewhere));
        c.peers = g_strsplit(peer, ";", 0);
        g_assert_cmpint(gossip_new(e, &c, 2, key, strlen(key), NULL, 0, NULL, NULL, &sender), ==, 0);
        g_assert_cmpint(gossip_start(sender), ==, 0);

        while (gossip_get_foreign_drops(elsewhere) < 2) {
                g_assert_cmpuint(now_boottime_usec(), <, deadline);
                (void) sd_event_run(e, 10 * MSEC);
        }
        g_assert_cmpuint(membership_size(gossip_get_membership(elsewhere)), ==, 1);
        g_assert_cmpuint(wire_accepted_count(gossip_get_wire(elsewhere)), ==, 0);
        g_assert_null(membership_get(gossip_get_membership(sender), "elsewhere"));

        gossip_free(sender);
        gossip_free(elsewhere);
        sd_event_unref(e);
        config_done(&c);
}

/* ---- network namespace tests: private namespaces made with unshare() in forked children, so
 * they vanish with the processes; only 198.18.0.0/15 addresses; the host's links are never
 * touched. ---- */

static bool netns_possible(void) {
        return geteuid() == 0 && access("/usr/sbin/ip", X_OK) == 0;
}

static void sh(const char *fmt, ...) _printf_(1, 2);
static void sh(const char *fmt, ...) {
        g_autofree char *cmd = NULL;
        va_list ap;

        va_start(ap, fmt);
        cmd = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        if (system(cmd) != 0) {
                fprintf(stderr, "command failed: %s\n", cmd);
                _exit(EXIT_FAILURE);
        }
}

/* Runs f in a forked child inside a new network namespace; returns its exit status. */
static int in_new_netns(int (*f)(void *), void *userdata, uint64_t timeout) {
        uint64_t deadline = now_boottime_usec() + timeout;
        int status;
        pid_t pid;

        fflush(NULL);
        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                if (unshare(CLONE_NEWNET) < 0) {
                        perror("unshare");
                        _exit(77);
                }
                _exit(f(userdata));
        }
        for (;;) {
                pid_t r = waitpid(pid, &status, WNOHANG);
                g_assert_cmpint(r, >=, 0);
                if (r == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                if (now_boottime_usec() > deadline) {
                        kill(pid, SIGKILL);
                        (void) waitpid(pid, &status, 0);
                        return 124;
                }
                usleep(10000); /* polling a child's exit: nothing else to wait on */
        }
}

typedef struct NlState {
        unsigned calls, lost;
} NlState;

static void nl_changed(Netlink *nl, bool link_lost, void *userdata) {
        NlState *st = userdata;
        st->calls++;
        if (link_lost)
                st->lost++;
}

#define CHILD_CHECK(expr)                                                       \
        do {                                                                    \
                if (!(expr)) {                                                  \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        return EXIT_FAILURE;                                    \
                }                                                               \
        } while (0)

/* Runs the loop until the condition holds, at most timeout. */
#define RUN_UNTIL(e, cond, timeout)                                             \
        ({                                                                      \
                uint64_t _end = now_boottime_usec() + (timeout);                \
                while (!(cond) && now_boottime_usec() < _end)                  \
                        (void) sd_event_run((e), 10 * MSEC);                    \
                (cond);                                                         \
        })

static const NetlinkInterface *nl_find(Netlink *nl, const char *name) {
        size_t n;
        const NetlinkInterface *ifs = netlink_get_interfaces(nl, &n);
        for (size_t i = 0; i < n; i++)
                if (streq_ptr(ifs[i].name, name))
                        return &ifs[i];
        return NULL;
}

static int netlink_child(void *userdata) {
        sd_event *e = NULL;
        Netlink *nl = NULL, *all = NULL;
        NlState st = {}, st_all = {};
        char *names[] = { (char *) "d0", NULL };
        const NetlinkInterface *ifc;

        CHILD_CHECK(sd_event_new(&e) >= 0);
        /* this kernel has no dummy links: a veth pair whose far end is up does as well */
        sh("ip link add d0 type veth peer name d1 && ip link set d1 up");
        CHILD_CHECK(netlink_new(e, names, nl_changed, &st, &nl) == 0);
        CHILD_CHECK(netlink_new(e, NULL, nl_changed, &st_all, &all) == 0);
        ifc = nl_find(nl, "d0");
        CHILD_CHECK(ifc && !ifc->up && ifc->n_addresses == 0);
        CHILD_CHECK(!netlink_any_up(nl));
        /* the default set skips links that are down or without an address, and loopback */
        size_t n_all;
        netlink_get_interfaces(all, &n_all);
        CHILD_CHECK(n_all == 0);

        sh("ip addr add 198.18.5.1/24 dev d0");
        CHILD_CHECK(RUN_UNTIL(e, (ifc = nl_find(nl, "d0")) && ifc->n_addresses == 1, 2 * SEC));
        CHILD_CHECK(ifc->addresses[0].family == AF_INET && memcmp(ifc->addresses[0].addr, "\xc6\x12\x05\x01", 4) == 0);

        sh("ip link set d0 up");
        CHILD_CHECK(RUN_UNTIL(e, (ifc = nl_find(nl, "d0")) && ifc->up, 2 * SEC));
        CHILD_CHECK(netlink_any_up(nl));
        CHILD_CHECK(RUN_UNTIL(e, nl_find(all, "d0") != NULL, 2 * SEC));
        CHILD_CHECK(st.lost == 0);

        sh("ip link set d0 down");
        CHILD_CHECK(RUN_UNTIL(e, st.lost == 1, 2 * SEC));
        CHILD_CHECK(!netlink_any_up(nl));

        sh("ip link set d0 up");
        CHILD_CHECK(RUN_UNTIL(e, netlink_any_up(nl), 2 * SEC));
        sh("ip addr add 198.18.5.2/24 dev d0");
        CHILD_CHECK(RUN_UNTIL(e, (ifc = nl_find(nl, "d0")) && ifc->n_addresses == 2, 2 * SEC));
        sh("ip link del d0");
        CHILD_CHECK(RUN_UNTIL(e, nl_find(nl, "d0") == NULL, 2 * SEC));
        CHILD_CHECK(RUN_UNTIL(e, nl_find(all, "d1") == NULL, 2 * SEC)); /* went with its peer */
        CHILD_CHECK(st.lost == 2);
        CHILD_CHECK(RUN_UNTIL(e, nl_find(all, "d0") == NULL, 2 * SEC));

        netlink_free(nl);
        netlink_free(all);
        sd_event_unref(e);
        return EXIT_SUCCESS;
}

static void test_netlink(void) {
        if (!netns_possible()) {
                g_test_skip("needs root and ip(8) for a private network namespace");
                return;
        }
        g_assert_cmpint(in_new_netns(netlink_child, NULL, 20 * SEC), ==, EXIT_SUCCESS);
}

/* Multicast: a "switch" namespace with a bridge, three node namespaces joined to it by veth
 * pairs. Each node runs one gossip instance without Peers=; they must find each other by
 * multicast only. The addresses are configured after gossip started, so finding each other
 * also proves the multicast re-join and address re-advertising on netlink changes. */

#define MC_NODES 3

static int mc_node(int index, int ready_fd, int go_fd) {
        GossipCallbacks cb = { .member_event = on_member, .links_changed = on_links };
        Inst *in = &insts[index];
        sd_event *e = NULL;
        Config c;
        char name[2] = { (char) ('a' + index), 0 };
        char dummy;
        uint64_t now;

        if (unshare(CLONE_NEWNET) < 0)
                return 77;
        if (write(ready_fd, "r", 1) != 1 || read(go_fd, &dummy, 1) != 1)
                return EXIT_FAILURE;
        /* our end of the veth is here now, still down and without an address */

        config_init_defaults(&c);
        g_free(c.node_name);
        c.node_name = g_strdup(name);
        c.interfaces = g_strsplit("eth0", ";", 0);
        c.port = 7946;
        CHILD_CHECK(sd_event_new(&e) >= 0);
        CHILD_CHECK(gossip_new(e, &c, 0x100 + (uint64_t) index, key, strlen(key), NULL, 0, &cb, in, &in->gossip) == 0);
        CHILD_CHECK(gossip_start(in->gossip) == 0);
        config_done(&c);

        sh("ip link set lo up && ip addr add 198.18.0.%d/24 dev eth0 && ip link set eth0 up", index + 1);

        const Membership *m = gossip_get_membership(in->gossip);
        CHILD_CHECK(RUN_UNTIL(e, membership_count_alive(m) == MC_NODES, 8 * SEC));
        const Member *self = membership_get_self(m);
        CHILD_CHECK(self->n_addresses == 1 && self->addresses[0].addr[3] == index + 1);

        /* stay a little so that the others see us too */
        now = now_boottime_usec();
        RUN_UNTIL(e, now_boottime_usec() > now + 1500 * MSEC, 2 * SEC);
        CHILD_CHECK(membership_count_alive(m) == MC_NODES);

        if (index == 0) {
                /* our own link goes down: we learn it at once */
                unsigned links_before = in->n_links;

                now = now_boottime_usec();
                sh("ip link set eth0 down");
                CHILD_CHECK(RUN_UNTIL(e, in->n_links > links_before, SEC));
                CHILD_CHECK(now_boottime_usec() - now < 200 * MSEC);
        }
        in->gossip = gossip_free(in->gossip);
        sd_event_unref(e);
        return EXIT_SUCCESS;
}

static int mc_switch(void *userdata) {
        pid_t pids[MC_NODES];
        int rc = EXIT_SUCCESS;

        sh("ip link add br0 type bridge && ip link set br0 up");
        for (int i = 0; i < MC_NODES; i++) {
                int ready[2], go[2];
                char dummy;

                if (pipe(ready) < 0 || pipe(go) < 0)
                        return EXIT_FAILURE;
                pids[i] = fork();
                if (pids[i] < 0)
                        return EXIT_FAILURE;
                if (pids[i] == 0)
                        _exit(mc_node(i, ready[1], go[0]));
                if (read(ready[0], &dummy, 1) != 1)
                        return EXIT_FAILURE;
                sh("ip link add sw%d type veth peer name eth0 netns %d && ip link set sw%d master br0 up", i, (int) pids[i], i);
                if (write(go[1], "g", 1) != 1)
                        return EXIT_FAILURE;
                close(ready[0]);
                close(ready[1]);
                close(go[0]);
                close(go[1]);
        }
        for (int i = 0; i < MC_NODES; i++) {
                int status;
                if (waitpid(pids[i], &status, 0) != pids[i] || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        fprintf(stderr, "node %d failed (status %d)\n", i, status);
                        rc = EXIT_FAILURE;
                }
        }
        return rc;
}

static void test_multicast(void) {
        if (!netns_possible()) {
                g_test_skip("needs root and ip(8) for private network namespaces");
                return;
        }
        g_assert_cmpint(in_new_netns(mc_switch, NULL, 30 * SEC), ==, EXIT_SUCCESS);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        log_set_max_level(LOG_WARNING);
        g_test_add_func("/gossip/not-started", test_not_started);
        g_test_add_func("/gossip/loopback-cluster", test_loopback_cluster);
        g_test_add_func("/gossip/ipv6-loopback", test_ipv6_loopback);
        g_test_add_func("/gossip/foreign-interface", test_foreign_interface);
        g_test_add_func("/gossip/detection-latency", test_detection_latency);
        g_test_add_func("/gossip/netlink-netns", test_netlink);
        g_test_add_func("/gossip/multicast-netns", test_multicast);
        return g_test_run();
}
