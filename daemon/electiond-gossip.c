/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "electiond-address.h"
#include "electiond-gossip.h"
#include "electiond-netlink.h"
#include "electiond-util.h"

#define PEERS_MAX 64
#define SCOPES_MAX 256
#define JOINED_MAX 32

/* Where a link-local IPv6 address was heard: the scope (interface index) to reach it with. */
typedef struct ScopeEntry {
        uint8_t addr[16];
        uint32_t ifindex;
        bool direct;            /* it was a packet's source, not an address some member told us */
        uint64_t used;          /* for evicting the least recently heard */
} ScopeEntry;

struct Gossip {
        sd_event *event;
        Config config;                  /* the fields we use, copied */
        char *cluster_name;
        char **interfaces;
        uint64_t node_id;
        GossipCallbacks callbacks;
        void *userdata;

        Membership *membership;
        Wire *wire;
        Netlink *netlink;
        int fd4, fd6;                   /* -EBADF when that family is off or unavailable */
        uint16_t port;
        sd_event_source *io4, *io6;
        sd_event_source *timer;
        sd_event_source *discovery;

        MemberAddress peers[PEERS_MAX];
        uint32_t peer_scope[PEERS_MAX]; /* "%eth0" of a link-local Peers= entry, else 0 */
        size_t n_peers;
        bool want4, want6;              /* AddressFamily= */
        ScopeEntry scopes[SCOPES_MAX];
        size_t n_scopes;
        uint64_t scope_counter;
        uint8_t tags[MEMBER_TAGS_MAX];
        size_t tags_size;

        bool started, leaving;
        bool links_up;
        int joined4[JOINED_MAX];        /* multicast memberships we hold, per family */
        size_t n_joined4;
        int joined6[JOINED_MAX];
        size_t n_joined6;
        uint64_t foreign_drops;         /* arrived on an interface not configured */
        uint64_t encrypt_mismatch_logged; /* when we last logged a peer whose Encrypt= differs */
        uint64_t epoch;                 /* ours (realtime µs at start): who started later is newer */
        uint64_t started_usec;          /* boottime */
        uint64_t twin_seen_usec;        /* an older-or-newer twin's last packet (0: none) */
        uint64_t twin_epoch;            /* the largest epoch a twin used */
        GHashTable *senders;            /* node id → SenderWatch: two lives of one id at once */
        GHashTable *names;              /* name → NameWatch: two node ids under one name at once */
};

/* What a third node sees of one sender id, to catch two processes that share it (a copied state
 * directory) but cannot hear each other: only the newest epoch passes the replay window, so the
 * older process's packets arrive as replays, from another address, long after the switch. Each
 * is then sent on to the other process (the packets authenticate as they are), whose own twin
 * check decides: the newer exits, the older moves past it once it is silent (rule 9). */
typedef struct SenderWatch {
        uint64_t epoch;                 /* the newest epoch accepted */
        uint64_t since;                 /* when it was first accepted */
        MemberAddress addr;             /* where its latest packet came from */
        uint32_t scope;
        MemberAddress older_addr;       /* where an older epoch's packets come from */
        uint32_t older_scope;
        uint64_t older_seen;            /* 0: none since the switch */
        uint64_t relayed_older, relayed_newer, logged;
        size_t last_size;               /* the newest life's latest packet, for the older one */
        uint8_t last[WIRE_SEALED_MAX];
} SenderWatch;

/* What a third node sees of one node name, to catch two node ids that announce it at once (two
 * machines with one host name) but cannot hear each other: each one's own ALIVE is sent on to
 * the other, whose duplicate-name check decides (the newer exits). Only two ids both heard within
 * NAME_RELAY_LIVE_USEC count: a rebuilt node (new id, old one gone silent) is no duplicate. */
typedef struct NameWatch {
        uint64_t node_id;               /* the first id heard under this name (while it speaks) */
        uint64_t heard;                 /* its latest packet */
        MemberAddress addr;
        uint32_t scope;
        uint64_t relayed, logged;
        size_t last_size;               /* its latest packet, for the other id */
        uint8_t last[WIRE_SEALED_MAX];
} NameWatch;

#define NAME_RELAY_LIVE_USEC (2 * USEC_PER_SEC)

#define SENDERS_MAX 4096u
/* An older epoch's packet this long after the newer one appeared is no straggler of a restart */
#define TWIN_RELAY_GRACE_USEC (3 * USEC_PER_SEC)
#define TWIN_RELAY_INTERVAL_USEC (1 * USEC_PER_SEC)

/* Packets with our id and an older epoch this long after our start are not our previous life's
 * stragglers but a live twin. */
#define TWIN_GRACE_USEC (3 * USEC_PER_SEC)
/* A twin not heard for this long has gone (it exits at once when it is the newer one). */
#define TWIN_SILENT_USEC (1 * USEC_PER_SEC)

static void on_member_event(Membership *m, MembershipEvent event, const Member *member, void *userdata) {
        Gossip *g = userdata;

        log_debug("gossip: member %s %s", member->name, membership_event_to_string(event));
        /* its next life may start with a smaller epoch (clock set back): let it in */
        if (event == MEMBERSHIP_EVENT_DEAD || event == MEMBERSHIP_EVENT_LEFT) {
                wire_forget_sender(g->wire, member->node_id);
                g_hash_table_remove(g->senders, &member->node_id);
        }
        if (g->callbacks.member_event)
                g->callbacks.member_event(g, event, member, g->userdata);
}

static int parse_peer(const char *s, uint16_t default_port, MemberAddress *ret, uint32_t *ret_scope) {
        char scope[IF_NAMESIZE];
        int r;

        r = address_parse(s, default_port, ret, scope);
        if (r < 0)
                return r;
        /* an unknown interface: keep the entry, its scope is then learnt like any other */
        if (address_scope_resolve(scope, ret_scope) < 0) {
                log_warning("gossip: Peers= entry '%s': no interface '%s' (yet)", s, scope);
                *ret_scope = 0;
        }
        return 0;
}

int gossip_new(sd_event *event, const Config *config, uint64_t node_id, const void *key, size_t key_size,
               const void *tags, size_t tags_size, const GossipCallbacks *callbacks, void *userdata,
               Gossip **ret) {
        Gossip *g;

        if (!event || !config || !config->node_name || !key || key_size < WIRE_KEY_MIN ||
            tags_size > MEMBER_TAGS_MAX || (tags_size > 0 && !tags) || !ret)
                return -EINVAL;

        g = g_new0(Gossip, 1);
        g->event = sd_event_ref(event);
        g->senders = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        g->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g->fd4 = g->fd6 = -EBADF;
        g->want4 = config_family_allows(config, AF_INET);
        g->want6 = config_family_allows(config, AF_INET6);
        g->node_id = node_id;
        g->cluster_name = g_strdup(config->cluster_name ?: "default");
        g->interfaces = config->interfaces ? g_strdupv(config->interfaces) : NULL;
        g->config.node_name = g_strdup(config->node_name);
        g->config.port = config->port;
        g->config.probe_interval_usec = config->probe_interval_usec;
        g->config.node_timeout_usec = config->node_timeout_usec;
        g->config.lease_usec = config->lease_usec;
        if (callbacks)
                g->callbacks = *callbacks;
        g->userdata = userdata;
        if (tags_size > 0)
                memcpy(g->tags, tags, tags_size);
        g->tags_size = tags_size;

        for (char **p = config->peers; p && *p; p++) {
                if (g->n_peers >= PEERS_MAX) {
                        log_warning("gossip: more than %d Peers=, ignoring the rest", PEERS_MAX);
                        break;
                }
                if (parse_peer(*p, config->port, &g->peers[g->n_peers], &g->peer_scope[g->n_peers]) < 0) {
                        log_warning("gossip: ignoring Peers= entry '%s': not an address "
                                    "(192.0.2.1[:port], [2001:db8::1]:port, [fe80::1%%eth0]:port)", *p);
                        continue;
                }
                if (!config_family_allows(config, g->peers[g->n_peers].family)) {
                        log_warning("gossip: ignoring Peers= entry '%s': AddressFamily= excludes it", *p);
                        continue;
                }
                g->n_peers++;
        }

        /* A larger epoch at every start keeps our previous life's packets from being replayed. */
        g->epoch = (uint64_t) g_get_real_time();
        g->started_usec = now_boottime_usec();
        g->wire = wire_new(g->cluster_name, key, key_size, node_id, g->epoch);
        if (!g->wire) {
                gossip_free(g);
                return -EINVAL;
        }
        *ret = g;
        return 0;
}

static void multicast_leave_all(Gossip *g) {
        for (size_t i = 0; i < g->n_joined4; i++) {
                struct ip_mreqn mr = { .imr_ifindex = g->joined4[i] };
                inet_pton(AF_INET, GOSSIP_MULTICAST_GROUP, &mr.imr_multiaddr);
                (void) setsockopt(g->fd4, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mr, sizeof mr);
        }
        for (size_t i = 0; i < g->n_joined6; i++) {
                struct ipv6_mreq mr = { .ipv6mr_interface = (unsigned) g->joined6[i] };
                inet_pton(AF_INET6, GOSSIP_MULTICAST_GROUP6, &mr.ipv6mr_multiaddr);
                (void) setsockopt(g->fd6, IPPROTO_IPV6, IPV6_LEAVE_GROUP, &mr, sizeof mr);
        }
        g->n_joined4 = g->n_joined6 = 0;
}

int gossip_set_keyring(Gossip *g, Keyring *keyring) {
        if (!g)
                return -EINVAL;
        return wire_set_keyring(g->wire, keyring);
}

Gossip *gossip_free(Gossip *g) {
        if (!g)
                return NULL;
        sd_event_source_disable_unref(g->io4);
        sd_event_source_disable_unref(g->io6);
        sd_event_source_disable_unref(g->timer);
        sd_event_source_disable_unref(g->discovery);
        netlink_free(g->netlink);
        if (g->fd4 >= 0)
                close(g->fd4);
        if (g->fd6 >= 0)
                close(g->fd6);
        membership_free(g->membership);
        wire_free(g->wire);
        if (g->senders)
                g_hash_table_unref(g->senders);
        if (g->names)
                g_hash_table_unref(g->names);
        g_free(g->cluster_name);
        g_strfreev(g->interfaces);
        g_free(g->config.node_name);
        sd_event_unref(g->event);
        g_free(g);
        return NULL;
}

/* ---- link-local scopes ---- */

static ScopeEntry *scope_find(Gossip *g, const uint8_t addr[static 16]) {
        for (size_t i = 0; i < g->n_scopes; i++)
                if (memcmp(g->scopes[i].addr, addr, 16) == 0)
                        return &g->scopes[i];
        return NULL;
}

/* An authenticated packet from ifindex had a as its source (direct) or mentioned it. What a
 * member says never overrides what we saw ourselves. */
static void scope_learn(Gossip *g, const MemberAddress *a, uint32_t ifindex, bool direct) {
        ScopeEntry *e;

        if (!member_address_is_link_local(a) || ifindex == 0)
                return;
        e = scope_find(g, a->addr);
        if (e && e->direct && !direct)
                return;
        if (!e) {
                if (g->n_scopes < SCOPES_MAX)
                        e = &g->scopes[g->n_scopes++];
                else {
                        e = &g->scopes[0];
                        for (size_t i = 1; i < g->n_scopes; i++)
                                if (g->scopes[i].used < e->used)
                                        e = &g->scopes[i];
                }
                memcpy(e->addr, a->addr, 16);
        }
        if (e->ifindex != ifindex)
                log_debug("gossip: link-local %s is on interface %u", member_address_format(a, false, (char[ADDRESS_STRLEN]) {}), ifindex);
        e->ifindex = ifindex;
        e->direct = direct;
        e->used = ++g->scope_counter;
}

/* The scope of a link-local address: a Peers= "%if", else where we heard it; 0 if unknown. */
static uint32_t scope_of(Gossip *g, const MemberAddress *a) {
        const ScopeEntry *e;

        for (size_t i = 0; i < g->n_peers; i++)
                if (g->peer_scope[i] != 0 && member_address_same_host(&g->peers[i], a))
                        return g->peer_scope[i];
        e = scope_find(g, a->addr);
        return e ? e->ifindex : 0;
}

int gossip_resolve(Gossip *g, const MemberAddress *a, struct sockaddr_storage *ret, socklen_t *ret_len) {
        uint32_t scope = 0;
        socklen_t len;

        if (!g || !a || !ret)
                return -EINVAL;
        if (a->family != AF_INET && a->family != AF_INET6)
                return -EAFNOSUPPORT;
        if (member_address_is_link_local(a)) {
                scope = scope_of(g, a);
                if (scope == 0)
                        return -ENXIO;
        }
        len = member_address_to_sockaddr(a, scope, ret);
        if (ret_len)
                *ret_len = len;
        return 0;
}

static bool has_family(const MemberAddress *addrs, size_t n, int family) {
        for (size_t i = 0; i < n; i++)
                if (addrs[i].family == family)
                        return true;
        return false;
}

bool gossip_has_family(const Gossip *g, int family) {
        const Member *self;

        if (!g || !g->membership)
                return false;
        if ((family == AF_INET && g->fd4 < 0) || (family == AF_INET6 && g->fd6 < 0))
                return false;
        self = membership_get_self(g->membership);
        return self && has_family(self->addresses, self->n_addresses, family);
}

static void send_one(Gossip *g, const uint8_t *buf, size_t size, const MemberAddress *a, uint32_t scope,
                     const char *what) {
        struct sockaddr_storage sa;
        socklen_t len = member_address_to_sockaddr(a, scope, &sa);
        int fd = a->family == AF_INET6 ? g->fd6 : g->fd4;

        if (fd < 0)
                return; /* that family is off (AddressFamily=) or unavailable */
        if (sendto(fd, buf, size, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *) &sa, len) < 0)
                log_debug_errno(errno, "gossip: sendto %s (%s) failed: %m", what,
                                address_format_sockaddr((struct sockaddr *) &sa, (char[ADDRESS_STRLEN]) {}));
}

/* scope_hint: the interface for link-local destinations whose scope we do not know (discovery). */
static void send_actions_scoped(Gossip *g, MembershipActions *actions, uint32_t scope_hint) {
        for (size_t i = 0; i < actions->n; i++) {
                const MembershipAction *act = &actions->items[i];
                uint8_t buf[WIRE_SEALED_MAX]; /* room for Encrypt=yes */
                size_t size;
                int r;

                r = wire_encode(g->wire, act->messages, act->n_messages, buf, sizeof buf, &size);
                if (r < 0) {
                        log_warning_errno(r, "gossip: cannot encode a packet for %s: %m", act->to_name);
                        continue;
                }
                for (size_t k = 0; k < act->n_addresses; k++) {
                        const MemberAddress *a = &act->addresses[k];
                        uint32_t scope = 0;

                        if (member_address_needs_scope(a) && (scope = scope_hint ?: scope_of(g, a)) == 0) {
                                /* never heard where it is: try each of our links that has IPv6 */
                                const NetlinkInterface *ifs;
                                size_t n_ifs;

                                ifs = g->netlink ? netlink_get_interfaces(g->netlink, &n_ifs) : NULL;
                                for (size_t j = 0; ifs && j < n_ifs; j++)
                                        if (ifs[j].up && has_family(ifs[j].addresses, ifs[j].n_addresses, AF_INET6))
                                                send_one(g, buf, size, a, (uint32_t) ifs[j].ifindex, act->to_name);
                                continue;
                        }
                        send_one(g, buf, size, a, scope, act->to_name);
                }
        }
        membership_actions_clear(actions);
}

static void send_actions(Gossip *g, MembershipActions *actions) {
        send_actions_scoped(g, actions, 0);
}

static void rearm(Gossip *g) {
        uint64_t next = membership_next_deadline(g->membership);

        if (next == UINT64_MAX) {
                (void) sd_event_source_set_enabled(g->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(g->timer, next);
        (void) sd_event_source_set_enabled(g->timer, SD_EVENT_ONESHOT);
}

/* Deadlines first: after a stall, lease and suspicion bookkeeping must see the late tick
 * before any packet that queued up meanwhile. */
static void run_due(Gossip *g) {
        MembershipActions actions = {};
        uint64_t now = now_boottime_usec();
        int r;

        if (membership_next_deadline(g->membership) > now)
                return;
        r = membership_tick(g->membership, now, &actions);
        if (r < 0)
                log_warning_errno(r, "gossip: tick failed: %m");
        send_actions(g, &actions);
}

static void maybe_outgrow_twin(Gossip *g);

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Gossip *g = userdata;

        maybe_outgrow_twin(g);
        run_due(g);
        rearm(g);
        return 0;
}

/* Only what arrives on a configured interface, or from a Peers= address (routed any way). */
static bool accept_from(Gossip *g, int ifindex, const MemberAddress *from) {
        const NetlinkInterface *ifs;
        size_t n;

        for (size_t i = 0; i < g->n_peers; i++)
                if (member_address_same_host(&g->peers[i], from))
                        return true;
        ifs = netlink_get_interfaces(g->netlink, &n);
        for (size_t i = 0; i < n; i++)
                if (ifs[i].ifindex == ifindex)
                        return true;
        return false;
}


/* Another process with our identity: the newer of the two refuses to run (it is the copy, or the
 * one an operator just started by mistake). An older epoch within the grace after our start is
 * most likely our own previous run's late packet. */
/* A peer whose Encrypt= differs from ours is cut off entirely: say so loudly, but at most every
 * ENCRYPT_MISMATCH_LOG_USEC (counted per packet in the "plaintext"/"encrypted" drop reasons). */
#define ENCRYPT_MISMATCH_LOG_USEC (30 * USEC_PER_SEC)
static void log_encrypt_mismatch(Gossip *g, int error, const char *from) {
        uint64_t now = now_boottime_usec();

        if (g->encrypt_mismatch_logged != 0 && now - g->encrypt_mismatch_logged < ENCRYPT_MISMATCH_LOG_USEC)
                return;
        g->encrypt_mismatch_logged = now;
        log_error("gossip: the node at %s sends %s packets but this node has Encrypt=%s: its encryption settings "
                  "differ, every packet between the two is refused. Give every node of cluster '%s' the same "
                  "[Cluster] Encrypt=.", from, error == -EPROTO ? "unencrypted" : "encrypted",
                  error == -EPROTO ? "yes" : "no", g->cluster_name);
}

static void check_twin(Gossip *g, bool same_id, uint64_t their_epoch, const MemberAddress *from) {
        bool we_are_newer = their_epoch < g->epoch;

        if (we_are_newer && now_boottime_usec() - g->started_usec < TWIN_GRACE_USEC)
                return;
        if (their_epoch == g->epoch)
                return;
        if (same_id && !we_are_newer) {
                g->twin_seen_usec = now_boottime_usec();
                g->twin_epoch = MAX(g->twin_epoch, their_epoch);
        }
        if (g->callbacks.identity_conflict)
                g->callbacks.identity_conflict(g, same_id, we_are_newer, from, g->userdata);
}

/* An accepted packet: the sender's newest life. While an older life of it is heard elsewhere,
 * this one goes there too, once a second. */
static void watch_newer(Gossip *g, const WirePacketInfo *info, const void *buf, size_t size,
                        const MemberAddress *from, uint32_t from_scope) {
        uint64_t now = now_boottime_usec();
        SenderWatch *w = g_hash_table_lookup(g->senders, &info->sender_id);

        if (!w) {
                if (g_hash_table_size(g->senders) >= SENDERS_MAX)
                        g_hash_table_remove_all(g->senders);
                w = g_new0(SenderWatch, 1);
                g_hash_table_insert(g->senders, g_memdup2(&info->sender_id, sizeof info->sender_id), w);
        }
        if (w->epoch != info->epoch) {
                *w = (SenderWatch) { .epoch = info->epoch, .since = now };
        }
        w->addr = *from;
        w->scope = from_scope;
        w->last_size = MIN(size, sizeof w->last);
        memcpy(w->last, buf, w->last_size);
        if (w->older_seen != 0 && now - w->older_seen <= 2 * TWIN_RELAY_INTERVAL_USEC &&
            (w->relayed_newer == 0 || now - w->relayed_newer >= TWIN_RELAY_INTERVAL_USEC)) {
                w->relayed_newer = now;
                send_one(g, buf, size, &w->older_addr, w->older_scope, "a newer twin's packet");
        }
}

/* A replayed packet: if it is an older life of the sender, still speaking from another address
 * well after the newer one appeared, the two are twins. */
static void watch_older(Gossip *g, const WirePacketInfo *info, const void *buf, size_t size,
                        const MemberAddress *from, uint32_t from_scope) {
        uint64_t now = now_boottime_usec();
        SenderWatch *w = g_hash_table_lookup(g->senders, &info->sender_id);

        if (!w || info->epoch >= w->epoch || now - w->since < TWIN_RELAY_GRACE_USEC ||
            member_address_same_host(from, &w->addr))
                return;
        w->older_addr = *from;
        w->older_scope = from_scope;
        w->older_seen = now;
        if (w->logged == 0 || now - w->logged >= 10 * USEC_PER_SEC) {
                w->logged = now;
                log_warning("gossip: node id %016" PRIx64 " speaks from %s and, under an older epoch, from %s: "
                            "two processes with one identity (a copied state directory?). Passing each one's "
                            "packets to the other, so that the newer one stops.",
                            info->sender_id, member_address_format(&w->addr, false, (char[ADDRESS_STRLEN]) {}),
                            member_address_format(from, false, (char[ADDRESS_STRLEN]) {}));
        }
        if (w->relayed_older == 0 || now - w->relayed_older >= TWIN_RELAY_INTERVAL_USEC) {
                w->relayed_older = now;
                send_one(g, buf, size, &w->addr, w->scope, "an older twin's packet");
                /* and at once the other way: the newer one exits on this, and may send no more */
                if (w->last_size > 0) {
                        w->relayed_newer = now;
                        send_one(g, w->last, w->last_size, from, from_scope, "a newer twin's packet");
                }
        }
}

/* Somebody announcing itself (its ALIVE, sent by that very node id) under our name. */
static void check_duplicate_name(Gossip *g, const WirePacketInfo *info, const GossipMessage *msgs, size_t n,
                                 const MemberAddress *from) {
        const Member *self = membership_get_self(g->membership);

        if (!self)
                return;
        for (size_t i = 0; i < n; i++)
                if (msgs[i].type == GOSSIP_ALIVE && msgs[i].node_id == info->sender_id &&
                    msgs[i].node_id != g->node_id && streq_ptr(msgs[i].name, self->name)) {
                        check_twin(g, false, info->epoch, from);
                        return;
                }
}

/* A sender's own ALIVE (the packet's first message) under a name another live id announces too:
 * pass each one's packet to the other, once a second. */
static void watch_name(Gossip *g, const WirePacketInfo *info, const GossipMessage *msgs, size_t n,
                       const void *buf, size_t size, const MemberAddress *from, uint32_t from_scope) {
        const Member *self = membership_get_self(g->membership);
        uint64_t now = now_boottime_usec();
        NameWatch *w;

        if (n == 0 || msgs[0].type != GOSSIP_ALIVE || msgs[0].node_id != info->sender_id ||
            info->sender_id == g->node_id || !msgs[0].name[0] || (self && streq_ptr(msgs[0].name, self->name)))
                return; /* not a self-announcement, or ours to check (check_duplicate_name) */
        w = g_hash_table_lookup(g->names, msgs[0].name);
        if (!w) {
                if (g_hash_table_size(g->names) >= SENDERS_MAX)
                        g_hash_table_remove_all(g->names);
                w = g_new0(NameWatch, 1);
                g_hash_table_insert(g->names, g_strdup(msgs[0].name), w);
        }
        if (w->node_id != info->sender_id && (w->heard == 0 || now - w->heard > NAME_RELAY_LIVE_USEC))
                *w = (NameWatch) { .node_id = info->sender_id }; /* the old id went silent: a rebuild */
        if (w->node_id == info->sender_id) {
                w->heard = now;
                w->addr = *from;
                w->scope = from_scope;
                w->last_size = MIN(size, sizeof w->last);
                memcpy(w->last, buf, w->last_size);
                return;
        }
        if (member_address_same_host(from, &w->addr))
                return;
        if (w->logged == 0 || now - w->logged >= 10 * USEC_PER_SEC) {
                w->logged = now;
                log_warning("gossip: node ids %016" PRIx64 " (at %s) and %016" PRIx64 " (at %s) both announce "
                            "the name '%s': two machines with one name? Passing each one's packets to the other, "
                            "so that the newer one stops.", w->node_id,
                            member_address_format(&w->addr, false, (char[ADDRESS_STRLEN]) {}), info->sender_id,
                            member_address_format(from, false, (char[ADDRESS_STRLEN]) {}), msgs[0].name);
        }
        if (w->relayed != 0 && now - w->relayed < TWIN_RELAY_INTERVAL_USEC)
                return;
        w->relayed = now;
        send_one(g, buf, size, &w->addr, w->scope, "a packet of another node under its name");
        if (w->last_size > 0)
                send_one(g, w->last, w->last_size, from, from_scope, "a packet of another node under its name");
}

/* Every address an authenticated packet from ifindex carried: link-local ones are on that link. */
static void learn_scopes(Gossip *g, const MemberAddress *from, uint32_t from_scope, int ifindex,
                         const GossipMessage *msgs, size_t n) {
        scope_learn(g, from, from_scope ?: (uint32_t) ifindex, true);
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < msgs[i].n_addresses && k < MEMBER_ADDRESSES_MAX; k++)
                        if (!member_address_same_host(&msgs[i].addresses[k], from))
                                scope_learn(g, &msgs[i].addresses[k], (uint32_t) ifindex, false);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Gossip *g = userdata;

        run_due(g);
        /* A bounded batch per wakeup keeps timers punctual under a flood. */
        for (unsigned i = 0; i < 64; i++) {
                uint8_t buf[WIRE_SEALED_MAX + 1];
                struct sockaddr_storage sa;
                GossipMessage msgs[WIRE_MESSAGES_MAX];
                MembershipActions actions = {};
                MemberAddress from;
                uint32_t from_scope;
                ssize_t n;
                int k, r;

                union {
                        struct cmsghdr hdr;
                        uint8_t buf[CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(struct in6_pktinfo))];
                } control;
                struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
                struct msghdr mh = {
                        .msg_name = &sa, .msg_namelen = sizeof sa,
                        .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = &control, .msg_controllen = sizeof control,
                };
                int ifindex = 0;

                n = recvmsg(fd, &mh, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_debug_errno(errno, "gossip: recvmsg failed: %m");
                        break;
                }
                if (member_address_from_sockaddr((struct sockaddr *) &sa, &from, &from_scope) < 0)
                        continue;
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
                                ifindex = ((struct in_pktinfo *) CMSG_DATA(cm))->ipi_ifindex;
                        else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO)
                                ifindex = (int) ((struct in6_pktinfo *) CMSG_DATA(cm))->ipi6_ifindex;
                if (!accept_from(g, ifindex, &from)) {
                        g->foreign_drops++;
                        continue;
                }
                WirePacketInfo info = {};
                k = wire_decode(g->wire, buf, (size_t) n, &info, msgs, G_N_ELEMENTS(msgs));
                if (k == -ENOTUNIQ) {
                        check_twin(g, true, info.epoch, &from);
                        continue;
                }
                if (k == -EALREADY)
                        watch_older(g, &info, buf, (size_t) n, &from, from_scope);
                if (k == -EPROTO || k == -EPROTONOSUPPORT)
                        log_encrypt_mismatch(g, k, address_format_sockaddr((struct sockaddr *) &sa, (char[ADDRESS_STRLEN]) {}));
                if (k < 0) {
                        if (k != -ELOOP)
                                log_debug_errno(k, "gossip: dropped a packet from %s: %m",
                                                address_format_sockaddr((struct sockaddr *) &sa, (char[ADDRESS_STRLEN]) {}));
                        continue;
                }
                watch_newer(g, &info, buf, (size_t) n, &from, from_scope);
                learn_scopes(g, &from, from_scope, ifindex, msgs, (size_t) k);
                check_duplicate_name(g, &info, msgs, (size_t) k, &from);
                watch_name(g, &info, msgs, (size_t) k, buf, (size_t) n, &from, from_scope);
                r = membership_receive(g->membership, msgs, (size_t) k, &from, now_boottime_usec(), &actions);
                if (r < 0)
                        log_debug_errno(r, "gossip: packet from %s refused: %m",
                                        address_format_sockaddr((struct sockaddr *) &sa, (char[ADDRESS_STRLEN]) {}));
                send_actions(g, &actions);
        }
        rearm(g);
        return 0;
}

static bool family_usable(const Gossip *g, int family) {
        return family == AF_INET ? g->want4 && g->fd4 >= 0 : family == AF_INET6 && g->want6 && g->fd6 >= 0;
}

/* What we advertise of an interface, for one member_address_preference() at a time: its IPv4
 * and global IPv6 addresses of the families AddressFamily= allows; its link-local IPv6 address
 * only when it has none of those (a link-local-only network), since every IPv6 interface has one
 * and each advertised address costs a copy of every packet sent to us. */
static size_t interface_addresses(const Gossip *g, const NetlinkInterface *ifc, int pref, MemberAddress *out,
                                  size_t max) {
        size_t n = 0;

        if (pref == 2)
                for (size_t k = 0; k < ifc->n_addresses; k++)
                        if (member_address_preference(&ifc->addresses[k]) < 2 &&
                            family_usable(g, ifc->addresses[k].family))
                                return 0;
        for (size_t k = 0; k < ifc->n_addresses && n < max; k++) {
                const MemberAddress *a = &ifc->addresses[k];

                if (member_address_preference(a) != pref || !family_usable(g, a->family))
                        continue;
                out[n] = *a;
                out[n].port = g->port;
                n++;
        }
        return n;
}

static bool usable_links_up(Gossip *g) {
        const NetlinkInterface *ifs;
        MemberAddress tmp[MEMBER_ADDRESSES_MAX];
        size_t n_ifs;

        ifs = netlink_get_interfaces(g->netlink, &n_ifs);
        for (size_t i = 0; i < n_ifs; i++)
                for (int pref = 0; pref <= 2; pref++)
                        if (ifs[i].up && interface_addresses(g, &ifs[i], pref, tmp, G_N_ELEMENTS(tmp)) > 0)
                                return true;
        return false;
}

/* IPv4 first, then global IPv6, then link-local, over all interfaces: the first address is what
 * peers and tools show, IPv4-only nodes look as they did, and IPv6 never crowds IPv4 out of the
 * MEMBER_ADDRESSES_MAX slots. */
static size_t local_addresses(Gossip *g, MemberAddress *out) {
        const NetlinkInterface *ifs;
        size_t n_ifs, n = 0;

        if (!g->netlink)
                return 0;
        ifs = netlink_get_interfaces(g->netlink, &n_ifs);
        for (int pref = 0; pref <= 2; pref++)
                for (size_t i = 0; i < n_ifs; i++)
                        if (ifs[i].up)
                                n += interface_addresses(g, &ifs[i], pref, out + n, MEMBER_ADDRESSES_MAX - n);
        return n;
}

static void multicast_rejoin(Gossip *g) {
        const NetlinkInterface *ifs;
        size_t n_ifs;

        multicast_leave_all(g);
        ifs = netlink_get_interfaces(g->netlink, &n_ifs);
        for (size_t i = 0; i < n_ifs; i++) {
                if (!ifs[i].up || !ifs[i].multicast || ifs[i].loopback)
                        continue;
                if (g->fd4 >= 0 && g->want4 && has_family(ifs[i].addresses, ifs[i].n_addresses, AF_INET) &&
                    g->n_joined4 < JOINED_MAX) {
                        struct ip_mreqn mr = { .imr_ifindex = ifs[i].ifindex };

                        inet_pton(AF_INET, GOSSIP_MULTICAST_GROUP, &mr.imr_multiaddr);
                        if (setsockopt(g->fd4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
                                log_warning_errno(errno, "gossip: cannot join %s on %s: %m", GOSSIP_MULTICAST_GROUP, ifs[i].name);
                        else
                                g->joined4[g->n_joined4++] = ifs[i].ifindex;
                }
                /* a link-local address is enough: the group is link-scoped */
                if (g->fd6 >= 0 && g->want6 && has_family(ifs[i].addresses, ifs[i].n_addresses, AF_INET6) &&
                    g->n_joined6 < JOINED_MAX) {
                        struct ipv6_mreq mr = { .ipv6mr_interface = (unsigned) ifs[i].ifindex };

                        inet_pton(AF_INET6, GOSSIP_MULTICAST_GROUP6, &mr.ipv6mr_multiaddr);
                        if (setsockopt(g->fd6, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof mr) < 0)
                                log_warning_errno(errno, "gossip: cannot join %s on %s: %m", GOSSIP_MULTICAST_GROUP6, ifs[i].name);
                        else
                                g->joined6[g->n_joined6++] = ifs[i].ifindex;
                }
        }
}

static void on_links(Netlink *nl, bool link_lost, void *userdata) {
        Gossip *g = userdata;
        MemberAddress addrs[MEMBER_ADDRESSES_MAX];
        const Member *self;
        size_t n;
        bool up = usable_links_up(g);

        if (!g->membership)
                return; /* gossip_start() failed half-way */
        self = membership_get_self(g->membership);
        n = local_addresses(g, addrs);

        multicast_rejoin(g);
        if (n != self->n_addresses || memcmp(addrs, self->addresses, n * sizeof addrs[0]) != 0) {
                log_info("gossip: advertising %zu address(es)", n);
                (void) membership_update_self(g->membership, addrs, n, g->tags, g->tags_size);
        }
        if (up != g->links_up || link_lost) {
                g->links_up = up;
                if (g->callbacks.links_changed)
                        g->callbacks.links_changed(g, up, g->userdata);
        }
        rearm(g);
}

static void discover(Gossip *g) {
        MembershipActions actions = {};
        uint64_t now = now_boottime_usec();
        MemberAddress group = { .family = AF_INET, .port = g->port };
        MemberAddress group6 = { .family = AF_INET6, .port = g->port };

        for (size_t i = 0; i < g->n_peers; i++)
                (void) membership_ping_address(g->membership, &g->peers[i], now, &actions);
        send_actions(g, &actions);

        inet_pton(AF_INET, GOSSIP_MULTICAST_GROUP, group.addr);
        for (size_t i = 0; i < g->n_joined4; i++) {
                struct ip_mreqn mr = { .imr_ifindex = g->joined4[i] };

                if (setsockopt(g->fd4, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr) < 0)
                        continue;
                (void) membership_ping_address(g->membership, &group, now, &actions);
                send_actions(g, &actions);
        }
        inet_pton(AF_INET6, GOSSIP_MULTICAST_GROUP6, group6.addr);
        for (size_t i = 0; i < g->n_joined6; i++) {
                bool has_v4_discovery = false;

                /* A link where we discover over IPv4 gets no IPv6 pings (IPv4 setups send what they
                 * always did); we still listen there, and answer IPv6-only nodes' pings. */
                for (size_t k = 0; k < g->n_joined4; k++)
                        has_v4_discovery = has_v4_discovery || g->joined4[k] == g->joined6[i];
                if (has_v4_discovery)
                        continue;
                (void) membership_ping_address(g->membership, &group6, now, &actions);
                send_actions_scoped(g, &actions, (uint32_t) g->joined6[i]);
        }
}

/* Peers keep the newest epoch per node id: a twin's shut us out. Once it is silent, move past it
 * (the wire's epoch moves; g->epoch stays our start, for telling who is newer). */
static void maybe_outgrow_twin(Gossip *g) {
        uint64_t e;

        if (g->twin_seen_usec == 0 || now_boottime_usec() - g->twin_seen_usec <= TWIN_SILENT_USEC)
                return;
        e = MAX((uint64_t) g_get_real_time(), g->twin_epoch + 1);
        g->twin_seen_usec = 0;
        wire_set_epoch(g->wire, e);
        log_notice("gossip: the twin of this node went silent; speaking under a new epoch.");
        if (g->callbacks.epoch_bumped)
                g->callbacks.epoch_bumped(g, e, g->userdata);
}

static int on_discovery(sd_event_source *s, uint64_t usec, void *userdata) {
        Gossip *g = userdata;

        if (g->leaving)
                return 0;
        discover(g);
        rearm(g);
        (void) sd_event_source_set_time(s, usec + GOSSIP_DISCOVERY_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int open_socket4(Gossip *g) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(g->config.port) };
        socklen_t salen = sizeof sa;
        int zero = 0, one = 1, ttl = 1;
        _cleanup_close_ int fd = -EBADF;

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "gossip: cannot create socket: %m");
        /* No SO_REUSEADDR: a second daemon on the same port must fail, not steal half the
         * unicast packets. Multicast stays on the link and does not come back to us. */
        if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) < 0 ||
            setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0 ||
            setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero) < 0)
                return log_error_errno(errno, "gossip: cannot set socket options: %m");
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return log_error_errno(errno, "gossip: cannot bind UDP port %u: %m", g->config.port);
        if (getsockname(fd, (struct sockaddr *) &sa, &salen) < 0)
                return log_error_errno(errno, "gossip: getsockname failed: %m");
        g->port = ntohs(sa.sin_port);
        g->fd4 = fd;
        fd = -EBADF;
        return 0;
}

/* A second socket, IPv6 only (IPV6_V6ONLY), on the same port: IPv4 keeps its own socket exactly
 * as without IPv6. No IPv6 in the kernel is not an error unless AddressFamily=ipv6. */
static int open_socket6(Gossip *g) {
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT,
                                   .sin6_port = htons(g->fd4 >= 0 ? g->port : g->config.port) };
        socklen_t salen = sizeof sa;
        int zero = 0, one = 1, hops = 1;
        _cleanup_close_ int fd = -EBADF;

        fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                if (g->want4 && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)) {
                        log_info("gossip: no IPv6 on this system, IPv4 only");
                        return 0;
                }
                return log_error_errno(errno, "gossip: cannot create IPv6 socket: %m");
        }
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0 ||
            setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) < 0 ||
            setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) < 0 ||
            setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof zero) < 0)
                return log_error_errno(errno, "gossip: cannot set IPv6 socket options: %m");
        if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                /* IPv6 disabled (sysctl disable_ipv6) refuses the bind: go on with IPv4 */
                if (g->want4 && g->fd4 >= 0 && errno == EADDRNOTAVAIL) {
                        log_info("gossip: IPv6 is disabled here, IPv4 only");
                        return 0;
                }
                return log_error_errno(errno, "gossip: cannot bind UDP port [::]:%u: %m", ntohs(sa.sin6_port));
        }
        if (getsockname(fd, (struct sockaddr *) &sa, &salen) < 0)
                return log_error_errno(errno, "gossip: getsockname failed: %m");
        g->port = ntohs(sa.sin6_port);
        g->fd6 = fd;
        fd = -EBADF;
        return 0;
}

static int open_sockets(Gossip *g) {
        int r;

        if (g->want4) {
                r = open_socket4(g);
                if (r < 0)
                        return r;
        }
        if (g->want6) {
                r = open_socket6(g);
                if (r < 0)
                        return r;
        }
        return 0;
}

int gossip_start(Gossip *g) {
        MembershipParams params;
        MemberAddress addrs[MEMBER_ADDRESSES_MAX];
        uint64_t now = now_boottime_usec();
        size_t n;
        int r;

        if (!g)
                return -EINVAL;
        if (g->started)
                return -EALREADY;

        r = open_sockets(g);
        if (r < 0)
                return r;

        r = netlink_new(g->event, g->interfaces, on_links, g, &g->netlink);
        if (r < 0)
                return r;
        n = local_addresses(g, addrs);
        g->links_up = usable_links_up(g);

        membership_params_init_defaults(&params);
        if (g->config.probe_interval_usec > 0)
                params.probe_interval_usec = g->config.probe_interval_usec;
        if (g->config.node_timeout_usec > 0)
                params.node_timeout_usec = g->config.node_timeout_usec;
        /* direct probe timeout: 40% of the interval (40 ms at the default), enough for a LAN */
        params.probe_timeout_usec = params.probe_interval_usec * 2 / 5;
        /* Starting at the realtime clock makes our incarnation outbid our previous life's. */
        g->membership = membership_new(&params, g->config.node_name, g->node_id, (uint64_t) g_get_real_time(),
                                       addrs, n, g->tags, g->tags_size, now, on_member_event, g);
        if (!g->membership)
                return log_error_errno(EINVAL, "gossip: invalid node name '%s'", g->config.node_name);

        multicast_rejoin(g);

        if (g->fd4 >= 0) {
                r = sd_event_add_io(g->event, &g->io4, g->fd4, EPOLLIN, on_io, g);
                if (r < 0)
                        return log_error_errno(r, "gossip: cannot add io source: %m");
                (void) sd_event_source_set_description(g->io4, "gossip-io");
        }
        if (g->fd6 >= 0) {
                r = sd_event_add_io(g->event, &g->io6, g->fd6, EPOLLIN, on_io, g);
                if (r < 0)
                        return log_error_errno(r, "gossip: cannot add io source: %m");
                (void) sd_event_source_set_description(g->io6, "gossip-io6");
        }

        r = sd_event_add_time(g->event, &g->timer, CLOCK_BOOTTIME, membership_next_deadline(g->membership), 1, on_timer, g);
        if (r < 0)
                return log_error_errno(r, "gossip: cannot add timer: %m");
        /* lease and suspicion deadlines come before any I/O */
        (void) sd_event_source_set_priority(g->timer, SD_EVENT_PRIORITY_IMPORTANT);
        (void) sd_event_source_set_description(g->timer, "gossip-timer");

        r = sd_event_add_time(g->event, &g->discovery, CLOCK_BOOTTIME, now, USEC_PER_MSEC, on_discovery, g);
        if (r < 0)
                return log_error_errno(r, "gossip: cannot add discovery timer: %m");
        (void) sd_event_source_set_description(g->discovery, "gossip-discovery");

        g->started = true;
        log_info("gossip: node %s (%016" PRIx64 ") in cluster %s on UDP port %u (%s), %zu peer(s), %zu+%zu multicast interface(s)",
                 g->config.node_name, g->node_id, g->cluster_name, g->port,
                 g->fd4 >= 0 && g->fd6 >= 0 ? "IPv4+IPv6" : g->fd6 >= 0 ? "IPv6" : "IPv4",
                 g->n_peers, g->n_joined4, g->n_joined6);
        return 0;
}

int gossip_leave(Gossip *g) {
        MembershipActions actions = {};
        int r;

        if (!g || !g->started)
                return -EINVAL;
        r = membership_leave(g->membership, now_boottime_usec(), &actions);
        send_actions(g, &actions);
        g->leaving = true;
        rearm(g);
        return r;
}

int gossip_set_tags(Gossip *g, const void *tags, size_t tags_size) {
        const Member *self;

        if (!g || tags_size > MEMBER_TAGS_MAX || (tags_size > 0 && !tags))
                return -EINVAL;
        memcpy(g->tags, tags, tags_size);
        g->tags_size = tags_size;
        if (!g->membership)
                return 0;
        self = membership_get_self(g->membership);
        return membership_update_self(g->membership, self->addresses, self->n_addresses, tags, tags_size);
}

int gossip_set_watched(Gossip *g, const char *name, bool watched) {
        if (!g || !g->membership)
                return -EINVAL;
        return membership_set_watched(g->membership, name, watched);
}

const Membership *gossip_get_membership(const Gossip *g) {
        return g->membership;
}

const Wire *gossip_get_wire(const Gossip *g) {
        return g->wire;
}

uint64_t gossip_get_foreign_drops(const Gossip *g) {
        return g->foreign_drops;
}

uint16_t gossip_get_port(const Gossip *g) {
        return g->port;
}

