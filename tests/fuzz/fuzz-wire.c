/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the gossip codec and, behind it, the membership rules.
 *
 * Runs under libFuzzer, or as a test with fuzz-driver.c (seeds from fuzz_seeds() mutated). */
#include <glib.h>
#include <stdio.h>
#include <sys/socket.h>

#include "electiond-keyring.h"
#include "electiond-membership.h"
#include "electiond-seal.h"
#include "electiond-util.h"
#include "electiond-wire.h"
#include "fuzz.h"

static const char key[] = "fuzz-key-0123456789abcdef";

/* Input byte 0 picks the mode: odd = the rest is a packet whose MAC we fix up first, so that
 * mutations reach the parser and the rules; even = the rest is taken as is. Bit 1 set: a wire
 * with Encrypt=yes decodes it, after sealing it (odd) or as an envelope as is (even). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static Wire *w = NULL, *sealed = NULL;
        static Keyring *ring = NULL;
        Wire *wire;
        static Membership *m = NULL;
        static uint64_t now = 1000000;
        GossipMessage msgs[WIRE_MESSAGES_MAX];
        MembershipActions actions = {};
        uint8_t *buf;
        int n;

        if (!w) {
                MemberAddress a = { .family = AF_INET, .addr = { 198, 18, 0, 9 }, .port = 7946 };
                log_set_max_level(LOG_CRIT);
                w = wire_new("fuzz", key, sizeof key - 1, 0x99, 1);
                sealed = wire_new("fuzz", key, sizeof key - 1, 0x99, 1);
                ring = keyring_new_single(key, sizeof key - 1);
                keyring_set_encrypt(ring, true);
                g_assert(wire_set_keyring(sealed, ring) == 0);
                m = membership_new(NULL, "fuzzer", 0x99, 1, &a, 1, NULL, 0, now, NULL, NULL);
        }
        if (size < 1)
                return 0;

        buf = g_memdup2(data + 1, size - 1);
        size--;
        if ((data[0] & 1) && size >= WIRE_HMAC_SIZE) {
                /* a fresh seq (header of cluster "fuzz": epoch at 18..25, seq at 26..33), or the replay
                 * window would stop nearly every mutation before the parser */
                static uint64_t seq = 1000;
                if (size >= 34 + WIRE_HMAC_SIZE) {
                        seq++;
                        for (int i = 0; i < 8; i++) {
                                buf[18 + i] = i == 7 ? 7 : 0; /* and the epoch: a raised one would lock out the rest */
                                buf[26 + i] = (uint8_t) (seq >> (56 - 8 * i));
                        }
                }
                GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, (const guchar *) key, sizeof key - 1);
                gsize len = WIRE_HMAC_SIZE;
                g_hmac_update(h, buf, (gssize) (size - WIRE_HMAC_SIZE));
                g_hmac_get_digest(h, buf + size - WIRE_HMAC_SIZE, &len);
                g_hmac_unref(h);
        }
        wire = data[0] & 2 ? sealed : w;
        if ((data[0] & 3) == 3 && size <= WIRE_PACKET_MAX) {
                uint8_t *env = g_malloc(size + SEAL_OVERHEAD);
                size_t esz;
                g_assert(seal_packet(ring, WIRE_SEALED_MAGIC, buf, size, env, size + SEAL_OVERHEAD, &esz) == 0);
                g_free(buf);
                buf = env;
                size = esz;
        }
        n = wire_decode(wire, buf, size, NULL, msgs, G_N_ELEMENTS(msgs));
        if (n > 0) {
                if (getenv("FUZZ_WIRE_VERBOSE"))
                        fprintf(stderr, "accepted %d messages\n", n);
                for (int i = 0; i < n; i++)
                        g_assert(gossip_message_valid(&msgs[i]));
                now += 1000;
                (void) membership_receive(m, msgs, (size_t) n, NULL, now, &actions);
                membership_actions_clear(&actions);
                now += 50000;
                (void) membership_tick(m, now, &actions);
                /* what the rules produce must always be encodable */
                for (size_t i = 0; i < actions.n; i++) {
                        uint8_t out[WIRE_SEALED_MAX];
                        size_t osz;
                        g_assert(wire_encode(wire, actions.items[i].messages, actions.items[i].n_messages,
                                             out, sizeof out, &osz) == 0);
                }
                membership_actions_clear(&actions);
        }
        g_free(buf);
        return 0;
}

/* Valid packets from a peer, in both modes. */
void fuzz_seeds(GPtrArray *out) {
        Wire *peer = wire_new("fuzz", key, sizeof key - 1, 0x42, 7);
        GossipMessage seed[] = {
                { .type = GOSSIP_ALIVE, .name = "peer", .node_id = 0x42, .incarnation = 3, .n_addresses = 1,
                  .addresses = { { .family = AF_INET, .addr = { 198, 18, 0, 2 }, .port = 7946 } }, .tags_size = 3, .tags = "abc" },
                { .type = GOSSIP_PING, .seq = 1, .name = "fuzzer" },
                { .type = GOSSIP_SUSPECT, .name = "fuzzer", .from = "peer", .incarnation = 1 },
                { .type = GOSSIP_PING_REQ, .seq = 2, .name = "other", .n_addresses = 1,
                  .addresses = { { .family = AF_INET6, .port = 1 } } },
                { .type = GOSSIP_ACK, .seq = 5 },
                { .type = GOSSIP_DEAD, .name = "other", .from = "peer", .incarnation = 2, .silent_usec = 600000 },
                { .type = GOSSIP_LEFT, .name = "third", .incarnation = 1 },
                { .type = GOSSIP_ALIVE, .name = "third", .node_id = 0x43, .incarnation = 1 },
                /* IPv6: a global and a link-local address (no scope on the wire), v6 PING_REQ */
                { .type = GOSSIP_ALIVE, .name = "six", .node_id = 0x44, .incarnation = 2, .n_addresses = 3,
                  .addresses = { { .family = AF_INET6, .addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 6 }, .port = 7946 },
                                 { .family = AF_INET6, .addr = { 0xfe, 0x80, [14] = 0xed, [15] = 6 }, .port = 7946 },
                                 { .family = AF_INET, .addr = { 198, 18, 0, 6 }, .port = 7946 } } },
                { .type = GOSSIP_PING_REQ, .seq = 3, .name = "six", .n_addresses = 2,
                  .addresses = { { .family = AF_INET6, .addr = { 0xfe, 0x80, [15] = 1 }, .port = 7946 },
                                 { .family = AF_INET6, .addr = { 0xfd, 0x00, [15] = 1 }, .port = 7000 } } },
        };

        for (size_t n = 1; n <= G_N_ELEMENTS(seed); n++)
                for (uint8_t mode = 0; mode < 4; mode++) {
                        uint8_t pkt[1 + WIRE_PACKET_MAX];
                        size_t sz;

                        pkt[0] = mode;
                        g_assert(wire_encode(peer, seed, n, pkt + 1, WIRE_PACKET_MAX, &sz) == 0);
                        g_ptr_array_add(out, g_bytes_new(pkt, sz + 1));
                }
        wire_free(peer);
}
