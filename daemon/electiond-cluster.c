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
#include <unistd.h>

#include "electiond-address.h"
#include "electiond-bytes.h"
#include "electiond-channel.h"
#include "electiond-cluster.h"
#include "electiond-gossip.h"
#include "electiond-keyring.h"
#include "electiond-lease.h"
#include "electiond-metrics.h"
#include "electiond-transport.h"

/* Cluster channel message types. 1 (LEASE_REQ), 2 (LEASE_ACK) and 5 (APPLIED) were the first
 * formats: they are ignored now (an old node gets no lease from us: the safe direction). */
enum {
        MSG_EXPIRED_Q = 3, /* u64 target (lease id), u64 ask id */
        MSG_EXPIRED_A = 4, /* u64 target, u64 ask id, u8 yes */
        MSG_FORWARD = 6,   /* an encoded command batch */
        MSG_JOIN = 7,      /* u64 raft id, raft address */
        MSG_NOT_MEMBER = 8, /* from the Raft leader: your server id is not in the configuration */
        MSG_LEASE_REQ = 9, /* u64 seq, u64 applied, u64 settings fingerprint, u64 µs without lease, name */
        MSG_LEASE_ACK = 10, /* u64 seq, u64 the requester's channel epoch (an ack never outlives its run) */
        MSG_APPLIED = 11,  /* u64 confirmed index, u64 attesting index, u16 n, n × u64 lease ids attested */
        MSG_NAME_IN_USE = 12, /* from the Raft leader: your commands' name belongs to another node id */
};

#define TAGS_VERSION 1
/* 20 bytes in v0.1.0, which reads the first 20 of longer tags; byte 20 (protocol 2 on) is the
 * highest protocol version the node speaks: absent = 1. */
#define TAGS_SIZE 21
#define TAG_HAS_STATE   (1u << 0)
#define TAG_RAFT_LEADER (1u << 1)
#define TAG_WITNESS     (1u << 2) /* [Node] Witness=yes: always a voter, never holds candidacies */
#define BOOTSTRAP_STABLE_ROUNDS 4
#define JOIN_RETRY_USEC (300 * USEC_PER_MSEC)
#define PROTOCOL_RETRY_USEC (1 * USEC_PER_SEC)

typedef struct Tags {
        uint8_t version;
        uint8_t flags;
        uint64_t cluster_id;
        uint16_t raft_port;
        uint64_t fingerprint; /* of the timing settings; 0 = not told */
        uint8_t protocol;     /* highest protocol version it speaks; 1 when not told */
} Tags;

typedef struct Peer {
        char *name;
        uint64_t node_id;
        MemberState state;
        uint64_t dead_since; /* boottime µs, 0 when alive */
        uint64_t applied;    /* highest log index it confirmed (APPLIED) */
        bool have_address;
        MemberAddress addresses[MEMBER_ADDRESSES_MAX]; /* what it advertises (gossip port) */
        size_t n_addresses;
        Tags tags;
        uint64_t attest_index;  /* its latest attestation (rule 4): at this applied index ... */
        GArray *attested;       /* ... these lease ids hold no grant of its (u64) */
        uint64_t mismatch_logged; /* when we last logged that its timing settings differ */
        uint64_t protocol_logged; /* when we last refused its JOIN for its protocol version */
} Peer;

typedef struct DropVote {
        uint64_t target;     /* lease id */
        char *node;
        uint64_t ask_id;
        uint64_t first_ask_id; /* answers to any ask since this one count */
        uint64_t asked_at;
        uint64_t submitted_at;
        GHashTable *yes;     /* raft ids of voters that answered yes (each then fences the node) */
} DropVote;

struct Cluster {
        sd_event *event;
        const Config *config;
        char *state_dir;
        char *raft_dir;
        char *node_name;
        uint64_t node_id;
        uint64_t lease_id; /* our identity in leases: a hash of the node name */
        uint64_t cluster_id;
        uint64_t started;
        uint64_t channel_epoch;    /* ours; acks must echo it */
        uint64_t fingerprint;      /* lease_params_fingerprint() of our timing settings */
        uint64_t identity_logged;  /* when we last logged a refused duplicate Raft identity */
        bool identity_conflict;    /* we are the newer twin: exiting, and saying nothing in our name */
        bool bootstrap_refused_logged;

        Keyring *keyring;          /* shared with gossip, channel and transport; reload assigns in place */
        EngineCallbacks engine_cb;
        void *engine_userdata;
        ClusterHooks hooks;
        void *userdata;

        Gossip *gossip;
        Channel *channel;
        Engine *engine;
        bool was_member;

        GHashTable *peers; /* name → Peer */

        LeaseParams lease_params;
        LeaseRequester *requester;
        LeaseGranter *granter;
        uint64_t last_stored;
        bool stored_noted;         /* the granter has heard of our log at least once */
        uint64_t applied_changed_at; /* when confirmed_index last moved: APPLIED is resent for a while */
        GHashTable *handovers; /* election name → LeaseHandover* */
        bool last_quorate;

        GHashTable *drops; /* node name → DropVote */
        uint64_t next_ask_id;
        const ElectionState *state;
        void (*submit_drop)(void *userdata, const char *node);
        void (*submit_protocol)(void *userdata, unsigned version);
        unsigned protocol_pending;     /* SET_PROTOCOL submitted at protocol_submitted_at */
        uint64_t protocol_submitted_at;

        sd_event_source *tick;
        sd_event_source *deadline;
        sd_event_source *post;

        /* bootstrap */
        char *bootstrap_view;
        unsigned bootstrap_stable;
        uint64_t join_sent_at;
        bool links_up;
        bool conflict;
        uint8_t last_tags[TAGS_SIZE];
        bool change_in_flight;
        /* Hand-over confirmations (APPLIED) mean "applied, and my leader units are stopped":
         * while a demotion's stops run they wait (at most the hand-over wait). Leases never do. */
        uint64_t confirmed_index;
        uint64_t applying_index;   /* newest entry the manager applied (see confirm_applied) */
        uint64_t lead_change_index; /* newest applied entry that moved any election's lead */
        /* Nodes that own candidacies, rebuilt only after the state changed: scanning 10,000
         * elections every probe interval was most of an idle leader's CPU. */
        GHashTable *owners;        /* node name (owned) */
        bool owners_dirty;
        uint64_t unconfirmed_since;
        GHashTable *standby; /* raft ids we made stand-bys (EngineServer has no spare/standby bit) */

        /* --force-new-cluster / --restore (issue 11 §7): before the engine starts we listen to
         * gossip until force_deadline; a live member of the old cluster makes us refuse. */
        bool force_new;
        bool force_restore;
        uint64_t force_deadline;
};

/* ---- small helpers ---- */

static uint64_t name_hash(const char *s) {
        /* FNV-1a, 64 bit: lease identities are node names, which are unique in a cluster */
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        for (; *s; s++) {
                h ^= (uint8_t) *s;
                h *= UINT64_C(0x100000001b3);
        }
        return h ?: 1;
}

static int read_u64_file(const char *path, uint64_t *ret) {
        g_autofree char *s = NULL;
        char *end;

        if (!g_file_get_contents(path, &s, NULL, NULL))
                return -ENOENT;
        errno = 0;
        *ret = g_ascii_strtoull(g_strstrip(s), &end, 16);
        if (errno != 0 || *end != 0 || *ret == 0)
                return -EINVAL;
        return 0;
}

static int write_u64_file(const char *path, uint64_t v) {
        g_autofree char *s = g_strdup_printf("%016" PRIx64 "\n", v);
        g_autoptr(GError) error = NULL;

        if (!g_file_set_contents_full(path, s, -1, G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE, 0600, &error))
                return log_error_errno(EIO, "Failed to write %s: %s", path, error->message);
        return 0;
}

static uint64_t random_u64(void) {
        uint64_t v = 0;
        while (v == 0)
                if (getrandom(&v, sizeof v, 0) != sizeof v)
                        v = g_random_int() | ((uint64_t) g_random_int() << 32);
        return v;
}

static bool raft_dir_has_state(const char *dir) {
        g_autofree char *m1 = g_build_filename(dir, "metadata1", NULL);
        g_autofree char *m2 = g_build_filename(dir, "metadata2", NULL);
        return g_file_test(m1, G_FILE_TEST_EXISTS) || g_file_test(m2, G_FILE_TEST_EXISTS);
}

static void tags_encode(const Tags *t, uint8_t out[TAGS_SIZE]) {
        out[0] = t->version;
        out[1] = t->flags;
        bytes_set_u64(out + 2, t->cluster_id);
        bytes_set_u16(out + 10, t->raft_port);
        bytes_set_u64(out + 12, t->fingerprint);
        out[20] = t->protocol;
}

static bool tags_decode(const uint8_t *p, size_t n, Tags *ret) {
        uint64_t id, fp = 0;
        uint16_t port;
        if (n < 12 || p[0] != TAGS_VERSION)
                return false;
        id = bytes_get_u64(p + 2);
        port = bytes_get_u16(p + 10);
        if (n >= 20)
                fp = bytes_get_u64(p + 12);
        *ret = (Tags) { .version = p[0], .flags = p[1], .cluster_id = id, .raft_port = port,
                        .fingerprint = fp, .protocol = n > 20 && p[20] > 1 ? p[20] : 1 };
        return true;
}

static Peer *peer_by_id(Cluster *c, uint64_t id) {
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, c->peers);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((Peer *) v)->node_id == id)
                        return v;
        return NULL;
}

static void peer_free(gpointer p) {
        Peer *peer = p;
        g_free(peer->name);
        if (peer->attested)
                g_array_unref(peer->attested);
        g_free(peer);
}

static void drop_vote_free(gpointer p) {
        DropVote *d = p;
        g_free(d->node);
        if (d->yes)
                g_hash_table_unref(d->yes);
        g_free(d);
}

static void handover_free(gpointer p) {
        LeaseHandover *h = p;
        lease_handover_done(h);
        g_free(h);
}

static uint64_t now_usec(void) {
        return now_boottime_usec();
}

static void notify_status(Cluster *c) {
        if (c->hooks.status_changed)
                c->hooks.status_changed(c->userdata);
}

/* ---- Raft servers ---- */

typedef struct Servers {
        EngineServer *items;
        size_t n;
} Servers;

static void servers_done(Servers *s) {
        g_free(s->items); /* the addresses are the engine's */
        *s = (Servers) {};
}

static bool servers_get(Cluster *c, Servers *ret) {
        *ret = (Servers) {};
        if (!c->engine)
                return false;
        return engine_get_servers(c->engine, &ret->items, &ret->n) >= 0;
}

static bool is_voter(const Servers *s, uint64_t id) {
        for (size_t i = 0; i < s->n; i++)
                if (s->items[i].id == id)
                        return s->items[i].voter;
        return false;
}

static bool in_servers(const Servers *s, uint64_t id) {
        for (size_t i = 0; i < s->n; i++)
                if (s->items[i].id == id)
                        return true;
        return false;
}

static size_t count_voters(const Servers *s) {
        size_t n = 0;
        for (size_t i = 0; i < s->n; i++)
                n += s->items[i].voter;
        return n;
}

/* ---- addresses ---- */

/* Which of a member's addresses we use: one of a family we have too (a mixed cluster has
 * IPv4-only, IPv6-only and dual-stack nodes), prefer_family first if given, else IPv4 (as
 * before IPv6), then global IPv6, then link-local IPv6. NULL if none is usable. */
static const MemberAddress *pick_address(Cluster *c, const MemberAddress *addrs, size_t n, int prefer_family) {
        bool have4 = gossip_has_family(c->gossip, AF_INET), have6 = gossip_has_family(c->gossip, AF_INET6);
        const MemberAddress *best = NULL;
        int best_rank = INT_MAX;

        for (size_t i = 0; i < n; i++) {
                const MemberAddress *a = &addrs[i];
                int rank;

                if ((a->family == AF_INET && !have4) || (a->family == AF_INET6 && !have6))
                        continue;
                rank = member_address_preference(a);
                if (prefer_family != 0 && a->family == prefer_family)
                        rank -= 10;
                if (rank < best_rank) {
                        best_rank = rank;
                        best = a;
                }
        }
        return best;
}

/* Where p's cluster channel listens (Port+1 of its gossip address), scope included. */
static int peer_channel_address(Cluster *c, const Peer *p, struct sockaddr_storage *ret) {
        const MemberAddress *a;
        MemberAddress ch;

        if (!p || !p->have_address)
                return -EHOSTUNREACH;
        a = pick_address(c, p->addresses, p->n_addresses, 0);
        if (!a)
                return -EHOSTUNREACH;
        ch = *a;
        ch.port = (uint16_t) (a->port + 1);
        return gossip_resolve(c->gossip, &ch, ret, NULL);
}

/* ---- channel sends ---- */

static void send_to_peer(Cluster *c, const Peer *p, uint8_t type, const void *data, size_t size) {
        struct sockaddr_storage to;
        int r;
        if (!c->channel || !p || !p->have_address)
                return;
        r = peer_channel_address(c, p, &to);
        if (r >= 0)
                r = channel_send(c->channel, &to, type, data, size);
        if (r < 0)
                log_debug_errno(r, "Failed to send message %u to %s: %m", type, p->name);
}

static void send_to_id(Cluster *c, uint64_t id, uint8_t type, const void *data, size_t size) {
        send_to_peer(c, peer_by_id(c, id), type, data, size);
}

/* ---- leases ---- */

static bool units_stopping(Cluster *c);
static void confirm_applied(Cluster *c);
static void broadcast_applied(Cluster *c);

static void update_voters(Cluster *c, const Servers *s) {
        g_autofree uint64_t *ids = g_new0(uint64_t, s->n + 1);
        size_t n = 0;
        for (size_t i = 0; i < s->n; i++)
                if (s->items[i].voter)
                        ids[n++] = s->items[i].id;
        lease_requester_set_voters(c->requester, ids, n);
}

static void lease_round(Cluster *c, const Servers *s, uint64_t now) {
        g_autoptr(GByteArray) b = g_byte_array_new();
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
        bytes_put_u64(b, seq);
        bytes_put_u64(b, applied);
        bytes_put_u64(b, c->fingerprint);
        bytes_put_u64(b, without);
        g_byte_array_append(b, (const uint8_t *) c->node_name, (guint) strlen(c->node_name));

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
                send_to_id(c, s->items[i].id, MSG_LEASE_REQ, b->data, b->len);
        }
}

static void note_peer_applied(Cluster *c, uint64_t id, uint64_t index);

/* Timing settings that differ break the bound of rule 2 between the two nodes: say so, loudly
 * but not every round. */
static void log_mismatch(Cluster *c, Peer *p, uint64_t now) {
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

static void on_lease_req(Cluster *c, const ChannelPacket *p, uint64_t now) {
        Servers s;
        if (p->payload_size < 33 || p->payload_size > 32 + 255)
                return;
        if (!servers_get(c, &s))
                return;
        bool voter = is_voter(&s, c->node_id);
        /* Only a node that believes it is a member asks for leases. If the Raft leader (whose
         * configuration is the newest) does not know it, it was removed while away: tell it. */
        bool stranger = engine_is_leader(c->engine) && !in_servers(&s, p->sender);
        servers_done(&s);
        if (stranger) {
                send_to_id(c, p->sender, MSG_NOT_MEMBER, NULL, 0);
                return;
        }
        if (!voter || !c->links_up)
                return;

        /* (no hand-over confirmation: only APPLIED says "applied, and my units are stopped") */
        uint64_t seq = bytes_get_u64(p->payload), applied = bytes_get_u64(p->payload + 8);
        uint64_t fingerprint = bytes_get_u64(p->payload + 16), without = bytes_get_u64(p->payload + 24);
        g_autofree char *name = g_strndup((const char *) p->payload + 32, p->payload_size - 32);
        if (fingerprint != c->fingerprint) {
                log_mismatch(c, peer_by_id(c, p->sender), now);
                return;
        }
        if (!lease_granter_request_from(c->granter, name_hash(name), p->sender, applied, without, now)) {
                log_debug("Lease grant to %s refused (applied %" PRIu64 ", fenced %d).", name, applied,
                          lease_granter_fenced(c->granter, name_hash(name), now));
                return;
        }

        g_autoptr(GByteArray) b = g_byte_array_new();
        bytes_put_u64(b, seq);
        bytes_put_u64(b, p->epoch);
        send_to_id(c, p->sender, MSG_LEASE_ACK, b->data, b->len);
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

static void check_quorum(Cluster *c, uint64_t now) {
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

static void on_lease_ack(Cluster *c, const ChannelPacket *p, uint64_t now) {
        if (p->payload_size != 16)
                return;
        /* an ack for another run of ours (recorded, replayed after our restart) is worthless */
        if (bytes_get_u64(p->payload + 8) != c->channel_epoch)
                return;
        uint64_t before = lease_requester_expiry(c->requester);
        lease_requester_ack(c->requester, p->sender, bytes_get_u64(p->payload));
        if (lease_requester_expiry(c->requester) > before)
                metrics_get()->lease_renewals++;
        check_quorum(c, now);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
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
        if (g_hash_table_size(d->yes) <= voters / 2)
                return;
        log_notice("Node %s silent for over %" PRIu64 " ms and fenced by a majority: removing its candidacies.",
                   d->node, c->lease_params.node_timeout_usec / USEC_PER_MSEC);
        d->submitted_at = now;
        g_hash_table_remove_all(d->yes);
        d->first_ask_id = d->ask_id + 1; /* a retry needs fresh answers */
        metrics_get()->drop_nodes_submitted++;
        c->submit_drop(c->userdata, d->node);
}

static void drive_drops(Cluster *c, const Servers *s, uint64_t now) {
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
                        g_autoptr(GByteArray) b = g_byte_array_new();
                        d->asked_at = now;
                        d->ask_id = ++c->next_ask_id;
                        if (is_voter(s, c->node_id) && lease_granter_expired(c->granter, target, now))
                                g_hash_table_add(d->yes, g_memdup2(&c->node_id, sizeof c->node_id));
                        bytes_put_u64(b, target);
                        bytes_put_u64(b, d->ask_id);
                        metrics_get()->drop_vote_requests++;
                        for (size_t i = 0; i < s->n; i++)
                                if (s->items[i].voter && s->items[i].id != c->node_id) {
                                        Peer *p = peer_by_id(c, s->items[i].id);
                                        if (p && streq_ptr(p->name, node))
                                                continue; /* never ask the node about itself */
                                        send_to_peer(c, p, MSG_EXPIRED_Q, b->data, b->len);
                                }
                }
                maybe_submit_drop(c, d, voters, now);
        }
}

static void on_expired_q(Cluster *c, const ChannelPacket *p, uint64_t now) {
        Servers s;
        bool voter;
        if (p->payload_size != 16 || !servers_get(c, &s))
                return;
        voter = is_voter(&s, c->node_id);
        servers_done(&s);
        if (!voter)
                return;
        uint64_t target = bytes_get_u64(p->payload);
        g_autoptr(GByteArray) b = g_byte_array_new();
        uint8_t yes = lease_granter_expired(c->granter, target, now);
        if (yes)
                metrics_get()->drop_votes_yes++;
        else
                metrics_get()->drop_votes_no++;
        g_byte_array_append(b, p->payload, 16);
        g_byte_array_append(b, &yes, 1);
        send_to_id(c, p->sender, MSG_EXPIRED_A, b->data, b->len);
}

static void on_expired_a(Cluster *c, const ChannelPacket *p, uint64_t now) {
        GHashTableIter it;
        gpointer v;
        Servers s;
        size_t voters;

        if (p->payload_size != 17 || p->payload[16] != 1 || !c->engine || !engine_is_leader(c->engine))
                return;
        if (!servers_get(c, &s))
                return;
        /* rule 2 needs a majority of voters: nobody else's word counts */
        if (!is_voter(&s, p->sender)) {
                servers_done(&s);
                return;
        }
        voters = count_voters(&s);
        servers_done(&s);

        uint64_t target = bytes_get_u64(p->payload), ask = bytes_get_u64(p->payload + 8);
        g_hash_table_iter_init(&it, c->drops);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                DropVote *d = v;
                if (d->target != target || ask < d->first_ask_id || ask > d->ask_id)
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
static void broadcast_applied(Cluster *c) {
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

        b = g_byte_array_new();
        bytes_put_u64(b, c->confirmed_index);
        bytes_put_u64(b, applied);
        bytes_put_u16(b, (uint16_t) attested->len);
        for (guint i = 0; i < attested->len; i++)
                bytes_put_u64(b, g_array_index(attested, uint64_t, i));
        g_hash_table_iter_init(&it, c->peers);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((Peer *) v)->state == MEMBER_ALIVE || ((Peer *) v)->state == MEMBER_SUSPECT)
                        send_to_peer(c, v, MSG_APPLIED, b->data, b->len);
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

static void on_applied(Cluster *c, const ChannelPacket *p, uint64_t now) {
        GHashTableIter it;
        gpointer v;
        Peer *peer;
        uint16_t n;

        if (p->payload_size < 18)
                return;
        n = bytes_get_u16(p->payload + 16);
        if (p->payload_size != 18 + (size_t) n * 8)
                return;
        note_peer_applied(c, p->sender, bytes_get_u64(p->payload));
        peer = peer_by_id(c, p->sender);
        if (!peer)
                return;
        if (bytes_get_u64(p->payload + 8) >= peer->attest_index) {
                peer->attest_index = bytes_get_u64(p->payload + 8);
                if (!peer->attested)
                        peer->attested = g_array_new(false, false, sizeof(uint64_t));
                g_array_set_size(peer->attested, 0);
                for (uint16_t i = 0; i < n; i++) {
                        /* lease ids → Raft ids, the currency of hand-overs */
                        uint64_t lid = bytes_get_u64(p->payload + 18 + (size_t) i * 8);
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

/* ---- forwarding ---- */

int cluster_forward(Cluster *c, const void *batch, size_t size) {
        uint64_t id = 0;
        const char *address = NULL;
        Peer *p;

        if (!c->engine)
                return -ENOTCONN;
        engine_leader(c->engine, &id, &address);
        if (id == 0 || id == c->node_id)
                return -ENOTCONN;
        p = peer_by_id(c, id);
        if (!p || !p->have_address)
                return -ENOTCONN;
        if (size > CHANNEL_PAYLOAD_MAX)
                return -EMSGSIZE;
        struct sockaddr_storage to;
        int r = peer_channel_address(c, p, &to);
        if (r < 0)
                return -ENOTCONN;
        r = channel_send(c->channel, &to, MSG_FORWARD, batch, size);
        if (r >= 0)
                metrics_get()->forwarded_sent++;
        return r;
}

/* ---- membership and Raft configuration ---- */

static void update_tags(Cluster *c) {
        Tags t = { .version = TAGS_VERSION, .cluster_id = c->cluster_id, .raft_port = c->config->port,
                   .fingerprint = c->fingerprint, .protocol = PROTOCOL_VERSION_MAX };
        uint8_t buf[TAGS_SIZE];
        if (c->engine && raft_dir_has_state(c->raft_dir))
                t.flags |= TAG_HAS_STATE;
        if (c->engine && engine_is_leader(c->engine))
                t.flags |= TAG_RAFT_LEADER;
        if (c->config->witness)
                t.flags |= TAG_WITNESS;
        tags_encode(&t, buf);
        if (memcmp(buf, c->last_tags, sizeof buf) == 0)
                return;
        memcpy(c->last_tags, buf, sizeof buf);
        (void) gossip_set_tags(c->gossip, buf, sizeof buf);
}

static void peer_update(Cluster *c, const Member *m) {
        Peer *p = g_hash_table_lookup(c->peers, m->name);
        Tags t = {};

        if (m->is_self)
                return;
        if (!p) {
                p = g_new0(Peer, 1);
                p->name = g_strdup(m->name);
                g_hash_table_insert(c->peers, p->name, p);
        }
        p->node_id = m->node_id;
        if (m->state == MEMBER_DEAD || m->state == MEMBER_LEFT) {
                if (p->dead_since == 0)
                        p->dead_since = now_usec();
        } else
                p->dead_since = 0;
        p->state = m->state;
        if (tags_decode(m->tags, m->tags_size, &t))
                p->tags = t;
        /* all of them: which one to use depends on our own families, which may change */
        if (m->n_addresses > 0) {
                p->n_addresses = MIN(m->n_addresses, (size_t) MEMBER_ADDRESSES_MAX);
                memcpy(p->addresses, m->addresses, p->n_addresses * sizeof p->addresses[0]);
                p->have_address = true;
        }
        if (t.fingerprint != 0 && t.fingerprint != c->fingerprint && m->state == MEMBER_ALIVE)
                log_mismatch(c, p, now_usec());
        if (t.cluster_id != 0 && c->cluster_id != 0 && t.cluster_id != c->cluster_id && !c->conflict) {
                c->conflict = true;
                log_error("Node %s belongs to another cluster named '%s' (id %016" PRIx64 ", ours %016" PRIx64
                          "): the two are never merged; check BootstrapExpect= and keys.",
                          m->name, c->config->cluster_name, t.cluster_id, c->cluster_id);
                notify_status(c);
        }
}

static void on_member_event(Gossip *g, MembershipEvent event, const Member *m, void *userdata) {
        Cluster *c = userdata;
        peer_update(c, m);
        log_debug("Member %s: %s", m->name, membership_event_to_string(event));
        notify_status(c);
}

static void on_links_changed(Gossip *g, bool any_up, void *userdata) {
        Cluster *c = userdata;
        if (c->links_up == any_up)
                return;
        c->links_up = any_up;
        if (!any_up) {
                /* our own link is down: nothing we were granted counts any more */
                Servers s;
                log_warning("No cluster interface is up: stepping down at once.");
                lease_requester_free(c->requester);
                c->requester = lease_requester_new(c->node_id, &c->lease_params);
                if (servers_get(c, &s)) {
                        update_voters(c, &s);
                        servers_done(&s);
                }
        }
        check_quorum(c, now_usec());
        notify_status(c);
}

static void on_identity_conflict(Gossip *g, bool same_id, bool we_are_newer, const MemberAddress *from,
                                 void *userdata) {
        Cluster *c = userdata;
        char ip[INET6_ADDRSTRLEN] = "?";
        uint64_t now = now_usec();

        (void) inet_ntop(from->family, from->addr, ip, sizeof ip);
        if (we_are_newer) {
                log_error("Duplicate identity: the node at %s uses this node's %s (%s) and started earlier. "
                          "Refusing to run: %s",
                          ip, same_id ? "node id" : "name", same_id ? "a copy of its state directory?" : c->node_name,
                          same_id ? "give this machine a fresh state directory (remove /var/lib/electiond/node-id "
                                    "and raft/) or stop the other one."
                                  : "give each machine its own [Node] Name= (or host name).");
                c->identity_conflict = true;
                notify_status(c);
                (void) sd_event_exit(c->event, EXIT_FAILURE);
                return;
        }
        if (c->identity_logged != 0 && now - c->identity_logged < 10 * USEC_PER_SEC)
                return;
        c->identity_logged = now;
        log_warning("Duplicate identity: a newer process at %s uses this node's %s; it should refuse to run.", ip,
                    same_id ? "node id" : "name");
}

static uint64_t next_channel_epoch(Cluster *c);

static void on_epoch_bumped(Gossip *g, uint64_t epoch, void *userdata) {
        Cluster *c = userdata;

        c->channel_epoch = MAX(next_channel_epoch(c), epoch);
        if (c->channel)
                channel_codec_set_epoch(channel_get_codec(c->channel), c->channel_epoch);
}

/* Our Raft address in the configuration: the first IPv4 address (as before IPv6), else a global
 * IPv6, else a link-local one — "[fe80::1]:7946" without a scope, which only has a meaning per
 * node: peers connect to whatever address of ours suits them (raft_resolve()). */
static char *self_raft_address(Cluster *c) {
        const Member *self = membership_get_self(gossip_get_membership(c->gossip));
        char buf[ADDRESS_STRLEN];
        int best_rank = INT_MAX;
        MemberAddress best;

        if (!self)
                return NULL;
        for (size_t i = 0; i < self->n_addresses; i++) {
                const MemberAddress *a = &self->addresses[i];
                int rank = member_address_preference(a);
                if (rank < best_rank) {
                        best_rank = rank;
                        best = *a;
                }
        }
        if (best_rank == INT_MAX)
                return NULL;
        best.port = c->config->port;
        return g_strdup(member_address_format(&best, true, buf));
}

/* libraft's address of a server is one string for the whole cluster, but in a mixed cluster a
 * node may not have that string's family, and a link-local one needs our scope. So connect to
 * what the server advertises in gossip, its family if we have it, its Raft port. */
static int raft_resolve(void *userdata, uint64_t id, const char *address, struct sockaddr_storage *ret) {
        Cluster *c = userdata;
        const Peer *p = peer_by_id(c, id);
        const MemberAddress *a;
        MemberAddress conf = {}, target;

        if (address_parse(address, c->config->port, &conf, NULL) < 0)
                conf.port = c->config->port;
        if (p && p->have_address && (a = pick_address(c, p->addresses, p->n_addresses, conf.family))) {
                target = *a;
                target.port = conf.port;
                if (gossip_resolve(c->gossip, &target, ret, NULL) >= 0)
                        return 0;
        }
        /* not (yet) in gossip: the string itself, a link-local one with the scope we heard it on */
        if (conf.family != 0 && member_address_is_link_local(&conf))
                return gossip_resolve(c->gossip, &conf, ret, NULL);
        return -ENOENT;
}

/* A Raft connection from a node that gossips another cluster id: refused, so that the members of
 * an old cluster (after --force-new-cluster or --restore) cannot disturb our Raft terms. */
static bool raft_peer_foreign(Cluster *c, uint64_t id) {
        Peer *p = peer_by_id(c, id);

        return p && p->tags.cluster_id != 0 && c->cluster_id != 0 && p->tags.cluster_id != c->cluster_id;
}

/* A Raft id lives at one address: a second machine claiming it (a cloned state directory) is
 * refused before libraft sees it, or one id would vote with two logs. */
static bool raft_identity_ok(void *userdata, uint64_t id, const char *address, const struct sockaddr_storage *peer) {
        Cluster *c = userdata;
        char known[256] = "";
        uint64_t now = now_usec();
        bool ok = id != c->node_id;
        Servers s;

        if (ok && servers_get(c, &s)) {
                for (size_t i = 0; i < s.n; i++)
                        if (s.items[i].id == id && !streq_ptr(s.items[i].address, address)) {
                                g_strlcpy(known, s.items[i].address, sizeof known);
                                ok = false;
                        }
                servers_done(&s);
        }
        if (ok && raft_peer_foreign(c, id))
                return false; /* a member of another cluster (e.g. the old one after --force-new-cluster) */
        if (!ok && (c->identity_logged == 0 || now - c->identity_logged > 10 * USEC_PER_SEC)) {
                c->identity_logged = now;
                log_error("Refused a Raft connection claiming server id %016" PRIx64 " from %s (%s): "
                          "a duplicate identity (a cloned state directory?).",
                          id, address, *known ? known : "our own id");
        }
        return ok;
}

static int make_transport(void *userdata, struct uv_loop_s *loop, struct raft_uv_transport **ret) {
        Cluster *c = userdata;
        gsize n;
        const void *k = keyring_key(c->keyring, 0, &n);
        int r;

        r = auth_transport_new(loop, k, n, c->config->cluster_name, ret);
        if (r < 0)
                return r;
        (void) auth_transport_set_keyring(*ret, c->keyring);
        auth_transport_set_identity_check(*ret, raft_identity_ok, c);
        auth_transport_set_resolver(*ret, raft_resolve, c);
        /* With IPv6 we listen on [::] (IPv4 too, dual-stack): a link-local address cannot be
         * bound without its scope, and peers of either family must get in. */
        auth_transport_set_listen_any(*ret, gossip_has_family(c->gossip, AF_INET6));
        metrics_get()->transport = *ret;
        return 0;
}

static void free_transport(void *userdata, struct raft_uv_transport *t) {
        if (metrics_get()->transport == t)
                metrics_get()->transport = NULL;
        auth_transport_free(t);
}

/* --force-new-cluster: the Raft configuration becomes this node alone (log and snapshot kept, so
 * the elections and their term ids are), under a new cluster id so that the old members are
 * foreign to us and never rejoin silently; the marker makes the manager commit BUMP_TERMS first. */
static int force_new_configuration(Cluster *c, const char *address) {
        g_autofree char *marker = g_build_filename(c->state_dir, CLUSTER_FORCE_BUMP_MARKER, NULL);
        g_autofree char *cid_path = g_build_filename(c->state_dir, "cluster-id", NULL);
        EngineServer self = { .id = c->node_id, .address = (char *) address, .voter = true };
        uint64_t old_id = c->cluster_id;
        int r;

        if (!g_file_set_contents(marker, "", 0, NULL))
                return log_error_errno(EIO, "Failed to write %s.", marker);
        r = engine_recover(c->engine, &self, 1);
        if (r < 0)
                return log_error_errno(r, "Failed to force a new one-voter Raft configuration: %m");
        c->cluster_id = random_u64();
        r = write_u64_file(cid_path, c->cluster_id);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", cid_path);
        c->force_new = false;
        log_warning("FORCED A NEW CLUSTER: node %s (%016" PRIx64 ") is now the only voter of cluster '%s' (new id %016" PRIx64
                    ", was %016" PRIx64 "). The old members are foreign to it: wipe their state directories before they "
                    "join again. Every election's term id moves up by %" PRIu64 ".",
                    c->node_name, c->node_id, c->config->cluster_name, c->cluster_id, old_id,
                    (uint64_t) CLUSTER_FORCE_TERM_OFFSET);
        return 0;
}

static int start_engine(Cluster *c, const EngineServer *bootstrap, size_t n_bootstrap) {
        g_autofree char *address = self_raft_address(c);
        int r;

        if (!address)
                return -EADDRNOTAVAIL;
        EngineConfig ec = {
                .dir = c->raft_dir,
                .server_id = c->node_id,
                .address = address,
                .election_timeout_msec = (unsigned) (c->config->raft_election_timeout_usec / USEC_PER_MSEC),
                .heartbeat_timeout_msec = (unsigned) (c->config->raft_heartbeat_usec / USEC_PER_MSEC),
                .transport_new = make_transport,
                .transport_free = free_transport,
                .transport_userdata = c,
        };
        r = engine_new(c->event, &ec, &c->engine_cb, c->engine_userdata, &c->engine);
        if (r < 0) {
                log_error_errno(r, "Failed to create the Raft engine: %m");
                goto fail;
        }
        if (c->force_new) {
                r = force_new_configuration(c, address);
                if (r < 0)
                        goto fail;
        }
        if (n_bootstrap > 0) {
                r = engine_bootstrap(c->engine, bootstrap, n_bootstrap);
                if (r < 0 && r != -EEXIST) {
                        log_error_errno(r, "Failed to bootstrap the cluster: %m");
                        goto fail;
                }
        }
        r = engine_start(c->engine);
        if (r < 0) {
                log_error_errno(r, "Failed to start the Raft engine at %s: %m", address);
                goto fail;
        }
        log_info("Raft engine started as server %016" PRIx64 " at %s.", c->node_id, address);
        if (c->hooks.engine_started)
                c->hooks.engine_started(c->userdata, c->engine);
        update_tags(c);
        return 0;

fail:
        /* Without an engine this node can do nothing: no half-made engine, no waiting forever. */
        c->engine = engine_free(c->engine);
        (void) sd_event_exit(c->event, EXIT_FAILURE);
        return r;
}

typedef struct BootView {
        Cluster *c;
        GArray *ids; /* u64 */
        GArray *same; /* u64: those of them whose timing settings are ours */
        GPtrArray *addresses;
        bool existing; /* someone already has a cluster */
} BootView;

static void boot_visit(const Member *m, void *userdata) {
        BootView *v = userdata;
        Tags t = {};

        if (m->state != MEMBER_ALIVE)
                return;
        if (!m->is_self) {
                if (!tags_decode(m->tags, m->tags_size, &t))
                        return;
                if (t.cluster_id != 0 || (t.flags & TAG_HAS_STATE)) {
                        v->existing = true;
                        return;
                }
        }
        g_array_append_val(v->ids, m->node_id);
        if (m->is_self || t.fingerprint == 0 || t.fingerprint == v->c->fingerprint)
                g_array_append_val(v->same, m->node_id);
}

static int cmp_u64(gconstpointer a, gconstpointer b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* No Raft state yet: bootstrap (the lowest id of a stable view of BootstrapExpect fresh nodes)
 * or join an existing cluster through its leader. */
static void bootstrap_or_join(Cluster *c, uint64_t now) {
        BootView v = { .c = c, .ids = g_array_new(false, false, sizeof(uint64_t)),
                       .same = g_array_new(false, false, sizeof(uint64_t)) };
        g_autofree char *view = NULL;
        GString *sv;

        if (c->engine)
                goto out; /* joining: wait for the leader to add us */
        if (raft_dir_has_state(c->raft_dir)) {
                /* we are a member already; the engine waited for an address: start it, never bootstrap */
                (void) start_engine(c, NULL, 0);
                goto out;
        }
        membership_foreach(gossip_get_membership(c->gossip), boot_visit, &v);
        g_array_sort(v.ids, cmp_u64);
        g_array_sort(v.same, cmp_u64);
        sv = g_string_new(NULL);
        for (guint i = 0; i < v.ids->len; i++)
                g_string_append_printf(sv, "%016" PRIx64 ",", g_array_index(v.ids, uint64_t, i));
        view = g_string_free(sv, false);

        if (v.existing) {
                /* join: start an empty engine so the leader can reach us, then ask */
                (void) start_engine(c, NULL, 0);
                goto out;
        }

        if (!streq_ptr(view, c->bootstrap_view)) {
                g_free(c->bootstrap_view);
                c->bootstrap_view = g_strdup(view);
                c->bootstrap_stable = 0;
                goto out;
        }
        if (++c->bootstrap_stable < BOOTSTRAP_STABLE_ROUNDS || v.ids->len < c->config->bootstrap_expect)
                goto out;
        /* Only a majority that agrees on the timing settings forms a cluster (the others' JOIN is
         * refused), and its lowest id bootstraps; we join it once it shows a cluster id. */
        if (v.same->len <= v.ids->len / 2) {
                if (!c->bootstrap_refused_logged) {
                        c->bootstrap_refused_logged = true;
                        log_error("Not bootstrapping: the timing settings of %u of the %u fresh nodes seen differ from "
                                  "this node's (LeaseSec=%.3f, NodeTimeoutSec=%.3f).",
                                  v.ids->len - v.same->len, v.ids->len,
                                  (double) c->lease_params.lease_usec / USEC_PER_SEC,
                                  (double) c->lease_params.node_timeout_usec / USEC_PER_SEC);
                }
                goto out;
        }
        if (g_array_index(v.same, uint64_t, 0) != c->node_id)
                goto out;

        {
                /* Alone: libraft never lets a node without configuration vote, so the others
                 * join through us like any later node (one path, no divergent lists). */
                g_autofree char *addr = self_raft_address(c);
                EngineServer self = { .id = c->node_id, .address = addr, .voter = true };
                if (!addr)
                        goto out;
                c->cluster_id = random_u64();
                g_autofree char *path = g_build_filename(c->state_dir, "cluster-id", NULL);
                if (write_u64_file(path, c->cluster_id) < 0)
                        goto out;
                log_notice("Bootstrapping cluster '%s' (%u fresh nodes seen); the others join through us.",
                           c->config->cluster_name, v.ids->len);
                if (start_engine(c, &self, 1) < 0)
                        goto out;
        }
out:
        g_array_unref(v.ids);
        g_array_unref(v.same);
}

static void maybe_send_join(Cluster *c, const Servers *s, uint64_t now) {
        GHashTableIter it;
        gpointer v;
        g_autofree char *address = NULL;

        if (in_servers(s, c->node_id)) {
                /* we are in: adopt the cluster id of the nodes we joined */
                if (c->cluster_id == 0) {
                        g_hash_table_iter_init(&it, c->peers);
                        while (g_hash_table_iter_next(&it, NULL, &v))
                                if (((Peer *) v)->tags.cluster_id != 0 && ((Peer *) v)->state == MEMBER_ALIVE) {
                                        g_autofree char *path = g_build_filename(c->state_dir, "cluster-id", NULL);
                                        c->cluster_id = ((Peer *) v)->tags.cluster_id;
                                        (void) write_u64_file(path, c->cluster_id);
                                        log_info("Joined cluster '%s'.", c->config->cluster_name);
                                        break;
                                }
                }
                c->was_member = true;
                return;
        }
        if (c->join_sent_at != 0 && now - c->join_sent_at < JOIN_RETRY_USEC)
                return;
        address = self_raft_address(c);
        if (!address)
                return;
        g_autoptr(GByteArray) b = g_byte_array_new();
        bytes_put_u64(b, c->node_id);
        g_byte_array_append(b, (const uint8_t *) address, (guint) strlen(address));
        c->join_sent_at = now;
        /* to whoever says it leads; everyone with state if nobody does */
        bool sent = false;
        g_hash_table_iter_init(&it, c->peers);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Peer *p = v;
                if (p->state == MEMBER_ALIVE && (p->tags.flags & TAG_RAFT_LEADER)) {
                        send_to_peer(c, p, MSG_JOIN, b->data, b->len);
                        sent = true;
                }
        }
        if (!sent) {
                g_hash_table_iter_init(&it, c->peers);
                while (g_hash_table_iter_next(&it, NULL, &v))
                        if (((Peer *) v)->state == MEMBER_ALIVE && (((Peer *) v)->tags.flags & TAG_HAS_STATE))
                                send_to_peer(c, v, MSG_JOIN, b->data, b->len);
        }
}

typedef struct Change {
        Cluster *c;
        uint64_t id;
} Change;

static void on_change_done(int status, void *userdata) {
        Change *ch = userdata;
        if (status < 0)
                log_debug_errno(status, "Raft configuration change for %016" PRIx64 " failed: %m", ch->id);
        ch->c->change_in_flight = false;
        g_free(ch);
}

static void start_change(Cluster *c, int kind, uint64_t id, const char *address, bool voter) {
        Change *ch = g_new0(Change, 1);
        int r;
        ch->c = c;
        ch->id = id;
        c->change_in_flight = true;
        if (kind == 0)
                r = engine_add_member(c->engine, id, address, on_change_done, ch);
        else if (kind == 1)
                r = engine_assign_member(c->engine, id, voter, on_change_done, ch);
        else
                r = engine_remove_member(c->engine, id, on_change_done, ch);
        if (r < 0) {
                log_debug_errno(r, "Raft configuration change for %016" PRIx64 " refused: %m", id);
                c->change_in_flight = false;
                g_free(ch);
        }
}

/* ---- protocol version (rolling upgrade) ---- */

/* The highest protocol version every member of the Raft configuration (voters and stand-bys)
 * advertises in its tags; one we have not heard from counts as 1 (v0.1.0 advertised nothing), and
 * so does one that is not alive now: it may come back with another release. */
static unsigned members_protocol(Cluster *c, const Servers *s) {
        unsigned v = PROTOCOL_VERSION_MAX;

        for (size_t i = 0; i < s->n; i++) {
                Peer *p;

                if (s->items[i].id == c->node_id)
                        continue;
                p = peer_by_id(c, s->items[i].id);
                v = MIN(v, p && p->state == MEMBER_ALIVE ? MAX(p->tags.protocol, 1u) : 1u);
        }
        return v;
}

/* What a joining node must speak: the committed version, or one being committed right now. */
static unsigned join_protocol(Cluster *c) {
        unsigned v = election_state_protocol(c->state);
        if (c->protocol_submitted_at != 0 && now_usec() - c->protocol_submitted_at < PROTOCOL_RETRY_USEC)
                v = MAX(v, c->protocol_pending);
        return v;
}

/* As Raft leader: once every member speaks a newer protocol than the committed one, commit it
 * (SET_PROTOCOL). Not while a configuration change is in flight: a member being added must have
 * been counted. Retried every PROTOCOL_RETRY_USEC until applied. */
static void maybe_raise_protocol(Cluster *c, const Servers *s, uint64_t now) {
        unsigned committed, v;

        if (!c->state || !c->submit_protocol || c->change_in_flight)
                return;
        committed = election_state_protocol(c->state);
        v = members_protocol(c, s);
        if (v <= committed)
                return;
        if (c->protocol_submitted_at != 0 && now - c->protocol_submitted_at < PROTOCOL_RETRY_USEC)
                return;
        c->protocol_submitted_at = now;
        c->protocol_pending = v;
        log_info("Every member of cluster '%s' speaks protocol version %u: committing it (was %u).",
                 c->config->cluster_name, v, committed);
        c->submit_protocol(c->userdata, v);
}

void cluster_set_protocol_hook(Cluster *c, void (*submit_protocol)(void *userdata, unsigned version)) {
        c->submit_protocol = submit_protocol;
}

static void on_join(Cluster *c, const ChannelPacket *p) {
        Servers s;
        if (p->payload_size < 9 || p->payload_size > 8 + 63 || !c->engine || !engine_is_leader(c->engine))
                return;
        uint64_t id = bytes_get_u64(p->payload);
        g_autofree char *address = g_strndup((const char *) p->payload + 8, p->payload_size - 8);
        Peer *from = peer_by_id(c, p->sender);
        if (id != p->sender || c->change_in_flight)
                return;
        if (!from || from->tags.fingerprint != c->fingerprint) {
                /* never let a node whose timing settings differ vote (or one we cannot check yet) */
                if (from && from->tags.fingerprint != 0)
                        log_mismatch(c, from, now_usec());
                return;
        }
        if (from->tags.protocol < join_protocol(c)) {
                /* it could not decode what the log holds (or is about to) */
                uint64_t now = now_usec();
                if (from->protocol_logged == 0 || now - from->protocol_logged >= 10 * USEC_PER_SEC) {
                        from->protocol_logged = now;
                        log_error("Node %s speaks protocol version %u only, the cluster uses %u: not adding it "
                                  "(downgrades below the cluster protocol version are not supported).",
                                  from->name, from->tags.protocol, join_protocol(c));
                }
                return;
        }
        if (!servers_get(c, &s))
                return;
        if (!in_servers(&s, id)) {
                log_info("Adding server %016" PRIx64 " (%s) to the cluster.", id, address);
                start_change(c, 0, id, address, false);
        }
        servers_done(&s);
}

static bool server_is_witness(Cluster *c, uint64_t id) {
        Peer *p;

        if (id == c->node_id)
                return c->config->witness;
        p = peer_by_id(c, id);
        return p && (p->tags.flags & TAG_WITNESS);
}

/* A witness is always made a voter (issue 11 §6): when MaxVoters is reached and a live witness
 * is still a stand-by, one non-witness voter other than us (a dead one if any) steps down to
 * stand-by first, and the witness takes its place on the next round. Returns true if it started
 * a change. */
static bool maintain_witnesses(Cluster *c, const Servers *s, size_t voters) {
        for (size_t i = 0; i < s->n; i++) {
                const EngineServer *w = &s->items[i];
                Peer *p = w->id == c->node_id ? NULL : peer_by_id(c, w->id);

                if (w->voter || !p || p->state != MEMBER_ALIVE || !(p->tags.flags & TAG_WITNESS))
                        continue;
                if (voters < c->config->max_voters) {
                        log_info("Making witness %016" PRIx64 " (%s) a voter.", w->id, p->name);
                        g_hash_table_remove(c->standby, &w->id);
                        start_change(c, 1, w->id, NULL, true);
                        return true;
                }
                const EngineServer *step_down = NULL;
                Peer *sd_peer = NULL;

                for (size_t j = 0; j < s->n; j++) {
                        const EngineServer *e = &s->items[j];
                        Peer *q = e->id == c->node_id ? NULL : peer_by_id(c, e->id);

                        if (!e->voter || !q || server_is_witness(c, e->id))
                                continue;
                        if (!step_down || (sd_peer->state == MEMBER_ALIVE && q->state != MEMBER_ALIVE)) {
                                step_down = e;
                                sd_peer = q;
                        }
                }
                if (step_down) {
                        log_info("Making server %016" PRIx64 " (%s) a stand-by to make room for witness %s.",
                                 step_down->id, sd_peer->name, p->name);
                        g_hash_table_add(c->standby, g_memdup2(&step_down->id, sizeof step_down->id));
                        start_change(c, 1, step_down->id, NULL, false);
                        return true;
                }
        }
        return false;
}

/* Raft leader: new servers become voters while there are fewer than MaxVoters, stand-bys
 * (replicating, not voting) otherwise; witnesses first; dead servers go after RemoveDeadAfterSec.
 * One change at a time, as libraft requires. */
static void maintain_configuration(Cluster *c, const Servers *s, uint64_t now) {
        size_t voters = count_voters(s);

        if (c->change_in_flight)
                return;
        for (size_t i = 0; i < s->n; i++) {
                const EngineServer *e = &s->items[i];
                Peer *p = e->id == c->node_id ? NULL : peer_by_id(c, e->id);

                if (p && p->dead_since != 0 && now - p->dead_since > c->config->dead_member_timeout_usec) {
                        log_notice("Removing server %016" PRIx64 " (%s), dead for over %" PRIu64 " s.", e->id, p->name,
                                   c->config->dead_member_timeout_usec / USEC_PER_SEC);
                        g_hash_table_remove(c->standby, &e->id);
                        start_change(c, 2, e->id, NULL, false);
                        return;
                }
        }
        if (maintain_witnesses(c, s, voters))
                return;
        for (size_t i = 0; i < s->n; i++) {
                const EngineServer *e = &s->items[i];
                Peer *p = e->id == c->node_id ? NULL : peer_by_id(c, e->id);

                if (e->voter || e->id == c->node_id || !p || p->state != MEMBER_ALIVE)
                        continue;
                if (voters < c->config->max_voters) {
                        log_info("Making server %016" PRIx64 " (%s) a voter.", e->id, p->name);
                        g_hash_table_remove(c->standby, &e->id);
                        start_change(c, 1, e->id, NULL, true);
                        return;
                }
                if (!g_hash_table_contains(c->standby, &e->id)) {
                        log_info("Making server %016" PRIx64 " (%s) a stand-by: %zu voters already.", e->id, p->name, voters);
                        g_hash_table_add(c->standby, g_memdup2(&e->id, sizeof e->id));
                        start_change(c, 1, e->id, NULL, false);
                        return;
                }
        }
}

int cluster_fault_tolerance(Cluster *c, unsigned *ret_voters, unsigned *ret_servers) {
        Servers s;
        size_t voters;

        if (!c || !servers_get(c, &s))
                return -ENOTCONN;
        voters = count_voters(&s);
        if (ret_voters)
                *ret_voters = (unsigned) voters;
        if (ret_servers)
                *ret_servers = (unsigned) s.n;
        servers_done(&s);
        return voters > 0 ? (int) ((voters - 1) / 2) : 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

#define REMOVED_MARKER "removed-from-cluster"

/* We were removed from the Raft configuration: our server id may never be reused. The engine
 * still has the log open, so leave a marker; the next start forgets the log, the id and the
 * cluster before anything opens them, and joins fresh with a new id. */
static void mark_removed(Cluster *c) {
        g_autofree char *p = g_build_filename(c->state_dir, REMOVED_MARKER, NULL);
        if (!g_file_set_contents(p, "", 0, NULL))
                log_warning("Failed to write %s.", p);
}

static void forget_membership_if_removed(const char *state_dir, const char *raft_dir) {
        g_autofree char *marker = g_build_filename(state_dir, REMOVED_MARKER, NULL);
        const char *files[] = { "node-id", "cluster-id" };

        if (!g_file_test(marker, G_FILE_TEST_EXISTS))
                return;
        log_notice("This node was removed from its cluster: starting over with a new identity.");
        if (nftw(raft_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Failed to remove %s: %m", raft_dir);
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                g_autofree char *p = g_build_filename(state_dir, files[i], NULL);
                (void) unlink(p);
        }
        (void) unlink(marker);
}

/* --force-new-cluster: gossip for FORCE_LISTEN_USEC first; any live member of our old cluster
 * (it could hold a quorum with others) makes us refuse and exit. */
static void force_new_tick(Cluster *c, uint64_t now) {
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, c->peers);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Peer *p = v;

                if (p->state != MEMBER_ALIVE || c->cluster_id == 0 || p->tags.cluster_id != c->cluster_id)
                        continue;
                log_error("Refusing to force a new cluster: member %s of cluster '%s' (id %016" PRIx64 ") is alive. "
                          "Start this node normally, or stop that node for good (and wipe its state) first.",
                          p->name, c->config->cluster_name, c->cluster_id);
                c->force_new = false;
                (void) sd_event_exit(c->event, EXIT_FAILURE);
                return;
        }
        if (now < c->force_deadline)
                return;
        if (start_engine(c, NULL, 0) < 0) {
                log_error("Failed to force a new cluster (no cluster address on the configured interfaces?).");
                (void) sd_event_exit(c->event, EXIT_FAILURE);
                return;
        }
}

/* The next lease round: one probe interval after this one (or after now, if we are late) — or,
 * if sooner, when gossip's next probe round starts. Both are periodic with the same interval, so
 * after the first round they fire at the same instant and share one wake-up (issue 12: idle
 * wake-ups). Never later than the interval. */
static uint64_t next_tick_usec(Cluster *c, uint64_t usec, uint64_t now) {
        uint64_t next = (usec + c->config->probe_interval_usec > now ? usec : now) + c->config->probe_interval_usec;
        uint64_t probe = c->gossip ? membership_next_probe_usec(gossip_get_membership(c->gossip)) : UINT64_MAX;

        return probe > now && probe < next ? probe : next;
}

static int on_tick(sd_event_source *src, uint64_t usec, void *userdata) {
        Cluster *c = userdata;
        uint64_t now = now_usec();
        Servers s;

        (void) sd_event_source_set_time(src, next_tick_usec(c, usec, now));

        if (c->force_new && !c->engine) {
                force_new_tick(c, now);
                if (!c->engine)
                        goto out;
        }
        if (!c->engine || !raft_dir_has_state(c->raft_dir)) {
                bootstrap_or_join(c, now);
                if (!c->engine)
                        goto out;
        }
        if (!servers_get(c, &s))
                goto out;

        maybe_send_join(c, &s, now);
        if (c->was_member && !in_servers(&s, c->node_id)) {
                servers_done(&s);
                log_error("This node was removed from the cluster: wiping its Raft state; it rejoins fresh when restarted.");
                c->engine = NULL; /* the manager frees it */
                mark_removed(c);
                (void) sd_event_exit(c->event, EXIT_FAILURE);
                return 0;
        }

        lease_round(c, &s, now);
        if (engine_is_leader(c->engine)) {
                drive_drops(c, &s, now);
                maintain_configuration(c, &s, now);
                maybe_raise_protocol(c, &s, now);
        }
        update_tags(c);
        servers_done(&s);
out:
        check_quorum(c, now);
        return 0;
}

/* After every event: note the stored index with its time (rule 3 needs when, not just what). */
static int on_post(sd_event_source *s, void *userdata) {
        Cluster *c = userdata;
        uint64_t stored;

        if (!c->engine)
                return 0;
        stored = engine_last_stored(c->engine);
        if (stored != c->last_stored || !c->stored_noted) {
                c->last_stored = stored;
                c->stored_noted = true;
                lease_granter_note_stored(c->granter, stored, now_usec());
        }
        return 0;
}

static void on_channel(Channel *ch, const ChannelPacket *p, const struct sockaddr_storage *from, void *userdata) {
        Cluster *c = userdata;
        uint64_t now = now_usec();

        switch (p->type) {
        case MSG_LEASE_REQ:
                on_lease_req(c, p, now);
                break;
        case MSG_LEASE_ACK:
                on_lease_ack(c, p, now);
                break;
        case MSG_EXPIRED_Q:
                on_expired_q(c, p, now);
                break;
        case MSG_EXPIRED_A:
                on_expired_a(c, p, now);
                break;
        case MSG_APPLIED:
                on_applied(c, p, now);
                break;
        case MSG_FORWARD:
                if (c->engine && engine_is_leader(c->engine) && c->hooks.remote_batch) {
                        metrics_get()->forwarded_received++;
                        if (!c->hooks.remote_batch(c->userdata, p->sender, p->payload, p->payload_size) && c->channel)
                                /* tell it: a process that took a name in use refuses to run on */
                                (void) channel_send(c->channel, from, MSG_NAME_IN_USE, NULL, 0);
                }
                break;
        case MSG_JOIN:
                on_join(c, p);
                break;
        case MSG_NOT_MEMBER: {
                Peer *from = peer_by_id(c, p->sender);
                /* believe only the node that says it leads Raft, and only once we have a log */
                if (!c->engine || !raft_dir_has_state(c->raft_dir) || !from || !(from->tags.flags & TAG_RAFT_LEADER) ||
                    from->tags.cluster_id != c->cluster_id)
                        break;
                log_error("The Raft leader (%s) says this node is no longer a member of cluster '%s'; "
                          "it rejoins fresh when restarted.", from->name, c->config->cluster_name);
                c->engine = NULL; /* the manager frees it */
                mark_removed(c);
                (void) sd_event_exit(c->event, EXIT_FAILURE);
                break;
        }
        case MSG_NAME_IN_USE: {
                Peer *leader = peer_by_id(c, p->sender);
                /* believe only the node that says it leads Raft (as for MSG_NOT_MEMBER) */
                if (!c->engine || !leader || !(leader->tags.flags & TAG_RAFT_LEADER) ||
                    leader->tags.cluster_id != c->cluster_id || !c->hooks.name_in_use)
                        break;
                c->hooks.name_in_use(c->userdata, leader->name);
                break;
        }
        default:
                break;
        }
}

/* ---- lifecycle ---- */

static int load_keyring(const Config *config, Keyring **ret) {
        g_autofree char *error = NULL;
        int r;

        r = keyring_load(config->key_file, config->key_dir, config->primary_key, ret, &error);
        if (r < 0) {
                log_error("%s", error ?: "Failed to load the cluster keys.");
                return r;
        }
        /* Encrypt= travels with the keys to every codec (fixed for a run: config_apply_reload refuses it) */
        keyring_set_encrypt(*ret, config->encrypt);
        return 0;
}

int cluster_reload_keys(Cluster *c) {
        g_autoptr(Keyring) k = NULL;
        char tag[9];
        int r;

        g_assert(c);
        r = load_keyring(c->config, &k);
        if (r < 0) {
                log_warning("Cluster '%s': keeping the running keys.", c->config->cluster_name);
                return r;
        }
        if (keyring_equal(k, c->keyring))
                return 0;
        /* In place: gossip, channel and transport hold references to this ring. */
        keyring_assign(c->keyring, k);
        keyring_key_tag(c->keyring, 0, tag);
        log_info("Cluster '%s': keys reloaded: %zu installed, sending under key %s%s.", c->config->cluster_name,
                 keyring_size(c->keyring), tag, keyring_encrypts(c->keyring) ? ", encrypted" : "");
        return 1;
}

/* Grants of our previous run were made under its LeaseSec: if that was longer, our start has to
 * count as a grant for that long (lease_granter_set_prior_lease). Written before any grant. */
static int note_lease_setting(Cluster *c) {
        g_autofree char *path = g_build_filename(c->state_dir, "lease-usec", NULL);
        uint64_t prior = 0, margin;
        int r;

        if (read_u64_file(path, &prior) >= 0 && prior > c->lease_params.lease_usec) {
                log_notice("LeaseSec= went down from %.3f s: grants of the previous run count for that long.",
                           (double) prior / USEC_PER_SEC);
                lease_granter_set_prior_lease(c->granter, prior);
        }
        if (prior != c->lease_params.lease_usec) {
                r = write_u64_file(path, c->lease_params.lease_usec);
                if (r < 0)
                        return log_error_errno(r, "Failed to write %s: %m", path);
        }

        /* The same for δ (ActionMarginSec=); without the file the previous run (if any) was a
         * release with the built-in δ. */
        g_free(path);
        path = g_build_filename(c->state_dir, "act-margin-usec", NULL);
        margin = lease_act_margin_usec(&c->lease_params);
        if (read_u64_file(path, &prior) < 0)
                prior = LEASE_ACT_MARGIN_USEC;
        if (prior > margin) {
                log_notice("ActionMarginSec= went down from %.3f s: grants of the previous run count with it.",
                           (double) prior / USEC_PER_SEC);
                lease_granter_set_prior_margin(c->granter, prior);
        }
        if (access(path, F_OK) == 0 && prior == margin)
                return 0;
        r = write_u64_file(path, margin);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}

int cluster_new(sd_event *event, const Config *config, const char *state_dir, const char *node_name,
                const EngineCallbacks *engine_cb, void *engine_userdata, const ClusterHooks *hooks,
                void *userdata, Cluster **ret) {
        _cleanup_(cluster_freep) Cluster *c = NULL;
        g_autofree char *id_path = NULL, *cid_path = NULL;
        int r;

        c = g_new0(Cluster, 1);
        c->event = sd_event_ref(event);
        c->config = config;
        c->state_dir = g_strdup(state_dir);
        c->raft_dir = g_build_filename(state_dir, "raft", NULL);
        c->node_name = g_strdup(node_name);
        c->lease_id = name_hash(node_name);
        c->engine_cb = *engine_cb;
        c->engine_userdata = engine_userdata;
        c->hooks = *hooks;
        c->userdata = userdata;
        c->started = now_usec();
        c->links_up = true;
        c->peers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, peer_free);
        c->handovers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, handover_free);
        c->drops = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, drop_vote_free);
        c->standby = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
        c->owners = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        c->owners_dirty = true;
        c->lease_params = (LeaseParams) {
                .lease_usec = config->lease_usec,
                .node_timeout_usec = config->node_timeout_usec,
                .act_margin_usec = config->act_margin_usec,
                /* hashed into the fingerprint only when not the defaults (rolling upgrades) */
                .raft_election_timeout_usec = config->raft_election_timeout_usec == CONFIG_RAFT_ELECTION_TIMEOUT_USEC
                        ? 0 : config->raft_election_timeout_usec,
                .raft_heartbeat_usec = config->raft_heartbeat_usec == CONFIG_RAFT_HEARTBEAT_USEC
                        ? 0 : config->raft_heartbeat_usec,
        };
        if (!lease_params_valid(&c->lease_params))
                return log_error_errno(EINVAL, "NodeTimeoutSec= must exceed LeaseSec= × 1.01 + ActionMarginSec=.");
        c->fingerprint = lease_params_fingerprint(&c->lease_params);
        c->requester = lease_requester_new(0, &c->lease_params);
        c->granter = lease_granter_new(&c->lease_params, c->started);

        r = load_keyring(config, &c->keyring);
        if (r < 0)
                return r;

        if (g_mkdir_with_parents(state_dir, 0700) < 0)
                return log_error_errno(errno, "Failed to create %s: %m", state_dir);
        forget_membership_if_removed(state_dir, c->raft_dir);
        r = note_lease_setting(c);
        if (r < 0)
                return r;
        id_path = g_build_filename(state_dir, "node-id", NULL);
        cid_path = g_build_filename(state_dir, "cluster-id", NULL);
        if (!raft_dir_has_state(c->raft_dir) || read_u64_file(id_path, &c->node_id) < 0) {
                /* a new identity whenever we start without Raft state: server ids are never reused */
                c->node_id = random_u64();
                r = write_u64_file(id_path, c->node_id);
                if (r < 0)
                        return r;
                (void) unlink(cid_path);
        } else
                (void) read_u64_file(cid_path, &c->cluster_id);
        lease_requester_free(c->requester);
        c->requester = lease_requester_new(c->node_id, &c->lease_params);

        *ret = g_steal_pointer(&c);
        return 0;
}

int cluster_set_force_new(Cluster *c, bool restore) {
        g_autofree char *id_path = g_build_filename(c->state_dir, "node-id", NULL);
        int r;

        c->force_new = true;
        c->force_restore = restore;
        if (!restore)
                return 0;
        /* a restored copy must never be a twin of the live node it was taken from (rule 9) */
        c->node_id = random_u64();
        r = write_u64_file(id_path, c->node_id);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", id_path);
        lease_requester_free(c->requester);
        c->requester = lease_requester_new(c->node_id, &c->lease_params);
        log_warning("Restoring a backup: this node takes the new identity %016" PRIx64 ".", c->node_id);
        return 0;
}

void cluster_set_state(Cluster *c, const ElectionState *state, void (*submit_drop)(void *userdata, const char *node)) {
        c->state = state;
        c->submit_drop = submit_drop;
}

/* Peers drop packets of an epoch older than the newest they saw from us: it must grow across
 * restarts, also when the clock steps back, so persist it. */
static uint64_t next_channel_epoch(Cluster *c) {
        g_autofree char *path = g_build_filename(c->state_dir, "channel-epoch", NULL);
        struct timespec ts;
        uint64_t prev = 0, epoch;

        clock_gettime(CLOCK_REALTIME, &ts);
        epoch = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
        (void) read_u64_file(path, &prev);
        if (epoch <= prev)
                epoch = prev + 1;
        (void) write_u64_file(path, epoch);
        return epoch;
}

int cluster_start(Cluster *c) {
        uint8_t tags[TAGS_SIZE];
        Tags t = { .version = TAGS_VERSION, .cluster_id = c->cluster_id, .raft_port = c->config->port,
                   .fingerprint = c->fingerprint, .protocol = PROTOCOL_VERSION_MAX };
        GossipCallbacks gcb = { .member_event = on_member_event, .links_changed = on_links_changed,
                                .identity_conflict = on_identity_conflict, .epoch_bumped = on_epoch_bumped };
        gsize key_size;
        const void *key = keyring_key(c->keyring, 0, &key_size);
        ChannelCodec *codec;
        int r;

        if (raft_dir_has_state(c->raft_dir))
                t.flags |= TAG_HAS_STATE;
        if (c->config->witness)
                t.flags |= TAG_WITNESS;
        tags_encode(&t, tags);
        r = gossip_new(c->event, c->config, c->node_id, key, key_size, tags, sizeof tags, &gcb, c, &c->gossip);
        if (r < 0)
                return log_error_errno(r, "Failed to set up gossip: %m");
        r = gossip_set_keyring(c->gossip, c->keyring);
        if (r < 0)
                return log_error_errno(r, "Failed to install the cluster keys: %m");
        r = gossip_start(c->gossip);
        if (r < 0)
                return log_error_errno(r, "Failed to start gossip: %m");

        c->channel_epoch = next_channel_epoch(c);
        codec = channel_codec_new(c->config->cluster_name, key, key_size, c->node_id, c->channel_epoch);
        if (!codec)
                return log_oom();
        (void) channel_codec_set_keyring(codec, c->keyring);
        r = channel_new_families(c->event, codec, (uint16_t) (gossip_get_port(c->gossip) + 1),
                                 config_family_allows(c->config, AF_INET), config_family_allows(c->config, AF_INET6),
                                 on_channel, c, &c->channel);
        if (r < 0) {
                channel_codec_free(codec);
                return log_error_errno(r, "Failed to open the cluster channel: %m");
        }

        r = sd_event_add_time(c->event, &c->tick, CLOCK_BOOTTIME, now_usec(), 1, on_tick, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_priority(c->tick, SD_EVENT_PRIORITY_IMPORTANT);
        (void) sd_event_source_set_enabled(c->tick, SD_EVENT_ON);
        r = sd_event_add_time(c->event, &c->deadline, CLOCK_BOOTTIME, UINT64_MAX, 1, on_deadline, c);
        if (r < 0)
                return r;
        /* lease expiry comes before anything else after a stall */
        (void) sd_event_source_set_priority(c->deadline, SD_EVENT_PRIORITY_IMPORTANT - 1);
        (void) sd_event_source_set_enabled(c->deadline, SD_EVENT_OFF);
        r = sd_event_add_post(c->event, &c->post, on_post, c);
        if (r < 0)
                return r;

        /* with state we start at once and rejoin our cluster; without, we wait to bootstrap or join */
        if (c->force_new) {
                if (!raft_dir_has_state(c->raft_dir))
                        return log_error_errno(ENOENT, "--force-new-cluster/--restore: %s holds no Raft state to keep.",
                                               c->raft_dir);
                c->force_deadline = now_usec() + CLUSTER_FORCE_LISTEN_USEC;
                log_warning("Forcing a new cluster from the state in %s: listening %g s for live members of the old one first.",
                            c->raft_dir, (double) CLUSTER_FORCE_LISTEN_USEC / USEC_PER_SEC);
        } else if (raft_dir_has_state(c->raft_dir)) {
                r = start_engine(c, NULL, 0);
                if (r == -EADDRNOTAVAIL)
                        log_warning("No cluster address yet; the engine starts once an interface has one.");
                else if (r < 0)
                        return r;
        }
        log_info("Cluster '%s': node %s (%016" PRIx64 "), gossip on UDP %u, channel on UDP %u.", c->config->cluster_name,
                 c->node_name, c->node_id, gossip_get_port(c->gossip), gossip_get_port(c->gossip) + 1);
        return 0;
}

Cluster *cluster_free(Cluster *c) {
        if (!c)
                return NULL;
        sd_event_source_disable_unref(c->tick);
        sd_event_source_disable_unref(c->deadline);
        sd_event_source_disable_unref(c->post);
        channel_free(c->channel);
        if (c->gossip) {
                /* a twin's LEFT would be taken for the original's */
                if (!c->identity_conflict)
                        (void) gossip_leave(c->gossip);
                gossip_free(c->gossip);
        }
        /* the engine belongs to the manager once started */
        lease_requester_free(c->requester);
        lease_granter_free(c->granter);
        g_hash_table_unref(c->peers);
        g_hash_table_unref(c->handovers);
        g_hash_table_unref(c->drops);
        g_hash_table_unref(c->standby);
        g_hash_table_unref(c->owners);
        keyring_unref(c->keyring);
        g_free(c->bootstrap_view);
        g_free(c->state_dir);
        g_free(c->raft_dir);
        g_free(c->node_name);
        sd_event_unref(c->event);
        g_free(c);
        return NULL;
}

Engine *cluster_get_engine(Cluster *c) {
        return c ? c->engine : NULL;
}

uint64_t cluster_node_id(Cluster *c) {
        return c->node_id;
}

const char *cluster_name(Cluster *c) {
        return c->config->cluster_name;
}

bool cluster_conflict(Cluster *c) {
        return c->conflict;
}

bool cluster_peer_has_name(Cluster *c, uint64_t id, const char *name) {
        GHashTableIter it;
        gpointer v;

        /* a renamed node may still have its old entry: look for this very pair */
        g_hash_table_iter_init(&it, c->peers);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                const Peer *p = v;
                if (p->node_id == id && streq_ptr(p->name, name) &&
                    (p->state == MEMBER_ALIVE || p->state == MEMBER_SUSPECT))
                        return true;
        }
        return false;
}

typedef struct MemberList {
        Cluster *c;
        GArray *out;
        Servers servers;
        uint64_t leader;
} MemberList;

static const char *role_of(const MemberList *l, uint64_t id) {
        if (id == l->leader)
                return "leader";
        for (size_t i = 0; i < l->servers.n; i++)
                if (l->servers.items[i].id == id)
                        return l->servers.items[i].voter ? "voter" : "standby";
        return "none";
}

static void member_visit(const Member *m, void *userdata) {
        MemberList *l = userdata;
        ClusterMember cm = {};
        Tags t = {};
        char ip[INET6_ADDRSTRLEN] = "";

        cm.name = g_strdup(m->name);
        if (m->n_addresses > 0)
                inet_ntop(m->addresses[0].family, m->addresses[0].addr, ip, sizeof ip);
        cm.address = g_strdup(ip);
        cm.state = member_state_to_string(m->state);
        if (!m->is_self && tags_decode(m->tags, m->tags_size, &t) && t.cluster_id != 0 && l->c->cluster_id != 0 &&
            t.cluster_id != l->c->cluster_id)
                cm.state = "foreign";
        cm.role = role_of(l, m->node_id);
        g_array_append_val(l->out, cm);
}

int cluster_get_members(Cluster *c, ClusterMember **ret, size_t *ret_n) {
        MemberList l = { .c = c, .out = g_array_new(false, true, sizeof(ClusterMember)) };
        const char *address;

        if (c->engine)
                engine_leader(c->engine, &l.leader, &address);
        (void) servers_get(c, &l.servers);
        if (c->gossip)
                membership_foreach(gossip_get_membership(c->gossip), member_visit, &l);
        servers_done(&l.servers);
        *ret_n = l.out->len;
        *ret = (ClusterMember *) g_array_free(l.out, false);
        return 0;
}

void cluster_members_free(ClusterMember *m, size_t n) {
        for (size_t i = 0; i < n; i++) {
                g_free(m[i].name);
                g_free(m[i].address);
        }
        g_free(m);
}

uint64_t cluster_lease_expiry(Cluster *c) {
        /* the same conditions as cluster_quorate() */
        if (!c || !c->engine || !c->links_up)
                return 0;
        return lease_requester_expiry(c->requester);
}

/* ---- planned stop ---- */

uint64_t cluster_confirmed_index(Cluster *c) {
        return c ? c->confirmed_index : 0;
}

void cluster_repeat_confirmation(Cluster *c) {
        /* one copy may be lost; the node is about to go, so no round will repeat it */
        if (c && c->confirmed_index > 0)
                broadcast_applied(c);
}

bool cluster_peers_applied(Cluster *c, uint64_t index) {
        Servers s;
        bool all = true;

        if (!c || !servers_get(c, &s))
                return true;
        for (size_t i = 0; i < s.n && all; i++) {
                Peer *p;

                if (s.items[i].id == c->node_id)
                        continue;
                p = peer_by_id(c, s.items[i].id);
                /* a member gone for good confirms nothing; the hand-over attests it instead */
                if (!p || (p->state != MEMBER_ALIVE && p->state != MEMBER_SUSPECT))
                        continue;
                all = p->applied >= index;
        }
        servers_done(&s);
        return all;
}

/* ---- metrics (GetMetrics) ---- */

uint64_t cluster_wire_drop_count(Cluster *c, WireDrop d) {
        const Wire *w = c && c->gossip ? gossip_get_wire(c->gossip) : NULL;

        return w ? wire_drop_count(w, d) : 0;
}

uint64_t cluster_channel_drop_count(Cluster *c, ChannelDrop d) {
        const ChannelCodec *codec = c && c->channel ? channel_get_codec(c->channel) : NULL;

        return codec ? channel_drop_count(codec, d) : 0;
}
