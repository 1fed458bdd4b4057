/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The gossip runtime: UDP sockets on Port (0.0.0.0 and, IPV6_V6ONLY, [::]; AddressFamily= may
 * leave one out) on sd-event, the membership rules
 * driven by a CLOCK_BOOTTIME timer with 1 µs accuracy at high priority, the wire codec, libnl
 * for the addresses to advertise and for link changes, multicast discovery on the configured
 * interfaces and unicast pings to Peers=.
 *
 * Multicast discovery groups: 239.255.46.80 (IPv4 organization-local scope, RFC 2365) on each
 * configured up multicast interface with an IPv4 address, and ff12::2e50 (IPv6 link-local scope,
 * transient: not an IANA-assigned group) joined with IPV6_JOIN_GROUP on each one with any IPv6
 * address (a link-local one is enough); on Port=, TTL / hop limit 1, every second — the IPv6
 * group only on links without IPv4 discovery (it is joined on all: an IPv6-only node's ping is
 * answered by dual-stack ones, which find each other over IPv4). Packets are
 * taken only if they arrived on a configured interface or come from a Peers= address, and then
 * only if they authenticate.
 *
 * Link-local IPv6: gossip carries addresses without a scope (a scope is one node's interface
 * index). A link-local address is used with the scope of the interface we heard it on: the
 * interface a packet from it arrived on, else the one a packet mentioning it arrived on (the
 * former wins), else a Peers= "%ifname"; never heard of, a packet goes out on every configured
 * interface with IPv6.
 *
 * Nothing is created by gossip_new(): no socket exists and nothing is sent until gossip_start().
 * The daemon only starts it when KeyFile= is set. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "electiond-config.h"
#include "electiond-membership.h"
#include "electiond-wire.h"

#define GOSSIP_MULTICAST_GROUP "239.255.46.80"
#define GOSSIP_MULTICAST_GROUP6 "ff12::2e50"
#define GOSSIP_DISCOVERY_INTERVAL_USEC (1 * USEC_PER_SEC)

typedef struct Gossip Gossip;

typedef struct GossipCallbacks {
        /* A member joined, changed state or changed tags/addresses (see MembershipEvent). */
        void (*member_event)(Gossip *g, MembershipEvent event, const Member *member, void *userdata);
        /* Our own connectivity changed: any_up is false when no configured interface is up with
         * an address. Called at once on a netlink notification: drop leadership right away. */
        void (*links_changed)(Gossip *g, bool any_up, void *userdata);
        /* Another live process uses our node id (a cloned state directory) or our name (two machines
         * with one host name). we_are_newer: the rule is that the newer one refuses to run. */
        void (*identity_conflict)(Gossip *g, bool same_id, bool we_are_newer, const MemberAddress *from,
                                  void *userdata);
        /* The twin went silent and we took a larger epoch, so that peers (which now hold the twin's
         * newer one) accept us again: the cluster channel must move past `epoch` too. */
        void (*epoch_bumped)(Gossip *g, uint64_t epoch, void *userdata);
} GossipCallbacks;

/* config: cluster name, Interfaces=, Port=, Peers=, AddressFamily=, timing (copied). key: the cluster secret
 * (≥ WIRE_KEY_MIN bytes). node_id: persistent, unique. tags: opaque for the consensus layer
 * (≤ MEMBER_TAGS_MAX bytes). */
int gossip_new(sd_event *event, const Config *config, uint64_t node_id, const void *key, size_t key_size,
               const void *tags, size_t tags_size, const GossipCallbacks *callbacks, void *userdata,
               Gossip **ret);
Gossip *gossip_free(Gossip *g);
/* Shares keyring with the wire (wire_set_keyring()). */
int gossip_set_keyring(Gossip *g, Keyring *keyring);

/* Opens the socket, starts netlink, timers and discovery. */
int gossip_start(Gossip *g);
/* Graceful leave: tells some members, then stops probing (free it afterwards). */
int gossip_leave(Gossip *g);

int gossip_set_tags(Gossip *g, const void *tags, size_t tags_size);
/* Watched members (voters, owners of leaders) are probed every interval. */
int gossip_set_watched(Gossip *g, const char *name, bool watched);

const Membership *gossip_get_membership(const Gossip *g);
const Wire *gossip_get_wire(const Gossip *g);
uint16_t gossip_get_port(const Gossip *g);
/* A member's address as a socket address, with the scope of a link-local one (see above):
 * -ENXIO for a link-local address never heard of. ret_len may be NULL. */
int gossip_resolve(Gossip *g, const MemberAddress *a, struct sockaddr_storage *ret, socklen_t *ret_len);
/* Whether we have a socket of this family and advertise an address of it. */
bool gossip_has_family(const Gossip *g, int family);     /* the bound port (Port=0 → ephemeral) */
uint64_t gossip_get_foreign_drops(const Gossip *g); /* packets from elsewhere than configured */

