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
#include "electiond-cluster-private.h"
#include "electiond-cluster-msg.h"
#include "electiond-gossip.h"
#include "electiond-keyring.h"
#include "electiond-lease.h"
#include "electiond-metrics.h"
#include "electiond-transport.h"

/* ---- small helpers ---- */

uint64_t name_hash(const char *s) {
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

int write_u64_file(const char *path, uint64_t v) {
        g_autofree char *s = g_strdup_printf("%016" PRIx64 "\n", v);
        g_autoptr(GError) error = NULL;

        if (!g_file_set_contents_full(path, s, -1, G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE, 0600, &error))
                return log_error_errno(EIO, "Failed to write %s: %s", path, error->message);
        return 0;
}

uint64_t random_u64(void) {
        uint64_t v = 0;
        while (v == 0)
                if (getrandom(&v, sizeof v, 0) != sizeof v)
                        v = g_random_int() | ((uint64_t) g_random_int() << 32);
        return v;
}

bool raft_dir_has_state(const char *dir) {
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

bool tags_decode(const uint8_t *p, size_t n, Tags *ret) {
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

Peer *peer_by_id(Cluster *c, uint64_t id) {
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

uint64_t now_usec(void) {
        return now_boottime_usec();
}

void notify_status(Cluster *c) {
        if (c->hooks.status_changed)
                c->hooks.status_changed(c->userdata);
}

/* ---- Raft servers ---- */


void servers_done(Servers *s) {
        g_free(s->items); /* the addresses are the engine's */
        *s = (Servers) {};
}

bool servers_get(Cluster *c, Servers *ret) {
        *ret = (Servers) {};
        if (!c->engine)
                return false;
        return engine_get_servers(c->engine, &ret->items, &ret->n) >= 0;
}

bool is_voter(const Servers *s, uint64_t id) {
        for (size_t i = 0; i < s->n; i++)
                if (s->items[i].id == id)
                        return s->items[i].voter;
        return false;
}

bool in_servers(const Servers *s, uint64_t id) {
        for (size_t i = 0; i < s->n; i++)
                if (s->items[i].id == id)
                        return true;
        return false;
}

size_t count_voters(const Servers *s) {
        size_t n = 0;
        for (size_t i = 0; i < s->n; i++)
                n += s->items[i].voter;
        return n;
}

/* ---- addresses ---- */

/* Which of a member's addresses we use: one of a family we have too (a mixed cluster has
 * IPv4-only, IPv6-only and dual-stack nodes), prefer_family first if given, else IPv4 (as
 * before IPv6), then global IPv6, then link-local IPv6. NULL if none is usable. */
const MemberAddress *pick_address(Cluster *c, const MemberAddress *addrs, size_t n, int prefer_family) {
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

void send_to_peer(Cluster *c, const Peer *p, uint8_t type, const void *data, size_t size) {
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

void send_to_id(Cluster *c, uint64_t id, uint8_t type, const void *data, size_t size) {
        send_to_peer(c, peer_by_id(c, id), type, data, size);
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
        r = channel_send(c->channel, &to, CLUSTER_MSG_FORWARD, batch, size);
        if (r >= 0)
                metrics_get()->forwarded_sent++;
        return r;
}

/* ---- membership and Raft configuration ---- */

void update_tags(Cluster *c) {
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
                /* (a packet with our id may come through a third node, which passes twins' packets on) */
                log_error("Duplicate identity: a process that started earlier uses this node's %s (%s); its "
                          "packet came from %s. Refusing to run: %s",
                          same_id ? "node id" : "name", same_id ? "a copy of its state directory?" : c->node_name, ip,
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
        log_warning("Duplicate identity: a newer process uses this node's %s (its packet came from %s); it should "
                    "refuse to run.", same_id ? "node id" : "name", ip);
}

static uint64_t next_channel_epoch(Cluster *c);

static void on_epoch_bumped(Gossip *g, uint64_t epoch, void *userdata) {
        Cluster *c = userdata;

        c->channel_epoch = MAX(next_channel_epoch(c), epoch);
        if (c->channel)
                channel_codec_set_epoch(channel_get_codec(c->channel), c->channel_epoch);
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
        case CLUSTER_MSG_LEASE_REQ:
                on_lease_req(c, p, now);
                break;
        case CLUSTER_MSG_LEASE_ACK:
                on_lease_ack(c, p, now);
                break;
        case CLUSTER_MSG_EXPIRED_Q:
                on_expired_q(c, p, now);
                break;
        case CLUSTER_MSG_EXPIRED_A:
                on_expired_a(c, p, now);
                break;
        case CLUSTER_MSG_APPLIED:
                on_applied(c, p, now);
                break;
        case CLUSTER_MSG_FORWARD:
                if (c->engine && engine_is_leader(c->engine) && c->hooks.remote_batch) {
                        metrics_get()->forwarded_received++;
                        if (!c->hooks.remote_batch(c->userdata, p->sender, p->payload, p->payload_size) && c->channel)
                                /* tell it: a process that took a name in use refuses to run on */
                                (void) channel_send(c->channel, from, CLUSTER_MSG_NAME_IN_USE, NULL, 0);
                }
                break;
        case CLUSTER_MSG_JOIN:
                on_join(c, p);
                break;
        case CLUSTER_MSG_NOT_MEMBER: {
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
        case CLUSTER_MSG_NAME_IN_USE: {
                Peer *leader = peer_by_id(c, p->sender);
                /* believe only the node that says it leads Raft (as for CLUSTER_MSG_NOT_MEMBER) */
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

const char *cluster_name(Cluster *c) {
        return c->config->cluster_name;
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
