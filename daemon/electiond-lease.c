/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "electiond-bytes.h"
#include "electiond-lease.h"

/* Rounds a requester remembers: an ack of an older round is ignored, which only shortens leases. */
#define LEASE_ROUNDS_KEPT 64
/* Stored-index history a granter keeps beyond G, in entries (one per change). */
#define LEASE_STORED_HISTORY_MAX 4096

uint64_t lease_act_margin_usec(const LeaseParams *p) {
        return p->act_margin_usec ?: LEASE_ACT_MARGIN_USEC;
}

bool lease_params_valid(const LeaseParams *p) {
        double need = (double) p->lease_usec * (1.0 + LEASE_CLOCK_RATE_BOUND) + (double) lease_act_margin_usec(p);
        return p->lease_usec > 0 && (double) p->node_timeout_usec > need;
}

uint64_t lease_bound_usec(const LeaseParams *p) {
        return (uint64_t) ((double) p->lease_usec * (1.0 + LEASE_CLOCK_RATE_BOUND)) + lease_act_margin_usec(p);
}

/* FNV-1a over v's little-endian bytes: the same on every host */
static uint64_t fnv1a_u64(uint64_t h, uint64_t v) {
        uint8_t b[8];

        bytes_set_u64(b, v);
        for (unsigned k = 0; k < sizeof b; k++) {
                h ^= b[k];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

uint64_t lease_params_fingerprint(const LeaseParams *p) {
        const uint64_t v[] = { p->lease_usec, p->node_timeout_usec, (uint64_t) (LEASE_CLOCK_RATE_BOUND * 1e6),
                               lease_act_margin_usec(p) };
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (size_t i = 0; i < ELEMENTSOF(v); i++)
                h = fnv1a_u64(h, v[i]);
        /* Appended only when set, with a tag each, so the defaults keep the fingerprint of
         * releases without these keys and a rolling upgrade is not refused. */
        if (p->raft_election_timeout_usec != 0)
                h = fnv1a_u64(fnv1a_u64(h, UINT64_C(0x5261667445)), p->raft_election_timeout_usec);
        if (p->raft_heartbeat_usec != 0)
                h = fnv1a_u64(fnv1a_u64(h, UINT64_C(0x5261667448)), p->raft_heartbeat_usec);
        return h;
}

uint64_t lease_grace_usec(const LeaseParams *p) {
        return p->lease_usec / 2;
}

uint64_t lease_handover_wait_usec(const LeaseParams *p) {
        return lease_grace_usec(p) + (uint64_t) ((double) p->lease_usec * (1.0 + LEASE_CLOCK_RATE_BOUND)) +
               lease_act_margin_usec(p);
}

/* ---- requester ---- */

typedef struct Round {
        uint64_t seq;
        uint64_t sent;
} Round;

struct LeaseRequester {
        uint64_t self_id;
        LeaseParams params;
        GArray *voters;       /* uint64_t */
        GHashTable *last_ack; /* voter id → send time of its newest acked round (uint64_t*) */
        Round rounds[LEASE_ROUNDS_KEPT];
        uint64_t next_seq;
        uint64_t first_round; /* send time of our first round: "without a lease since" if we never had one */
};

LeaseRequester *lease_requester_new(uint64_t self_id, const LeaseParams *p) {
        LeaseRequester *r = g_new0(LeaseRequester, 1);
        r->self_id = self_id;
        r->params = *p;
        r->voters = g_array_new(false, false, sizeof(uint64_t));
        r->last_ack = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        r->next_seq = 1;
        return r;
}

LeaseRequester *lease_requester_free(LeaseRequester *r) {
        if (!r)
                return NULL;
        g_array_unref(r->voters);
        g_hash_table_unref(r->last_ack);
        g_free(r);
        return NULL;
}

static bool id_in(const GArray *a, uint64_t id) {
        for (guint i = 0; i < a->len; i++)
                if (g_array_index(a, uint64_t, i) == id)
                        return true;
        return false;
}

void lease_requester_set_voters(LeaseRequester *r, const uint64_t *ids, size_t n) {
        g_array_set_size(r->voters, 0);
        for (size_t i = 0; i < n; i++)
                if (!id_in(r->voters, ids[i]))
                        g_array_append_val(r->voters, ids[i]);

        /* Forget acks of former voters: they no longer count towards a quorum. */
        GHashTableIter it;
        gpointer key;
        g_hash_table_iter_init(&it, r->last_ack);
        while (g_hash_table_iter_next(&it, &key, NULL))
                if (!id_in(r->voters, *(uint64_t *) key))
                        g_hash_table_iter_remove(&it);
}

uint64_t lease_requester_begin_round(LeaseRequester *r, uint64_t now) {
        uint64_t seq = r->next_seq++;
        if (r->first_round == 0)
                r->first_round = now;
        r->rounds[seq % LEASE_ROUNDS_KEPT] = (Round) { .seq = seq, .sent = now };
        return seq;
}

void lease_requester_ack(LeaseRequester *r, uint64_t voter, uint64_t seq) {
        const Round *round = &r->rounds[seq % LEASE_ROUNDS_KEPT];

        if (seq == 0 || round->seq != seq)
                return; /* unknown, or overwritten by a newer round */
        if (!id_in(r->voters, voter))
                return;

        uint64_t *old = g_hash_table_lookup(r->last_ack, &voter);
        if (old) {
                if (round->sent > *old)
                        *old = round->sent;
                return;
        }
        g_hash_table_insert(r->last_ack, g_memdup2(&voter, sizeof voter), g_memdup2(&round->sent, sizeof round->sent));
}

static int cmp_desc_u64(gconstpointer a, gconstpointer b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? 1 : x > y ? -1 : 0;
}

uint64_t lease_requester_expiry(const LeaseRequester *r) {
        guint n = r->voters->len;
        if (n == 0)
                return 0;

        guint quorum = n / 2 + 1;
        g_autoptr(GArray) sent = g_array_new(false, false, sizeof(uint64_t));
        for (guint i = 0; i < n; i++) {
                uint64_t id = g_array_index(r->voters, uint64_t, i);
                /* Our own vote counts only through our own granter (rules 2 and 3 apply to us too). */
                const uint64_t *v = g_hash_table_lookup(r->last_ack, &id);
                if (!v)
                        continue;
                g_array_append_val(sent, *v);
        }
        if (sent->len < quorum)
                return 0;

        g_array_sort(sent, cmp_desc_u64);
        return g_array_index(sent, uint64_t, quorum - 1) + r->params.lease_usec;
}

bool lease_requester_quorate(const LeaseRequester *r, uint64_t now) {
        return now < lease_requester_expiry(r);
}

uint64_t lease_requester_without_usec(const LeaseRequester *r, uint64_t now) {
        uint64_t expiry = lease_requester_expiry(r), since;

        if (now < expiry)
                return 0;
        since = expiry > 0 ? expiry : r->first_round;
        return since != 0 && now > since ? now - since : 0;
}

/* ---- granter ---- */

typedef struct Stored {
        uint64_t time;
        uint64_t index;
} Stored;

typedef struct Grant {
        uint64_t last_grant;     /* 0 = never: every grant, for attestations (rule 4) */
        uint64_t last_request;   /* 0 = never: the last request that counts as contact (rule 2) */
        uint64_t vote_fence_until; /* after an "expired" answer: no grant before this; 0 = none */
        uint64_t catch_up_index;   /* after a drop or an attestation: no grant until it applied this; 0 = none */
        uint64_t holder;           /* the process (Raft id) we last granted this name to; 0 = any */
} Grant;

struct LeaseGranter {
        LeaseParams params;
        uint64_t started;
        uint64_t prior_lease_usec; /* LeaseSec of our previous incarnation, if longer than ours */
        uint64_t prior_margin_usec; /* its δ, if longer than ours */
        GArray *stored;     /* Stored, oldest first; empty until the log's index is first noted */
        GHashTable *grants; /* node id → Grant */
};

LeaseGranter *lease_granter_new(const LeaseParams *p, uint64_t now) {
        LeaseGranter *g = g_new0(LeaseGranter, 1);
        g->params = *p;
        g->started = now;
        g->stored = g_array_new(false, false, sizeof(Stored));
        g->grants = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        return g;
}

void lease_granter_set_prior_lease(LeaseGranter *g, uint64_t lease_usec) {
        g->prior_lease_usec = lease_usec;
}

void lease_granter_set_prior_margin(LeaseGranter *g, uint64_t margin_usec) {
        g->prior_margin_usec = margin_usec;
}

LeaseGranter *lease_granter_free(LeaseGranter *g) {
        if (!g)
                return NULL;
        g_array_unref(g->stored);
        g_hash_table_unref(g->grants);
        g_free(g);
        return NULL;
}

static Grant *grant_get(LeaseGranter *g, uint64_t node, bool create) {
        Grant *gr = g_hash_table_lookup(g->grants, &node);
        if (!gr && create) {
                gr = g_new0(Grant, 1);
                g_hash_table_insert(g->grants, g_memdup2(&node, sizeof node), gr);
        }
        return gr;
}

void lease_granter_note_stored(LeaseGranter *g, uint64_t index, uint64_t now) {
        g_array_append_val(g->stored, ((Stored) { .time = now, .index = index }));

        /* Keep one entry at or before now − G (the value that rule 3 reads), drop older ones. */
        uint64_t horizon = now > lease_grace_usec(&g->params) ? now - lease_grace_usec(&g->params) : 0;
        guint keep_from = 0;
        for (guint i = 0; i < g->stored->len; i++)
                if (g_array_index(g->stored, Stored, i).time <= horizon)
                        keep_from = i;
        /* a burst of stores: trim, and let lookups before what is kept refuse */
        if (g->stored->len - keep_from > LEASE_STORED_HISTORY_MAX)
                keep_from = g->stored->len - LEASE_STORED_HISTORY_MAX;
        if (keep_from > 0)
                g_array_remove_range(g->stored, 0, keep_from);
}

/* The last index stored at or before t; UINT64_MAX if t is before everything we know (just after
 * a restart, or trimmed away): we cannot tell, so nobody counts as up to date. */
static uint64_t stored_at(const LeaseGranter *g, uint64_t t) {
        uint64_t index = UINT64_MAX;
        for (guint i = 0; i < g->stored->len; i++) {
                const Stored *s = &g_array_index(g->stored, Stored, i);
                if (s->time > t)
                        break;
                index = s->index;
        }
        return index;
}

static bool grant_fenced(const Grant *gr, uint64_t now) {
        return (gr->vote_fence_until != 0 && now < gr->vote_fence_until) || gr->catch_up_index != 0;
}

bool lease_granter_fenced(const LeaseGranter *g, uint64_t node, uint64_t now) {
        const Grant *gr = g_hash_table_lookup(g->grants, &node);
        return gr && grant_fenced(gr, now);
}

bool lease_granter_request(LeaseGranter *g, uint64_t node, uint64_t applied, uint64_t without_lease_usec,
                           uint64_t now) {
        return lease_granter_request_from(g, node, 0, applied, without_lease_usec, now);
}

bool lease_granter_request_from(LeaseGranter *g, uint64_t node, uint64_t holder, uint64_t applied,
                                uint64_t without_lease_usec, uint64_t now) {
        Grant *gr = grant_get(g, node, true);

        /* a second process under a name that is in use: neither contact nor grant */
        if (holder != 0 && gr->holder != 0 && gr->holder != holder && gr->last_grant != 0 &&
            now - gr->last_grant <= g->params.node_timeout_usec)
                return false;
        /* a node that does not hear our acks is no contact, whatever we send it (one-way cut) */
        bool contact = without_lease_usec <= LEASE_GIVE_UP_USEC;
        uint64_t g_usec = lease_grace_usec(&g->params);

        if (contact)
                gr->last_request = now;
        if (gr->vote_fence_until != 0) {
                if (now < gr->vote_fence_until)
                        return false;
                gr->vote_fence_until = 0;
        }
        if (gr->catch_up_index != 0) {
                if (applied < gr->catch_up_index)
                        return false;
                gr->catch_up_index = 0; /* it has applied what fenced it */
        }
        /* it has not applied what we stored a while ago (or we cannot tell): it may act on stale state */
        if (now < g_usec || applied < stored_at(g, now - g_usec))
                return false;

        gr->last_grant = now;
        if (holder != 0)
                gr->holder = holder;
        return true;
}

/* A node that asks, granted or refused (stale, fenced), is alive: only one that has had no lease
 * for LEASE_GIVE_UP_USEC stops counting, so that a node stuck stale or cut one way gets dropped
 * while one catching up after a fence or a Raft leader change does not. */
static uint64_t grant_last_contact(const LeaseGranter *g, const Grant *gr) {
        return MAX(gr->last_request, g->started);
}

uint64_t lease_granter_last_contact(const LeaseGranter *g, uint64_t node) {
        const Grant *gr = g_hash_table_lookup(g->grants, &node);
        return gr ? grant_last_contact(g, gr) : g->started;
}

bool lease_granter_expired(LeaseGranter *g, uint64_t node, uint64_t now) {
        Grant *gr = grant_get(g, node, true);

        if (now - grant_last_contact(g, gr) <= g->params.node_timeout_usec)
                return false;

        /* bounded: if no drop follows, the node is back in the game after it */
        gr->vote_fence_until = now + LEASE_FENCE_NODE_TIMEOUTS * g->params.node_timeout_usec;
        return true;
}

void lease_granter_node_dropped(LeaseGranter *g, uint64_t node, uint64_t index) {
        Grant *gr = grant_get(g, node, true);
        gr->catch_up_index = MAX(gr->catch_up_index, MAX(index, 1));
}

bool lease_granter_attest(LeaseGranter *g, uint64_t node, uint64_t index, uint64_t now) {
        Grant *gr = grant_get(g, node, true);
        LeaseParams prior = { .lease_usec = MAX(g->params.lease_usec, g->prior_lease_usec),
                              .act_margin_usec = MAX(lease_act_margin_usec(&g->params), g->prior_margin_usec) };

        /* a grant of our previous incarnation may be as late as our start */
        if (now < g->started + lease_bound_usec(&prior))
                return false;
        if (gr->last_grant != 0 && now < gr->last_grant + lease_bound_usec(&g->params))
                return false;
        gr->catch_up_index = MAX(gr->catch_up_index, MAX(index, 1));
        return true;
}

uint64_t lease_granter_last_grant(const LeaseGranter *g, uint64_t node) {
        const Grant *gr = g_hash_table_lookup(g->grants, &node);
        return gr ? gr->last_grant : 0;
}

/* ---- hand-over ---- */

void lease_handover_begin(LeaseHandover *h, uint64_t index, uint64_t now) {
        h->index = index;
        h->applied_at = now;
        if (!h->confirmed)
                h->confirmed = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        else
                g_hash_table_remove_all(h->confirmed);
        if (!h->attested)
                h->attested = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                                    (GDestroyNotify) g_hash_table_unref);
        else
                g_hash_table_remove_all(h->attested);
}

void lease_handover_note_applied(LeaseHandover *h, uint64_t node, uint64_t applied) {
        if (h->index == 0 || applied < h->index || !h->confirmed)
                return;
        g_hash_table_add(h->confirmed, g_memdup2(&node, sizeof node));
}

void lease_handover_note_attest(LeaseHandover *h, uint64_t voter, uint64_t index, const uint64_t *nodes,
                                size_t n_nodes) {
        GHashTable *set;

        if (h->index == 0 || index < h->index || !h->attested)
                return;
        set = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        for (size_t i = 0; i < n_nodes; i++)
                g_hash_table_add(set, g_memdup2(&nodes[i], sizeof nodes[i]));
        g_hash_table_insert(h->attested, g_memdup2(&voter, sizeof voter), set);
}

uint64_t lease_handover_deadline(const LeaseHandover *h, const LeaseParams *p) {
        return h->index == 0 ? 0 : h->applied_at + lease_handover_wait_usec(p);
}

static bool attested_by_majority(const LeaseHandover *h, uint64_t node, const uint64_t *voters, size_t n_voters) {
        size_t yes = 0;

        if (!h->attested)
                return false;
        for (size_t i = 0; i < n_voters; i++) {
                GHashTable *set;
                if (voters[i] == node)
                        continue; /* its own granter may well grant it */
                set = g_hash_table_lookup(h->attested, &voters[i]);
                if (set && g_hash_table_contains(set, &node))
                        yes++;
        }
        return yes > n_voters / 2;
}

bool lease_handover_cleared(const LeaseHandover *h, const uint64_t *members, size_t n_members,
                            const uint64_t *voters, size_t n_voters, const LeaseParams *p, uint64_t now) {
        if (h->index == 0)
                return true;
        if (now >= lease_handover_deadline(h, p))
                return true;
        for (size_t i = 0; i < n_members; i++) {
                if (h->confirmed && g_hash_table_contains(h->confirmed, &members[i]))
                        continue;
                /* it cannot hold a lease: whatever it still believes, it cannot act on it */
                if (attested_by_majority(h, members[i], voters, n_voters))
                        continue;
                return false;
        }
        return true;
}

void lease_handover_done(LeaseHandover *h) {
        if (h->confirmed)
                g_hash_table_unref(h->confirmed);
        if (h->attested)
                g_hash_table_unref(h->attested);
        *h = (LeaseHandover) {};
}
