/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Encrypt=yes layer (electiond-seal.c) and its use by the gossip and channel codecs: HKDF
 * against RFC 5869, round trips, every flipped bit and truncation refused, wrong keys refused,
 * old keys accepted during a rotation, nonces never repeated, the stream's order enforced, no
 * name or id readable in a sealed packet, and plaintext/encrypted mismatches refused and counted.
 */
#include <errno.h>
#include <glib.h>
#include <sys/socket.h>

#include "electiond-channel.h"
#include "electiond-keyring.h"
#include "electiond-seal.h"
#include "electiond-wire.h"

#define KEY  "seal-test-cluster-key-0123456789"
#define KEY2 "seal-test-cluster-key-rotated-01"

static Keyring *ring(const char *primary, const char *other, bool encrypt) {
        Keyring *k = keyring_new_single(primary, strlen(primary));
        if (other)
                g_assert_cmpint(keyring_add(k, other, strlen(other), false), ==, 0);
        keyring_set_encrypt(k, encrypt);
        return k;
}

static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t m) {
        return memmem(hay, n, needle, m) != NULL;
}

/* RFC 5869 appendix A.3 (test case 3: empty salt and info). */
static void test_hkdf_vector(void) {
        static const uint8_t expect[42] = {
                0x8d, 0xa4, 0xe7, 0x75, 0xa5, 0x63, 0xc1, 0x8f, 0x71, 0x5f, 0x80, 0x2a, 0x06, 0x3c,
                0x5a, 0x31, 0xb8, 0xa1, 0x1f, 0x5c, 0x5e, 0xe1, 0x87, 0x9e, 0xc3, 0x45, 0x4e, 0x5f,
                0x3c, 0x73, 0x8d, 0x2d, 0x9d, 0x20, 0x13, 0x95, 0xfa, 0xa4, 0xb6, 0x1a, 0x96, 0xc8,
        };
        uint8_t ikm[22], okm[42];

        memset(ikm, 0x0b, sizeof ikm);
        keyring_hkdf(ikm, sizeof ikm, "", NULL, 0, okm, sizeof okm);
        g_assert_cmpmem(okm, sizeof okm, expect, sizeof expect);
}

static void test_round_trip_tamper_wrong_key(void) {
        g_autoptr(Keyring) k = ring(KEY, NULL, true), other = ring(KEY2, NULL, true);
        const char plain[] = "lease for election web-frontend, node 0000000000000007";
        uint8_t env[256], env2[256], copy[256], out[256];
        size_t n, n2, m;

        g_assert_cmpint(seal_packet(k, "TEST", plain, sizeof plain, env, sizeof env, &n), ==, 0);
        g_assert_cmpuint(n, ==, sizeof plain + SEAL_OVERHEAD);
        g_assert_true(seal_has_magic(env, n, "TEST"));
        g_assert_false(contains(env, n, "web-frontend", 12));
        g_assert_cmpint(seal_open(k, "TEST", env, n, out, sizeof out, &m), ==, 0);
        g_assert_cmpmem(out, m, plain, sizeof plain);

        /* a fresh random nonce every time: the same plaintext never seals the same */
        g_assert_cmpint(seal_packet(k, "TEST", plain, sizeof plain, env2, sizeof env2, &n2), ==, 0);
        g_assert_cmpuint(n2, ==, n);
        g_assert_true(memcmp(env + SEAL_MAGIC_SIZE, env2 + SEAL_MAGIC_SIZE, SEAL_NONCE_SIZE) != 0);
        g_assert_true(memcmp(env + SEAL_HEADER_SIZE, env2 + SEAL_HEADER_SIZE, n - SEAL_HEADER_SIZE) != 0);

        /* every bit flipped, every truncation, one byte appended: refused */
        for (size_t bit = 0; bit < n * 8; bit++) {
                memcpy(copy, env, n);
                copy[bit / 8] ^= (uint8_t) (1u << (bit % 8));
                g_assert_cmpint(seal_open(k, "TEST", copy, n, out, sizeof out, &m), ==, -EBADMSG);
        }
        for (size_t len = 0; len < n; len++)
                g_assert_cmpint(seal_open(k, "TEST", env, len, out, sizeof out, &m), ==, -EBADMSG);
        memcpy(copy, env, n);
        copy[n] = 0;
        g_assert_cmpint(seal_open(k, "TEST", copy, n + 1, out, sizeof out, &m), ==, -EBADMSG);

        /* another key, another magic (domain), too small a buffer */
        g_assert_cmpint(seal_open(other, "TEST", env, n, out, sizeof out, &m), ==, -EBADMSG);
        memcpy(copy, env, n);
        memcpy(copy, "TESU", 4);
        g_assert_cmpint(seal_open(k, "TESU", copy, n, out, sizeof out, &m), ==, -EBADMSG);
        g_assert_cmpint(seal_open(k, "TEST", env, n, out, 10, &m), ==, -EMSGSIZE);
        g_assert_cmpint(seal_packet(k, "TEST", plain, sizeof plain, env, 20, &n), ==, -EMSGSIZE);

        /* in place */
        memcpy(env + SEAL_HEADER_SIZE, plain, sizeof plain);
        g_assert_cmpint(seal_packet(k, "TEST", env + SEAL_HEADER_SIZE, sizeof plain, env, sizeof env, &n), ==, 0);
        g_assert_cmpint(seal_open(k, "TEST", env, n, out, sizeof out, &m), ==, 0);
        g_assert_cmpmem(out, m, plain, sizeof plain);
}

/* Sealed under the primary, opened under any installed key: every step of a rotation talks. */
static void test_rotation(void) {
        g_autoptr(Keyring) only_old = ring(KEY, NULL, true), old_plus = ring(KEY, KEY2, true);
        g_autoptr(Keyring) new_plus = ring(KEY2, KEY, true), only_new = ring(KEY2, NULL, true);
        Keyring *steps[] = { only_old, old_plus, new_plus, only_new };
        uint8_t env[128], out[128];
        size_t n, m;

        for (size_t i = 0; i < G_N_ELEMENTS(steps); i++)
                for (size_t j = 0; j < G_N_ELEMENTS(steps); j++) {
                        bool neighbours = i == j || i + 1 == j || j + 1 == i;
                        g_assert_cmpint(seal_packet(steps[i], "ROTA", "x", 1, env, sizeof env, &n), ==, 0);
                        int r = seal_open(steps[j], "ROTA", env, n, out, sizeof out, &m);
                        if (neighbours)
                                g_assert_cmpint(r, >=, 0);
                        if ((i == 0 && j == 3) || (i == 3 && j == 0))
                                g_assert_cmpint(r, ==, -EBADMSG);
                }
        /* the index of the key that opened it */
        g_assert_cmpint(seal_packet(only_old, "ROTA", "x", 1, env, sizeof env, &n), ==, 0);
        g_assert_cmpint(seal_open(new_plus, "ROTA", env, n, out, sizeof out, &m), ==, 1);

        /* the derived encryption key is not the HMAC key, and differs per key */
        size_t ks;
        const uint8_t *raw = keyring_key(old_plus, 0, &ks);
        g_assert_true(memcmp(keyring_aead_key(old_plus, 0), raw, MIN(ks, (size_t) KEYRING_AEAD_KEY_SIZE)) != 0);
        g_assert_true(memcmp(keyring_aead_key(old_plus, 0), keyring_aead_key(old_plus, 1), KEYRING_AEAD_KEY_SIZE) != 0);
        /* assign carries the derived keys and the flag along; a primary swap keeps them paired */
        g_autoptr(Keyring) copy = keyring_new();
        keyring_assign(copy, new_plus);
        g_assert_true(keyring_encrypts(copy));
        g_assert_true(keyring_equal(copy, new_plus));
        g_assert_cmpint(keyring_add(copy, KEY, strlen(KEY), true), ==, -EEXIST);
        g_assert_cmpmem(keyring_aead_key(copy, 0), KEYRING_AEAD_KEY_SIZE, keyring_aead_key(old_plus, 0), KEYRING_AEAD_KEY_SIZE);
        keyring_set_encrypt(copy, false);
        g_assert_false(keyring_equal(copy, old_plus));
}

static void test_stream(void) {
        g_autoptr(Keyring) k = ring(KEY, KEY2, true), other = ring(KEY2, NULL, true);
        uint8_t cn[32], sn[32], rec[3][64], out[64];
        SealStream c2s, s2c, rx, rx_s2c, bad, bad2;
        size_t n;

        memset(cn, 1, sizeof cn);
        memset(sn, 2, sizeof sn);
        g_assert_cmpint(seal_stream_keys(k, 0, "prod", cn, sn, 32, &c2s, &s2c), ==, 0);
        g_assert_cmpint(seal_stream_keys(k, 0, "prod", cn, sn, 32, &rx, &rx_s2c), ==, 0);
        g_assert_true(memcmp(c2s.key, s2c.key, SEAL_STREAM_KEY_SIZE) != 0);
        for (int i = 0; i < 3; i++)
                g_assert_cmpint(seal_stream_seal(&c2s, "record!", 7, rec[i]), ==, 0);
        /* same plaintext, counter nonce: every record differs */
        g_assert_true(memcmp(rec[0], rec[1], 7 + 20) != 0);

        /* out of order, replayed: refused, and the stream stays where it was */
        g_assert_cmpint(seal_stream_open(&rx, rec[1], 27, out, &n), ==, -EBADMSG);
        g_assert_cmpint(seal_stream_open(&rx, rec[0], 27, out, &n), ==, 0);
        g_assert_cmpmem(out, n, "record!", 7);
        g_assert_cmpint(seal_stream_open(&rx, rec[0], 27, out, &n), ==, -EBADMSG);
        /* tampered length or body */
        rec[1][3] ^= 1;
        g_assert_cmpint(seal_stream_open(&rx, rec[1], 27, out, &n), ==, -EBADMSG);
        rec[1][3] ^= 1;
        rec[1][10] ^= 0x80;
        g_assert_cmpint(seal_stream_open(&rx, rec[1], 27, out, &n), ==, -EBADMSG);
        rec[1][10] ^= 0x80;
        g_assert_cmpint(seal_stream_open(&rx, rec[1], 27, out, &n), ==, 0);
        g_assert_cmpint(seal_stream_open(&rx, rec[2], 27, out, &n), ==, 0);

        /* another key index, nonce, cluster, or ring: another key */
        g_assert_cmpint(seal_stream_keys(k, 1, "prod", cn, sn, 32, &bad, &bad2), ==, 0);
        g_assert_true(memcmp(bad.key, c2s.key, SEAL_STREAM_KEY_SIZE) != 0);
        sn[0] ^= 1;
        g_assert_cmpint(seal_stream_keys(k, 0, "prod", cn, sn, 32, &bad, &bad2), ==, 0);
        g_assert_true(memcmp(bad.key, c2s.key, SEAL_STREAM_KEY_SIZE) != 0);
        sn[0] ^= 1;
        g_assert_cmpint(seal_stream_keys(k, 0, "prodx", cn, sn, 32, &bad, &bad2), ==, 0);
        g_assert_true(memcmp(bad.key, c2s.key, SEAL_STREAM_KEY_SIZE) != 0);
        g_assert_cmpint(seal_stream_keys(other, 0, "prod", cn, sn, 32, &bad, &bad2), ==, 0);
        g_assert_cmpint(seal_stream_open(&bad, rec[0], 27, out, &n), ==, -EBADMSG);
        g_assert_cmpint(seal_stream_keys(k, 2, "prod", cn, sn, 32, &bad, &bad2), ==, -EINVAL);

        /* record bounds */
        uint8_t hdr[4] = { 0, 0, 0, 15 };
        g_assert_cmpint(seal_stream_record_size(hdr), ==, -EBADMSG);
        hdr[3] = 16;
        g_assert_cmpint(seal_stream_record_size(hdr), ==, 16);
        uint8_t big[4] = { 0, 1, 0, 17 };
        g_assert_cmpint(seal_stream_record_size(big), ==, -EBADMSG);
        seal_stream_wipe(&c2s);
        g_assert_cmpuint(c2s.counter, ==, 0);
}

/* Gossip with Encrypt=yes: round trip; no name or id in the clear; plaintext refused as such,
 * and the other way round; replays still caught inside the envelope; keys rotate. */
static void test_wire(void) {
        g_autoptr(Keyring) ka = ring(KEY, NULL, true), kb = ring(KEY, NULL, true), plain = ring(KEY, NULL, false);
        Wire *a = wire_new("secret-cluster", KEY, strlen(KEY), 0x1122334455667788, 100);
        Wire *b = wire_new("secret-cluster", KEY, strlen(KEY), 0xB, 200);
        Wire *p = wire_new("secret-cluster", KEY, strlen(KEY), 0xC, 300);
        GossipMessage in[2] = {}, out[4];
        uint8_t buf[WIRE_SEALED_MAX], pbuf[WIRE_SEALED_MAX], copy[WIRE_SEALED_MAX];
        uint8_t id[8] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 };
        WirePacketInfo info;
        size_t n, pn;

        g_assert_cmpint(wire_set_keyring(a, ka), ==, 0);
        g_assert_cmpint(wire_set_keyring(b, kb), ==, 0);
        g_assert_cmpint(wire_set_keyring(p, plain), ==, 0);
        in[0] = (GossipMessage) { .type = GOSSIP_ALIVE, .node_id = 0x1122334455667788, .incarnation = 1 };
        g_strlcpy(in[0].name, "node-alpha", sizeof in[0].name);
        in[1] = (GossipMessage) { .type = GOSSIP_USER, .seq = 1, .tags_size = 14 };
        memcpy(in[1].tags, "election-web-1", 14);

        g_assert_cmpint(wire_encode(a, in, 2, buf, sizeof buf, &n), ==, 0);
        g_assert_true(seal_has_magic(buf, n, WIRE_SEALED_MAGIC));
        g_assert_false(contains(buf, n, "secret-cluster", 14));
        g_assert_false(contains(buf, n, "node-alpha", 10));
        g_assert_false(contains(buf, n, "election-web-1", 14));
        g_assert_false(contains(buf, n, id, 8));
        g_assert_cmpint(wire_decode(b, buf, n, &info, out, G_N_ELEMENTS(out)), ==, 2);
        g_assert_cmpuint(info.sender_id, ==, 0x1122334455667788);
        g_assert_cmpstr(out[0].name, ==, "node-alpha");
        g_assert_cmpmem(out[1].tags, out[1].tags_size, "election-web-1", 14);
        /* the same, unencrypted, shows them all */
        keyring_set_encrypt(ka, false);
        g_assert_cmpint(wire_encode(a, in, 2, pbuf, sizeof pbuf, &pn), ==, 0);
        g_assert_true(contains(pbuf, pn, "node-alpha", 10));
        g_assert_true(contains(pbuf, pn, "election-web-1", 14));
        g_assert_cmpuint(n, ==, pn + WIRE_SEAL_OVERHEAD);
        keyring_set_encrypt(ka, true);

        /* a replay of the sealed packet is still a replay */
        g_assert_cmpint(wire_decode(b, buf, n, &info, out, G_N_ELEMENTS(out)), ==, -EALREADY);
        /* tampered: refused as auth */
        memcpy(copy, buf, n);
        copy[n / 2] ^= 4;
        g_assert_cmpint(wire_decode(b, copy, n, &info, out, G_N_ELEMENTS(out)), ==, -EPERM);
        g_assert_cmpuint(wire_drop_count(b, WIRE_DROP_AUTH), ==, 1);
        /* plaintext at an encrypting node, encrypted at a plain one: refused and counted apart */
        g_assert_cmpint(wire_decode(b, pbuf, pn, &info, out, G_N_ELEMENTS(out)), ==, -EPROTO);
        g_assert_cmpuint(wire_drop_count(b, WIRE_DROP_PLAINTEXT), ==, 1);
        g_assert_cmpstr(wire_drop_to_string(WIRE_DROP_PLAINTEXT), ==, "plaintext");
        g_assert_cmpint(wire_decode(p, buf, n, &info, out, G_N_ELEMENTS(out)), ==, -EPROTONOSUPPORT);
        g_assert_cmpuint(wire_drop_count(p, WIRE_DROP_ENCRYPTED), ==, 1);
        g_assert_cmpstr(wire_drop_to_string(WIRE_DROP_ENCRYPTED), ==, "encrypted");
        g_assert_cmpuint(wire_accepted_count(p), ==, 0);
        /* garbage and short input at an encrypting node */
        g_assert_cmpint(wire_decode(b, "EL", 2, &info, out, G_N_ELEMENTS(out)), ==, -EBADMSG);
        g_assert_cmpint(wire_decode(b, "ELGS", 4, &info, out, G_N_ELEMENTS(out)), ==, -EBADMSG);
        g_assert_cmpint(wire_decode(b, "XXXXXXXX", 8, &info, out, G_N_ELEMENTS(out)), ==, -EBADMSG);
        /* no room for the envelope */
        g_assert_cmpint(wire_encode(a, in, 2, buf, pn + WIRE_SEAL_OVERHEAD - 1, &n), ==, -EMSGSIZE);

        /* rotation through a shared ring: the new key installed at b first, then a's primary */
        g_assert_cmpint(keyring_add(kb, KEY2, strlen(KEY2), false), ==, 0);
        g_assert_cmpint(keyring_add(ka, KEY2, strlen(KEY2), true), ==, 0);
        g_assert_cmpint(wire_encode(a, in, 2, buf, sizeof buf, &n), ==, 0);
        g_assert_cmpint(wire_decode(b, buf, n, &info, out, G_N_ELEMENTS(out)), ==, 2);
        g_autoptr(Keyring) only_old = ring(KEY, NULL, true);
        keyring_assign(kb, only_old);
        g_assert_cmpint(wire_encode(a, in, 2, buf, sizeof buf, &n), ==, 0);
        g_assert_cmpint(wire_decode(b, buf, n, &info, out, G_N_ELEMENTS(out)), ==, -EPERM);

        wire_free(a);
        wire_free(b);
        wire_free(p);
}

static void test_channel(void) {
        g_autoptr(Keyring) ka = ring(KEY, NULL, true), kb = ring(KEY, NULL, true), plain = ring(KEY, NULL, false);
        g_autoptr(ChannelCodec) a = channel_codec_new("secret-cluster", KEY, strlen(KEY), 0x1122334455667788, 10);
        g_autoptr(ChannelCodec) b = channel_codec_new("secret-cluster", KEY, strlen(KEY), 2, 20);
        g_autoptr(ChannelCodec) p = channel_codec_new("secret-cluster", KEY, strlen(KEY), 3, 30);
        g_autoptr(GByteArray) pkt = NULL, ppkt = NULL, big_pkt = NULL;
        uint8_t id[8] = { 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11 }; /* little-endian on this wire */
        ChannelPacket cp;

        g_assert_cmpint(channel_codec_set_keyring(a, ka), ==, 0);
        g_assert_cmpint(channel_codec_set_keyring(b, kb), ==, 0);
        g_assert_cmpint(channel_codec_set_keyring(p, plain), ==, 0);
        g_assert_cmpint(channel_encode(a, 4, "election:db-primary", 19, &pkt), ==, 0);
        g_assert_true(seal_has_magic(pkt->data, pkt->len, CHANNEL_SEALED_MAGIC));
        g_assert_false(contains(pkt->data, pkt->len, "db-primary", 10));
        g_assert_false(contains(pkt->data, pkt->len, "secret-cluster", 14));
        g_assert_false(contains(pkt->data, pkt->len, id, 8));
        g_assert_cmpint(channel_decode(b, pkt->data, pkt->len, &cp), ==, 0);
        g_assert_cmpuint(cp.sender, ==, 0x1122334455667788);
        g_assert_cmpuint(cp.type, ==, 4);
        g_assert_cmpmem(cp.payload, cp.payload_size, "election:db-primary", 19);
        g_assert_cmpint(channel_decode(b, pkt->data, pkt->len, &cp), ==, -EALREADY);

        keyring_set_encrypt(ka, false);
        g_assert_cmpint(channel_encode(a, 4, "election:db-primary", 19, &ppkt), ==, 0);
        keyring_set_encrypt(ka, true);
        g_assert_true(contains(ppkt->data, ppkt->len, "db-primary", 10));
        g_assert_cmpint(channel_decode(b, ppkt->data, ppkt->len, &cp), ==, -EPROTO);
        g_assert_cmpuint(channel_drop_count(b, CHANNEL_DROP_PLAINTEXT), ==, 1);
        g_assert_cmpint(channel_decode(p, pkt->data, pkt->len, &cp), ==, -EPROTONOSUPPORT);
        g_assert_cmpuint(channel_drop_count(p, CHANNEL_DROP_ENCRYPTED), ==, 1);
        pkt->data[pkt->len - 1] ^= 1;
        g_assert_cmpint(channel_decode(b, pkt->data, pkt->len, &cp), ==, -EPERM);
        g_assert_cmpuint(channel_drop_count(b, CHANNEL_DROP_AUTH), ==, 1);
        g_assert_cmpint(channel_decode(b, "ELCS", 4, &cp), ==, -EBADMSG);

        /* the largest payload fits the receive buffer sealed */
        g_autofree uint8_t *big = g_malloc0(CHANNEL_PAYLOAD_MAX);
        g_assert_cmpint(channel_encode(a, 1, big, CHANNEL_PAYLOAD_MAX, &big_pkt), ==, 0);
        g_assert_cmpuint(big_pkt->len, <=, CHANNEL_SEALED_MAX);
        g_assert_cmpint(channel_decode(b, big_pkt->data, big_pkt->len, &cp), ==, 0);
        g_assert_cmpuint(cp.payload_size, ==, CHANNEL_PAYLOAD_MAX);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/seal/hkdf", test_hkdf_vector);
        g_test_add_func("/seal/round-trip-tamper-wrong-key", test_round_trip_tamper_wrong_key);
        g_test_add_func("/seal/rotation", test_rotation);
        g_test_add_func("/seal/stream", test_stream);
        g_test_add_func("/seal/wire", test_wire);
        g_test_add_func("/seal/channel", test_channel);
        return g_test_run();
}
