/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "electiond-address.h"
#include "electiond-channel.h"
#include "electiond-cluster.h"
#include "electiond-cluster-private.h"
#include "electiond-cluster-rules.h"
#include "electiond-cluster-msg.h"
#include "electiond-gossip.h"
#include "electiond-keyring.h"
#include "electiond-lease.h"
#include "electiond-metrics.h"
#include "electiond-transport.h"

/* ---- leases ---- */

static bool units_stopping(Cluster *c);
static void confirm_applied(Cluster *c);

void update_voters(Cluster *c, const Servers *s) {
        g_autofree uint64_t *ids = g_new0(uint64_t, s->n + 1);
        size_t n = 0;
        for (size_t i = 0; i < s->n; i++)
                if (s->items[i].voter)
                        ids[n++] = s->items[i].id;
        lease_requester_set_voters(c->requester, ids, n);
}

void lease_round(Cluster *c, const Servers *s, uint64_t now) {
        g_autoptr(GByteArray) b = NULL;
        uint64_t applied = engine_last_applied(c->engine);
        uint64_t without = lease_requester_without_usec(c->requester, now);
        uint64_t seq;

        /* a stop that hangs holds hand-over confirmations no longer than the wait itself */
        if (c->unconfirmed_since != 0 && (!units_stopping(c) ||
                                          now - c->unconfirmed_since > lease_handover_wait_usec(&c->lease_params)))
                confirm_applied(c);
        /* one APPLIED may be lost, and attestations may become true later: repeat them while a
         * hand-over could be waiting for them */
        else if (c->applied_changed_at != 0 && now - c->applied_changed_at <= lease_handover_wait_usec(&c->lease_params))
                broadcast_applied(c);

        update_voters(c, s);
        seq = lease_requester_begin_round(c->requester, now);
        b = cluster_msg_lease_req_encode(&(ClusterLeaseReq) {
                .seq = seq, .applied = applied, .fingerprint = c->fingerprint, .without_usec = without,
                .name = c->node_name,
        });

        for (size_t i = 0; i < s->n; i++) {
                if (!s->items[i].voter)
                        continue;
                if (s->items[i].id == c->node_id) {
                        /* our own vote goes through our own granter, like anyone's */
                        if (c->links_up &&
                            lease_granter_request_from(c->granter, c->lease_id, c->node_id, applied, without, now))
                                lease_requester_ack(c->requester, c->node_id, seq);
                        else
                                log_debug("Own lease grant refused (applied %" PRIu64 ", fenced %d).", applied,
                                          lease_granter_fenced(c->granter, c->lease_id, now));
                        continue;
                }
                send_to_id(c, s->items[i].id, CLUSTER_MSG_LEASE_REQ, b->data, b->len);
        }
}

static void note_peer_applied(Cluster *c, uint64_t id, uint64_t index);

/* Timing settings that differ break the bound of rule 2 between the two nodes: say so, loudly
 * but not every round. */
void log_mismatch(Cluster *c, Peer *p, uint64_t now) {
        if (p && p->mismatch_logged != 0 && now - p->mismatch_logged < 10 * USEC_PER_SEC)
                return;
        if (p)
                p->mismatch_logged = now;
        log_error("Node %s: its timing settings differ from this node's (LeaseSec=%.3f, NodeTimeoutSec=%.3f here): "
                  "no lease is granted between nodes whose timing settings differ. Give every node of cluster '%s' "
                  "the same LeaseSec= and NodeTimeoutSec=.",
                  p ? p->name : "?", (double) c->lease_params.lease_usec / USEC_PER_SEC,
                  (double) c->lease_params.node_timeout_usec / USEC_PER_SEC, c->config->cluster_name);
}

void on_lease_req(Cluster *c, const ChannelPacket *p, uint64_t now) {
        Servers s;
        ClusterLeaseReq req;
        if (cluster_msg_lease_req_decode(p->payload, p->payload_size, &req) < 0)
                return;
        g_autofree char *name = req.name;
        if (!servers_get(c, &s))
                return;
        bool voter = is_voter(&s, c->node_id);
        /* Only a node that believes it is a member asks for leases. If the Raft leader (whose
         * configuration is the newest) does not know it, it was removed while away: tell it. */
        bool stranger = engine_is_leader(c->engine) && !in_servers(&s, p->sender);
        servers_done(&s);
        if (stranger) {
                send_to_id(c, p->sender, CLUSTER_MSG_NOT_MEMBER, NULL, 0);
                return;
        }
        if (!voter || !c->links_up)
                return;

        /* (no hand-over confirmation: only APPLIED says "applied, and my units are stopped") */
        uint64_t seq = req.seq, applied = req.applied;
        uint64_t fingerprint = req.fingerprint, without = req.without_usec;
        if (fingerprint != c->fingerprint) {
                log_mismatch(c, peer_by_id(c, p->sender), now);
                return;
        }
        if (!lease_granter_request_from(c->granter, name_hash(name), p->sender, applied, without, now)) {
                log_debug("Lease grant to %s refused (applied %" PRIu64 ", fenced %d).", name, applied,
                          lease_granter_fenced(c->granter, name_hash(name), now));
                return;
        }

        g_autoptr(GByteArray) b = cluster_msg_lease_ack_encode(&(ClusterLeaseAck) { .seq = seq, .epoch = p->epoch });
        send_to_id(c, p->sender, CLUSTER_MSG_LEASE_ACK, b->data, b->len);
}

/* Rule 4 for the hand-over h: every other member confirmed, or a majority of the voters attest
 * that it can hold no lease; this node's own granter attests here and now. */
static bool handovers_cleared(Cluster *c, LeaseHandover *h, uint64_t now) {
        Servers s;
        g_autofree uint64_t *others = NULL, *voters = NULL, *mine = NULL;
        size_t n = 0, n_voters = 0, n_mine = 0;
        bool r;

        if (h->index == 0)
                return true;
        if (!servers_get(c, &s))
                return false;
        others = g_new0(uint64_t, s.n + 1);
        voters = g_new0(uint64_t, s.n + 1);
        mine = g_new0(uint64_t, s.n + 1);
        for (size_t i = 0; i < s.n; i++) {
                if (s.items[i].voter)
                        voters[n_voters++] = s.items[i].id;
                if (s.items[i].id == c->node_id)
                        continue;
                others[n++] = s.items[i].id;
        }
        if (is_voter(&s, c->node_id) && c->stored_noted) {
                /* fencing until h->index is enough: applying it tells them who leads */
                for (size_t i = 0; i < n; i++) {
                        Peer *p = peer_by_id(c, others[i]);
                        if (g_hash_table_contains(h->confirmed, &others[i]))
                                continue;
                        if (p && lease_granter_attest(c->granter, name_hash(p->name), h->index, now))
                                mine[n_mine++] = others[i];
                }
                lease_handover_note_attest(h, c->node_id, h->index, mine, n_mine);
        }
        r = lease_handover_cleared(h, others, n, voters, n_voters, &c->lease_params, now);
        servers_done(&s);
        return r;
}

bool cluster_quorate(Cluster *c, uint64_t now) {
        if (!c || !c->engine || !c->links_up)
                return false;
        return lease_requester_quorate(c->requester, now);
}

bool cluster_local_leader(Cluster *c, const Election *e, uint64_t now) {
        const Candidacy *lead;
        LeaseHandover *h;

        if (!e || e->candidates->len == 0)
                return false;
        lead = e->candidates->pdata[0];
        if (!streq_ptr(lead->node, c->node_name))
                return false;
        if (!cluster_quorate(c, now))
                return false;
        h = g_hash_table_lookup(c->handovers, e->name);
        return !h || handovers_cleared(c, h, now);
}

/* Re-arm the high-priority timer at the next instant something may flip. */
static void schedule_deadline(Cluster *c, uint64_t now) {
        uint64_t next = UINT64_MAX, expiry = lease_requester_expiry(c->requester);
        GHashTableIter it;
        gpointer v;

        if (expiry > now)
                next = expiry;
        g_hash_table_iter_init(&it, c->handovers);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                uint64_t d = lease_handover_deadline(v, &c->lease_params);
                if (d > now && d < next)
                        next = d;
        }
        if (next == UINT64_MAX) {
                (void) sd_event_source_set_enabled(c->deadline, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(c->deadline, next);
        (void) sd_event_source_set_enabled(c->deadline, SD_EVENT_ONESHOT);
}

void check_quorum(Cluster *c, uint64_t now) {
        bool q = cluster_quorate(c, now);
        if (q != c->last_quorate) {
                c->last_quorate = q;
                if (q)
                        log_info("Cluster %s: quorate.", c->config->cluster_name);
                else {
                        metrics_get()->lease_failures++;
                        log_warning("Cluster %s: lease expired, no quorum: stepping down.", c->config->cluster_name);
                }
                notify_status(c);
        }
        schedule_deadline(c, now);
        if (c->hooks.lease_renewed)
                c->hooks.lease_renewed(c->userdata);
}

void on_lease_ack(Cluster *c, const ChannelPacket *p, uint64_t now) {
        ClusterLeaseAck ack;
        if (cluster_msg_lease_ack_decode(p->payload, p->payload_size, &ack) < 0)
                return;
        /* an ack for another run of ours (recorded, replayed after our restart) is worthless */
        if (ack.epoch != c->channel_epoch)
                return;
        uint64_t before = lease_requester_expiry(c->requester);
        lease_requester_ack(c->requester, p->sender, ack.seq);
        if (lease_requester_expiry(c->requester) > before)
                metrics_get()->lease_renewals++;
        check_quorum(c, now);
}

int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Cluster *c = userdata;
        /* a lease ran out or a hand-over wait ended: LocalLeader may have moved */
        check_quorum(c, now_usec());
        notify_status(c);
        return 0;
}

/* ---- failure → DROP_NODE (Raft leader only) ---- */

static void collect_owner(const Election *e, GHashTable *owners, const char *self) {
        for (unsigned i = 0; i < e->candidates->len; i++) {
                const Candidacy *cd = e->candidates->pdata[i];
                if (!streq_ptr(cd->node, self) && !g_hash_table_contains(owners, cd->node))
                        g_hash_table_add(owners, g_strdup(cd->node));
        }
}

static void maybe_submit_drop(Cluster *c, DropVote *d, size_t voters, uint64_t now) {
        if (d->submitted_at != 0 && now - d->submitted_at < 1 * USEC_PER_SEC)
                return;
        if (!cluster_drop_has_majority(g_hash_table_size(d->yes), voters))
                return;
        log_notice("Node %s silent for over %" PRIu64 " ms and fenced by a majority: removing its candidacies.",
                   d->node, c->lease_params.node_timeout_usec / USEC_PER_MSEC);
        d->submitted_at = now;
        g_hash_table_remove_all(d->yes);
        d->first_ask_id = d->ask_id + 1; /* a retry needs fresh answers */
        metrics_get()->drop_nodes_submitted++;
        c->submit_drop(c->userdata, d->node);
}

void drive_drops(Cluster *c, const Servers *s, uint64_t now) {
        GHashTable *owners = c->owners;
        size_t voters = count_voters(s);
        GHashTableIter it;
        gpointer k, v;

        if (!c->state || !c->submit_drop)
                return;
        if (c->owners_dirty) {
                g_autoptr(GPtrArray) list = election_state_list(c->state);
                g_hash_table_remove_all(owners);
                for (unsigned i = 0; i < list->len; i++)
                        collect_owner(list->pdata[i], owners, c->node_name);
                c->owners_dirty = false;
        }

        /* forget votes for nodes that no longer own anything, or that we hear from again */
        g_hash_table_iter_init(&it, c->drops);
        while (g_hash_table_iter_next(&it, &k, &v)) {
                DropVote *d = v;
                uint64_t last = MAX(lease_granter_last_contact(c->granter, d->target), c->started);
                if (!g_hash_table_contains(owners, k) || now - last <= c->lease_params.node_timeout_usec)
                        g_hash_table_iter_remove(&it);
        }

        g_hash_table_iter_init(&it, owners);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
                const char *node = k;
                uint64_t target = name_hash(node);
                uint64_t last = MAX(lease_granter_last_contact(c->granter, target), c->started);
                DropVote *d;

                if (now - last <= c->lease_params.node_timeout_usec)
                        continue;

                d = g_hash_table_lookup(c->drops, node);
                if (!d) {
                        d = g_new0(DropVote, 1);
                        d->node = g_strdup(node);
                        d->target = target;
                        d->yes = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
                        d->first_ask_id = c->next_ask_id + 1;
                        g_hash_table_insert(c->drops, d->node, d);
                }
                if (d->submitted_at != 0 && now - d->submitted_at < 1 * USEC_PER_SEC)
                        continue;
                /* ask every round until a majority agrees; answers count as they arrive, and a
                 * yes stays valid across rounds (each voter that said it fences the node) */
                if (d->asked_at == 0 || now - d->asked_at >= c->config->probe_interval_usec) {
                        g_autoptr(GByteArray) b = NULL;
                        d->asked_at = now;
                        d->ask_id = ++c->next_ask_id;
                        if (is_voter(s, c->node_id) && lease_granter_expired(c->granter, target, now))
                                g_hash_table_add(d->yes, g_memdup2(&c->node_id, sizeof c->node_id));
                        b = cluster_msg_expired_q_encode(&(ClusterExpiredQ) { .target = target, .ask_id = d->ask_id });
                        metrics_get()->drop_vote_requests++;
                        for (size_t i = 0; i < s->n; i++)
                                if (s->items[i].voter && s->items[i].id != c->node_id) {
                                        Peer *p = peer_by_id(c, s->items[i].id);
                                        if (p && streq_ptr(p->name, node))
                                                continue; /* never ask the node about itself */
                                        send_to_peer(c, p, CLUSTER_MSG_EXPIRED_Q, b->data, b->len);
                                }
                }
                maybe_submit_drop(c, d, voters, now);
        }
}

void on_expired_q(Cluster *c, const ChannelPacket *p, uint64_t now) {
        ClusterExpiredQ q;
        Servers s;
        bool voter;
        if (cluster_msg_expired_q_decode(p->payload, p->payload_size, &q) < 0 || !servers_get(c, &s))
                return;
        voter = is_voter(&s, c->node_id);
        servers_done(&s);
        if (!voter)
                return;
        uint64_t target = q.target;
        g_autoptr(GByteArray) b = NULL;
        uint8_t yes = lease_granter_expired(c->granter, target, now);
        if (yes)
                metrics_get()->drop_votes_yes++;
        else
                metrics_get()->drop_votes_no++;
        b = cluster_msg_expired_a_encode(&(ClusterExpiredA) { .target = q.target, .ask_id = q.ask_id, .yes = yes });
        send_to_id(c, p->sender, CLUSTER_MSG_EXPIRED_A, b->data, b->len);
}

void on_expired_a(Cluster *c, const ChannelPacket *p, uint64_t now) {
        GHashTableIter it;
        gpointer v;
        Servers s;
        size_t voters;
        bool voter;
        ClusterExpiredA a;

        if (cluster_msg_expired_a_decode(p->payload, p->payload_size, &a) < 0 || a.yes != 1 || !c->engine ||
            !engine_is_leader(c->engine))
                return;
        if (!servers_get(c, &s))
                return;
        /* rule 2 needs a majority of voters: nobody else's word counts */
        voter = is_voter(&s, p->sender);
        voters = count_voters(&s);
        servers_done(&s);

        uint64_t target = a.target, ask = a.ask_id;
        g_hash_table_iter_init(&it, c->drops);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                DropVote *d = v;
                if (d->target != target || !cluster_drop_answer_counts(voter, ask, d->first_ask_id, d->ask_id))
                        continue;
                g_hash_table_add(d->yes, g_memdup2(&p->sender, sizeof p->sender));
                maybe_submit_drop(c, d, voters, now);
                break;
        }
}

void cluster_node_dropped(Cluster *c, const char *node, uint64_t index) {
        lease_granter_node_dropped(c->granter, name_hash(node), index);
        g_hash_table_remove(c->drops, node);
}

/* ---- hand-over ---- */

static void handover_note_peer(LeaseHandover *h, const Peer *p) {
        g_autofree uint64_t *ids = NULL;
        size_t n = 0;

        lease_handover_note_applied(h, p->node_id, p->applied);
        if (!p->attested)
                return;
        ids = g_new0(uint64_t, p->attested->len + 1);
        for (guint i = 0; i < p->attested->len; i++)
                ids[n++] = g_array_index(p->attested, uint64_t, i);
        lease_handover_note_attest(h, p->node_id, p->attest_index, ids, n);
}

void cluster_lead_changed(Cluster *c, const Election *e, const char *prev_leader_node, uint64_t index) {
        const char *new_node = e->candidates->len > 0 ? ((const Candidacy *) e->candidates->pdata[0])->node : "";
        GHashTableIter it;
        gpointer v;

        c->owners_dirty = true; /* also reached from snapshot restores */
        if (index < UINT64_MAX - 1 && index > c->lead_change_index)
                c->lead_change_index = index; /* (a snapshot's index is not known) */
        if (!streq_ptr(new_node, c->node_name)) {
                g_hash_table_remove(c->handovers, e->name);
                return;
        }
        if (streq_ptr(prev_leader_node, c->node_name))
                return; /* from one of our candidacies to another: nobody else acted */

        LeaseHandover *h = g_hash_table_lookup(c->handovers, e->name);
        if (!h) {
                h = g_new0(LeaseHandover, 1);
                g_hash_table_insert(c->handovers, g_strdup(e->name), h);
        }
        lease_handover_begin(h, index, now_usec());
        /* peers may have applied it (and said so) before we did */
        g_hash_table_iter_init(&it, c->peers);
        while (g_hash_table_iter_next(&it, NULL, &v))
                handover_note_peer(h, v);
        log_debug("Election '%s': lead gained at index %" PRIu64 " from node '%s'; waiting for every member to apply it.",
                  e->name, index, prev_leader_node ?: "");
        schedule_deadline(c, now_usec());
}

/* APPLIED: what we applied with our leader units stopped, and — as a voter — which members no
 * grant of ours backs any more (they are fenced until they catch up; rule 4). */
void broadcast_applied(Cluster *c) {
        GHashTableIter it;
        gpointer v;
        g_autoptr(GByteArray) b = NULL;
        g_autoptr(GArray) attested = g_array_new(false, false, sizeof(uint64_t));
        uint64_t now = now_usec(), applied;
        Servers s;

        if (!c->channel || !c->engine)
                return;
        /* Attest at the last entry that moved a lead, not at whatever we applied since: the fence
         * holds until they applied it, and an index that keeps moving would keep a live node
         * refused (and then dropped) for as long as the log grows. */
        applied = c->lead_change_index;
        if (servers_get(c, &s)) {
                if (is_voter(&s, c->node_id) && c->stored_noted)
                        for (size_t i = 0; i < s.n && attested->len < 512; i++) {
                                Peer *p = s.items[i].id == c->node_id ? NULL : peer_by_id(c, s.items[i].id);
                                uint64_t lid;
                                if (!p)
                                        continue;
                                lid = name_hash(p->name);
                                if (lease_granter_attest(c->granter, lid, applied, now))
                                        g_array_append_val(attested, lid);
                        }
                servers_done(&s);
        }

        b = cluster_msg_applied_encode(&(ClusterApplied) {
                .confirmed_index = c->confirmed_index, .attest_index = applied,
                .attested = (uint64_t *) attested->data, .n_attested = attested->len,
        });
        g_hash_table_iter_init(&it, c->peers);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((Peer *) v)->state == MEMBER_ALIVE || ((Peer *) v)->state == MEMBER_SUSPECT)
                        send_to_peer(c, v, CLUSTER_MSG_APPLIED, b->data, b->len);
}

static bool units_stopping(Cluster *c) {
        return c->hooks.units_stopping && c->hooks.units_stopping(c->userdata);
}

static void confirm_applied(Cluster *c) {
        /* inside the apply callback libraft has not counted the entry being applied yet */
        uint64_t applied = MAX(c->engine ? engine_last_applied(c->engine) : 0, c->applying_index);

        if (c->unconfirmed_since != 0)
                log_debug("Confirming index %" PRIu64 " after %" PRIu64 " ms of unit stops.", applied,
                          (now_usec() - c->unconfirmed_since) / USEC_PER_MSEC);
        c->unconfirmed_since = 0;
        c->confirmed_index = applied;
        c->applied_changed_at = now_usec();
        broadcast_applied(c);
}

void cluster_entry_applied(Cluster *c, uint64_t index, bool any_leader_changed) {
        c->owners_dirty = true;
        if (index > c->applying_index)
                c->applying_index = index;
        /* whoever gained a lead in this entry waits for everyone to have applied it — and,
         * where this node lost one, to have stopped its leader units */
        if (!any_leader_changed && c->unconfirmed_since == 0)
                return;
        if (units_stopping(c)) {
                if (c->unconfirmed_since == 0)
                        c->unconfirmed_since = now_usec();
                return;
        }
        confirm_applied(c);
}

void cluster_units_settled(Cluster *c) {
        if (c->unconfirmed_since != 0 && !units_stopping(c))
                confirm_applied(c);
}

static void note_peer_applied(Cluster *c, uint64_t id, uint64_t index) {
        Peer *peer = peer_by_id(c, id);
        if (peer && index > peer->applied)
                peer->applied = index;
}

void on_applied(Cluster *c, const ChannelPacket *p, uint64_t now) {
        GHashTableIter it;
        gpointer v;
        Peer *peer;
        _cleanup_(cluster_applied_done) ClusterApplied a = {};

        if (cluster_msg_applied_decode(p->payload, p->payload_size, &a) < 0)
                return;
        size_t n = a.n_attested;
        note_peer_applied(c, p->sender, a.confirmed_index);
        peer = peer_by_id(c, p->sender);
        if (!peer)
                return;
        if (a.attest_index >= peer->attest_index) {
                peer->attest_index = a.attest_index;
                if (!peer->attested)
                        peer->attested = g_array_new(false, false, sizeof(uint64_t));
                g_array_set_size(peer->attested, 0);
                for (size_t i = 0; i < n; i++) {
                        /* lease ids → Raft ids, the currency of hand-overs */
                        uint64_t lid = a.attested[i];
                        GHashTableIter pit;
                        gpointer pv;
                        g_hash_table_iter_init(&pit, c->peers);
                        while (g_hash_table_iter_next(&pit, NULL, &pv))
                                if (name_hash(((Peer *) pv)->name) == lid)
                                        g_array_append_val(peer->attested, ((Peer *) pv)->node_id);
                }
        }
        g_hash_table_iter_init(&it, c->handovers);
        while (g_hash_table_iter_next(&it, NULL, &v))
                handover_note_peer(v, peer);
        /* a hand-over may have cleared: LocalLeader may have moved */
        if (g_hash_table_size(c->handovers) > 0)
                notify_status(c);
}
