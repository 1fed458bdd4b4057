/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <stdio.h>
#include <sys/socket.h>

#include "electiond-keyring.h"
#include "electiond-util.h"
#include "electiond-wire.h"

static const char key[] = "0123456789abcdef-cluster-key";
static const char other_key[] = "0123456789abcdef-cluster-kez";

static size_t header_size(const char *cluster) {
        return 4 + 1 + 1 + strlen(cluster) + 8 + 8 + 8;
}

/* One of each message type, fields filled to the brim where it matters. */
static size_t sample_messages(GossipMessage *m, uint64_t sender) {
        size_t n = 0;

        m[n] = (GossipMessage) { .type = GOSSIP_ALIVE, .node_id = sender, .incarnation = 7,
                                 .n_addresses = 2, .tags_size = 5 };
        g_strlcpy(m[n].name, "alpha", sizeof m[n].name);
        m[n].addresses[0] = (MemberAddress) { .family = AF_INET, .addr = { 198, 18, 0, 1 }, .port = 7946 };
        m[n].addresses[1] = (MemberAddress) { .family = AF_INET6, .addr = { 0xfe, 0x80, [15] = 1 }, .port = 65535 };
        memcpy(m[n].tags, "r=1\0x", 5);
        n++;
        m[n] = (GossipMessage) { .type = GOSSIP_PING, .seq = 0xfffffffe };
        n++; /* empty target: discovery */
        m[n] = (GossipMessage) { .type = GOSSIP_PING_REQ, .seq = 3, .n_addresses = 1 };
        g_strlcpy(m[n].name, "gamma", sizeof m[n].name);
        m[n].addresses[0] = (MemberAddress) { .family = AF_INET, .addr = { 198, 18, 0, 3 }, .port = 1 };
        n++;
        m[n] = (GossipMessage) { .type = GOSSIP_ACK, .seq = 4 };
        n++;
        m[n] = (GossipMessage) { .type = GOSSIP_NACK, .seq = 5 };
        n++;
        m[n] = (GossipMessage) { .type = GOSSIP_SUSPECT, .incarnation = UINT64_MAX, .silent_usec = 123456 };
        memset(m[n].name, 'n', MEMBER_NAME_MAX);
        g_strlcpy(m[n].from, "bëta", sizeof m[n].from);
        n++;
        m[n] = (GossipMessage) { .type = GOSSIP_DEAD, .incarnation = 9, .silent_usec = 1 };
        g_strlcpy(m[n].name, "gamma", sizeof m[n].name);
        g_strlcpy(m[n].from, "alpha", sizeof m[n].from);
        n++;
        m[n] = (GossipMessage) { .type = GOSSIP_LEFT, .incarnation = 10 };
        g_strlcpy(m[n].name, "delta", sizeof m[n].name);
        n++;
        m[n] = (GossipMessage) { .type = GOSSIP_USER, .seq = 77, .tags_size = MEMBER_TAGS_MAX };
        memset(m[n].tags, 0xa5, MEMBER_TAGS_MAX);
        n++;
        return n;
}

static void test_round_trip(void) {
        Wire *a = wire_new("lab", key, sizeof key - 1, 0xA, 100);
        Wire *b = wire_new("lab", key, sizeof key - 1, 0xB, 200);
        GossipMessage in[16], out[16];
        uint8_t buf[WIRE_PACKET_MAX];
        WirePacketInfo info;
        size_t n = sample_messages(in, 0xA), size, expect;

        expect = header_size("lab") + WIRE_HMAC_SIZE;
        for (size_t i = 0; i < n; i++)
                expect += gossip_message_wire_size(&in[i]);
        g_assert_cmpint(wire_encode(a, in, n, buf, sizeof buf, &size), ==, 0);
        g_assert_cmpuint(size, ==, expect);
        g_assert_cmpint(wire_decode(b, buf, size, &info, out, G_N_ELEMENTS(out)), ==, (int) n);
        g_assert_cmpuint(info.sender_id, ==, 0xA);
        g_assert_cmpuint(info.epoch, ==, 100);
        g_assert_cmpuint(info.seq, ==, 1);
        for (size_t i = 0; i < n; i++)
                g_assert_cmpmem(&in[i], sizeof in[i], &out[i], sizeof out[i]);
        g_assert_cmpuint(wire_accepted_count(b), ==, 1);

        /* too small a buffer */
        g_assert_cmpint(wire_encode(a, in, n, buf, expect - 1, &size), ==, -EMSGSIZE);
        /* invalid message refused at encode time */
        in[1].type = 0;
        g_assert_cmpint(wire_encode(a, in, n, buf, sizeof buf, &size), ==, -EINVAL);
        /* bad parameters */
        g_assert_null(wire_new("lab", key, 8, 1, 1));
        g_assert_null(wire_new("", key, sizeof key - 1, 1, 1));
        wire_free(a);
        wire_free(b);
}

/* IPv6 addresses travel in the layout every version had (family u8, 16 address bytes, port
 * u16): an IPv6-only member, the most addresses a member may have mixing both families, and
 * link-local ones without any scope (a scope is local to each node). */
static void test_ipv6_addresses(void) {
        Wire *a = wire_new("lab", key, sizeof key - 1, 0xA, 100);
        Wire *b = wire_new("lab", key, sizeof key - 1, 0xB, 200);
        GossipMessage in[2] = {}, out[2];
        uint8_t buf[WIRE_PACKET_MAX];
        size_t size, off;

        in[0] = (GossipMessage) { .type = GOSSIP_ALIVE, .node_id = 0xA, .incarnation = 1, .n_addresses = MEMBER_ADDRESSES_MAX };
        g_strlcpy(in[0].name, "six", sizeof in[0].name);
        for (size_t i = 0; i < MEMBER_ADDRESSES_MAX; i++) {
                MemberAddress *m = &in[0].addresses[i];
                if (i % 3 == 2)
                        *m = (MemberAddress) { .family = AF_INET, .addr = { 198, 18, 0, (uint8_t) i }, .port = 7946 };
                else if (i % 3 == 1)
                        *m = (MemberAddress) { .family = AF_INET6, .addr = { 0xfe, 0x80, [8] = 0xed, [15] = (uint8_t) i }, .port = 7946 };
                else
                        *m = (MemberAddress) { .family = AF_INET6, .addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = (uint8_t) i }, .port = (uint16_t) (1 + i) };
        }
        in[1] = (GossipMessage) { .type = GOSSIP_PING_REQ, .seq = 9, .n_addresses = 1 };
        g_strlcpy(in[1].name, "other", sizeof in[1].name);
        in[1].addresses[0] = (MemberAddress) { .family = AF_INET6, .addr = { 0xfd, 0x00, [15] = 1 }, .port = 65535 };

        g_assert_cmpint(wire_encode(a, in, 2, buf, sizeof buf, &size), ==, 0);
        g_assert_cmpint(wire_decode(b, buf, size, NULL, out, G_N_ELEMENTS(out)), ==, 2);
        for (size_t i = 0; i < 2; i++)
                g_assert_cmpmem(&in[i], sizeof in[i], &out[i], sizeof out[i]);

        /* the bytes: ALIVE = type, len u16, name, id u64, inc u64, count u8, then 19 per address */
        off = header_size("lab");
        g_assert_cmpuint(buf[off], ==, GOSSIP_ALIVE);
        off += 3 + 1 + strlen("six") + 8 + 8;
        g_assert_cmpuint(buf[off], ==, MEMBER_ADDRESSES_MAX);
        off++;
        g_assert_cmpuint(buf[off], ==, AF_INET6);
        g_assert_cmpmem(buf + off + 1, 16, in[0].addresses[0].addr, 16);
        g_assert_cmpuint(buf[off + 17] << 8 | buf[off + 18], ==, 1);
        off += 19;
        g_assert_cmpuint(buf[off], ==, AF_INET6);
        g_assert_cmpuint(buf[off + 1], ==, 0xfe);
        off += 19;
        g_assert_cmpuint(buf[off], ==, AF_INET);
        g_assert_cmpmem(buf + off + 1, 4, ((uint8_t[]) { 198, 18, 0, 2 }), 4);

        /* an unknown family is malformed, as always */
        buf[off] = 99;
        g_assert_cmpint(wire_decode(b, buf, size, NULL, out, G_N_ELEMENTS(out)), <, 0);
        wire_free(a);
        wire_free(b);
}

static void test_truncations_and_flips(void) {
        Wire *a = wire_new("lab", key, sizeof key - 1, 0xA, 100);
        Wire *b = wire_new("lab", key, sizeof key - 1, 0xB, 200);
        GossipMessage in[16], out[16];
        uint8_t buf[WIRE_PACKET_MAX], copy[WIRE_PACKET_MAX];
        size_t n = sample_messages(in, 0xA), size;
        uint64_t total = 0;

        g_assert_cmpint(wire_encode(a, in, n, buf, sizeof buf, &size), ==, 0);

        for (size_t len = 0; len < size; len++) {
                memcpy(copy, buf, len);
                g_assert_cmpint(wire_decode(b, copy, len, NULL, out, G_N_ELEMENTS(out)), <, 0);
        }
        for (size_t bit = 0; bit < size * 8; bit++) {
                memcpy(copy, buf, size);
                copy[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                g_assert_cmpint(wire_decode(b, copy, size, NULL, out, G_N_ELEMENTS(out)), <, 0);
        }
        for (WireDrop d = 0; d < _WIRE_DROP_MAX; d++)
                total += wire_drop_count(b, d);
        g_assert_cmpuint(total, ==, size + size * 8);
        g_assert_cmpuint(wire_drop_count(b, WIRE_DROP_AUTH), >, size * 8 / 2);
        g_assert_cmpuint(wire_drop_count(b, WIRE_DROP_MAGIC), >=, 4 * 8);
        g_assert_cmpuint(wire_accepted_count(b), ==, 0);

        /* and the untouched packet still passes: failures left the window alone */
        g_assert_cmpint(wire_decode(b, buf, size, NULL, out, G_N_ELEMENTS(out)), ==, (int) n);
        /* appended junk breaks the MAC */
        memcpy(copy, buf, size);
        copy[size] = 0;
        g_assert_cmpint(wire_decode(b, copy, size + 1, NULL, out, G_N_ELEMENTS(out)), ==, -EPERM);
        wire_free(a);
        wire_free(b);
}

static void test_key_and_cluster(void) {
        Wire *a = wire_new("lab", key, sizeof key - 1, 0xA, 100);
        Wire *wrong_key = wire_new("lab", other_key, sizeof other_key - 1, 0xB, 200);
        Wire *wrong_cluster = wire_new("lab2", key, sizeof key - 1, 0xC, 200);
        Wire *self = wire_new("lab", key, sizeof key - 1, 0xA, 300);
        GossipMessage in[16], out[16];
        uint8_t buf[WIRE_PACKET_MAX];
        size_t n = sample_messages(in, 0xA), size;

        g_assert_cmpint(wire_encode(a, in, n, buf, sizeof buf, &size), ==, 0);
        g_assert_cmpint(wire_decode(wrong_key, buf, size, NULL, out, 16), ==, -EPERM);
        g_assert_cmpuint(wire_drop_count(wrong_key, WIRE_DROP_AUTH), ==, 1);
        g_assert_cmpint(wire_decode(wrong_cluster, buf, size, NULL, out, 16), ==, -EXDEV);
        g_assert_cmpuint(wire_drop_count(wrong_cluster, WIRE_DROP_CLUSTER), ==, 1);
        /* our id, another epoch: a twin (or our previous run), told apart from our own packets */
        WirePacketInfo info = {};
        g_assert_cmpint(wire_decode(self, buf, size, &info, out, 16), ==, -ENOTUNIQ);
        g_assert_cmpuint(info.epoch, ==, 100);
        g_assert_cmpuint(info.sender_id, ==, 0xA);
        g_assert_cmpuint(wire_drop_count(self, WIRE_DROP_SELF), ==, 1);
        g_assert_cmpint(wire_decode(a, buf, size, NULL, out, 16), ==, -ELOOP); /* our very own */
        g_assert_cmpuint(wire_drop_count(a, WIRE_DROP_SELF), ==, 1);
        wire_free(a);
        wire_free(wrong_key);
        wire_free(wrong_cluster);
        wire_free(self);
}

static void encode_one(Wire *w, uint8_t *buf, size_t *size) {
        GossipMessage in[16];
        size_t n = sample_messages(in, 0xA);
        g_assert_cmpint(wire_encode(w, in, n, buf, WIRE_PACKET_MAX, size), ==, 0);
}

static void test_replay(void) {
        Wire *a = wire_new("lab", key, sizeof key - 1, 0xA, 100);
        Wire *b = wire_new("lab", key, sizeof key - 1, 0xB, 200);
        static uint8_t pkt[100][WIRE_PACKET_MAX];
        size_t sz[100];
        GossipMessage out[16];

        for (int i = 0; i < 100; i++)
                encode_one(a, pkt[i], &sz[i]);

        g_assert_cmpint(wire_decode(b, pkt[50], sz[50], NULL, out, 16), >, 0);
        g_assert_cmpint(wire_decode(b, pkt[50], sz[50], NULL, out, 16), ==, -EALREADY);
        /* reordering inside the window is fine, once */
        g_assert_cmpint(wire_decode(b, pkt[40], sz[40], NULL, out, 16), >, 0);
        g_assert_cmpint(wire_decode(b, pkt[40], sz[40], NULL, out, 16), ==, -EALREADY);
        g_assert_cmpint(wire_decode(b, pkt[99], sz[99], NULL, out, 16), >, 0);
        /* 50 is still remembered; 35 fell out of the window (99 - 35 >= 64) */
        g_assert_cmpint(wire_decode(b, pkt[50], sz[50], NULL, out, 16), ==, -EALREADY);
        g_assert_cmpint(wire_decode(b, pkt[35], sz[35], NULL, out, 16), ==, -EALREADY);
        g_assert_cmpint(wire_decode(b, pkt[36], sz[36], NULL, out, 16), >, 0);
        g_assert_cmpuint(wire_drop_count(b, WIRE_DROP_REPLAY), ==, 4);
        wire_forget_sender(b, 0xDEAD); /* unknown: nothing happens */

        /* the sender restarts with a larger epoch: its new packets pass, the old life's do not */
        Wire *a2 = wire_new("lab", key, sizeof key - 1, 0xA, 101);
        uint8_t fresh[WIRE_PACKET_MAX];
        size_t fsz;
        encode_one(a2, fresh, &fsz);
        g_assert_cmpint(wire_decode(b, fresh, fsz, NULL, out, 16), >, 0);
        g_assert_cmpint(wire_decode(b, pkt[98], sz[98], NULL, out, 16), ==, -EALREADY);
        wire_free(a2);

        /* a restart whose clock went backwards is locked out... until the sender is forgotten
         * (the gossip does that when the membership declares it dead or left) */
        Wire *a0 = wire_new("lab", key, sizeof key - 1, 0xA, 50);
        uint8_t back[WIRE_PACKET_MAX];
        size_t bsz;
        encode_one(a0, back, &bsz);
        g_assert_cmpint(wire_decode(b, back, bsz, NULL, out, 16), ==, -EALREADY);
        wire_forget_sender(b, 0xA);
        g_assert_cmpint(wire_decode(b, back, bsz, NULL, out, 16), >, 0);
        g_assert_cmpint(wire_decode(b, back, bsz, NULL, out, 16), ==, -EALREADY);
        wire_free(a0);

        /* a big jump clears the bitmap without losing the order */
        Wire *c = wire_new("lab", key, sizeof key - 1, 0xC, 5);
        static uint8_t cp[300][WIRE_PACKET_MAX];
        size_t csz[300];
        GossipMessage in[1] = { { .type = GOSSIP_ALIVE, .node_id = 0xC, .name = "c" } };
        for (int i = 0; i < 300; i++)
                g_assert_cmpint(wire_encode(c, in, 1, cp[i], WIRE_PACKET_MAX, &csz[i]), ==, 0);
        g_assert_cmpint(wire_decode(b, cp[0], csz[0], NULL, out, 16), ==, 1);
        g_assert_cmpint(wire_decode(b, cp[299], csz[299], NULL, out, 16), ==, 1);
        g_assert_cmpint(wire_decode(b, cp[298], csz[298], NULL, out, 16), ==, 1);
        g_assert_cmpint(wire_decode(b, cp[0], csz[0], NULL, out, 16), ==, -EALREADY);
        g_assert_cmpint(wire_decode(b, cp[299], csz[299], NULL, out, 16), ==, -EALREADY);
        wire_free(c);
        wire_free(a);
        wire_free(b);
}

/* Authentic packets with bad insides: the MAC is right, the content is not. */
static void reseal(uint8_t *buf, size_t size) {
        GHmac *h = g_hmac_new(G_CHECKSUM_SHA256, (const guchar *) key, sizeof key - 1);
        gsize len = WIRE_HMAC_SIZE;
        g_hmac_update(h, buf, (gssize) (size - WIRE_HMAC_SIZE));
        g_hmac_get_digest(h, buf + size - WIRE_HMAC_SIZE, &len);
        g_hmac_unref(h);
}

static void test_authentic_garbage(void) {
        Wire *a = wire_new("lab", key, sizeof key - 1, 0xA, 100);
        Wire *b = wire_new("lab", key, sizeof key - 1, 0xB, 200);
        GossipMessage in[16], out[16];
        uint8_t buf[WIRE_PACKET_MAX], copy[WIRE_PACKET_MAX];
        size_t n = sample_messages(in, 0xA), size, hdr = header_size("lab");
        GRand *rand = g_rand_new_with_seed(4);
        unsigned accepted = 0;

        g_assert_cmpint(wire_encode(a, in, n, buf, sizeof buf, &size), ==, 0);

        /* every single-byte change of the body, resealed: never crashes; accepted ones are valid */
        for (size_t pos = hdr; pos < size - WIRE_HMAC_SIZE; pos++)
                for (unsigned k = 0; k < 4; k++) {
                        memcpy(copy, buf, size);
                        copy[pos] = (uint8_t) g_rand_int(rand);
                        /* distinct seq each time, so that the replay window does not hide bugs */
                        copy[hdr - 1] = (uint8_t) (pos * 4 + k);
                        copy[hdr - 2] = (uint8_t) ((pos * 4 + k) >> 8);
                        reseal(copy, size);
                        int r = wire_decode(b, copy, size, NULL, out, G_N_ELEMENTS(out));
                        if (r >= 0) {
                                accepted++;
                                for (int i = 0; i < r; i++)
                                        g_assert_true(gossip_message_valid(&out[i]));
                        } else
                                g_assert_cmpint(r, ==, -EBADMSG);
                }
        printf("# %u of %zu resealed mutations decoded (valid), the rest dropped as malformed\n",
               accepted, (size - WIRE_HMAC_SIZE - hdr) * 4);
        g_assert_cmpuint(wire_drop_count(b, WIRE_DROP_MALFORMED), >, 0);

        /* a first message that is not ALIVE(sender); a new epoch leaves the mutated seqs behind */
        size_t sz2;
        wire_free(a);
        a = wire_new("lab", key, sizeof key - 1, 0xA, 101);
        g_assert_cmpint(wire_encode(a, in + 1, n - 1, buf, sizeof buf, &sz2), ==, 0);
        g_assert_cmpint(wire_decode(b, buf, sz2, NULL, out, 16), ==, -EBADMSG);
        in[0].node_id = 0xD;
        g_assert_cmpint(wire_encode(a, in, n, buf, sizeof buf, &sz2), ==, 0);
        g_assert_cmpint(wire_decode(b, buf, sz2, NULL, out, 16), ==, -EBADMSG);
        /* more messages than the caller has room for */
        in[0].node_id = 0xA;
        g_assert_cmpint(wire_encode(a, in, n, buf, sizeof buf, &sz2), ==, 0);
        g_assert_cmpint(wire_decode(b, buf, sz2, NULL, out, 2), ==, -EBADMSG);
        g_rand_free(rand);
        wire_free(a);
        wire_free(b);
}

/* Signed under the primary, accepted under any installed key; the ring is shared by reference. */
static void test_keyring(void) {
        Wire *a = wire_new("lab", key, sizeof key - 1, 0xA, 100);
        Wire *b = wire_new("lab", other_key, sizeof other_key - 1, 0xB, 200);
        g_autoptr(Keyring) ka = keyring_new_single(key, sizeof key - 1);
        g_autoptr(Keyring) kb = keyring_new_single(other_key, sizeof other_key - 1);
        g_autoptr(Keyring) next = NULL;
        GossipMessage in[16], out[16];
        uint8_t buf[WIRE_PACKET_MAX];
        size_t n = sample_messages(in, 0xA), size;

        g_assert_cmpint(wire_set_keyring(a, ka), ==, 0);
        g_assert_cmpint(wire_set_keyring(b, kb), ==, 0);
        g_assert_cmpint(wire_encode(a, in, n, buf, sizeof buf, &size), ==, 0);
        g_assert_cmpint(wire_decode(b, buf, size, NULL, out, 16), ==, -EPERM);
        g_assert_cmpuint(wire_drop_count(b, WIRE_DROP_AUTH), ==, 1);

        /* b installs a's key as a secondary: accepted */
        g_assert_cmpint(keyring_add(kb, key, sizeof key - 1, false), ==, 0);
        g_assert_cmpint(wire_encode(a, in, n, buf, sizeof buf, &size), ==, 0);
        g_assert_cmpint(wire_decode(b, buf, size, NULL, out, 16), ==, (int) n);
        /* b still signs with its primary, which a lacks */
        GossipMessage bm[1] = { { .type = GOSSIP_ALIVE, .node_id = 0xB, .incarnation = 1 } };
        g_strlcpy(bm[0].name, "beta", sizeof bm[0].name);
        g_assert_cmpint(wire_encode(b, bm, 1, buf, sizeof buf, &size), ==, 0);
        g_assert_cmpint(wire_decode(a, buf, size, NULL, out, 16), ==, -EPERM);
        /* a switches to a ring of both (assign: every holder sees it at once) */
        next = keyring_new_single(other_key, sizeof other_key - 1);
        g_assert_cmpint(keyring_add(next, key, sizeof key - 1, false), ==, 0);
        keyring_assign(ka, next);
        g_assert_cmpint(wire_encode(b, bm, 1, buf, sizeof buf, &size), ==, 0);
        g_assert_cmpint(wire_decode(a, buf, size, NULL, out, 16), ==, 1);
        /* a now sends under other_key; b, holding only other_key again, still accepts */
        g_autoptr(Keyring) only_other = keyring_new_single(other_key, sizeof other_key - 1);
        keyring_assign(kb, only_other);
        g_assert_cmpint(wire_encode(a, in, n, buf, sizeof buf, &size), ==, 0);
        g_assert_cmpint(wire_decode(b, buf, size, NULL, out, 16), ==, (int) n);

        /* a ring with a key shorter than the wire's minimum is refused */
        g_autoptr(Keyring) shortk = keyring_new_single("short", 5);
        g_assert_cmpint(wire_set_keyring(a, shortk), ==, -EINVAL);
        g_autoptr(Keyring) empty = keyring_new();
        g_assert_cmpint(wire_set_keyring(a, empty), ==, -EINVAL);
        wire_free(a);
        wire_free(b);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/wire/round-trip", test_round_trip);
        g_test_add_func("/wire/ipv6-addresses", test_ipv6_addresses);
        g_test_add_func("/wire/truncations-and-bit-flips", test_truncations_and_flips);
        g_test_add_func("/wire/key-and-cluster", test_key_and_cluster);
        g_test_add_func("/wire/replay", test_replay);
        g_test_add_func("/wire/keyring", test_keyring);
        g_test_add_func("/wire/authentic-garbage", test_authentic_garbage);
        return g_test_run();
}
