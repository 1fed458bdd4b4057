/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tests of the lease rules (daemon/electiond-lease.c): unit tests of each rule, then a randomized
 * simulation of a cluster — drifting clocks, lossy and partitioned links, paused nodes, a
 * replicated log with hand-overs and DROP_NODE — asserting that at no real instant do two nodes
 * act as leader. The same simulation with NodeTimeout below the bound must find violations, so
 * the check is known to have teeth.
 */
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>

#include "electiond-lease.h"

#define MS USEC_PER_MSEC

static const LeaseParams params_default = { .lease_usec = 200 * MS, .node_timeout_usec = 350 * MS };

static void test_params(void) {
        g_assert_true(lease_params_valid(&params_default));
        LeaseParams bad = { .lease_usec = 200 * MS, .node_timeout_usec = 300 * MS };
        g_assert_false(lease_params_valid(&bad)); /* 300 < 200·1.01 + 100 */
        LeaseParams zero = { 0 };
        g_assert_false(lease_params_valid(&zero));
        g_assert_cmpuint(lease_grace_usec(&params_default), ==, 100 * MS);
        g_assert_cmpuint(lease_handover_wait_usec(&params_default), ==, 100 * MS + 202 * MS + 100 * MS);
}

static void test_requester(void) {
        g_autoptr(LeaseRequester) r = lease_requester_new(1, &params_default);
        uint64_t voters[] = { 1, 2, 3 };

        g_assert_cmpuint(lease_requester_expiry(r), ==, 0); /* no voters */
        lease_requester_set_voters(r, voters, 3);

        uint64_t s1 = lease_requester_begin_round(r, 1000 * MS);
        uint64_t s2 = lease_requester_begin_round(r, 1050 * MS);
        g_assert_false(lease_requester_quorate(r, 1000 * MS));

        lease_requester_ack(r, 1, s1);
        g_assert_cmpuint(lease_requester_expiry(r), ==, 0); /* 1 of 3 */
        lease_requester_ack(r, 2, s2);
        /* quorum of 2: the older of the two newest anchors, + lease, anchored at SEND time */
        g_assert_cmpuint(lease_requester_expiry(r), ==, 1000 * MS + 200 * MS);
        lease_requester_ack(r, 1, s2);
        g_assert_cmpuint(lease_requester_expiry(r), ==, 1050 * MS + 200 * MS);
        g_assert_true(lease_requester_quorate(r, 1249 * MS));
        g_assert_false(lease_requester_quorate(r, 1250 * MS));

        /* an older round never moves the anchor back; unknown seqs and non-voters are ignored */
        lease_requester_ack(r, 2, s1);
        lease_requester_ack(r, 9, s2);
        lease_requester_ack(r, 3, 12345);
        g_assert_cmpuint(lease_requester_expiry(r), ==, 1250 * MS);

        /* rounds older than the remembered window are ignored */
        uint64_t old = lease_requester_begin_round(r, 1100 * MS);
        for (int i = 0; i < 100; i++)
                (void) lease_requester_begin_round(r, 1100 * MS + (uint64_t) i);
        lease_requester_ack(r, 3, old);
        g_assert_cmpuint(lease_requester_expiry(r), ==, 1250 * MS);

        /* a voter leaving takes its ack with it */
        uint64_t two[] = { 1, 3 };
        lease_requester_set_voters(r, two, 2);
        g_assert_cmpuint(lease_requester_expiry(r), ==, 0); /* quorum 2 of {1,3}: only 1 acked */
}

static void test_granter(void) {
        g_autoptr(LeaseGranter) g = lease_granter_new(&params_default, 0);

        lease_granter_note_stored(g, 5, 0);
        g_assert_true(lease_granter_request(g, 7, 0, 50 * MS)); /* within G of the store: fine */
        lease_granter_note_stored(g, 9, 100 * MS);
        /* at 250 ms, stored(150 ms) = 9: a node that applied only 5 is stale */
        g_assert_false(lease_granter_request(g, 7, 5, 250 * MS));
        g_assert_true(lease_granter_request(g, 7, 9, 250 * MS));
        g_assert_cmpuint(lease_granter_last_grant(g, 7), ==, 250 * MS);

        /* not expired while a grant is recent */
        g_assert_false(lease_granter_expired(g, 7, 250 * MS + 350 * MS));
        g_assert_false(lease_granter_fenced(g, 7, 600 * MS));
        /* expired after NodeTimeout: fenced, further requests refused */
        g_assert_true(lease_granter_expired(g, 7, 601 * MS));
        g_assert_true(lease_granter_fenced(g, 7, 601 * MS));
        g_assert_false(lease_granter_request(g, 7, 9, 602 * MS));
        g_assert_false(lease_granter_request(g, 7, 9, 60000 * MS)); /* no timeout while the drop is pending */

        /* never granted: expired once NodeTimeout has passed since the granter started */
        g_assert_true(lease_granter_expired(g, 8, 351 * MS));
        g_autoptr(LeaseGranter) fresh = lease_granter_new(&params_default, 1000 * MS);
        g_assert_false(lease_granter_expired(fresh, 8, 1000 * MS + 350 * MS));
        g_assert_false(lease_granter_fenced(fresh, 8, 1000 * MS + 350 * MS));
        g_assert_true(lease_granter_expired(fresh, 8, 1000 * MS + 351 * MS));

        /* a live node we refuse (stale) is not "expired" within the grace after its last grant */
        {
                g_autoptr(LeaseGranter) s = lease_granter_new(&params_default, 0);
                lease_granter_note_stored(s, 50, 1000 * MS);
                g_assert_true(lease_granter_request(s, 5, 50, 1200 * MS));       /* granted at 1.2 s */
                lease_granter_note_stored(s, 60, 1300 * MS);
                g_assert_false(lease_granter_request(s, 5, 50, 1500 * MS));      /* stale: refused */
                g_assert_false(lease_granter_expired(s, 5, 1600 * MS));          /* 0.1 s since contact */
                g_assert_cmpuint(lease_granter_last_contact(s, 5), ==, 1500 * MS);
                g_assert_true(lease_granter_expired(s, 5, 1851 * MS));           /* silent since */
                /* stuck stale past the grace: expired although it keeps asking */
                g_autoptr(LeaseGranter) t = lease_granter_new(&params_default, 0);
                g_assert_true(lease_granter_request(t, 5, 0, 100 * MS));
                lease_granter_note_stored(t, 9, 200 * MS);
                for (uint64_t ms = 400; ms < 3000; ms += 50)
                        g_assert_false(lease_granter_request(t, 5, 0, ms * MS));
                g_assert_true(lease_granter_expired(t, 5, 3000 * MS));
        }

        /* the fence holds (no timeout) until the drop is applied */
        g_assert_true(lease_granter_fenced(g, 7, 60001 * MS));

        /* DROP_NODE applied: fenced for G more, then rule 3 alone */
        g_assert_true(lease_granter_expired(g, 7, 70000 * MS));
        lease_granter_note_stored(g, 12, 70000 * MS);
        lease_granter_node_dropped(g, 7, 70001 * MS);
        g_assert_false(lease_granter_request(g, 7, 12, 70050 * MS));
        g_assert_false(lease_granter_request(g, 7, 9, 70200 * MS)); /* unfenced but stale */
        g_assert_true(lease_granter_request(g, 7, 12, 70200 * MS));
}

static void test_handover(void) {
        LeaseHandover h = {};
        uint64_t others[] = { 2, 3 };

        g_assert_true(lease_handover_cleared(&h, others, 2, &params_default, 0));
        lease_handover_begin(&h, 40, LEASE_NODE_NONE, 1000 * MS);
        g_assert_false(lease_handover_cleared(&h, others, 2, &params_default, 1000 * MS));
        lease_handover_note_applied(&h, 2, 39); /* not enough */
        lease_handover_note_applied(&h, 2, 40);
        g_assert_false(lease_handover_cleared(&h, others, 2, &params_default, 1001 * MS));
        lease_handover_note_applied(&h, 3, 41);
        g_assert_true(lease_handover_cleared(&h, others, 2, &params_default, 1001 * MS));

        /* without confirmations: cleared at the deadline */
        lease_handover_begin(&h, 50, LEASE_NODE_NONE, 2000 * MS);
        g_assert_cmpuint(lease_handover_deadline(&h, &params_default), ==, 2000 * MS + lease_handover_wait_usec(&params_default));
        g_assert_false(lease_handover_cleared(&h, others, 2, &params_default, 2000 * MS + lease_handover_wait_usec(&params_default) - 1));
        g_assert_true(lease_handover_cleared(&h, others, 2, &params_default, 2000 * MS + lease_handover_wait_usec(&params_default)));

        /* after DROP_NODE(3): node 3 is excused, node 2 must still confirm */
        lease_handover_begin(&h, 60, 3, 3000 * MS);
        g_assert_false(lease_handover_cleared(&h, others, 2, &params_default, 3000 * MS));
        lease_handover_note_applied(&h, 2, 60);
        g_assert_true(lease_handover_cleared(&h, others, 2, &params_default, 3000 * MS));
        lease_handover_done(&h);
        g_assert_true(lease_handover_cleared(&h, others, 2, &params_default, 0));
}

/* ------------------------------------------------------------------------------------------ */
/* Simulation. A node "acts" while it believes it leads, its lease runs and its hand-over cleared;
 * a paused node keeps acting (its unit keeps running) until its own clock passes its lease. */

#define MAXN 5
#define TICK_USEC (1 * MS)

typedef enum { MSG_LEASE_REQ, MSG_LEASE_ACK, MSG_APPEND, MSG_APPEND_ACK, MSG_EXPIRED_Q, MSG_EXPIRED_A, MSG_APPLIED } MsgType;

typedef struct Msg {
        MsgType type;
        int from, to;
        uint64_t a, b, c; /* payload */
        uint64_t deliver_at; /* real time */
} Msg;

typedef enum { ENTRY_LEAD, ENTRY_DROP } EntryType;
typedef struct Entry {
        EntryType type;
        int node;     /* LEAD: new leader node; DROP: dropped node */
        int new_lead; /* DROP: who leads next */
} Entry;

typedef struct Node {
        int id;
        double rate;     /* local clock = offset + real * rate */
        uint64_t offset;
        bool paused;
        uint64_t paused_until;
        LeaseRequester *req;
        LeaseGranter *gr;
        LeaseHandover ho;
        uint64_t stored, known_commit, applied;
        int lead;             /* leader node per applied state, -1 none */
        uint64_t next_round;  /* local time */
        /* raft leader bookkeeping (only meaningful on the raft leader) */
        uint64_t match[MAXN];
        int expired_votes[MAXN]; /* per target: bitmask of voters that said expired */
        uint64_t drop_asked_at[MAXN];
} Node;

typedef struct Sim {
        int n;
        GRand *rand;
        LeaseParams p;
        uint64_t probe_usec;
        Node nodes[MAXN];
        GArray *log; /* Entry */
        uint64_t commit;
        int raft_leader;
        uint64_t raft_term;
        GQueue *msgs;
        bool cut[MAXN][MAXN]; /* cut[a][b]: a→b dropped */
        double loss;
        uint64_t now;
        uint64_t violations;
        uint64_t acting_ticks;
        uint64_t handovers, drops;
} Sim;

static uint64_t local_now(const Sim *s, const Node *n) {
        return n->offset + (uint64_t) ((double) s->now * n->rate);
}

static void send_msg(Sim *s, int from, int to, MsgType t, uint64_t a, uint64_t b, uint64_t c) {
        if (from == to)
                return;
        if (s->cut[from][to] || g_rand_double(s->rand) < s->loss)
                return;
        Msg *m = g_new0(Msg, 1);
        uint64_t delay = (uint64_t) g_rand_int_range(s->rand, 1, 4) * TICK_USEC;
        if (g_rand_int_range(s->rand, 0, 100) == 0)
                delay += 30 * MS; /* a slow packet now and then */
        *m = (Msg) { .type = t, .from = from, .to = to, .a = a, .b = b, .c = c, .deliver_at = s->now + delay };
        g_queue_push_tail(s->msgs, m);
}

static int lead_of_prefix(const Sim *s, uint64_t upto) {
        int lead = 0; /* node 0 leads initially (applied index 0) */
        for (uint64_t i = 0; i < upto; i++) {
                const Entry *e = &g_array_index(s->log, Entry, i);
                lead = e->type == ENTRY_LEAD ? e->node : e->new_lead;
        }
        return lead;
}

static void node_apply(Sim *s, Node *n) {
        uint64_t target = MIN(n->known_commit, n->stored);
        if (target <= n->applied)
                return;
        for (uint64_t i = n->applied; i < target; i++) {
                const Entry *e = &g_array_index(s->log, Entry, i);
                int prev = n->lead;
                int next = e->type == ENTRY_LEAD ? e->node : e->new_lead;
                if (e->type == ENTRY_DROP)
                        lease_granter_node_dropped(n->gr, (uint64_t) e->node, local_now(s, n));
                if (next == n->id && prev != n->id)
                        lease_handover_begin(&n->ho, i + 1, e->type == ENTRY_DROP ? (uint64_t) e->node : LEASE_NODE_NONE,
                                             local_now(s, n));
                n->lead = next;
        }
        n->applied = target;
        for (int j = 0; j < s->n; j++)
                send_msg(s, n->id, j, MSG_APPLIED, n->applied, 0, 0);
}

static bool node_acts(const Sim *s, const Node *n) {
        uint64_t now = local_now(s, n);
        uint64_t others[MAXN];
        size_t k = 0;

        if (n->lead != n->id)
                return false;
        if (!lease_requester_quorate(n->req, now))
                return false;
        for (int j = 0; j < s->n; j++)
                if (j != n->id)
                        others[k++] = (uint64_t) j;
        return lease_handover_cleared(&n->ho, others, k, &s->p, now);
}

static void handle(Sim *s, const Msg *m) {
        Node *n = &s->nodes[m->to];
        uint64_t now = local_now(s, n);

        switch (m->type) {
        case MSG_LEASE_REQ:
                if (lease_granter_request(n->gr, (uint64_t) m->from, m->b, now))
                        send_msg(s, n->id, m->from, MSG_LEASE_ACK, m->a, 0, 0);
                break;
        case MSG_LEASE_ACK:
                lease_requester_ack(n->req, (uint64_t) m->from, m->a);
                break;
        case MSG_APPEND:
                /* a = log length sent, b = commit index */
                if (m->a > n->stored) {
                        n->stored = m->a;
                        lease_granter_note_stored(n->gr, n->stored, now);
                }
                n->known_commit = MAX(n->known_commit, MIN(m->b, n->stored));
                node_apply(s, n);
                send_msg(s, n->id, m->from, MSG_APPEND_ACK, n->stored, 0, 0);
                break;
        case MSG_APPEND_ACK:
                if (s->raft_leader == n->id)
                        n->match[m->from] = MAX(n->match[m->from], m->a);
                break;
        case MSG_EXPIRED_Q:
                /* a = target, b = raft term */
                if (lease_granter_expired(n->gr, m->a, now))
                        send_msg(s, n->id, m->from, MSG_EXPIRED_A, m->a, m->b, 0);
                break;
        case MSG_EXPIRED_A:
                if (s->raft_leader == n->id && m->b == s->raft_term)
                        n->expired_votes[m->a] |= 1 << m->from;
                break;
        case MSG_APPLIED:
                lease_handover_note_applied(&n->ho, (uint64_t) m->from, m->a);
                break;
        }
}

static int popcount(int x) {
        return __builtin_popcount((unsigned) x);
}

static void raft_leader_step(Sim *s) {
        Node *l = &s->nodes[s->raft_leader];
        uint64_t now = local_now(s, l);
        uint64_t len = s->log->len;

        l->match[l->id] = l->stored = len;
        lease_granter_note_stored(l->gr, len, now);

        /* commit = majority-th highest match */
        uint64_t m[MAXN];
        for (int i = 0; i < s->n; i++)
                m[i] = l->match[i];
        for (int i = 0; i < s->n; i++)
                for (int j = i + 1; j < s->n; j++)
                        if (m[j] > m[i]) {
                                uint64_t t = m[i];
                                m[i] = m[j];
                                m[j] = t;
                        }
        uint64_t c = m[s->n / 2];
        if (c > s->commit)
                s->commit = c;
        l->known_commit = s->commit;
        node_apply(s, l);

        for (int j = 0; j < s->n; j++)
                send_msg(s, l->id, j, MSG_APPEND, len, s->commit, 0);

        /* propose only with nothing uncommitted, so every entry is decided by the state it sees */
        if (s->commit < len)
                return;

        int lead = lead_of_prefix(s, len);
        /* failure handling: the current lead's node has not been granted a lease for NodeTimeout */
        uint64_t lg = lease_granter_last_contact(l->gr, (uint64_t) lead);
        if (lead != l->id && now - lg > s->p.node_timeout_usec) {
                if (l->drop_asked_at[lead] == 0 || now - l->drop_asked_at[lead] > 50 * MS) {
                        l->drop_asked_at[lead] = now;
                        if (lease_granter_expired(l->gr, (uint64_t) lead, now))
                                l->expired_votes[lead] |= 1 << l->id;
                        for (int j = 0; j < s->n; j++)
                                if (j != lead)
                                        send_msg(s, l->id, j, MSG_EXPIRED_Q, (uint64_t) lead, s->raft_term, 0);
                }
                if (popcount(l->expired_votes[lead]) > s->n / 2) {
                        int next = (lead + 1 + g_rand_int_range(s->rand, 0, s->n - 1)) % s->n;
                        if (next == lead)
                                next = (next + 1) % s->n;
                        Entry e = { .type = ENTRY_DROP, .node = lead, .new_lead = next };
                        g_array_append_val(s->log, e);
                        l->expired_votes[lead] = 0;
                        l->drop_asked_at[lead] = 0;
                        s->drops++;
                }
                return;
        }

        /* graceful hand-overs (Anoint) now and then */
        if (g_rand_int_range(s->rand, 0, 400) == 0) {
                int to = g_rand_int_range(s->rand, 0, s->n);
                if (to != lead) {
                        Entry e = { .type = ENTRY_LEAD, .node = to };
                        g_array_append_val(s->log, e);
                        s->handovers++;
                }
        }
}

/* A new raft leader: a live node that can reach a majority and holds every entry a majority has
 * stored (Raft's election restriction: such an entry may be committed). */
static void maybe_change_raft_leader(Sim *s) {
        Node *l = &s->nodes[s->raft_leader];
        int reach = 0;
        for (int j = 0; j < s->n; j++)
                if (j == l->id || (!s->cut[l->id][j] && !s->cut[j][l->id] && !s->nodes[j].paused))
                        reach++;
        if (!l->paused && reach > s->n / 2 && g_rand_int_range(s->rand, 0, 3000) != 0)
                return;

        uint64_t stored[MAXN];
        for (int i = 0; i < s->n; i++)
                stored[i] = s->nodes[i].stored;
        for (int i = 0; i < s->n; i++)
                for (int j = i + 1; j < s->n; j++)
                        if (stored[j] > stored[i]) {
                                uint64_t t = stored[i];
                                stored[i] = stored[j];
                                stored[j] = t;
                        }
        uint64_t majority_stored = stored[s->n / 2];

        for (int tries = 0; tries < 10; tries++) {
                int c = g_rand_int_range(s->rand, 0, s->n);
                Node *cand = &s->nodes[c];
                if (cand->paused || cand->stored < majority_stored || cand->stored < s->commit || c == s->raft_leader)
                        continue;
                int r = 0;
                for (int j = 0; j < s->n; j++)
                        if (j == c || (!s->cut[c][j] && !s->cut[j][c] && !s->nodes[j].paused))
                                r++;
                if (r <= s->n / 2)
                        continue;
                s->raft_leader = c;
                s->raft_term++;
                memset(cand->match, 0, sizeof cand->match);
                memset(cand->expired_votes, 0, sizeof cand->expired_votes);
                memset(cand->drop_asked_at, 0, sizeof cand->drop_asked_at);
                /* entries past the new leader's log were stored by a minority only: they go,
                 * everywhere (followers truncate a conflicting tail) */
                g_array_set_size(s->log, cand->stored);
                for (int j = 0; j < s->n; j++) {
                        Node *nd = &s->nodes[j];
                        g_assert_cmpuint(nd->applied, <=, cand->stored);
                        if (nd->stored > cand->stored)
                                nd->stored = cand->stored;
                        if (nd->known_commit > cand->stored)
                                nd->known_commit = cand->stored;
                }
                return;
        }
}

static void inject_faults(Sim *s) {
        int r = g_rand_int_range(s->rand, 0, 1000);
        if (r < 3) { /* pause a node for up to 2 s */
                Node *n = &s->nodes[g_rand_int_range(s->rand, 0, s->n)];
                if (!n->paused) {
                        n->paused = true;
                        n->paused_until = s->now + (uint64_t) g_rand_int_range(s->rand, 10, 2000) * MS;
                }
        } else if (r < 6) { /* cut a random direction */
                int a = g_rand_int_range(s->rand, 0, s->n), b = g_rand_int_range(s->rand, 0, s->n);
                s->cut[a][b] = true;
        } else if (r < 8) { /* isolate a node both ways */
                int a = g_rand_int_range(s->rand, 0, s->n);
                for (int b = 0; b < s->n; b++)
                        s->cut[a][b] = s->cut[b][a] = true;
        } else if (r < 12) { /* heal everything */
                memset(s->cut, 0, sizeof s->cut);
        } else if (r < 14) {
                s->loss = g_rand_double_range(s->rand, 0, 0.3);
        }
}

static uint64_t simulate(int n, uint32_t seed, const LeaseParams *p, uint64_t seconds, bool *ret_any_progress) {
        Sim s = { .n = n, .p = *p, .probe_usec = 50 * MS };
        s.rand = g_rand_new_with_seed(seed);
        s.log = g_array_new(false, false, sizeof(Entry));
        s.msgs = g_queue_new();

        uint64_t voters[MAXN];
        for (int i = 0; i < n; i++)
                voters[i] = (uint64_t) i;
        for (int i = 0; i < n; i++) {
                Node *nd = &s.nodes[i];
                nd->id = i;
                /* rates within ±0.4 %, well inside the 1 % bound */
                nd->rate = 1.0 + g_rand_double_range(s.rand, -0.004, 0.004);
                nd->offset = (uint64_t) g_rand_int_range(s.rand, 0, 1000000) * 1000;
                nd->req = lease_requester_new((uint64_t) i, p);
                lease_requester_set_voters(nd->req, voters, (size_t) n);
                nd->gr = lease_granter_new(p, local_now(&s, nd));
                nd->lead = 0;
        }

        uint64_t end = seconds * USEC_PER_SEC;
        for (s.now = 0; s.now < end; s.now += TICK_USEC) {
                if (s.now > 2 * USEC_PER_SEC)
                        inject_faults(&s);

                for (int i = 0; i < n; i++)
                        if (s.nodes[i].paused && s.now >= s.nodes[i].paused_until)
                                s.nodes[i].paused = false;

                /* deliver due messages to running nodes (paused nodes keep them queued) */
                guint len = g_queue_get_length(s.msgs);
                for (guint k = 0; k < len; k++) {
                        Msg *m = g_queue_pop_head(s.msgs);
                        if (m->deliver_at <= s.now && !s.nodes[m->to].paused) {
                                handle(&s, m);
                                g_free(m);
                        } else
                                g_queue_push_tail(s.msgs, m);
                }

                /* lease rounds */
                for (int i = 0; i < n; i++) {
                        Node *nd = &s.nodes[i];
                        uint64_t ln = local_now(&s, nd);
                        if (nd->paused || ln < nd->next_round)
                                continue;
                        nd->next_round = ln + s.probe_usec;
                        uint64_t seq = lease_requester_begin_round(nd->req, ln);
                        if (lease_granter_request(nd->gr, (uint64_t) i, nd->applied, ln))
                                lease_requester_ack(nd->req, (uint64_t) i, seq);
                        for (int j = 0; j < n; j++)
                                send_msg(&s, i, j, MSG_LEASE_REQ, seq, nd->applied, 0);
                }

                maybe_change_raft_leader(&s);
                if (!s.nodes[s.raft_leader].paused && s.now % (5 * MS) == 0)
                        raft_leader_step(&s);

                /* the safety check, at every real millisecond */
                int acting = 0;
                for (int i = 0; i < n; i++)
                        if (node_acts(&s, &s.nodes[i]))
                                acting++;
                if (acting > 1)
                        s.violations++;
                if (acting > 0)
                        s.acting_ticks++;
        }

        if (ret_any_progress)
                *ret_any_progress = s.acting_ticks > end / TICK_USEC / 10 && (s.handovers > 0 || s.drops > 0);
        if (g_test_verbose() || g_getenv("LEASE_SIM_VERBOSE"))
                printf("# n=%d seed=%u lease=%" PRIu64 "ms timeout=%" PRIu64 "ms: violations=%" PRIu64
                       " acting=%.1f%% handovers=%" PRIu64 " drops=%" PRIu64 " log=%u\n",
                       n, seed, p->lease_usec / MS, p->node_timeout_usec / MS, s.violations,
                       100.0 * (double) s.acting_ticks / (double) (end / TICK_USEC), s.handovers, s.drops,
                       s.log->len);

        uint64_t v = s.violations;
        for (int i = 0; i < n; i++) {
                lease_requester_free(s.nodes[i].req);
                lease_granter_free(s.nodes[i].gr);
                lease_handover_done(&s.nodes[i].ho);
        }
        g_queue_free_full(s.msgs, g_free);
        g_array_unref(s.log);
        g_rand_free(s.rand);
        return v;
}

static uint32_t base_seed(void) {
        const char *e = g_getenv("LEASE_SIM_SEED");
        uint32_t seed = e ? (uint32_t) strtoul(e, NULL, 0) : (uint32_t) g_random_int();
        printf("# LEASE_SIM_SEED=%u\n", seed);
        return seed;
}

static void test_simulation_safe(void) {
        uint32_t seed = base_seed();
        for (int round = 0; round < 6; round++) {
                int n = round % 2 ? 5 : 3;
                bool progress = false;
                uint32_t sd = seed + (uint32_t) round;
                uint64_t v = simulate(n, sd, &params_default, 60, &progress);
                if (v != 0)
                        g_error("two leaders at once for %" PRIu64 " ms (n=%d, LEASE_SIM_SEED=%u)", v, n, sd);
                /* the test must not pass by electing nobody */
                g_assert_true(progress);
        }
}

static void test_simulation_broken_is_caught(void) {
        /* NodeTimeout below the bound: the cluster takes over while the old leader's lease runs */
        LeaseParams bad = { .lease_usec = 400 * MS, .node_timeout_usec = 150 * MS };
        uint32_t seed = base_seed();
        uint64_t total = 0;
        for (int round = 0; round < 4; round++)
                total += simulate(3, seed + (uint32_t) round, &bad, 60, NULL);
        g_assert_cmpuint(total, >, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/lease/params", test_params);
        g_test_add_func("/lease/requester", test_requester);
        g_test_add_func("/lease/granter", test_granter);
        g_test_add_func("/lease/handover", test_handover);
        g_test_add_func("/lease/simulation-safe", test_simulation_safe);
        g_test_add_func("/lease/simulation-broken-is-caught", test_simulation_broken_is_caught);
        return g_test_run();
}
