/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Drives several membership instances through a simulated network (loss, delay, partitions,
 * paused and killed nodes) with fake time, and checks the SWIM rules end to end. */
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>

#include "electiond-membership.h"
#include "electiond-util.h"

#define NODES_MAX 40
#define MSEC USEC_PER_MSEC
#define SEC USEC_PER_SEC

typedef struct Packet {
        uint64_t at;
        uint64_t order;
        int from, to;
        GossipMessage *msgs;
        size_t n;
} Packet;

typedef struct Node {
        Membership *m;
        char name[32];
        MemberAddress addr;
        bool paused, killed;
        uint64_t lag_max;                       /* starved: frozen for up to this, every ~100 ms */
        uint64_t frozen_until, next_freeze;
        uint64_t last_discovery;
        unsigned n_suspect, n_dead, n_alive_again;
        uint64_t dead_seen[NODES_MAX];          /* when it saw node i dead (0 = never) */
        uint64_t last_heard[NODES_MAX];         /* last delivery from node i */
} Node;

typedef struct Sim {
        Node nodes[NODES_MAX];
        int n;
        uint64_t now;
        GPtrArray *inflight;                    /* Packet*, unsorted (small) */
        GPtrArray *held;                        /* for paused nodes */
        uint64_t order;
        GRand *rand;
        double loss;
        uint64_t delay_min, delay_max;
        bool cut[NODES_MAX][NODES_MAX];         /* from → to dropped */
        MembershipParams params;
        bool watch_all;
        bool seed_only;                         /* discovery: node0 is everybody's only Peers= */
        uint64_t packets, dropped;
} Sim;

static int node_index(Sim *s, Membership *m) {
        for (int i = 0; i < s->n; i++)
                if (s->nodes[i].m == m)
                        return i;
        return -1;
}

static int name_index(const char *name) {
        int i;
        return sscanf(name, "node%d", &i) == 1 ? i : -1;
}

static Sim *current;

static void on_event(Membership *m, MembershipEvent e, const Member *mem, void *userdata) {
        Sim *s = userdata;
        Node *n = &s->nodes[node_index(s, m)];
        int j = name_index(mem->name);

        switch (e) {
        case MEMBERSHIP_EVENT_SUSPECT:
                n->n_suspect++;
                break;
        case MEMBERSHIP_EVENT_DEAD:
                n->n_dead++;
                if (j >= 0 && n->dead_seen[j] == 0)
                        n->dead_seen[j] = s->now;
                break;
        case MEMBERSHIP_EVENT_ALIVE:
                n->n_alive_again++;
                if (j >= 0)
                        n->dead_seen[j] = 0;
                break;
        case MEMBERSHIP_EVENT_JOINED:
                if (s->watch_all)
                        (void) membership_set_watched(m, mem->name, true);
                break;
        default:
                break;
        }
}

static void packet_free(Packet *p) {
        free(p->msgs);
        g_free(p);
}

static void dispatch(Sim *s, int from, MembershipActions *a) {
        for (size_t i = 0; i < a->n; i++) {
                MembershipAction *act = &a->items[i];
                for (size_t k = 0; k < act->n_addresses; k++) {
                        int to = act->addresses[k].addr[3];

                        s->packets++;
                        if (to >= s->n || s->cut[from][to] || g_rand_double(s->rand) < s->loss) {
                                s->dropped++;
                                continue;
                        }
                        Packet *p = g_new0(Packet, 1);
                        p->at = s->now + s->delay_min +
                                (uint64_t) g_rand_double_range(s->rand, 0, (double) (s->delay_max - s->delay_min));
                        p->order = s->order++;
                        p->from = from;
                        p->to = to;
                        p->n = act->n_messages;
                        p->msgs = g_memdup2(act->messages, act->n_messages * sizeof(GossipMessage));
                        g_ptr_array_add(s->inflight, p);
                }
        }
        membership_actions_clear(a);
}

static Sim *sim_new(int n, uint32_t seed, const MembershipParams *params) {
        Sim *s = g_new0(Sim, 1);

        s->n = n;
        s->rand = g_rand_new_with_seed(seed);
        s->inflight = g_ptr_array_new_with_free_func((GDestroyNotify) packet_free);
        s->held = g_ptr_array_new_with_free_func((GDestroyNotify) packet_free);
        s->delay_min = 100;            /* LAN: 0.1–0.5 ms */
        s->delay_max = 500;
        s->now = 1000 * SEC;
        if (params)
                s->params = *params;
        else
                membership_params_init_defaults(&s->params);
        current = s;
        for (int i = 0; i < n; i++) {
                Node *nd = &s->nodes[i];
                MembershipParams p = s->params;

                snprintf(nd->name, sizeof nd->name, "node%d", i);
                nd->addr = (MemberAddress) { .family = AF_INET, .addr = { 10, 0, 0, (uint8_t) i }, .port = 7946 };
                p.random_seed = seed * 100 + (uint32_t) i + 1;
                nd->m = membership_new(&p, nd->name, 0x1000 + (uint64_t) i, 1, &nd->addr, 1, "t", 1, s->now, on_event, s);
                g_assert_nonnull(nd->m);
        }
        return s;
}

static void sim_free(Sim *s) {
        for (int i = 0; i < s->n; i++)
                membership_free(s->nodes[i].m);
        g_ptr_array_unref(s->inflight);
        g_ptr_array_unref(s->held);
        g_rand_free(s->rand);
        g_free(s);
}

/* Every node pings every other node's address now and then (as multicast discovery does). */
static void discovery(Sim *s, int i) {
        MembershipActions a = {};
        for (int j = 0; j < s->n; j++)
                if (j != i && (!s->seed_only || j == 0))
                        g_assert_cmpint(membership_ping_address(s->nodes[i].m, &s->nodes[j].addr, s->now, &a), ==, 0);
        dispatch(s, i, &a);
        s->nodes[i].last_discovery = s->now;
}

static bool live(const Node *nd) {
        return !nd->paused && !nd->killed;
}

static void sim_run_until(Sim *s, uint64_t end, uint64_t discovery_interval) {
        for (;;) {
                uint64_t t = end;
                Packet *next = NULL;
                guint next_i = 0;
                int tick = -1;

                for (guint i = 0; i < s->inflight->len; i++) {
                        Packet *p = s->inflight->pdata[i];
                        if (p->at < t || (p->at == t && next && p->order < next->order)) {
                                t = p->at;
                                next = p;
                                next_i = i;
                        }
                }
                for (int i = 0; i < s->n; i++) {
                        if (!live(&s->nodes[i]))
                                continue;
                        uint64_t d = membership_next_deadline(s->nodes[i].m);
                        if (s->nodes[i].lag_max > 0) {
                                Node *nd = &s->nodes[i];
                                if (d >= nd->next_freeze && d >= nd->frozen_until) {
                                        /* the node gets no CPU for a while: nothing runs */
                                        nd->frozen_until = nd->next_freeze +
                                                (uint64_t) g_rand_double_range(s->rand, 0, (double) nd->lag_max);
                                        nd->next_freeze = nd->frozen_until +
                                                (uint64_t) g_rand_double_range(s->rand, 50 * MSEC, 150 * MSEC);
                                }
                                d = MAX(d, nd->frozen_until);
                        }
                        if (discovery_interval > 0)
                                d = MIN(d, s->nodes[i].last_discovery + discovery_interval);
                        if (d < t) {
                                t = d;
                                tick = i;
                                next = NULL;
                        }
                }
                if (t >= end) {
                        s->now = end;
                        return;
                }
                s->now = MAX(s->now, t);

                if (tick >= 0) {
                        MembershipActions a = {};
                        if (discovery_interval > 0 && s->nodes[tick].last_discovery + discovery_interval <= s->now)
                                discovery(s, tick);
                        g_assert_cmpint(membership_tick(s->nodes[tick].m, s->now, &a), ==, 0);
                        dispatch(s, tick, &a);
                        continue;
                }

                g_ptr_array_steal_index_fast(s->inflight, next_i);
                Node *dst = &s->nodes[next->to];
                if (dst->killed) {
                        packet_free(next);
                        continue;
                }
                if (dst->paused) {
                        g_ptr_array_add(s->held, next);
                        continue;
                }
                if (s->now < dst->frozen_until) {
                        next->at = dst->frozen_until;
                        g_ptr_array_add(s->inflight, next);
                        continue;
                }
                /* A late timer is handled before input, as the runtime does (high priority). */
                MembershipActions a = {};
                if (membership_next_deadline(dst->m) <= s->now) {
                        g_assert_cmpint(membership_tick(dst->m, s->now, &a), ==, 0);
                        dispatch(s, next->to, &a);
                }
                dst->last_heard[next->from] = s->now;
                g_assert_cmpint(membership_receive(dst->m, next->msgs, next->n, &s->nodes[next->from].addr, s->now, &a), ==, 0);
                dispatch(s, next->to, &a);
                packet_free(next);
        }
}

static void sim_resume(Sim *s, int i) {
        s->nodes[i].paused = false;
        for (guint k = 0; k < s->held->len;) {
                Packet *p = s->held->pdata[k];
                if (p->to == i) {
                        g_ptr_array_steal_index_fast(s->held, k);
                        p->at = s->now;
                        g_ptr_array_add(s->inflight, p);
                } else
                        k++;
        }
}

/* alive or suspect: under heavy loss someone is usually suspected at any given instant */
static bool all_see_reachable(Sim *s) {
        for (int i = 0; i < s->n; i++)
                for (int j = 0; j < s->n; j++) {
                        const Member *mem = membership_get(s->nodes[i].m, s->nodes[j].name);
                        if (!mem || (mem->state != MEMBER_ALIVE && mem->state != MEMBER_SUSPECT))
                                return false;
                }
        return true;
}

static bool all_see_alive(Sim *s, int expected) {
        for (int i = 0; i < s->n; i++) {
                if (!live(&s->nodes[i]))
                        continue;
                size_t alive = 0;
                for (int j = 0; j < s->n; j++) {
                        const Member *mem = membership_get(s->nodes[i].m, s->nodes[j].name);
                        if (mem && mem->state == MEMBER_ALIVE)
                                alive++;
                }
                if ((int) alive != expected)
                        return false;
        }
        return true;
}

/* Start a cluster where everybody only knows node0's address, and wait until all see all. */
static uint64_t sim_bootstrap(Sim *s, uint64_t deadline) {
        uint64_t start = s->now;

        for (int i = 1; i < s->n; i++) {
                MembershipActions a = {};
                g_assert_cmpint(membership_ping_address(s->nodes[i].m, &s->nodes[0].addr, s->now, &a), ==, 0);
                dispatch(s, i, &a);
        }
        while (!all_see_alive(s, s->n)) {
                g_assert_cmpuint(s->now - start, <, deadline);
                sim_run_until(s, s->now + 10 * MSEC, 0);
        }
        return s->now - start;
}

static void test_converge(void) {
        Sim *s = sim_new(32, 1, NULL);
        uint64_t t = sim_bootstrap(s, 10 * SEC);

        printf("# 32 members converged in %" PRIu64 " ms\n", t / MSEC);
        g_assert_cmpuint(t, <, 3 * SEC);
        /* and it stays that way without faults */
        sim_run_until(s, s->now + 30 * SEC, 0);
        g_assert_true(all_see_alive(s, 32));
        for (int i = 0; i < s->n; i++) {
                g_assert_cmpuint(s->nodes[i].n_dead, ==, 0);
                g_assert_cmpuint(s->nodes[i].n_suspect, ==, 0);
                g_assert_cmpuint(membership_size(s->nodes[i].m), ==, 32);
        }
        sim_free(s);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static void detection_trials(int n, bool watch_all, unsigned trials, uint64_t p99_bound) {
        g_autofree uint64_t *lat = g_new0(uint64_t, trials * (unsigned) n);
        unsigned k = 0;

        for (unsigned t = 0; t < trials; t++) {
                Sim *s = sim_new(n, 100 + t, NULL);
                s->watch_all = watch_all;
                sim_bootstrap(s, 5 * SEC);
                if (watch_all)
                        for (int i = 0; i < n; i++)
                                for (int j = 0; j < n; j++)
                                        (void) membership_set_watched(s->nodes[i].m, s->nodes[j].name, true);
                sim_run_until(s, s->now + SEC + g_rand_int_range(s->rand, 0, 100000), 0);

                int victim = g_rand_int_range(s->rand, 0, n);
                uint64_t kill = s->now;
                s->nodes[victim].killed = true;
                sim_run_until(s, s->now + 3 * SEC, 0);

                for (int i = 0; i < n; i++) {
                        Node *nd = &s->nodes[i];
                        if (i == victim)
                                continue;
                        g_assert_cmpuint(nd->dead_seen[victim], >, 0);
                        /* never before NodeTimeout of silence, as seen by this node */
                        g_assert_cmpuint(nd->dead_seen[victim], >=, nd->last_heard[victim] + s->params.node_timeout_usec);
                        lat[k++] = nd->dead_seen[victim] - kill;
                        /* and nobody else was hurt */
                        g_assert_cmpuint(nd->n_dead, ==, 1);
                }
                sim_free(s);
        }
        qsort(lat, k, sizeof lat[0], cmp_u64);
        printf("# %d members%s: kill → dead seen, %u samples: p50 %" PRIu64 " ms, p99 %" PRIu64 " ms, max %" PRIu64 " ms\n",
               n, watch_all ? " (all watched)" : "", k, lat[k / 2] / MSEC, lat[k * 99 / 100] / MSEC, lat[k - 1] / MSEC);
        g_assert_cmpuint(lat[k * 99 / 100], <, p99_bound);
}

static void test_detection(void) {
        /* Voters are watched (small groups: everybody, by default): detection is NodeTimeout
         * after the last packet, plus about one probe. */
        detection_trials(3, false, 20, 700 * MSEC);
        detection_trials(5, true, 10, 700 * MSEC);
        /* Plain round-robin SWIM in a bigger group is slower but bounded. */
        detection_trials(16, false, 3, 3 * SEC);
}

static void loss_soak(int n, bool watch_all, uint64_t sim_time) {
        unsigned suspects = 0, refuted = 0;
        const char *e = g_getenv("SOAK_SEED"); /* to try other random sequences */
        Sim *s = sim_new(n, e ? (uint32_t) atoi(e) : 7, NULL);

        s->watch_all = watch_all;
        sim_bootstrap(s, 5 * SEC);
        s->loss = 0.20;
        sim_run_until(s, s->now + sim_time, 2 * SEC);
        for (int i = 0; i < n; i++) {
                suspects += s->nodes[i].n_suspect;
                refuted += (unsigned) membership_stats(s->nodes[i].m)->suspicions_refuted;
                g_assert_cmpuint(s->nodes[i].n_dead, ==, 0);
        }
        printf("# 20%% loss, %d members%s, %" PRIu64 " s: %u suspect events seen (%.2f per member-minute), %u refutations, 0 dead; %.1f%% of %" PRIu64 " packets dropped\n",
               n, watch_all ? " (all watched)" : "", sim_time / SEC, suspects,
               suspects / ((double) n * (double) sim_time / (60.0 * SEC)), refuted,
               100.0 * (double) s->dropped / (double) s->packets, s->packets);
        g_assert_true(all_see_reachable(s));
        sim_free(s);
}

static void test_loss_soak(void) {
        const char *n = g_getenv("SOAK_MEMBERS"), *t = g_getenv("SOAK_SECONDS");

        /* SOAK_MEMBERS/SOAK_SECONDS: one longer or bigger run instead, for exploring */
        if (n) {
                loss_soak(atoi(n), false, (t ? (uint64_t) atoi(t) : 600) * SEC);
                return;
        }
        loss_soak(5, true, 600 * SEC);
        loss_soak(16, false, 300 * SEC);
}

static void test_refutation(void) {
        Sim *s = sim_new(4, 11, NULL);
        MembershipActions a = {};
        GossipMessage msgs[2] = {};
        const Member *mem;
        uint64_t inc;

        sim_bootstrap(s, 5 * SEC);
        inc = membership_get(s->nodes[0].m, "node3")->incarnation;

        /* node2 tells node0 that node3 is suspect; node3 must refute before anybody kills it. */
        msgs[0] = (GossipMessage) { .type = GOSSIP_ALIVE, .node_id = 0x1002, .incarnation = 1,
                                    .n_addresses = 1, .addresses = { s->nodes[2].addr } };
        g_strlcpy(msgs[0].name, "node2", sizeof msgs[0].name);
        msgs[1] = (GossipMessage) { .type = GOSSIP_SUSPECT, .incarnation = inc };
        g_strlcpy(msgs[1].name, "node3", sizeof msgs[1].name);
        g_strlcpy(msgs[1].from, "node2", sizeof msgs[1].from);
        g_assert_cmpint(membership_receive(s->nodes[0].m, msgs, 2, &s->nodes[2].addr, s->now, &a), ==, 0);
        dispatch(s, 0, &a);
        g_assert_cmpint(membership_get(s->nodes[0].m, "node3")->state, ==, MEMBER_SUSPECT);

        sim_run_until(s, s->now + 2 * SEC, 0);
        g_assert_cmpuint(membership_stats(s->nodes[3].m)->suspicions_refuted, >=, 1);
        for (int i = 0; i < 4; i++) {
                mem = membership_get(s->nodes[i].m, "node3");
                g_assert_cmpint(mem->state, ==, MEMBER_ALIVE);
                g_assert_cmpuint(mem->incarnation, >, inc);
                g_assert_cmpuint(s->nodes[i].n_dead, ==, 0);
        }

        /* A stale ALIVE with the old incarnation changes nothing. */
        msgs[1] = (GossipMessage) { .type = GOSSIP_DEAD, .incarnation = inc };
        g_strlcpy(msgs[1].name, "node3", sizeof msgs[1].name);
        g_strlcpy(msgs[1].from, "node2", sizeof msgs[1].from);
        g_assert_cmpint(membership_receive(s->nodes[0].m, msgs, 2, &s->nodes[2].addr, s->now, &a), ==, 0);
        membership_actions_clear(&a);
        g_assert_cmpint(membership_get(s->nodes[0].m, "node3")->state, ==, MEMBER_ALIVE);

        /* Malformed input is refused without effect. */
        GossipMessage bad = msgs[1];
        g_assert_cmpint(membership_receive(s->nodes[0].m, &bad, 1, NULL, s->now, &a), ==, -EBADMSG);
        memset(bad.name, 'x', sizeof bad.name);
        bad.type = GOSSIP_ALIVE;
        g_assert_cmpint(membership_receive(s->nodes[0].m, &bad, 1, NULL, s->now, &a), ==, -EBADMSG);
        g_assert_cmpuint(a.n, ==, 0);
        sim_free(s);
}

static void test_pause(void) {
        Sim *s = sim_new(5, 21, NULL);

        s->watch_all = true;
        sim_bootstrap(s, 5 * SEC);
        sim_run_until(s, s->now + SEC, 0);

        /* A short pause (< NodeTimeout): nobody dies, and the paused node, which saw no packets
         * for that long, must not blame the others either. */
        s->nodes[2].paused = true;
        sim_run_until(s, s->now + 300 * MSEC, 0);
        sim_resume(s, 2);
        sim_run_until(s, s->now + 2 * SEC, 0);
        for (int i = 0; i < s->n; i++)
                g_assert_cmpuint(s->nodes[i].n_dead, ==, 0);
        g_assert_cmpuint(membership_stats(s->nodes[2].m)->stalls, >=, 1);
        g_assert_true(all_see_alive(s, 5));

        /* A long pause: the others declare it dead; when it resumes it declares nobody dead,
         * refutes, and is alive again everywhere. */
        s->nodes[2].paused = true;
        sim_run_until(s, s->now + 3 * SEC, 0);
        for (int i = 0; i < s->n; i++)
                if (i != 2)
                        g_assert_cmpuint(s->nodes[i].dead_seen[2], >, 0);
        sim_resume(s, 2);
        sim_run_until(s, s->now + 3 * SEC, 2 * SEC);
        g_assert_cmpuint(s->nodes[2].n_dead, ==, 0);
        g_assert_true(all_see_alive(s, 5));
        g_assert_cmpuint(membership_get(s->nodes[0].m, "node2")->incarnation, >, 1);
        sim_free(s);
}

/* Lifeguard: a starved node (no CPU for up to 80 ms, every 50–150 ms) must not blame the
 * others, and they must not lose it either. */
static void test_starved(void) {
        Sim *s = sim_new(5, 71, NULL);
        unsigned suspects_by_others = 0;

        s->watch_all = true;
        sim_bootstrap(s, 5 * SEC);
        s->nodes[0].lag_max = 80 * MSEC;
        s->nodes[0].next_freeze = s->now;
        sim_run_until(s, s->now + 120 * SEC, 0);
        for (int i = 0; i < s->n; i++) {
                g_assert_cmpuint(s->nodes[i].n_dead, ==, 0);
                if (i > 0)
                        suspects_by_others += s->nodes[i].n_suspect;
        }
        const MembershipStats *st = membership_stats(s->nodes[0].m);
        printf("# starved node over 120 s: %" PRIu64 " late ticks, %" PRIu64 " of its %" PRIu64 " probes failed, "
               "%" PRIu64 " refutations; suspect events seen: by it %u, by the others %u\n",
               st->stalls, st->probes_failed, st->probes_sent, st->suspicions_refuted,
               s->nodes[0].n_suspect, suspects_by_others);
        /* its own failed probes are rare: it knows it was stalled and does not blame others */
        g_assert_cmpuint(st->probes_failed * 100, <, st->probes_sent);
        g_assert_cmpuint(membership_stats(s->nodes[0].m)->stalls, >, 0);
        g_assert_true(all_see_alive(s, 5));
        sim_free(s);
}

static void test_dissemination(void) {
        Sim *s = sim_new(32, 31, NULL);
        uint64_t start;

        sim_bootstrap(s, 10 * SEC);
        sim_run_until(s, s->now + 2 * SEC, 0);
        g_assert_cmpint(membership_update_self(s->nodes[5].m, &s->nodes[5].addr, 1, "raft=5", 6), ==, 0);
        start = s->now;
        for (;;) {
                int seen = 0;
                for (int i = 0; i < s->n; i++) {
                        const Member *mem = membership_get(s->nodes[i].m, "node5");
                        if (mem->tags_size == 6 && memcmp(mem->tags, "raft=5", 6) == 0)
                                seen++;
                }
                if (seen == s->n)
                        break;
                g_assert_cmpuint(s->now - start, <, 2 * SEC);
                sim_run_until(s, s->now + MSEC, 0);
        }
        printf("# tags update reached 32 members in %" PRIu64 " ms\n", (s->now - start) / MSEC);
        sim_free(s);
}

/* Probe rounds keep a fixed phase (the cluster's lease tick shares their wake-ups): the next
 * round is always one interval after the previous one, however the ticks fall in between. */
static void test_probe_phase(void) {
        Sim *s = sim_new(3, 43, NULL);
        uint64_t interval = s->params.probe_interval_usec;
        uint64_t first = membership_next_probe_usec(s->nodes[0].m);

        g_assert_cmpuint(first, >=, s->now);
        g_assert_cmpuint(first, <, s->now + interval);
        sim_bootstrap(s, 5 * SEC);
        uint64_t next = membership_next_probe_usec(s->nodes[0].m);
        g_assert_cmpuint(next, >, s->now);
        g_assert_cmpuint(next, <=, s->now + interval);
        g_assert_cmpuint((next - first) % interval, ==, 0);
        sim_free(s);
}

static void test_leave(void) {
        Sim *s = sim_new(4, 41, NULL);
        MembershipActions a = {};

        sim_bootstrap(s, 5 * SEC);
        g_assert_cmpint(membership_leave(s->nodes[1].m, s->now, &a), ==, 0);
        g_assert_cmpuint(membership_next_probe_usec(s->nodes[1].m), ==, UINT64_MAX);
        dispatch(s, 1, &a);
        s->nodes[1].killed = true;
        sim_run_until(s, s->now + 2 * SEC, 0);
        for (int i = 0; i < s->n; i++) {
                if (i == 1)
                        continue;
                g_assert_cmpint(membership_get(s->nodes[i].m, "node1")->state, ==, MEMBER_LEFT);
                g_assert_cmpuint(s->nodes[i].n_dead, ==, 0);
        }
        sim_free(s);
}

static void partition_heal(bool seed_only) {
        Sim *s = sim_new(5, 51, NULL);

        s->watch_all = true;
        s->seed_only = seed_only;
        sim_bootstrap(s, 5 * SEC);
        for (int i = 0; i < 2; i++)
                for (int j = 2; j < 5; j++)
                        s->cut[i][j] = s->cut[j][i] = true;
        sim_run_until(s, s->now + 3 * SEC, SEC);
        g_assert_cmpint(membership_get(s->nodes[0].m, "node3")->state, ==, MEMBER_DEAD);
        g_assert_cmpint(membership_get(s->nodes[3].m, "node0")->state, ==, MEMBER_DEAD);
        g_assert_cmpint(membership_get(s->nodes[0].m, "node1")->state, ==, MEMBER_ALIVE);

        memset(s->cut, 0, sizeof s->cut);
        uint64_t start = s->now;
        while (!all_see_alive(s, 5)) {
                g_assert_cmpuint(s->now - start, <, 5 * SEC);
                sim_run_until(s, s->now + 10 * MSEC, SEC);
        }
        printf("# partition healed in %" PRIu64 " ms%s\n", (s->now - start) / MSEC,
               seed_only ? " (discovery only towards node0)" : "");
        sim_free(s);
}

static void test_partition_heal(void) {
        partition_heal(false);
        /* Only one side pings the other after the heal: the pinged side must still learn
         * that it is considered dead, and both must refute. */
        partition_heal(true);
}

static void test_message_sizes(void) {
        GossipMessage m = { .type = GOSSIP_ALIVE, .n_addresses = 2, .tags_size = 10 };
        g_strlcpy(m.name, "abc", sizeof m.name);
        g_assert_cmpuint(gossip_message_wire_size(&m), ==, 3 + 4 + 8 + 8 + 1 + 38 + 2 + 10);
        g_assert_true(gossip_message_valid(&m) == false); /* address family 0 */
        m.addresses[0].family = m.addresses[1].family = AF_INET;
        g_assert_true(gossip_message_valid(&m));
        m.type = 99;
        g_assert_false(gossip_message_valid(&m));
        g_assert_null(membership_new(NULL, "", 1, 1, NULL, 0, NULL, 0, 0, NULL, NULL));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        log_set_max_level(LOG_WARNING);
        g_test_add_func("/membership/message-sizes", test_message_sizes);
        g_test_add_func("/membership/converge-32", test_converge);
        g_test_add_func("/membership/refutation", test_refutation);
        g_test_add_func("/membership/leave", test_leave);
        g_test_add_func("/membership/probe-phase", test_probe_phase);
        g_test_add_func("/membership/pause", test_pause);
        g_test_add_func("/membership/dissemination-32", test_dissemination);
        g_test_add_func("/membership/starved", test_starved);
        g_test_add_func("/membership/partition-heal", test_partition_heal);
        g_test_add_func("/membership/detection", test_detection);
        g_test_add_func("/membership/loss-soak", test_loss_soak);
        return g_test_run();
}
