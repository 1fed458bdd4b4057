/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "electiond-gossip.h"
#include "electiond-netlink.h"
#include "electiond-util.h"

#define PEERS_MAX 64

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
        int fd;
        uint16_t port;
        sd_event_source *io;
        sd_event_source *timer;
        sd_event_source *discovery;

        MemberAddress peers[PEERS_MAX];
        size_t n_peers;
        uint8_t tags[MEMBER_TAGS_MAX];
        size_t tags_size;

        bool started, leaving;
        bool links_up;
        uint64_t link_down_usec;        /* last time a configured link went down */
        int joined_ifindex[32];         /* multicast memberships we hold */
        size_t n_joined;
        uint64_t foreign_drops;         /* arrived on an interface not configured */
        uint64_t encrypt_mismatch_logged; /* when we last logged a peer whose Encrypt= differs */
        uint64_t epoch;                 /* ours (realtime µs at start): who started later is newer */
        uint64_t started_usec;          /* boottime */
        uint64_t twin_seen_usec;        /* an older-or-newer twin's last packet (0: none) */
        uint64_t twin_epoch;            /* the largest epoch a twin used */
};

/* Packets with our id and an older epoch this long after our start are not our previous life's
 * stragglers but a live twin. */
#define TWIN_GRACE_USEC (3 * USEC_PER_SEC)
/* A twin not heard for this long has gone (it exits at once when it is the newer one). */
#define TWIN_SILENT_USEC (1 * USEC_PER_SEC)

static void on_member_event(Membership *m, MembershipEvent event, const Member *member, void *userdata) {
        Gossip *g = userdata;

        log_debug("gossip: member %s %s", member->name, membership_event_to_string(event));
        /* its next life may start with a smaller epoch (clock set back): let it in */
        if (event == MEMBERSHIP_EVENT_DEAD || event == MEMBERSHIP_EVENT_LEFT)
                wire_forget_sender(g->wire, member->node_id);
        if (g->callbacks.member_event)
                g->callbacks.member_event(g, event, member, g->userdata);
}

static int parse_peer(const char *s, uint16_t default_port, MemberAddress *ret) {
        g_autofree char *host = g_strdup(s);
        char *colon = strrchr(host, ':');
        unsigned long port = default_port;
        struct in_addr a;

        if (colon) {
                char *end;
                *colon = 0;
                port = strtoul(colon + 1, &end, 10);
                if (*end || port == 0 || port > 65535)
                        return -EINVAL;
        }
        if (inet_pton(AF_INET, host, &a) != 1)
                return -EINVAL;
        *ret = (MemberAddress) { .family = AF_INET, .port = (uint16_t) port };
        memcpy(ret->addr, &a, 4);
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
        g->fd = -EBADF;
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
        memcpy(g->tags, tags, tags_size);
        g->tags_size = tags_size;

        for (char **p = config->peers; p && *p; p++) {
                if (g->n_peers >= PEERS_MAX) {
                        log_warning("gossip: more than %d Peers=, ignoring the rest", PEERS_MAX);
                        break;
                }
                if (parse_peer(*p, config->port, &g->peers[g->n_peers]) < 0) {
                        log_warning("gossip: ignoring Peers= entry '%s': not an IPv4 address[:port]", *p);
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
        for (size_t i = 0; i < g->n_joined; i++) {
                struct ip_mreqn mr = { .imr_ifindex = g->joined_ifindex[i] };
                inet_pton(AF_INET, GOSSIP_MULTICAST_GROUP, &mr.imr_multiaddr);
                (void) setsockopt(g->fd, IPPROTO_IP, IP_DROP_MEMBERSHIP, &mr, sizeof mr);
        }
        g->n_joined = 0;
}

int gossip_set_keyring(Gossip *g, Keyring *keyring) {
        if (!g)
                return -EINVAL;
        return wire_set_keyring(g->wire, keyring);
}

Gossip *gossip_free(Gossip *g) {
        if (!g)
                return NULL;
        sd_event_source_disable_unref(g->io);
        sd_event_source_disable_unref(g->timer);
        sd_event_source_disable_unref(g->discovery);
        netlink_free(g->netlink);
        if (g->fd >= 0)
                close(g->fd);
        membership_free(g->membership);
        wire_free(g->wire);
        g_free(g->cluster_name);
        g_strfreev(g->interfaces);
        g_free(g->config.node_name);
        sd_event_unref(g->event);
        g_free(g);
        return NULL;
}

static void to_sockaddr(const MemberAddress *a, struct sockaddr_in *sa) {
        *sa = (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons(a->port) };
        memcpy(&sa->sin_addr, a->addr, 4);
}

static void send_actions(Gossip *g, MembershipActions *actions) {
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
                        struct sockaddr_in sa;

                        if (act->addresses[k].family != AF_INET)
                                continue; /* the socket is IPv4 only */
                        to_sockaddr(&act->addresses[k], &sa);
                        if (sendto(g->fd, buf, size, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *) &sa, sizeof sa) < 0)
                                log_debug_errno(errno, "gossip: sendto %s failed: %m", act->to_name);
                }
        }
        membership_actions_clear(actions);
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
static bool accept_from(Gossip *g, int ifindex, const struct sockaddr_in *sa) {
        const NetlinkInterface *ifs;
        size_t n;

        for (size_t i = 0; i < g->n_peers; i++)
                if (memcmp(g->peers[i].addr, &sa->sin_addr, 4) == 0)
                        return true;
        ifs = netlink_get_interfaces(g->netlink, &n);
        for (size_t i = 0; i < n; i++)
                if (ifs[i].ifindex == ifindex)
                        return true;
        return false;
}

static void deliver_user_messages(Gossip *g, const GossipMessage *msgs, size_t n) {
        const Member *sender = membership_get(g->membership, msgs[0].name);

        /* only from a member we accepted as such (not a name conflict, not ourselves) */
        if (!sender || sender->is_self || sender->node_id != msgs[0].node_id || !g->callbacks.message)
                return;
        for (size_t i = 1; i < n; i++)
                if (msgs[i].type == GOSSIP_USER)
                        g->callbacks.message(g, sender, msgs[i].seq, msgs[i].tags, msgs[i].tags_size, g->userdata);
}


/* Another process with our identity: the newer of the two refuses to run (it is the copy, or the
 * one an operator just started by mistake). An older epoch within the grace after our start is
 * most likely our own previous run's late packet. */
/* A peer whose Encrypt= differs from ours is cut off entirely: say so loudly, but at most every
 * ENCRYPT_MISMATCH_LOG_USEC (counted per packet in the "plaintext"/"encrypted" drop reasons). */
#define ENCRYPT_MISMATCH_LOG_USEC (30 * USEC_PER_SEC)
static void log_encrypt_mismatch(Gossip *g, int error, const char *from, unsigned port) {
        uint64_t now = now_boottime_usec();

        if (g->encrypt_mismatch_logged != 0 && now - g->encrypt_mismatch_logged < ENCRYPT_MISMATCH_LOG_USEC)
                return;
        g->encrypt_mismatch_logged = now;
        log_error("gossip: the node at %s:%u sends %s packets but this node has Encrypt=%s: its encryption settings "
                  "differ, every packet between the two is refused. Give every node of cluster '%s' the same "
                  "[Cluster] Encrypt=.", from, port, error == -EPROTO ? "unencrypted" : "encrypted",
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

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Gossip *g = userdata;

        run_due(g);
        /* A bounded batch per wakeup keeps timers punctual under a flood. */
        for (unsigned i = 0; i < 64; i++) {
                uint8_t buf[WIRE_SEALED_MAX + 1];
                struct sockaddr_in sa;
                socklen_t salen = sizeof sa;
                GossipMessage msgs[WIRE_MESSAGES_MAX];
                MembershipActions actions = {};
                MemberAddress from;
                ssize_t n;
                int k, r;

                union {
                        struct cmsghdr hdr;
                        uint8_t buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
                } control;
                struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
                struct msghdr mh = {
                        .msg_name = &sa, .msg_namelen = salen,
                        .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = &control, .msg_controllen = sizeof control,
                };
                int ifindex = 0;

                n = recvmsg(g->fd, &mh, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_debug_errno(errno, "gossip: recvmsg failed: %m");
                        break;
                }
                if (sa.sin_family != AF_INET)
                        continue;
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
                                ifindex = ((struct in_pktinfo *) CMSG_DATA(cm))->ipi_ifindex;
                if (!accept_from(g, ifindex, &sa)) {
                        g->foreign_drops++;
                        continue;
                }
                WirePacketInfo info = {};
                k = wire_decode(g->wire, buf, (size_t) n, &info, msgs, G_N_ELEMENTS(msgs));
                from = (MemberAddress) { .family = AF_INET, .port = ntohs(sa.sin_port) };
                memcpy(from.addr, &sa.sin_addr, 4);
                if (k == -ENOTUNIQ) {
                        check_twin(g, true, info.epoch, &from);
                        continue;
                }
                if (k == -EPROTO || k == -EPROTONOSUPPORT)
                        log_encrypt_mismatch(g, k, inet_ntoa(sa.sin_addr), ntohs(sa.sin_port));
                if (k < 0) {
                        if (k != -ELOOP)
                                log_debug_errno(k, "gossip: dropped a packet from %s:%u: %m",
                                                inet_ntoa(sa.sin_addr), ntohs(sa.sin_port));
                        continue;
                }
                check_duplicate_name(g, &info, msgs, (size_t) k, &from);
                r = membership_receive(g->membership, msgs, (size_t) k, &from, now_boottime_usec(), &actions);
                if (r < 0)
                        log_debug_errno(r, "gossip: packet from %s:%u refused: %m",
                                        inet_ntoa(sa.sin_addr), ntohs(sa.sin_port));
                send_actions(g, &actions);
                if (r >= 0)
                        deliver_user_messages(g, msgs, (size_t) k);
        }
        rearm(g);
        return 0;
}

static size_t local_addresses(Gossip *g, MemberAddress *out) {
        const NetlinkInterface *ifs;
        size_t n_ifs, n = 0;

        if (!g->netlink)
                return 0;
        ifs = netlink_get_interfaces(g->netlink, &n_ifs);
        for (size_t i = 0; i < n_ifs; i++) {
                if (!ifs[i].up)
                        continue;
                for (size_t k = 0; k < ifs[i].n_addresses && n < MEMBER_ADDRESSES_MAX; k++) {
                        if (ifs[i].addresses[k].family != AF_INET)
                                continue;
                        out[n] = ifs[i].addresses[k];
                        out[n].port = g->port;
                        n++;
                }
        }
        return n;
}

static void multicast_rejoin(Gossip *g) {
        const NetlinkInterface *ifs;
        size_t n_ifs;

        multicast_leave_all(g);
        ifs = netlink_get_interfaces(g->netlink, &n_ifs);
        for (size_t i = 0; i < n_ifs && g->n_joined < G_N_ELEMENTS(g->joined_ifindex); i++) {
                struct ip_mreqn mr = { .imr_ifindex = ifs[i].ifindex };

                if (!ifs[i].up || !ifs[i].multicast || ifs[i].loopback || ifs[i].n_addresses == 0)
                        continue;
                inet_pton(AF_INET, GOSSIP_MULTICAST_GROUP, &mr.imr_multiaddr);
                if (setsockopt(g->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) {
                        log_warning_errno(errno, "gossip: cannot join %s on %s: %m", GOSSIP_MULTICAST_GROUP, ifs[i].name);
                        continue;
                }
                g->joined_ifindex[g->n_joined++] = ifs[i].ifindex;
        }
}

static void on_links(Netlink *nl, bool link_lost, void *userdata) {
        Gossip *g = userdata;
        MemberAddress addrs[MEMBER_ADDRESSES_MAX];
        const Member *self;
        size_t n;
        bool up = netlink_any_up(nl);

        if (!g->membership)
                return; /* gossip_start() failed half-way */
        self = membership_get_self(g->membership);
        n = local_addresses(g, addrs);

        if (link_lost)
                g->link_down_usec = now_boottime_usec();
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
        struct in_addr ga;

        for (size_t i = 0; i < g->n_peers; i++)
                (void) membership_ping_address(g->membership, &g->peers[i], now, &actions);
        send_actions(g, &actions);

        inet_pton(AF_INET, GOSSIP_MULTICAST_GROUP, &ga);
        memcpy(group.addr, &ga, 4);
        for (size_t i = 0; i < g->n_joined; i++) {
                struct ip_mreqn mr = { .imr_ifindex = g->joined_ifindex[i] };

                if (setsockopt(g->fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr) < 0)
                        continue;
                (void) membership_ping_address(g->membership, &group, now, &actions);
                send_actions(g, &actions);
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

static int open_socket(Gossip *g) {
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
        g->fd = fd;
        fd = -EBADF;
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

        r = open_socket(g);
        if (r < 0)
                return r;

        r = netlink_new(g->event, g->interfaces, on_links, g, &g->netlink);
        if (r < 0)
                return r;
        n = local_addresses(g, addrs);
        g->links_up = netlink_any_up(g->netlink);

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

        r = sd_event_add_io(g->event, &g->io, g->fd, EPOLLIN, on_io, g);
        if (r < 0)
                return log_error_errno(r, "gossip: cannot add io source: %m");
        (void) sd_event_source_set_description(g->io, "gossip-io");

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
        log_info("gossip: node %s (%016" PRIx64 ") in cluster %s on UDP port %u, %zu peer(s), %zu multicast interface(s)",
                 g->config.node_name, g->node_id, g->cluster_name, g->port, g->n_peers, g->n_joined);
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

int gossip_send(Gossip *g, const char *name, uint32_t kind, const void *data, size_t size) {
        GossipMessage msg = { .type = GOSSIP_USER, .seq = kind, .tags_size = (uint16_t) size };
        MembershipActions actions = {};
        int r;

        if (!g || !g->membership || !name || size > MEMBER_TAGS_MAX || (size > 0 && !data))
                return -EINVAL;
        memcpy(msg.tags, data, size);
        r = membership_send(g->membership, name, &msg, 1, now_boottime_usec(), &actions);
        send_actions(g, &actions);
        return r;
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

uint64_t gossip_quorum_contact_usec(const Gossip *g, const char *const *voters, size_t n_voters,
                                    size_t n_needed, uint64_t now) {
        uint64_t t;

        if (!g->membership || !g->links_up)
                return 0;
        t = membership_quorum_contact_usec(g->membership, voters, n_voters, n_needed, now);
        return t > g->link_down_usec ? t : 0;
}
