/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Watches links and addresses with libnl-route (a cache manager whose socket is an sd-event io
 * source) and reports the configured interfaces: their state and the addresses to advertise.
 * Read-only: it never changes anything on the system. */

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "electiond-membership.h"

typedef struct NetlinkInterface {
        int ifindex;
        char name[IF_NAMESIZE];
        bool up;                /* IFF_UP and IFF_RUNNING (carrier) */
        bool multicast;         /* IFF_MULTICAST */
        bool loopback;
        MemberAddress addresses[MEMBER_ADDRESSES_MAX];  /* IPv4, global and link-local IPv6; port 0 */
        size_t n_addresses;
        bool routable;          /* has an IPv4 or a global IPv6 address (not only link-local) */
} NetlinkInterface;

typedef struct Netlink Netlink;

/* Called after any change of the configured interfaces (state or addresses). link_lost is true
 * when a configured interface that was up went down (or vanished) in this change. */
typedef void (*NetlinkChangedFunc)(Netlink *nl, bool link_lost, void *userdata);

/* interfaces: names to watch; NULL = every up, non-loopback interface with an IPv4 or global
 * IPv6 address. */
int netlink_new(sd_event *event, char *const *interfaces, NetlinkChangedFunc callback, void *userdata,
                Netlink **ret);
Netlink *netlink_free(Netlink *nl);

/* The configured interfaces that exist, up or not (for NULL config: those up with an address). */
const NetlinkInterface *netlink_get_interfaces(const Netlink *nl, size_t *ret_n);
/* Whether any configured interface is up with an address. */
bool netlink_any_up(const Netlink *nl);
/* Re-reads the caches now (also done on every netlink notification). */
int netlink_refresh(Netlink *nl);
