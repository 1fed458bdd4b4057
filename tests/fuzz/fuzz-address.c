/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for address literals (Peers=, Raft addresses): whatever parses formats back to
 * something that parses to the same address. */
#include <glib.h>
#include <net/if.h>

#include "electiond-address.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autofree char *s = g_strndup((const char *) data, size);
        char scope[IF_NAMESIZE], buf[ADDRESS_STRLEN];
        MemberAddress a, b;
        struct sockaddr_storage ss;

        if (address_parse(s, 7946, &a, scope) < 0)
                return 0;
        g_assert(a.family == AF_INET || a.family == AF_INET6);
        g_assert(a.port != 0 && a.reserved == 0);
        g_assert(strlen(scope) < IF_NAMESIZE);
        g_assert(a.family == AF_INET6 || scope[0] == 0);
        g_assert(address_parse(member_address_format(&a, true, buf), 1, &b, NULL) == 0);
        g_assert(memcmp(&a, &b, sizeof a) == 0);
        member_address_to_sockaddr(&a, 7, &ss);
        g_assert(member_address_from_sockaddr((struct sockaddr *) &ss, &b, NULL) == 0);
        g_assert(member_address_same_host(&a, &b) || member_address_is_v4_mapped(&a));
        (void) address_format_sockaddr((struct sockaddr *) &ss, buf);
        return 0;
}

void fuzz_seeds(GPtrArray *out) {
        static const char *seeds[] = {
                "198.18.0.1", "198.18.0.1:7000", "2001:db8::1", "[2001:db8::1]:7946", "[fe80::1%eth0]:7946",
                "fe80::1%2", "[::ffff:198.18.0.1]:1", "[ff12::2e50]:7946", "::", "[::1]",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(seeds); i++)
                g_ptr_array_add(out, g_bytes_new(seeds[i], strlen(seeds[i])));
}
