/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cluster channel codec: round trip, and every way a packet must be refused. */
#include <errno.h>
#include <glib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "electiond-channel.h"
#include "electiond-keyring.h"

#define KEY "channel-test-key-0123456789"

static ChannelCodec *codec(const char *cluster, const char *key, uint64_t self, uint64_t epoch) {
        ChannelCodec *c = channel_codec_new(cluster, key, strlen(key), self, epoch);
        g_assert_nonnull(c);
        return c;
}

static void test_round_trip(void) {
        g_autoptr(ChannelCodec) a = codec("prod", KEY, 1, 10), b = codec("prod", KEY, 2, 20);
        g_autoptr(GByteArray) pkt = NULL;
        uint8_t payload[300];
        ChannelPacket p;

        for (size_t i = 0; i < sizeof payload; i++)
                payload[i] = (uint8_t) i;
        g_assert_cmpint(channel_encode(a, 6, payload, sizeof payload, &pkt), ==, 0);
        g_assert_cmpint(channel_decode(b, pkt->data, pkt->len, &p), ==, 0);
        g_assert_cmpuint(p.sender, ==, 1);
        g_assert_cmpuint(p.epoch, ==, 10);
        g_assert_cmpuint(p.type, ==, 6);
        g_assert_cmpuint(p.payload_size, ==, sizeof payload);
        g_assert_cmpmem(p.payload, p.payload_size, payload, sizeof payload);

        /* empty payload */
        g_clear_pointer(&pkt, g_byte_array_unref);
        g_assert_cmpint(channel_encode(a, 1, NULL, 0, &pkt), ==, 0);
        g_assert_cmpint(channel_decode(b, pkt->data, pkt->len, &p), ==, 0);
        g_assert_cmpuint(p.payload_size, ==, 0);

        /* too large */
        g_autofree uint8_t *big = g_malloc0(CHANNEL_PAYLOAD_MAX + 1);
        g_autoptr(GByteArray) none = NULL;
        g_assert_cmpint(channel_encode(a, 1, big, CHANNEL_PAYLOAD_MAX + 1, &none), ==, -EMSGSIZE);
}

static void test_refusals(void) {
        g_autoptr(ChannelCodec) a = codec("prod", KEY, 1, 10), b = codec("prod", KEY, 2, 20);
        g_autoptr(ChannelCodec) other_key = codec("prod", "another-key-0123456789abcd", 3, 1);
        g_autoptr(ChannelCodec) other_cluster = codec("test", KEY, 4, 1);
        g_autoptr(GByteArray) pkt = NULL;
        ChannelPacket p;

        g_assert_cmpint(channel_encode(a, 2, "abcdefgh", 8, &pkt), ==, 0);

        /* every truncation and every single-bit flip is refused */
        for (guint n = 0; n < pkt->len; n++)
                g_assert_cmpint(channel_decode(b, pkt->data, n, &p), <, 0);
        for (guint i = 0; i < pkt->len * 8; i++) {
                g_autoptr(GByteArray) x = g_byte_array_new();
                g_byte_array_append(x, pkt->data, pkt->len);
                x->data[i / 8] ^= (uint8_t) (1u << (i % 8));
                g_assert_cmpint(channel_decode(b, x->data, x->len, &p), <, 0);
        }
        g_assert_cmpuint(channel_drop_count(b, CHANNEL_DROP_AUTH) + channel_drop_count(b, CHANNEL_DROP_MALFORMED) +
                         channel_drop_count(b, CHANNEL_DROP_CLUSTER), >, 0);

        /* wrong key, other cluster, our own packet */
        g_assert_cmpint(channel_decode(other_key, pkt->data, pkt->len, &p), ==, -EPERM);
        g_assert_cmpint(channel_decode(other_cluster, pkt->data, pkt->len, &p), ==, -ESRCH);
        g_assert_cmpint(channel_decode(a, pkt->data, pkt->len, &p), ==, -ELOOP);

        /* accepted once, then a replay */
        g_assert_cmpint(channel_decode(b, pkt->data, pkt->len, &p), ==, 0);
        g_assert_cmpint(channel_decode(b, pkt->data, pkt->len, &p), ==, -EALREADY);
        g_assert_cmpuint(channel_drop_count(b, CHANNEL_DROP_REPLAY), ==, 1);
}

static void test_replay_window(void) {
        g_autoptr(ChannelCodec) a = codec("prod", KEY, 1, 10), b = codec("prod", KEY, 2, 20);
        GPtrArray *pkts = g_ptr_array_new_with_free_func((GDestroyNotify) g_byte_array_unref);
        ChannelPacket p;

        for (int i = 0; i < 100; i++) {
                GByteArray *x = NULL;
                g_assert_cmpint(channel_encode(a, 1, "x", 1, &x), ==, 0);
                g_ptr_array_add(pkts, x);
        }
        /* out of order inside the window is fine, once */
        GByteArray *p99 = pkts->pdata[99], *p90 = pkts->pdata[90], *p10 = pkts->pdata[10];
        g_assert_cmpint(channel_decode(b, p99->data, p99->len, &p), ==, 0);
        g_assert_cmpint(channel_decode(b, p90->data, p90->len, &p), ==, 0);
        g_assert_cmpint(channel_decode(b, p90->data, p90->len, &p), ==, -EALREADY);
        /* below the window: refused even if never seen */
        g_assert_cmpint(channel_decode(b, p10->data, p10->len, &p), ==, -EALREADY);

        /* a restart of the sender (larger epoch) opens a new window; the old epoch is dead */
        g_autoptr(ChannelCodec) a2 = codec("prod", KEY, 1, 11);
        g_autoptr(GByteArray) fresh = NULL;
        g_assert_cmpint(channel_encode(a2, 1, "y", 1, &fresh), ==, 0);
        g_assert_cmpint(channel_decode(b, fresh->data, fresh->len, &p), ==, 0);
        GByteArray *p95 = pkts->pdata[95];
        g_assert_cmpint(channel_decode(b, p95->data, p95->len, &p), ==, -EALREADY);
        g_ptr_array_unref(pkts);
}

static void test_garbage(void) {
        g_autoptr(ChannelCodec) b = codec("prod", KEY, 2, 20);
        GRand *r = g_rand_new_with_seed(7);
        uint8_t buf[512];
        ChannelPacket p;

        for (int i = 0; i < 20000; i++) {
                size_t n = (size_t) g_rand_int_range(r, 0, sizeof buf);
                for (size_t j = 0; j < n; j++)
                        buf[j] = (uint8_t) g_rand_int(r);
                if (n >= 4 && g_rand_boolean(r))
                        memcpy(buf, CHANNEL_MAGIC, 4);
                g_assert_cmpint(channel_decode(b, buf, n, &p), <, 0);
        }
        g_rand_free(r);
        g_assert_null(channel_codec_new(NULL, KEY, 3, 1, 1));
}

/* Signed under the primary key, accepted under any installed key, through a shared ring. */
static void test_keyring(void) {
        static const char other[] = "channel-test-key-new-0123456789";
        g_autoptr(ChannelCodec) a = codec("prod", KEY, 1, 10), b = codec("prod", KEY, 2, 20);
        g_autoptr(Keyring) ka = keyring_new_single(KEY, strlen(KEY));
        g_autoptr(Keyring) kb = keyring_new_single(other, strlen(other));
        g_autoptr(GByteArray) p1 = NULL, p2 = NULL, p3 = NULL;
        ChannelPacket p;

        g_assert_cmpint(channel_codec_set_keyring(a, ka), ==, 0);
        g_assert_cmpint(channel_codec_set_keyring(b, kb), ==, 0);
        g_assert_cmpint(channel_encode(a, 1, "x", 1, &p1), ==, 0);
        g_assert_cmpint(channel_decode(b, p1->data, p1->len, &p), ==, -EPERM);
        g_assert_cmpuint(channel_drop_count(b, CHANNEL_DROP_AUTH), ==, 1);

        g_assert_cmpint(keyring_add(kb, KEY, strlen(KEY), false), ==, 0);
        g_assert_cmpint(channel_decode(b, p1->data, p1->len, &p), ==, 0);
        g_assert_cmpuint(p.sender, ==, 1);

        /* a's primary moves to other, KEY stays accepted: both directions work */
        g_assert_cmpint(keyring_add(ka, other, strlen(other), true), ==, 0);
        g_assert_cmpint(channel_encode(a, 1, "y", 1, &p2), ==, 0);
        g_assert_cmpint(channel_decode(b, p2->data, p2->len, &p), ==, 0);
        g_assert_cmpint(channel_encode(b, 1, "z", 1, &p3), ==, 0);
        g_assert_cmpint(channel_decode(a, p3->data, p3->len, &p), ==, 0);
        g_assert_cmpint(channel_codec_set_keyring(a, NULL), ==, -EINVAL);
}

static void on_packet(Channel *ch, const ChannelPacket *p, const struct sockaddr_storage *from, void *userdata) {
}

static int bind_any(uint16_t port, bool reuse) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
        int fd, one = 1, r;

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(fd, >=, 0);
        if (reuse)
                g_assert_cmpint(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), ==, 0);
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        if (r < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* Nobody else may share the channel's port: with SO_REUSEADDR a second socket (another daemon, or
 * any local process setting SO_REUSEADDR itself) could bind it too and take part of its traffic. */
static void test_port_exclusive(void) {
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        sd_event *e = NULL;
        Channel *ch = NULL, *ch2 = NULL;
        uint16_t port;
        int fd;

        /* find a free port (nothing is sent: the sockets are only bound) */
        fd = bind_any(0, false);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sa, &len), ==, 0);
        port = ntohs(sa.sin_port);
        close(fd);

        g_assert_cmpint(sd_event_new(&e), >=, 0);
        g_assert_cmpint(channel_new(e, codec("prod", KEY, 1, 1), port, on_packet, NULL, &ch), ==, 0);
        /* a second channel on the same port fails instead of sharing it */
        ChannelCodec *c2 = codec("prod", KEY, 2, 1);
        g_assert_cmpint(channel_new(e, c2, port, on_packet, NULL, &ch2), ==, -EADDRINUSE);
        channel_codec_free(c2); /* the caller keeps it on failure */
        g_assert_null(ch2);
        /* so does a foreign socket asking for SO_REUSEADDR */
        g_assert_cmpint(bind_any(port, true), ==, -EADDRINUSE);
        channel_free(ch);
        sd_event_unref(e);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/channel/round-trip", test_round_trip);
        g_test_add_func("/channel/refusals", test_refusals);
        g_test_add_func("/channel/replay-window", test_replay_window);
        g_test_add_func("/channel/garbage", test_garbage);
        g_test_add_func("/channel/keyring", test_keyring);
        g_test_add_func("/channel/port-exclusive", test_port_exclusive);
        return g_test_run();
}
