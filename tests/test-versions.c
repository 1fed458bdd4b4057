/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rolling upgrade (docs/DESIGN.md "Versions"): every codec accepts the v0.1.0 layout, built here
 * byte by byte from the documented format (not with our encoders), and refuses versions it does
 * not know; the v0.1.0 command types and snapshots still decode; SET_PROTOCOL only raises the
 * cluster protocol version, and snapshots take version 6 only once it is 2 (before, a v0.1.0
 * member must be able to restore them).
 */
#include <errno.h>
#include <glib.h>

#include "electiond-channel.h"
#include "electiond-command.h"
#include "electiond-election.h"
#include "electiond-wire.h"

#define KEY "versions-test-key-0123456789abcdef"

static void put_be(GByteArray *b, uint64_t v, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                uint8_t x = n - 1 - i < 8 ? (uint8_t) (v >> (8 * (n - 1 - i))) : 0; /* n may exceed 8: zeros */
                g_byte_array_append(b, &x, 1);
        }
}

static void put_le(GByteArray *b, uint64_t v, unsigned n) {
        for (unsigned i = 0; i < n; i++) {
                uint8_t x = i < 8 ? (uint8_t) (v >> (8 * i)) : 0; /* n may exceed 8: zeros */
                g_byte_array_append(b, &x, 1);
        }
}

static void put_bytes(GByteArray *b, const void *p, size_t n) {
        g_byte_array_append(b, p, (guint) n);
}

static void put_mac(GByteArray *b) {
        g_autoptr(GHmac) h = g_hmac_new(G_CHECKSUM_SHA256, (const guchar *) KEY, strlen(KEY));
        uint8_t mac[32];
        gsize n = sizeof mac;

        g_hmac_update(h, b->data, b->len);
        g_hmac_get_digest(h, mac, &n);
        put_bytes(b, mac, sizeof mac);
}

/* A gossip packet as v0.1.0 sends it: "ELGP" | version | name | sender | epoch | seq | ALIVE about
 * the sender (with v0.1.0's 20 bytes of cluster tags) | PING | MAC. */
static GByteArray *gossip_packet(uint8_t version, uint64_t seq) {
        GByteArray *b = g_byte_array_new();
        static const uint8_t tags[20] = { 1, 0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x0a, 0x1f };

        put_bytes(b, "ELGP", 4);
        put_be(b, version, 1);
        put_be(b, 4, 1);
        put_bytes(b, "prod", 4);
        put_be(b, 2, 8);        /* sender */
        put_be(b, 1000, 8);     /* epoch */
        put_be(b, seq, 8);
        put_be(b, 4, 1);        /* ALIVE */
        put_be(b, 2 + 16 + 1 + 19 + 2 + sizeof tags, 2);
        put_be(b, 1, 1);
        put_bytes(b, "b", 1);
        put_be(b, 2, 8);        /* node id */
        put_be(b, 1, 8);        /* incarnation */
        put_be(b, 1, 1);        /* one address: AF_INET 198.18.0.2:7946 */
        put_be(b, 2, 1);
        put_bytes(b, (const uint8_t[16]) { 198, 18, 0, 2 }, 16);
        put_be(b, 7946, 2);
        put_be(b, sizeof tags, 2);
        put_bytes(b, tags, sizeof tags);
        put_be(b, 1, 1);        /* PING */
        put_be(b, 6, 2);        /* body: u32 seq, name "b" */
        put_be(b, 77, 4);
        put_be(b, 1, 1);
        put_bytes(b, "b", 1);
        put_mac(b);
        return b;
}

static void test_gossip(void) {
        Wire *w = wire_new("prod", KEY, strlen(KEY), 1, 1);
        GossipMessage msgs[4];
        WirePacketInfo info;
        uint8_t buf[WIRE_PACKET_MAX];
        size_t size;

        g_assert_nonnull(w);
        {
                g_autoptr(GByteArray) v1 = gossip_packet(1, 1);
                g_assert_cmpint(wire_decode(w, v1->data, v1->len, &info, msgs, G_N_ELEMENTS(msgs)), ==, 2);
                g_assert_cmpuint(info.sender_id, ==, 2);
                g_assert_cmpint(msgs[0].type, ==, GOSSIP_ALIVE);
                g_assert_cmpuint(msgs[0].tags_size, ==, 20);
                g_assert_cmpint(msgs[1].type, ==, GOSSIP_PING);
                g_assert_cmpuint(msgs[1].seq, ==, 77);
                g_assert_cmpstr(msgs[1].name, ==, "b");
        }
        /* a version this build does not know (a future one, or none) is counted and dropped */
        for (unsigned v = 0; v < 256; v++) {
                g_autoptr(GByteArray) p = NULL;
                if (v >= WIRE_VERSION_MIN && v <= WIRE_VERSION)
                        continue;
                p = gossip_packet((uint8_t) v, 10 + v);
                g_assert_cmpint(wire_decode(w, p->data, p->len, &info, msgs, G_N_ELEMENTS(msgs)), ==, -EBADMSG);
        }
        g_assert_cmpuint(wire_drop_count(w, WIRE_DROP_VERSION), ==, 256 - (WIRE_VERSION - WIRE_VERSION_MIN + 1));
        /* what we send is still the v0.1.0 version */
        g_assert_cmpint(wire_encode(w, msgs, 1, buf, sizeof buf, &size), ==, 0);
        g_assert_cmpuint(buf[4], ==, 1);
        wire_free(w);
}

/* A channel packet as v0.1.0 sends it (little-endian). */
static GByteArray *channel_packet(uint8_t version, uint64_t seq) {
        GByteArray *b = g_byte_array_new();

        put_bytes(b, "ELCM", 4);
        put_le(b, version, 1);
        put_le(b, 4, 1);
        put_bytes(b, "prod", 4);
        put_le(b, 2, 8);        /* sender */
        put_le(b, 1000, 8);     /* epoch */
        put_le(b, seq, 8);
        put_le(b, 10, 1);       /* LEASE_ACK */
        put_le(b, 16, 4);
        put_le(b, 5, 8);
        put_le(b, 20, 8);
        put_mac(b);
        return b;
}

static void test_channel(void) {
        g_autoptr(ChannelCodec) c = channel_codec_new("prod", KEY, strlen(KEY), 1, 20);
        g_autoptr(GByteArray) v1 = channel_packet(1, 1), v2 = channel_packet(2, 2), v0 = channel_packet(0, 3);
        g_autoptr(GByteArray) out = NULL;
        ChannelPacket p;

        g_assert_cmpint(channel_decode(c, v1->data, v1->len, &p), ==, 0);
        g_assert_cmpuint(p.sender, ==, 2);
        g_assert_cmpuint(p.type, ==, 10);
        g_assert_cmpuint(p.payload_size, ==, 16);
        g_assert_cmpint(channel_decode(c, v2->data, v2->len, &p), ==, -EBADMSG);
        g_assert_cmpint(channel_decode(c, v0->data, v0->len, &p), ==, -EBADMSG);
        g_assert_cmpuint(channel_drop_count(c, CHANNEL_DROP_MALFORMED), ==, 2);
        g_assert_cmpint(channel_encode(c, 10, NULL, 0, &out), ==, 0);
        g_assert_cmpuint(out->data[4], ==, 1);
}

static void put_str(GByteArray *b, const char *s) {
        put_le(b, strlen(s), 4);
        put_bytes(b, s, strlen(s));
}

/* A batch of one command as v0.1.0 writes it. */
static GByteArray *batch(uint8_t type, uint64_t run) {
        GByteArray *b = g_byte_array_new();

        put_bytes(b, "ELB1", 4);
        put_le(b, 1, 4);
        put_le(b, type, 1);
        put_str(b, "n1");       /* origin */
        put_le(b, 9, 8);        /* origin_run */
        put_le(b, 1, 8);        /* request_id */
        put_str(b, type == COMMAND_ENTER ? "web" : "");
        put_str(b, type == COMMAND_ENTER ? "a" : "");
        put_str(b, "n1");       /* node */
        put_str(b, "");         /* owner */
        put_le(b, run, 8);
        put_le(b, 0, 4);        /* uid */
        put_le(b, COMMAND_FLAG_PERSISTENT, 4);
        put_le(b, 0, 4);
        put_le(b, 0, 4);
        return b;
}

static void test_commands(void) {
        g_autoptr(GByteArray) enter = batch(COMMAND_ENTER, 9), set = batch(COMMAND_SET_PROTOCOL, 2);
        g_autoptr(GPtrArray) cmds = NULL, cmds2 = NULL;
        const Command *c;

        g_assert_cmpint(command_batch_decode(enter->data, enter->len, &cmds), ==, 0);
        g_assert_cmpuint(cmds->len, ==, 1);
        c = cmds->pdata[0];
        g_assert_cmpint(c->type, ==, COMMAND_ENTER);
        g_assert_cmpstr(c->election, ==, "web");
        g_assert_cmpuint(c->flags, ==, COMMAND_FLAG_PERSISTENT);

        /* the protocol 2 command decodes here (v0.1.0 refuses the type: hence the gate) */
        g_assert_cmpint(command_batch_decode(set->data, set->len, &cmds2), ==, 0);
        g_assert_cmpint(((Command *) cmds2->pdata[0])->type, ==, COMMAND_SET_PROTOCOL);
        g_assert_cmpstr(command_type_to_string(COMMAND_SET_PROTOCOL), ==, "set-protocol");

        for (int t = 1; t <= COMMAND_UNDRAIN; t++)
                g_assert_cmpuint(command_type_protocol(t), ==, 1);
        g_assert_cmpuint(command_type_protocol(COMMAND_SET_PROTOCOL), ==, 2);
        /* issue 14 §1: FORGET and the Enter quota's extension are protocol 2 as well */
        g_assert_cmpuint(command_type_protocol(COMMAND_FORGET), ==, 2);
        g_assert_cmpuint(COMMAND_MAX_PERSISTENT_PROTOCOL, ==, 2);
        g_assert_cmpuint(command_type_protocol(0), ==, 0);
        g_assert_cmpuint(command_type_protocol(_COMMAND_TYPE_MAX), ==, 0);
        for (int t = 1; t < _COMMAND_TYPE_MAX; t++)
                g_assert_cmpuint(command_type_protocol(t), <=, PROTOCOL_VERSION_MAX);
}

static ElectionResult apply_set_protocol(ElectionState *s, uint64_t version, uint64_t req) {
        g_autoptr(Command) c = command_new(COMMAND_SET_PROTOCOL);

        c->origin = g_strdup("n1");
        c->origin_run = 9;
        c->request_id = req;
        c->election = g_strdup("");
        c->id = g_strdup("");
        c->node = g_strdup("n1");
        c->owner = g_strdup("");
        c->run = version;
        return election_state_apply(s, c, NULL, NULL, NULL);
}

static void enter(ElectionState *s, const char *id, uint64_t req) {
        g_autoptr(Command) c = command_new(COMMAND_ENTER);

        c->origin = g_strdup("n1");
        c->origin_run = 9;
        c->request_id = req;
        c->election = g_strdup("web");
        c->id = g_strdup(id);
        c->node = g_strdup("n1");
        c->owner = g_strdup("");
        c->flags = COMMAND_FLAG_PERSISTENT;
        g_assert_cmpint(election_state_apply(s, c, NULL, NULL, NULL), ==, ELECTION_CHANGED);
}

static uint32_t snapshot_version(GBytes *b) {
        const uint8_t *p = g_bytes_get_data(b, NULL);
        return (uint32_t) p[4] | (uint32_t) p[5] << 8 | (uint32_t) p[6] << 16 | (uint32_t) p[7] << 24;
}

static void test_snapshots_and_set_protocol(void) {
        g_autoptr(ElectionState) s = election_state_new(), t = election_state_new();
        g_autoptr(GBytes) before = NULL, after = NULL;
        g_autoptr(GByteArray) v4 = g_byte_array_new(), v6 = g_byte_array_new(), bad6 = g_byte_array_new();

        g_assert_cmpuint(election_state_protocol(s), ==, 1);
        enter(s, "a", 1);

        /* protocol 1: the snapshot stays a version v0.1.0 restores */
        g_assert_cmpint(election_state_serialize(s, &before), ==, 0);
        g_assert_cmpuint(snapshot_version(before), ==, 4);

        g_assert_cmpint(apply_set_protocol(s, 2, 2), ==, ELECTION_CHANGED);
        g_assert_cmpuint(election_state_protocol(s), ==, 2);
        g_assert_cmpint(apply_set_protocol(s, 2, 3), ==, ELECTION_NOOP);   /* a late copy */
        g_assert_cmpint(apply_set_protocol(s, 1, 4), ==, ELECTION_NOOP);   /* never down */
        g_assert_cmpint(apply_set_protocol(s, 2, 2), ==, ELECTION_DUPLICATE);
        g_assert_cmpuint(election_state_protocol(s), ==, 2);

        g_assert_cmpint(election_state_serialize(s, &after), ==, 0);
        g_assert_cmpuint(snapshot_version(after), ==, 6);
        g_assert_cmpint(election_state_restore(t, g_bytes_get_data(after, NULL), g_bytes_get_size(after)), ==, 0);
        g_assert_true(election_state_equal(s, t));
        g_assert_cmpuint(election_state_protocol(t), ==, 2);
        /* the version 4 bytes bring back protocol 1 */
        g_assert_cmpint(election_state_restore(t, g_bytes_get_data(before, NULL), g_bytes_get_size(before)), ==, 0);
        g_assert_cmpuint(election_state_protocol(t), ==, 1);
        g_assert_cmpuint(election_state_count(t), ==, 1);

        /* hand-built: an empty v0.1.0 snapshot (version 4) and an empty version 6 one */
        put_bytes(v4, "ELST", 4);
        put_le(v4, 4, 4);
        put_le(v4, 0, 4 * 4);  /* elections, dedup, runs, drained */
        g_assert_cmpint(election_state_restore(t, v4->data, v4->len), ==, 0);
        g_assert_cmpuint(election_state_protocol(t), ==, 1);
        put_bytes(v6, "ELST", 4);
        put_le(v6, 6, 4);
        put_le(v6, 0, 3 * 4);  /* elections, dedup, runs */
        put_le(v6, 0, 8);      /* term floor: always written in version 6 */
        put_le(v6, 0, 4);      /* drained */
        put_le(v6, 3, 4);      /* protocol */
        g_assert_cmpint(election_state_restore(t, v6->data, v6->len), ==, 0);
        g_assert_cmpuint(election_state_protocol(t), ==, 3);
        /* version 6 with protocol 1 is never written: refused, as is an unknown version 7 */
        g_byte_array_append(bad6, v6->data, v6->len);
        bad6->data[bad6->len - 4] = 1;
        g_assert_cmpint(election_state_restore(t, bad6->data, bad6->len), ==, -EBADMSG);
        bad6->data[bad6->len - 4] = 3;
        bad6->data[4] = 7;
        g_assert_cmpint(election_state_restore(t, bad6->data, bad6->len), ==, -EBADMSG);
        g_assert_cmpuint(election_state_protocol(t), ==, 3); /* a failed restore changes nothing */
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/versions/gossip", test_gossip);
        g_test_add_func("/versions/channel", test_channel);
        g_test_add_func("/versions/commands", test_commands);
        g_test_add_func("/versions/snapshots-and-set-protocol", test_snapshots_and_set_protocol);
        return g_test_run();
}
