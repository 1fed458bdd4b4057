/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "electiond-address.h"
#include "electiond-util.h"

static int parse_port(const char *s, uint16_t *ret) {
        guint64 u;

        if (!g_ascii_string_to_unsigned(s, 10, 1, 65535, &u, NULL))
                return -EINVAL;
        *ret = (uint16_t) u;
        return 0;
}

/* "fe80::1%eth0" → address and scope. */
static int parse_v6(const char *s, size_t n, MemberAddress *a, char scope[static IF_NAMESIZE]) {
        char host[INET6_ADDRSTRLEN];
        const char *pct = memchr(s, '%', n);
        size_t hn = pct ? (size_t) (pct - s) : n;

        scope[0] = 0;
        if (hn == 0 || hn >= sizeof host)
                return -EINVAL;
        memcpy(host, s, hn);
        host[hn] = 0;
        if (inet_pton(AF_INET6, host, a->addr) != 1)
                return -EINVAL;
        if (pct) {
                size_t sn = n - hn - 1;
                if (sn == 0 || sn >= IF_NAMESIZE || memchr(pct + 1, '/', sn) || memchr(pct + 1, '%', sn))
                        return -EINVAL;
                memcpy(scope, pct + 1, sn);
                scope[sn] = 0;
        }
        a->family = AF_INET6;
        return 0;
}

int address_parse(const char *s, uint16_t default_port, MemberAddress *ret, char *ret_scope) {
        MemberAddress a = { .port = default_port };
        char scope[IF_NAMESIZE] = "";
        const char *colon;
        int r;

        if (!s || !*s || !ret)
                return -EINVAL;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close)
                        return -EINVAL;
                r = parse_v6(s + 1, (size_t) (close - s - 1), &a, scope);
                if (r < 0)
                        return r;
                if (close[1] == ':') {
                        if (parse_port(close + 2, &a.port) < 0)
                                return -EINVAL;
                } else if (close[1] != 0)
                        return -EINVAL;
        } else if ((colon = strchr(s, ':')) && strchr(colon + 1, ':')) {
                /* two colons or more: a bare IPv6 literal, no port */
                r = parse_v6(s, strlen(s), &a, scope);
                if (r < 0)
                        return r;
        } else {
                char host[INET_ADDRSTRLEN];
                size_t hn = colon ? (size_t) (colon - s) : strlen(s);

                if (hn == 0 || hn >= sizeof host)
                        return -EINVAL;
                memcpy(host, s, hn);
                host[hn] = 0;
                if (inet_pton(AF_INET, host, a.addr) != 1)
                        return -EINVAL;
                if (colon && parse_port(colon + 1, &a.port) < 0)
                        return -EINVAL;
                a.family = AF_INET;
        }
        if (a.port == 0)
                return -EINVAL;
        *ret = a;
        if (ret_scope)
                g_strlcpy(ret_scope, scope, IF_NAMESIZE);
        return 0;
}

int address_scope_resolve(const char *scope, uint32_t *ret) {
        guint64 u;
        unsigned idx;

        if (!scope || !*scope) {
                *ret = 0;
                return 0;
        }
        if (g_ascii_string_to_unsigned(scope, 10, 1, UINT32_MAX, &u, NULL)) {
                *ret = (uint32_t) u;
                return 0;
        }
        idx = if_nametoindex(scope);
        if (idx == 0)
                return -ENODEV;
        *ret = idx;
        return 0;
}

bool member_address_is_link_local(const MemberAddress *a) {
        return a->family == AF_INET6 && a->addr[0] == 0xfe && (a->addr[1] & 0xc0) == 0x80;
}

bool member_address_needs_scope(const MemberAddress *a) {
        /* link-local unicast, or multicast of interface- or link-local scope */
        return member_address_is_link_local(a) ||
                (a->family == AF_INET6 && a->addr[0] == 0xff && ((a->addr[1] & 0x0f) == 1 || (a->addr[1] & 0x0f) == 2));
}

bool member_address_is_v4_mapped(const MemberAddress *a) {
        static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };
        return a->family == AF_INET6 && memcmp(a->addr, prefix, sizeof prefix) == 0;
}

int member_address_preference(const MemberAddress *a) {
        return a->family == AF_INET ? 0 : member_address_is_link_local(a) ? 2 : 1;
}

bool member_address_same_host(const MemberAddress *a, const MemberAddress *b) {
        if (a->family != b->family)
                return false;
        return memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}

bool member_address_equal(const MemberAddress *a, const MemberAddress *b) {
        return member_address_same_host(a, b) && a->port == b->port;
}

socklen_t member_address_to_sockaddr(const MemberAddress *a, uint32_t scope_id, struct sockaddr_storage *ret) {
        memset(ret, 0, sizeof *ret);
        if (a->family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) ret;
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons(a->port);
                memcpy(&s6->sin6_addr, a->addr, 16);
                if (member_address_needs_scope(a))
                        s6->sin6_scope_id = scope_id;
                return sizeof *s6;
        }
        struct sockaddr_in *s4 = (struct sockaddr_in *) ret;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(a->port);
        memcpy(&s4->sin_addr, a->addr, 4);
        return sizeof *s4;
}

int member_address_from_sockaddr(const struct sockaddr *sa, MemberAddress *ret, uint32_t *ret_scope) {
        MemberAddress a = {};
        uint32_t scope = 0;

        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *s4 = (const struct sockaddr_in *) sa;
                a.family = AF_INET;
                a.port = ntohs(s4->sin_port);
                memcpy(a.addr, &s4->sin_addr, 4);
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *) sa;
                a.family = AF_INET6;
                a.port = ntohs(s6->sin6_port);
                memcpy(a.addr, &s6->sin6_addr, 16);
                if (member_address_is_v4_mapped(&a)) {
                        memmove(a.addr, a.addr + 12, 4);
                        memset(a.addr + 4, 0, 12);
                        a.family = AF_INET;
                } else
                        scope = s6->sin6_scope_id;
        } else
                return -EAFNOSUPPORT;
        *ret = a;
        if (ret_scope)
                *ret_scope = scope;
        return 0;
}

char *member_address_format(const MemberAddress *a, bool with_port, char buf[static ADDRESS_STRLEN]) {
        char ip[INET6_ADDRSTRLEN] = "?";

        (void) inet_ntop(a->family == AF_INET6 ? AF_INET6 : AF_INET, a->addr, ip, sizeof ip);
        if (!with_port)
                g_strlcpy(buf, ip, ADDRESS_STRLEN);
        else if (a->family == AF_INET6)
                snprintf(buf, ADDRESS_STRLEN, "[%s]:%u", ip, a->port);
        else
                snprintf(buf, ADDRESS_STRLEN, "%s:%u", ip, a->port);
        return buf;
}

char *address_format_sockaddr(const struct sockaddr *sa, char buf[static ADDRESS_STRLEN]) {
        char ip[INET6_ADDRSTRLEN] = "?", ifname[IF_NAMESIZE];
        MemberAddress a;
        uint32_t scope;

        if (member_address_from_sockaddr(sa, &a, &scope) < 0) {
                g_strlcpy(buf, "?", ADDRESS_STRLEN);
                return buf;
        }
        if (a.family != AF_INET6 || !member_address_needs_scope(&a) || scope == 0)
                return member_address_format(&a, true, buf);
        (void) inet_ntop(AF_INET6, a.addr, ip, sizeof ip);
        if (if_indextoname(scope, ifname))
                snprintf(buf, ADDRESS_STRLEN, "[%s%%%s]:%u", ip, ifname, a.port);
        else
                snprintf(buf, ADDRESS_STRLEN, "[%s%%%u]:%u", ip, scope, a.port);
        return buf;
}
