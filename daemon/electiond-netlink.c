/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <glib.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <sys/socket.h>

#include "electiond-address.h"
#include "electiond-netlink.h"
#include "electiond-util.h"

#define INTERFACES_MAX 32

struct Netlink {
        sd_event *event;
        sd_event_source *io;
        struct nl_cache_mngr *mngr;
        struct nl_cache *links;
        struct nl_cache *addrs;
        char **interfaces;
        NetlinkChangedFunc callback;
        void *userdata;
        NetlinkInterface current[INTERFACES_MAX];
        size_t n_current;
        bool dirty;
};

static bool wanted(const Netlink *nl, const char *name) {
        return !nl->interfaces || g_strv_contains((const char *const *) nl->interfaces, name);
}

static void collect_family(Netlink *nl, NetlinkInterface *ifc, bool ipv4) {
        for (struct nl_object *o = nl_cache_get_first(nl->addrs); o; o = nl_cache_get_next(o)) {
                struct rtnl_addr *a = (struct rtnl_addr *) o;
                struct nl_addr *local;
                MemberAddress ma = {};
                int family;

                if (rtnl_addr_get_ifindex(a) != ifc->ifindex || ifc->n_addresses >= MEMBER_ADDRESSES_MAX)
                        continue;
                family = rtnl_addr_get_family(a);
                local = rtnl_addr_get_local(a);
                if (!local || (family == AF_INET) != ipv4)
                        continue;
                if (family == AF_INET && nl_addr_get_len(local) == 4)
                        memcpy(ma.addr, nl_addr_get_binary_addr(local), 4);
                else if (family == AF_INET6 && nl_addr_get_len(local) == 16) {
                        /* global and link-local (its scope is this interface: gossip adds it);
                         * not host/site scope, nor addresses still in duplicate address detection,
                         * nor privacy (temporary) or deprecated ones, which come and go */
                        int scope = rtnl_addr_get_scope(a);
                        if ((scope != RT_SCOPE_UNIVERSE && scope != RT_SCOPE_LINK) ||
                            (rtnl_addr_get_flags(a) & (IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_TEMPORARY |
                                                       IFA_F_DEPRECATED)))
                                continue;
                        memcpy(ma.addr, nl_addr_get_binary_addr(local), 16);
                        ma.family = AF_INET6;
                        if (scope == RT_SCOPE_LINK && !member_address_is_link_local(&ma))
                                continue;
                } else
                        continue;
                ma.family = (uint8_t) family;
                if (!member_address_is_link_local(&ma))
                        ifc->routable = true;
                ifc->addresses[ifc->n_addresses++] = ma;
        }
}

/* IPv4 first, so that IPv6 addresses never crowd them out of the slots. */
static void collect_addresses(Netlink *nl, NetlinkInterface *ifc) {
        ifc->n_addresses = 0;
        ifc->routable = false;
        collect_family(nl, ifc, true);
        collect_family(nl, ifc, false);
}

static size_t snapshot(Netlink *nl, NetlinkInterface *out) {
        size_t n = 0;

        for (struct nl_object *o = nl_cache_get_first(nl->links); o && n < INTERFACES_MAX; o = nl_cache_get_next(o)) {
                struct rtnl_link *l = (struct rtnl_link *) o;
                const char *name = rtnl_link_get_name(l);
                unsigned flags = rtnl_link_get_flags(l);
                NetlinkInterface *ifc = &out[n];

                /* the cache may also hold per-family (e.g. AF_BRIDGE) copies that go stale */
                if (!name || rtnl_link_get_family(l) != AF_UNSPEC || !wanted(nl, name))
                        continue;
                memset(ifc, 0, sizeof *ifc); /* compared with memcmp() */
                ifc->ifindex = rtnl_link_get_ifindex(l);
                ifc->up = (flags & IFF_UP) && (flags & IFF_RUNNING);
                ifc->multicast = flags & IFF_MULTICAST;
                ifc->loopback = flags & IFF_LOOPBACK;
                g_strlcpy(ifc->name, name, sizeof ifc->name);
                collect_addresses(nl, ifc);
                /* Default set: up, non-loopback, with an IPv4 or global IPv6 address (every
                 * interface with IPv6 has a link-local one: that alone does not qualify). */
                if (!nl->interfaces && (ifc->loopback || !ifc->up || !ifc->routable))
                        continue;
                n++;
        }
        return n;
}

static bool was_up(const Netlink *nl, int ifindex) {
        for (size_t i = 0; i < nl->n_current; i++)
                if (nl->current[i].ifindex == ifindex)
                        return nl->current[i].up;
        return false;
}

int netlink_refresh(Netlink *nl) {
        NetlinkInterface next[INTERFACES_MAX];
        size_t n = snapshot(nl, next);
        bool lost = false;

        nl->dirty = false;
        if (n == nl->n_current && memcmp(next, nl->current, n * sizeof next[0]) == 0)
                return 0;

        for (size_t i = 0; i < nl->n_current; i++) {
                const NetlinkInterface *old = &nl->current[i];
                bool still_up = false;

                if (!old->up)
                        continue;
                for (size_t j = 0; j < n; j++)
                        if (next[j].ifindex == old->ifindex)
                                still_up = next[j].up;
                if (!still_up)
                        lost = true;
        }
        for (size_t j = 0; j < n; j++)
                log_debug("netlink: %s (%d) %s, %zu address(es)%s", next[j].name, next[j].ifindex,
                          next[j].up ? "up" : "down", next[j].n_addresses,
                          was_up(nl, next[j].ifindex) != next[j].up ? " (changed)" : "");

        memcpy(nl->current, next, n * sizeof next[0]);
        nl->n_current = n;
        if (nl->callback)
                nl->callback(nl, lost, nl->userdata);
        return 1;
}

static void on_change(struct nl_cache *cache, struct nl_object *obj, int action, void *userdata) {
        Netlink *nl = userdata;
        nl->dirty = true;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Netlink *nl = userdata;
        int r;

        r = nl_cache_mngr_data_ready(nl->mngr);
        if (r < 0) {
                log_warning("netlink: %s", nl_geterror(r));
                nl->dirty = true;
        }
        if (nl->dirty)
                (void) netlink_refresh(nl);
        return 0;
}

static int nl_to_errno(int r) {
        /* libnl has its own error codes; there is no exact mapping */
        return r == -NLE_NOMEM ? -ENOMEM : -EIO;
}

int netlink_new(sd_event *event, char *const *interfaces, NetlinkChangedFunc callback, void *userdata,
                Netlink **ret) {
        Netlink *nl;
        int r;

        if (!event || !ret)
                return -EINVAL;

        nl = g_new0(Netlink, 1);
        nl->event = sd_event_ref(event);
        nl->interfaces = interfaces && interfaces[0] ? g_strdupv((char **) interfaces) : NULL;
        nl->callback = callback;
        nl->userdata = userdata;

        r = nl_cache_mngr_alloc(NULL, NETLINK_ROUTE, NL_AUTO_PROVIDE, &nl->mngr);
        if (r < 0) {
                r = log_error_errno(nl_to_errno(r), "netlink: cannot create cache manager: %s", nl_geterror(r));
                goto fail;
        }
        r = nl_cache_mngr_add(nl->mngr, "route/link", on_change, nl, &nl->links);
        if (r >= 0)
                r = nl_cache_mngr_add(nl->mngr, "route/addr", on_change, nl, &nl->addrs);
        if (r < 0) {
                r = log_error_errno(nl_to_errno(r), "netlink: cannot watch links/addresses: %s", nl_geterror(r));
                goto fail;
        }
        r = sd_event_add_io(event, &nl->io, nl_cache_mngr_get_fd(nl->mngr), EPOLLIN, on_io, nl);
        if (r < 0) {
                log_error_errno(r, "netlink: cannot add io source: %m");
                goto fail;
        }
        /* Link loss matters for the lease: handle it before ordinary traffic. */
        (void) sd_event_source_set_priority(nl->io, SD_EVENT_PRIORITY_IMPORTANT);
        (void) sd_event_source_set_description(nl->io, "netlink");

        nl->n_current = snapshot(nl, nl->current);
        *ret = nl;
        return 0;

fail:
        netlink_free(nl);
        return r;
}

Netlink *netlink_free(Netlink *nl) {
        if (!nl)
                return NULL;
        sd_event_source_disable_unref(nl->io);
        /* the manager owns the caches it provided */
        if (nl->mngr)
                nl_cache_mngr_free(nl->mngr);
        g_strfreev(nl->interfaces);
        sd_event_unref(nl->event);
        g_free(nl);
        return NULL;
}

const NetlinkInterface *netlink_get_interfaces(const Netlink *nl, size_t *ret_n) {
        *ret_n = nl->n_current;
        return nl->current;
}

bool netlink_any_up(const Netlink *nl) {
        for (size_t i = 0; i < nl->n_current; i++)
                if (nl->current[i].up && nl->current[i].n_addresses > 0)
                        return true;
        return false;
}
