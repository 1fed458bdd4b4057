/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Address literals (Peers=, Raft addresses) and the socket address conversions. */
#include <arpa/inet.h>
#include <glib.h>
#include <net/if.h>

#include "electiond-address.h"

static MemberAddress parse_ok(const char *s, uint16_t def, char scope[IF_NAMESIZE]) {
        MemberAddress a;
        g_assert_cmpint(address_parse(s, def, &a, scope), ==, 0);
        return a;
}

static void assert_v6(const MemberAddress *a, const char *ip, uint16_t port) {
        uint8_t want[16];
        g_assert_cmpint(inet_pton(AF_INET6, ip, want), ==, 1);
        g_assert_cmpint(a->family, ==, AF_INET6);
        g_assert_cmpmem(a->addr, 16, want, 16);
        g_assert_cmpuint(a->port, ==, port);
        g_assert_cmpuint(a->reserved, ==, 0);
}

static void test_parse(void) {
        char scope[IF_NAMESIZE];
        MemberAddress a;

        a = parse_ok("198.18.0.1", 7946, scope);
        g_assert_cmpint(a.family, ==, AF_INET);
        g_assert_cmpmem(a.addr, 4, ((uint8_t[]) { 198, 18, 0, 1 }), 4);
        g_assert_cmpuint(a.port, ==, 7946);
        g_assert_cmpstr(scope, ==, "");
        for (size_t i = 4; i < 16; i++)
                g_assert_cmpuint(a.addr[i], ==, 0); /* compared with memcmp() elsewhere */
        a = parse_ok("198.18.0.1:7000", 7946, scope);
        g_assert_cmpuint(a.port, ==, 7000);

        a = parse_ok("2001:db8::1", 7946, scope);
        assert_v6(&a, "2001:db8::1", 7946);
        a = parse_ok("[2001:db8::1]", 7946, scope);
        assert_v6(&a, "2001:db8::1", 7946);
        a = parse_ok("[2001:db8::1]:7000", 7946, scope);
        assert_v6(&a, "2001:db8::1", 7000);
        g_assert_cmpstr(scope, ==, "");
        g_assert_false(member_address_is_link_local(&a));

        a = parse_ok("[fe80::1%eth0]:7946", 1, scope);
        assert_v6(&a, "fe80::1", 7946);
        g_assert_cmpstr(scope, ==, "eth0");
        g_assert_true(member_address_is_link_local(&a));
        g_assert_true(member_address_needs_scope(&a));
        a = parse_ok("fe80::1%3", 7946, scope);
        assert_v6(&a, "fe80::1", 7946);
        g_assert_cmpstr(scope, ==, "3");
        a = parse_ok("::ffff:198.18.0.1", 7946, NULL);
        g_assert_true(member_address_is_v4_mapped(&a));

        static const char *const bad[] = {
                "", "198.18.0", "198.18.0.1:", "198.18.0.1:0", "198.18.0.1:65536", "198.18.0.1:x",
                "198.18.0.1%eth0", "[198.18.0.1]:7946", "2001:db8::1:7946x", "[2001:db8::1", "[2001:db8::1]7946",
                "[2001:db8::1]:", "[2001:db8::1]:0", "[]:7946", "[fe80::1%]:7946", "fe80::1%", "[fe80::1%a%b]:1",
                "[fe80::1%0123456789abcdefg]:1", "host.example:7946", "[::g]:1", " 198.18.0.1",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                MemberAddress before = { .family = 99 };
                a = before;
                if (address_parse(bad[i], 7946, &a, scope) != -EINVAL)
                        g_error("accepted '%s'", bad[i]);
                g_assert_cmpint(a.family, ==, 99); /* untouched on failure */
        }
        g_assert_cmpint(address_parse("198.18.0.1", 0, &a, NULL), ==, -EINVAL); /* no port at all */
}

static void test_scope_resolve(void) {
        uint32_t idx;

        g_assert_cmpint(address_scope_resolve("", &idx), ==, 0);
        g_assert_cmpuint(idx, ==, 0);
        g_assert_cmpint(address_scope_resolve("17", &idx), ==, 0);
        g_assert_cmpuint(idx, ==, 17);
        g_assert_cmpint(address_scope_resolve("lo", &idx), ==, 0);
        g_assert_cmpuint(idx, ==, if_nametoindex("lo"));
        g_assert_cmpint(address_scope_resolve("no-such-if0", &idx), ==, -ENODEV);
}

static void test_sockaddr(void) {
        struct sockaddr_storage ss;
        char buf[ADDRESS_STRLEN];
        MemberAddress a, b;
        uint32_t scope;
        socklen_t len;

        a = parse_ok("[fe80::1]:7946", 1, NULL);
        len = member_address_to_sockaddr(&a, 5, &ss);
        g_assert_cmpuint(len, ==, sizeof(struct sockaddr_in6));
        g_assert_cmpuint(((struct sockaddr_in6 *) &ss)->sin6_scope_id, ==, 5);
        g_assert_cmpuint(ntohs(((struct sockaddr_in6 *) &ss)->sin6_port), ==, 7946);
        g_assert_cmpint(member_address_from_sockaddr((struct sockaddr *) &ss, &b, &scope), ==, 0);
        g_assert_true(member_address_equal(&a, &b));
        g_assert_cmpuint(scope, ==, 5);
        g_assert_cmpmem(&a, sizeof a, &b, sizeof b);

        /* a global address never gets a scope, even if one is offered */
        a = parse_ok("[2001:db8::2]:1", 1, NULL);
        member_address_to_sockaddr(&a, 5, &ss);
        g_assert_cmpuint(((struct sockaddr_in6 *) &ss)->sin6_scope_id, ==, 0);
        g_assert_cmpstr(address_format_sockaddr((struct sockaddr *) &ss, buf), ==, "[2001:db8::2]:1");

        /* link-scoped multicast needs one, site-scoped does not */
        a = parse_ok("[ff12::2e50]:7946", 1, NULL);
        g_assert_true(member_address_needs_scope(&a));
        a = parse_ok("[ff05::2e50]:7946", 1, NULL);
        g_assert_false(member_address_needs_scope(&a));

        a = parse_ok("198.18.0.7:9", 1, NULL);
        len = member_address_to_sockaddr(&a, 5, &ss);
        g_assert_cmpuint(len, ==, sizeof(struct sockaddr_in));
        g_assert_cmpint(member_address_from_sockaddr((struct sockaddr *) &ss, &b, &scope), ==, 0);
        g_assert_cmpmem(&a, sizeof a, &b, sizeof b);
        g_assert_cmpuint(scope, ==, 0);
        g_assert_cmpstr(member_address_format(&a, true, buf), ==, "198.18.0.7:9");
        g_assert_cmpstr(member_address_format(&a, false, buf), ==, "198.18.0.7");

        /* a v4-mapped source (dual-stack socket) is an IPv4 address */
        a = parse_ok("[::ffff:198.18.0.7]:9", 1, NULL);
        member_address_to_sockaddr(&a, 0, &ss);
        g_assert_cmpint(member_address_from_sockaddr((struct sockaddr *) &ss, &b, NULL), ==, 0);
        g_assert_cmpint(b.family, ==, AF_INET);
        g_assert_cmpstr(member_address_format(&b, true, buf), ==, "198.18.0.7:9");
        g_assert_true(member_address_same_host(&b, &(MemberAddress) { .family = AF_INET, .addr = { 198, 18, 0, 7 } }));
        g_assert_false(member_address_equal(&b, &(MemberAddress) { .family = AF_INET, .addr = { 198, 18, 0, 7 } }));

        /* formats: brackets for IPv6 with a port; the scope by name when it exists */
        a = parse_ok("[fe80::a:b]:7946", 1, NULL);
        g_assert_cmpstr(member_address_format(&a, true, buf), ==, "[fe80::a:b]:7946");
        g_assert_cmpstr(member_address_format(&a, false, buf), ==, "fe80::a:b");
        member_address_to_sockaddr(&a, if_nametoindex("lo"), &ss);
        g_assert_cmpstr(address_format_sockaddr((struct sockaddr *) &ss, buf), ==, "[fe80::a:b%lo]:7946");
        member_address_to_sockaddr(&a, 999999, &ss);
        g_assert_cmpstr(address_format_sockaddr((struct sockaddr *) &ss, buf), ==, "[fe80::a:b%999999]:7946");
        /* and what we format parses back */
        g_assert_cmpint(address_parse("[fe80::a:b%lo]:7946", 1, &b, NULL), ==, 0);
        g_assert_true(member_address_equal(&a, &b));

        /* IPv4 first, global IPv6, link-local last */
        g_assert_cmpint(member_address_preference(&(MemberAddress) { .family = AF_INET }), ==, 0);
        a = parse_ok("2001:db8::1", 1, NULL);
        g_assert_cmpint(member_address_preference(&a), ==, 1);
        a = parse_ok("fe80::1", 1, NULL);
        g_assert_cmpint(member_address_preference(&a), ==, 2);

        ss.ss_family = AF_UNIX;
        g_assert_cmpint(member_address_from_sockaddr((struct sockaddr *) &ss, &b, NULL), ==, -EAFNOSUPPORT);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/address/parse", test_parse);
        g_test_add_func("/address/scope-resolve", test_scope_resolve);
        g_test_add_func("/address/sockaddr", test_sockaddr);
        return g_test_run();
}
