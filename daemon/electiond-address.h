/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Address literals and conversions, IPv4 and IPv6, no I/O.
 *
 * Accepted forms (config Peers=, Raft addresses):
 *   192.0.2.1            192.0.2.1:7946
 *   2001:db8::1          [2001:db8::1]         [2001:db8::1]:7946
 *   fe80::1%eth0         [fe80::1%eth0]:7946   [fe80::1%2]:7946
 * A port needs the brackets with IPv6. The scope ("%eth0" or "%2") names an interface of this
 * node; it matters only for link-local addresses (fe80::/10), which mean nothing without one.
 * Gossip never carries scopes: they are local to each node (see electiond-gossip.h). */

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "electiond-membership.h"

/* "[" v6 "%" ifname "]:" port, with room to spare */
#define ADDRESS_STRLEN (INET6_ADDRSTRLEN + IF_NAMESIZE + 16)

/* Parses s into ret (port default_port when s has none). ret_scope (may be NULL) receives the
 * scope as written ("" if none; IF_NAMESIZE bytes); it is not resolved here. -EINVAL when malformed, a scope on an
 * IPv4 address, or a port of 0. */
int address_parse(const char *s, uint16_t default_port, MemberAddress *ret, char *ret_scope);
/* "eth0" → its index, "3" → 3, "" → 0. -ENODEV for an unknown interface name. */
int address_scope_resolve(const char *scope, uint32_t *ret);

bool member_address_is_link_local(const MemberAddress *a);
bool member_address_is_v4_mapped(const MemberAddress *a);
/* Link-local unicast or link/interface-local multicast: meaningless without an interface. */
bool member_address_needs_scope(const MemberAddress *a);
/* Which address of a node to prefer, lowest first: 0 IPv4 (what every version used), 1 global
 * IPv6, 2 link-local IPv6. */
int member_address_preference(const MemberAddress *a);
/* Equal family, address and port. */
bool member_address_equal(const MemberAddress *a, const MemberAddress *b);
/* Equal family and address, port ignored. */
bool member_address_same_host(const MemberAddress *a, const MemberAddress *b);

/* scope_id is used only where member_address_needs_scope(). Returns the length of the sockaddr. */
socklen_t member_address_to_sockaddr(const MemberAddress *a, uint32_t scope_id, struct sockaddr_storage *ret);
/* IPv4-mapped IPv6 (::ffff:a.b.c.d) comes back as AF_INET. ret_scope (may be NULL): the IPv6
 * scope id, else 0. -EAFNOSUPPORT for other families. */
int member_address_from_sockaddr(const struct sockaddr *sa, MemberAddress *ret, uint32_t *ret_scope);

/* "192.0.2.1:7946", "[2001:db8::1]:7946", or without ":port" when with_port is false (and then
 * without brackets). Never a scope: see address_format_sockaddr() for that. Returns buf. */
char *member_address_format(const MemberAddress *a, bool with_port, char buf[static ADDRESS_STRLEN]);
/* Like member_address_format() with the port, with "%ifname" (or "%index") for link-local. */
char *address_format_sockaddr(const struct sockaddr *sa, char buf[static ADDRESS_STRLEN]);
