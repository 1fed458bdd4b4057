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

int start_engine(Cluster *c, const EngineServer *bootstrap, size_t n_bootstrap) {
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
void bootstrap_or_join(Cluster *c, uint64_t now) {
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

void maybe_send_join(Cluster *c, const Servers *s, uint64_t now) {
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
        g_autoptr(GByteArray) b = cluster_msg_join_encode(&(ClusterJoin) { .raft_id = c->node_id, .address = address });
        c->join_sent_at = now;
        /* to whoever says it leads; everyone with state if nobody does */
        bool sent = false;
        g_hash_table_iter_init(&it, c->peers);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Peer *p = v;
                if (p->state == MEMBER_ALIVE && (p->tags.flags & TAG_RAFT_LEADER)) {
                        send_to_peer(c, p, CLUSTER_MSG_JOIN, b->data, b->len);
                        sent = true;
                }
        }
        if (!sent) {
                g_hash_table_iter_init(&it, c->peers);
                while (g_hash_table_iter_next(&it, NULL, &v))
                        if (((Peer *) v)->state == MEMBER_ALIVE && (((Peer *) v)->tags.flags & TAG_HAS_STATE))
                                send_to_peer(c, v, CLUSTER_MSG_JOIN, b->data, b->len);
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
                v = MIN(v, cluster_member_protocol(p && p->state == MEMBER_ALIVE, p ? p->tags.protocol : 0));
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
void maybe_raise_protocol(Cluster *c, const Servers *s, uint64_t now) {
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

void on_join(Cluster *c, const ChannelPacket *p) {
        Servers s;
        ClusterJoin join;
        if (!c->engine || !engine_is_leader(c->engine) || cluster_msg_join_decode(p->payload, p->payload_size, &join) < 0)
                return;
        uint64_t id = join.raft_id;
        g_autofree char *address = join.address;
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
void maintain_configuration(Cluster *c, const Servers *s, uint64_t now) {
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
        return cluster_fault_tolerance_of(voters);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

#define REMOVED_MARKER "removed-from-cluster"

/* We were removed from the Raft configuration: our server id may never be reused. The engine
 * still has the log open, so leave a marker; the next start forgets the log, the id and the
 * cluster before anything opens them, and joins fresh with a new id. */
void mark_removed(Cluster *c) {
        g_autofree char *p = g_build_filename(c->state_dir, REMOVED_MARKER, NULL);
        if (!g_file_set_contents(p, "", 0, NULL))
                log_warning("Failed to write %s.", p);
}

void forget_membership_if_removed(const char *state_dir, const char *raft_dir) {
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
