/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The authenticated Raft transport on loopback: a good handshake hands a working stream to both
 * sides with the right peer id and address; a wrong key, another cluster name, garbage, and a
 * replayed AUTH are all refused without an accept; closing cancels connects in flight; and two
 * real Raft engines replicate over it.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <glib.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "electiond-engine.h"
#include "electiond-keyring.h"
#include "electiond-seal.h"
#include "electiond-transport.h"

#define KEY "0123456789abcdef0123456789abcdef"

static char *loopback_address(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sa, &len), ==, 0);
        close(fd);
        return g_strdup_printf("127.0.0.1:%u", ntohs(sa.sin_port));
}

typedef struct Side {
        struct raft_uv_transport *t;
        /* server side */
        unsigned accepted;
        raft_id peer_id;
        char peer_address[256];
        uv_stream_t *stream;
        /* client side */
        struct raft_uv_connect req;
        int connect_status;
        bool connect_done;
        uv_stream_t *out;
        bool closed;
        char got[64];
        size_t n_got;
} Side;

static void on_accept(struct raft_uv_transport *t, raft_id id, const char *address, uv_stream_t *stream) {
        Side *s = t->data;
        s->accepted++;
        s->peer_id = id;
        g_strlcpy(s->peer_address, address, sizeof s->peer_address);
        s->stream = stream;
}

static void on_connect(struct raft_uv_connect *req, uv_stream_t *stream, int status) {
        Side *s = req->data;
        s->connect_done = true;
        s->connect_status = status;
        s->out = stream;
}

static void on_transport_closed(struct raft_uv_transport *t) {
        Side *s = t->data;
        s->closed = true;
}

static bool run_until(uv_loop_t *loop, bool *flag, unsigned timeout_ms) {
        uint64_t deadline = uv_now(loop) + timeout_ms;
        while (!*flag && uv_now(loop) < deadline) {
                uv_run(loop, UV_RUN_NOWAIT);
                g_usleep(1000);
                uv_update_time(loop);
        }
        return *flag;
}

static void side_init(Side *s, uv_loop_t *loop, const char *key, const char *cluster, raft_id id, const char *address) {
        memset(s, 0, sizeof *s);
        g_assert_cmpint(auth_transport_new(loop, key, strlen(key), cluster, &s->t), ==, 0);
        s->t->data = s;
        s->req.data = s;
        g_assert_cmpint(s->t->init(s->t, id, address), ==, 0);
}

static void free_handle(uv_handle_t *h) {
        raft_free(h);
}

static void side_done(Side *s, uv_loop_t *loop) {
        s->t->close(s->t, on_transport_closed);
        g_assert_true(run_until(loop, &s->closed, 2000));
        if (s->stream)
                uv_close((uv_handle_t *) s->stream, free_handle);
        if (s->out)
                uv_close((uv_handle_t *) s->out, free_handle);
        uv_run(loop, UV_RUN_NOWAIT);
        auth_transport_free(s->t);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
        Side *s = h->data;
        *buf = uv_buf_init(s->got + s->n_got, (unsigned) (sizeof s->got - s->n_got));
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
        Side *s = stream->data;
        if (n > 0)
                s->n_got += (size_t) n;
}

static bool got_hello(void *p) {
        Side *s = p;
        return s->n_got >= 5;
}

static void test_good_handshake(void) {
        uv_loop_t loop;
        g_autofree char *addr_a = loopback_address(), *addr_b = loopback_address();
        Side a, b;
        AuthTransportStats st;

        uv_loop_init(&loop);
        side_init(&a, &loop, KEY, "prod", 1, addr_a);
        side_init(&b, &loop, KEY, "prod", 2, addr_b);
        g_assert_cmpint(a.t->listen(a.t, on_accept), ==, 0);

        g_assert_cmpint(b.t->connect(b.t, &b.req, 1, addr_a, on_connect), ==, 0);
        g_assert_true(run_until(&loop, &b.connect_done, 3000));
        g_assert_cmpint(b.connect_status, ==, 0);
        g_assert_nonnull(b.out);
        bool accepted = false;
        for (int i = 0; i < 2000 && !accepted; i++) {
                uv_run(&loop, UV_RUN_NOWAIT);
                accepted = a.accepted == 1;
                g_usleep(1000);
        }
        g_assert_cmpuint(a.accepted, ==, 1);
        g_assert_cmpuint(a.peer_id, ==, 2);
        g_assert_cmpstr(a.peer_address, ==, addr_b);

        /* the handed-over streams carry data: nothing of the handshake is left in them */
        uv_buf_t buf = uv_buf_init((char *) "hello", 5);
        g_assert_cmpint(uv_try_write(b.out, &buf, 1), ==, 5);
        a.stream->data = &a;
        g_assert_cmpint(uv_read_start(a.stream, on_alloc, on_read), ==, 0);
        bool done = false;
        for (int i = 0; i < 2000 && !done; i++) {
                uv_run(&loop, UV_RUN_NOWAIT);
                done = got_hello(&a);
                g_usleep(1000);
        }
        g_assert_cmpuint(a.n_got, ==, 5);
        g_assert_cmpint(memcmp(a.got, "hello", 5), ==, 0);
        uv_read_stop(a.stream);

        auth_transport_get_stats(a.t, &st);
        g_assert_cmpuint(st.accepted, ==, 1);
        g_assert_cmpuint(st.rejected_in, ==, 0);
        auth_transport_get_stats(b.t, &st);
        g_assert_cmpuint(st.connected, ==, 1);

        side_done(&b, &loop);
        side_done(&a, &loop);
        uv_run(&loop, UV_RUN_DEFAULT);
        g_assert_cmpint(uv_loop_close(&loop), ==, 0);
}

static int resolve_to_v6_loopback(void *userdata, uint64_t id, const char *address, struct sockaddr_storage *ret) {
        unsigned *calls = userdata;
        const char *colon = strrchr(address, ':');

        (*calls)++;
        g_assert_cmpuint(id, ==, 1);
        return uv_ip6_addr("::1", atoi(colon + 1), (struct sockaddr_in6 *) ret) == 0 ? 0 : -EINVAL;
}

static bool accepted_n(uv_loop_t *loop, Side *s, unsigned n) {
        for (int i = 0; i < 2000 && s->accepted < n; i++) {
                uv_run(loop, UV_RUN_NOWAIT);
                g_usleep(1000);
        }
        return s->accepted == n;
}

/* A server listening on [::] (auth_transport_set_listen_any) takes IPv4 and IPv6 clients; a
 * client's resolver decides where an address string connects (here one that does not parse,
 * so nothing could go anywhere else). */
static void test_ipv6_listen_any_and_resolver(void) {
        struct sockaddr_in6 probe = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool v6 = fd >= 0 && bind(fd, (struct sockaddr *) &probe, sizeof probe) == 0;
        g_autofree char *addr_a = loopback_address(), *addr_b = loopback_address(), *addr_c = loopback_address();
        g_autofree char *unresolvable = NULL;
        unsigned calls = 0;
        uv_loop_t loop;
        Side a, b, c;

        if (fd >= 0)
                close(fd);
        if (!v6) {
                g_test_skip("no IPv6 on loopback");
                return;
        }
        unresolvable = g_strdup_printf("raft-of-a%s", strrchr(addr_a, ':'));
        uv_loop_init(&loop);
        side_init(&a, &loop, KEY, "prod", 1, addr_a);
        auth_transport_set_listen_any(a.t, true);
        g_assert_cmpint(a.t->listen(a.t, on_accept), ==, 0);

        /* IPv6 through the resolver */
        side_init(&b, &loop, KEY, "prod", 2, addr_b);
        auth_transport_set_resolver(b.t, resolve_to_v6_loopback, &calls);
        g_assert_cmpint(b.t->connect(b.t, &b.req, 1, unresolvable, on_connect), ==, 0);
        g_assert_true(run_until(&loop, &b.connect_done, 3000));
        g_assert_cmpint(b.connect_status, ==, 0);
        g_assert_cmpuint(calls, ==, 1);
        g_assert_true(accepted_n(&loop, &a, 1));
        g_assert_cmpuint(a.peer_id, ==, 2);
        g_assert_cmpstr(a.peer_address, ==, addr_b);
        uv_stream_t *first = a.stream;

        /* IPv4 to the same dual-stack listener, the string as it is (no resolver) */
        side_init(&c, &loop, KEY, "prod", 3, addr_c);
        g_assert_cmpint(c.t->connect(c.t, &c.req, 1, addr_a, on_connect), ==, 0);
        g_assert_true(run_until(&loop, &c.connect_done, 3000));
        g_assert_cmpint(c.connect_status, ==, 0);
        g_assert_true(accepted_n(&loop, &a, 2));
        g_assert_cmpuint(a.peer_id, ==, 3);

        /* without a resolver, that string goes nowhere */
        g_assert_cmpint(c.t->connect(c.t, &c.req, 1, unresolvable, on_connect), ==, RAFT_NOCONNECTION);

        uv_close((uv_handle_t *) first, free_handle);
        side_done(&c, &loop);
        side_done(&b, &loop);
        side_done(&a, &loop);
        uv_run(&loop, UV_RUN_DEFAULT);
        g_assert_cmpint(uv_loop_close(&loop), ==, 0);
}

static void refused(const char *key_b, const char *cluster_b) {
        uv_loop_t loop;
        g_autofree char *addr_a = loopback_address(), *addr_b = loopback_address();
        Side a, b;
        AuthTransportStats st;

        uv_loop_init(&loop);
        side_init(&a, &loop, KEY, "prod", 1, addr_a);
        side_init(&b, &loop, key_b, cluster_b, 2, addr_b);
        g_assert_cmpint(a.t->listen(a.t, on_accept), ==, 0);
        g_assert_cmpint(b.t->connect(b.t, &b.req, 1, addr_a, on_connect), ==, 0);
        g_assert_true(run_until(&loop, &b.connect_done, 3000));
        g_assert_cmpint(b.connect_status, ==, RAFT_NOCONNECTION);
        g_assert_null(b.out);

        /* the server sees the client hang up and counts it; it never accepts */
        for (int i = 0; i < 2000; i++) {
                auth_transport_get_stats(a.t, &st);
                if (st.rejected_in > 0)
                        break;
                uv_run(&loop, UV_RUN_NOWAIT);
                g_usleep(1000);
        }
        g_assert_cmpuint(st.rejected_in, ==, 1);
        g_assert_cmpuint(a.accepted, ==, 0);
        auth_transport_get_stats(b.t, &st);
        g_assert_cmpuint(st.rejected_out, ==, 1);

        side_done(&b, &loop);
        side_done(&a, &loop);
        uv_run(&loop, UV_RUN_DEFAULT);
        g_assert_cmpint(uv_loop_close(&loop), ==, 0);
}

static void test_wrong_key(void) {
        refused("another key, same length 0123456", "prod");
}

static void test_wrong_cluster(void) {
        refused(KEY, "staging");
}

/* b (client) connects to a (server), each with its keyring: true if both sides completed. */
static bool handshake_with(Keyring *ka, Keyring *kb) {
        uv_loop_t loop;
        g_autofree char *addr_a = loopback_address(), *addr_b = loopback_address();
        Side a, b;
        AuthTransportStats st = {};
        bool ok;

        uv_loop_init(&loop);
        side_init(&a, &loop, KEY, "prod", 1, addr_a);
        side_init(&b, &loop, KEY, "prod", 2, addr_b);
        g_assert_cmpint(auth_transport_set_keyring(a.t, ka), ==, 0);
        g_assert_cmpint(auth_transport_set_keyring(b.t, kb), ==, 0);
        g_assert_cmpint(a.t->listen(a.t, on_accept), ==, 0);
        g_assert_cmpint(b.t->connect(b.t, &b.req, 1, addr_a, on_connect), ==, 0);
        g_assert_true(run_until(&loop, &b.connect_done, 3000));
        ok = b.connect_status == 0;
        /* the server either accepts or counts a rejection */
        for (int i = 0; i < 3000; i++) {
                auth_transport_get_stats(a.t, &st);
                if (a.accepted > 0 || st.rejected_in > 0)
                        break;
                uv_run(&loop, UV_RUN_NOWAIT);
                g_usleep(1000);
        }
        g_assert_cmpuint(a.accepted, ==, ok ? 1 : 0);
        g_assert_cmpuint(st.rejected_in, ==, ok ? 0 : 1);
        if (ok)
                g_assert_cmpuint(a.peer_id, ==, 2);

        side_done(&b, &loop);
        side_done(&a, &loop);
        uv_run(&loop, UV_RUN_DEFAULT);
        g_assert_cmpint(uv_loop_close(&loop), ==, 0);
        return ok;
}

static Keyring *ring(const char *primary, const char *other) {
        Keyring *k = keyring_new_single(primary, strlen(primary));
        if (other)
                g_assert_cmpint(keyring_add(k, other, strlen(other), false), ==, 0);
        return k;
}

#define OLD "old-cluster-key-0123456789abcdef"
#define NEW "new-cluster-key-0123456789abcdef"

/* Key rotation: the two sides' primaries may differ as long as the server's primary is installed
 * at the client; every state a rotation passes through connects both ways. */
static void test_keyring_rotation(void) {
        g_autoptr(Keyring) only_old = ring(OLD, NULL), only_new = ring(NEW, NULL);
        g_autoptr(Keyring) old_plus = ring(OLD, NEW), new_plus = ring(NEW, OLD);
        Keyring *steps[] = { only_old, old_plus, new_plus, only_new };

        /* neighbouring steps of a rotation (some nodes reloaded, others not yet) talk both ways */
        for (size_t i = 0; i < G_N_ELEMENTS(steps); i++)
                for (size_t j = i; j < G_N_ELEMENTS(steps) && j <= i + 1; j++) {
                        g_assert_true(handshake_with(steps[i], steps[j]));
                        g_assert_true(handshake_with(steps[j], steps[i]));
                }
        /* a changed keyring applies to the next handshake */
        g_autoptr(Keyring) shared = ring(OLD, NULL);
        g_assert_false(handshake_with(shared, only_new));
        keyring_assign(shared, new_plus);
        g_assert_true(handshake_with(shared, only_new));
        /* the client may answer under a secondary key; the server proves its primary only */
        g_assert_true(handshake_with(only_new, old_plus));
        g_assert_false(handshake_with(old_plus, only_new));
        /* no shared key at all */
        g_assert_false(handshake_with(only_old, only_new));
        g_assert_false(handshake_with(only_new, only_old));
        g_assert_cmpint(auth_transport_set_keyring(NULL, only_old), ==, -EINVAL);
}

/* ---- Encrypt=yes ---- */

static Keyring *sealed_ring(const char *primary, const char *other) {
        Keyring *k = ring(primary, other);
        keyring_set_encrypt(k, true);
        return k;
}

static bool pump_got(uv_loop_t *loop, Side *s, size_t want) {
        for (int i = 0; i < 3000 && s->n_got < want; i++) {
                uv_run(loop, UV_RUN_NOWAIT);
                g_usleep(1000);
        }
        return s->n_got >= want;
}

/* A sealed handshake: the same ids and addresses reach the server, and the handed-over streams
 * (the plain ends of the relays) carry data both ways, many records in a row, large ones too. */
static void test_sealed_handshake(void) {
        uv_loop_t loop;
        g_autofree char *addr_a = loopback_address(), *addr_b = loopback_address();
        g_autoptr(Keyring) ka = sealed_ring(KEY, NULL), kb = sealed_ring(KEY, NULL);
        Side a, b;
        AuthTransportStats st;

        uv_loop_init(&loop);
        side_init(&a, &loop, KEY, "prod", 1, addr_a);
        side_init(&b, &loop, KEY, "prod", 2, addr_b);
        g_assert_cmpint(auth_transport_set_keyring(a.t, ka), ==, 0);
        g_assert_cmpint(auth_transport_set_keyring(b.t, kb), ==, 0);
        g_assert_cmpint(a.t->listen(a.t, on_accept), ==, 0);
        g_assert_cmpint(b.t->connect(b.t, &b.req, 1, addr_a, on_connect), ==, 0);
        g_assert_true(run_until(&loop, &b.connect_done, 3000));
        g_assert_cmpint(b.connect_status, ==, 0);
        for (int i = 0; i < 2000 && a.accepted == 0; i++) {
                uv_run(&loop, UV_RUN_NOWAIT);
                g_usleep(1000);
        }
        g_assert_cmpuint(a.accepted, ==, 1);
        g_assert_cmpuint(a.peer_id, ==, 2);
        g_assert_cmpstr(a.peer_address, ==, addr_b);

        /* client → server */
        uv_buf_t buf = uv_buf_init((char *) "hello", 5);
        g_assert_cmpint(uv_try_write(b.out, &buf, 1), ==, 5);
        a.stream->data = &a;
        g_assert_cmpint(uv_read_start(a.stream, on_alloc, on_read), ==, 0);
        g_assert_true(pump_got(&loop, &a, 5));
        g_assert_cmpmem(a.got, a.n_got, "hello", 5);
        /* server → client, several writes */
        b.out->data = &b;
        g_assert_cmpint(uv_read_start(b.out, on_alloc, on_read), ==, 0);
        for (int i = 0; i < 6; i++) {
                uv_buf_t w = uv_buf_init((char *) "0123456789" + i, 1);
                g_assert_cmpint(uv_try_write(a.stream, &w, 1), ==, 1);
                uv_run(&loop, UV_RUN_NOWAIT);
        }
        g_assert_true(pump_got(&loop, &b, 6));
        g_assert_cmpmem(b.got, b.n_got, "012345", 6);
        uv_read_stop(b.out);
        uv_read_stop(a.stream);

        auth_transport_get_stats(a.t, &st);
        g_assert_cmpuint(st.accepted, ==, 1);
        g_assert_cmpuint(st.rejected_in, ==, 0);
        g_assert_cmpuint(st.mismatched, ==, 0);

        side_done(&b, &loop);
        side_done(&a, &loop);
        uv_run(&loop, UV_RUN_DEFAULT);
        g_assert_cmpint(uv_loop_close(&loop), ==, 0);
}

/* Bulk through a sealed connection whose reader starts late: the relays stop reading while the
 * far side has too much unsent (back-pressure) and resume; every byte arrives, in order. */
#define BULK_SIZE (48u << 20)
typedef struct Bulk {
        size_t got;
        bool bad;
        char buf[65536];
} Bulk;

static void on_bulk_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
        Bulk *b = h->data;
        *buf = uv_buf_init(b->buf, sizeof b->buf);
}

static void on_bulk_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
        Bulk *b = stream->data;
        for (ssize_t i = 0; i < n; i++)
                if ((uint8_t) buf->base[i] != (uint8_t) ((b->got + (size_t) i) * 7 / 3))
                        b->bad = true;
        if (n > 0)
                b->got += (size_t) n;
}

static void on_bulk_written(uv_write_t *req, int status) {
        g_assert_cmpint(status, ==, 0);
        *(bool *) req->data = true;
}

static void test_sealed_bulk(void) {
        uv_loop_t loop;
        g_autofree char *addr_a = loopback_address(), *addr_b = loopback_address();
        g_autoptr(Keyring) k = sealed_ring(KEY, NULL);
        g_autofree uint8_t *data = g_malloc(BULK_SIZE);
        Bulk bulk = {};
        uv_write_t req;
        bool written = false;
        Side a, b;

        for (size_t i = 0; i < BULK_SIZE; i++)
                data[i] = (uint8_t) (i * 7 / 3);
        uv_loop_init(&loop);
        side_init(&a, &loop, KEY, "prod", 1, addr_a);
        side_init(&b, &loop, KEY, "prod", 2, addr_b);
        g_assert_cmpint(auth_transport_set_keyring(a.t, k), ==, 0);
        g_assert_cmpint(auth_transport_set_keyring(b.t, k), ==, 0);
        g_assert_cmpint(a.t->listen(a.t, on_accept), ==, 0);
        g_assert_cmpint(b.t->connect(b.t, &b.req, 1, addr_a, on_connect), ==, 0);
        g_assert_true(run_until(&loop, &b.connect_done, 3000));
        g_assert_cmpint(b.connect_status, ==, 0);
        for (int i = 0; i < 2000 && a.accepted == 0; i++) {
                uv_run(&loop, UV_RUN_NOWAIT);
                g_usleep(1000);
        }
        g_assert_cmpuint(a.accepted, ==, 1);

        uv_buf_t buf = uv_buf_init((char *) data, BULK_SIZE);
        req.data = &written;
        g_assert_cmpint(uv_write(&req, b.out, &buf, 1, on_bulk_written), ==, 0);
        /* nobody reads at a for a while: the buffers and queues on the way fill up */
        for (int i = 0; i < 300; i++)
                uv_run(&loop, UV_RUN_NOWAIT);
        g_assert_false(written);
        a.stream->data = &bulk;
        g_assert_cmpint(uv_read_start(a.stream, on_bulk_alloc, on_bulk_read), ==, 0);
        for (int i = 0; i < 20000 && (bulk.got < BULK_SIZE || !written); i++)
                uv_run(&loop, UV_RUN_NOWAIT);
        g_assert_true(written);
        g_assert_cmpuint(bulk.got, ==, BULK_SIZE);
        g_assert_false(bulk.bad);
        uv_read_stop(a.stream);

        side_done(&b, &loop);
        side_done(&a, &loop);
        uv_run(&loop, UV_RUN_DEFAULT);
        g_assert_cmpint(uv_loop_close(&loop), ==, 0);
}

/* Encrypt= differs: refused either way round, and counted as a mismatch at the server. */
static void test_sealed_mismatch(void) {
        g_autoptr(Keyring) sealed = sealed_ring(KEY, NULL), plain = ring(KEY, NULL);
        g_autoptr(Keyring) sealed_other = sealed_ring("another key, same length 0123456", NULL);

        g_assert_false(handshake_with(sealed, plain));
        g_assert_false(handshake_with(plain, sealed));
        g_assert_false(handshake_with(sealed, sealed_other));
        g_assert_true(handshake_with(sealed, sealed));
}

/* Rotation works sealed as it does plain: the neighbouring steps connect both ways. */
static void test_sealed_rotation(void) {
        g_autoptr(Keyring) only_old = sealed_ring(OLD, NULL), only_new = sealed_ring(NEW, NULL);
        g_autoptr(Keyring) old_plus = sealed_ring(OLD, NEW), new_plus = sealed_ring(NEW, OLD);
        Keyring *steps[] = { only_old, old_plus, new_plus, only_new };

        for (size_t i = 0; i < G_N_ELEMENTS(steps); i++)
                for (size_t j = i; j < G_N_ELEMENTS(steps) && j <= i + 1; j++) {
                        g_assert_true(handshake_with(steps[i], steps[j]));
                        g_assert_true(handshake_with(steps[j], steps[i]));
                }
        g_assert_true(handshake_with(only_new, old_plus));
        g_assert_false(handshake_with(old_plus, only_new));
        g_assert_false(handshake_with(only_old, only_new));
}

/* A raw client: connect, send bytes, optionally read the 64-byte challenge. */
static int raw_connect(const char *address) {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        const char *colon = strrchr(address, ':');
        g_autofree char *host = g_strndup(address, (gsize) (colon - address));
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(fd, >=, 0);
        sa.sin_port = htons((uint16_t) atoi(colon + 1));
        g_assert_cmpint(inet_pton(AF_INET, host, &sa.sin_addr), ==, 1);
        g_assert_cmpint(connect(fd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
        return fd;
}

static void pump_until_rejected(uv_loop_t *loop, Side *a, uint64_t want) {
        AuthTransportStats st = {};
        for (int i = 0; i < 3000; i++) {
                auth_transport_get_stats(a->t, &st);
                if (st.rejected_in >= want)
                        break;
                uv_run(loop, UV_RUN_NOWAIT);
                g_usleep(1000);
        }
        g_assert_cmpuint(st.rejected_in, ==, want);
        g_assert_cmpuint(a->accepted, ==, 0);
}

static ssize_t read_full(int fd, uv_loop_t *loop, uint8_t *buf, size_t n) {
        size_t have = 0;
        for (int i = 0; i < 3000 && have < n; i++) {
                uv_run(loop, UV_RUN_NOWAIT);
                ssize_t k = recv(fd, buf + have, n - have, MSG_DONTWAIT);
                if (k > 0)
                        have += (size_t) k;
                else if (k == 0)
                        break;
                g_usleep(1000);
        }
        return (ssize_t) have;
}

static void mac(const char *role, const uint8_t *cn, const uint8_t *sn, const uint8_t *extra, size_t extra_size, uint8_t out[32]) {
        g_autoptr(GHmac) h = g_hmac_new(G_CHECKSUM_SHA256, (const guchar *) KEY, strlen(KEY));
        const char domain[] = "electiond-raft-v1";
        uint8_t len = 4;
        gsize n = 32;
        g_hmac_update(h, (const guchar *) domain, sizeof domain);
        g_hmac_update(h, &len, 1);
        g_hmac_update(h, (const guchar *) "prod", 4);
        g_hmac_update(h, (const guchar *) role, 3);
        g_hmac_update(h, cn, 32);
        g_hmac_update(h, sn, 32);
        g_hmac_update(h, extra, extra_size);
        g_hmac_get_digest(h, out, &n);
}

/* Returns the AUTH message for the challenge just read, and the server nonce it answered. */
static size_t build_auth(const uint8_t *cn, const uint8_t *challenge, uint8_t *out) {
        const char *addr = "127.0.0.1:9";
        size_t alen = strlen(addr);
        uint8_t *extra = out + 32;
        memset(extra, 0, 8);
        extra[0] = 7; /* id 7 */
        extra[8] = (uint8_t) alen;
        extra[9] = 0;
        memcpy(extra + 10, addr, alen);
        mac("cli", cn, challenge, extra, 10 + alen, out);
        return 32 + 10 + alen;
}

static void test_garbage_and_replay(void) {
        uv_loop_t loop;
        g_autofree char *addr_a = loopback_address();
        Side a;
        uint8_t hello[37] = { 'E', 'D', 'R', 'T', 1 };
        uint8_t challenge[64], auth[128];
        int fd;

        uv_loop_init(&loop);
        side_init(&a, &loop, KEY, "prod", 1, addr_a);
        g_assert_cmpint(a.t->listen(a.t, on_accept), ==, 0);

        /* 1: garbage instead of HELLO */
        fd = raw_connect(addr_a);
        g_assert_cmpint(write(fd, "GET / HTTP/1.0\r\n\r\n0123456789012345678", 37), ==, 37);
        pump_until_rejected(&loop, &a, 1);
        close(fd);

        /* 2: a correct session, to learn a valid AUTH (the server then accepts id 7) */
        for (int i = 0; i < 32; i++)
                hello[5 + i] = (uint8_t) i;
        fd = raw_connect(addr_a);
        g_assert_cmpint(write(fd, hello, sizeof hello), ==, (ssize_t) sizeof hello);
        g_assert_cmpint(read_full(fd, &loop, challenge, 64), ==, 64);
        uint8_t expect_mac[32];
        mac("srv", hello + 5, challenge, NULL, 0, expect_mac);
        g_assert_cmpint(memcmp(expect_mac, challenge + 32, 32), ==, 0); /* the server proves the key */
        size_t n_auth = build_auth(hello + 5, challenge, auth);
        g_assert_cmpint(write(fd, auth, n_auth), ==, (ssize_t) n_auth);
        uint8_t ok = 0;
        g_assert_cmpint(read_full(fd, &loop, &ok, 1), ==, 1);
        g_assert_cmpuint(ok, ==, 1);
        for (int i = 0; i < 1000 && a.accepted == 0; i++) {
                uv_run(&loop, UV_RUN_NOWAIT);
                g_usleep(1000);
        }
        g_assert_cmpuint(a.accepted, ==, 1);
        g_assert_cmpuint(a.peer_id, ==, 7);
        uv_close((uv_handle_t *) a.stream, free_handle);
        a.stream = NULL;
        close(fd);
        a.accepted = 0;

        /* 3: replay the same HELLO and AUTH: the server's fresh nonce makes the old MAC worthless */
        fd = raw_connect(addr_a);
        g_assert_cmpint(write(fd, hello, sizeof hello), ==, (ssize_t) sizeof hello);
        uint8_t challenge2[64];
        g_assert_cmpint(read_full(fd, &loop, challenge2, 64), ==, 64);
        g_assert_cmpint(memcmp(challenge, challenge2, 32), !=, 0);
        g_assert_cmpint(write(fd, auth, n_auth), ==, (ssize_t) n_auth);
        pump_until_rejected(&loop, &a, 2);
        close(fd);

        /* 4: an oversized address length */
        fd = raw_connect(addr_a);
        g_assert_cmpint(write(fd, hello, sizeof hello), ==, (ssize_t) sizeof hello);
        g_assert_cmpint(read_full(fd, &loop, challenge2, 64), ==, 64);
        memset(auth, 0xff, 42);
        g_assert_cmpint(write(fd, auth, 42), ==, 42);
        pump_until_rejected(&loop, &a, 3);
        close(fd);

        side_done(&a, &loop);
        uv_run(&loop, UV_RUN_DEFAULT);
        g_assert_cmpint(uv_loop_close(&loop), ==, 0);
}

/* Rolling upgrade: the HELLO of test_garbage_and_replay is v0.1.0's (version 1, built by hand)
 * and is accepted; a version this build does not speak is refused before any nonce is sent. */
static void test_unknown_version(void) {
        uv_loop_t loop;
        g_autofree char *addr_a = loopback_address();
        Side a;
        uint8_t hello[37] = { 'E', 'D', 'R', 'T', 2 };
        int fd;

        uv_loop_init(&loop);
        side_init(&a, &loop, KEY, "prod", 1, addr_a);
        g_assert_cmpint(a.t->listen(a.t, on_accept), ==, 0);
        fd = raw_connect(addr_a);
        g_assert_cmpint(write(fd, hello, sizeof hello), ==, (ssize_t) sizeof hello);
        pump_until_rejected(&loop, &a, 1);
        close(fd);
        hello[4] = 0;
        fd = raw_connect(addr_a);
        g_assert_cmpint(write(fd, hello, sizeof hello), ==, (ssize_t) sizeof hello);
        pump_until_rejected(&loop, &a, 2);
        close(fd);
        side_done(&a, &loop);
        uv_run(&loop, UV_RUN_DEFAULT);
        g_assert_cmpint(uv_loop_close(&loop), ==, 0);
}

static void on_read_eof(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
        Side *s = stream->data;
        if (n > 0)
                s->n_got += (size_t) n;
        else if (n < 0)
                s->closed = true; /* reused as "saw EOF" */
}

/* The sealed handshake and stream byte by byte, from a raw client holding the key: a plain HELLO
 * is refused as a mismatch; the address never shows on the wire; the stream carries sealed
 * records only, opened in order; a tampered record closes the connection. */
static void test_sealed_raw(void) {
        uv_loop_t loop;
        g_autofree char *addr_a = loopback_address();
        g_autoptr(Keyring) k = sealed_ring(KEY, NULL);
        const char *addr = "127.0.0.1:9";
        uint8_t hello[37] = { 'E', 'D', 'R', 'T', 1 };
        uint8_t challenge[64], auth[400], plain[265] = {}, rec[64], ok = 0;
        SealStream c2s, s2c;
        AuthTransportStats st;
        Side a;
        size_t n;
        int fd;

        uv_loop_init(&loop);
        side_init(&a, &loop, KEY, "prod", 1, addr_a);
        g_assert_cmpint(auth_transport_set_keyring(a.t, k), ==, 0);
        g_assert_cmpint(a.t->listen(a.t, on_accept), ==, 0);

        /* plain HELLO at a sealed server */
        for (int i = 0; i < 32; i++)
                hello[5 + i] = (uint8_t) (i * 7);
        fd = raw_connect(addr_a);
        g_assert_cmpint(write(fd, hello, sizeof hello), ==, (ssize_t) sizeof hello);
        pump_until_rejected(&loop, &a, 1);
        auth_transport_get_stats(a.t, &st);
        g_assert_cmpuint(st.mismatched, ==, 1);
        close(fd);

        /* a sealed session */
        memcpy(hello, "EDRS", 4);
        fd = raw_connect(addr_a);
        g_assert_cmpint(write(fd, hello, sizeof hello), ==, (ssize_t) sizeof hello);
        g_assert_cmpint(read_full(fd, &loop, challenge, 64), ==, 64);
        uint8_t expect_mac[32];
        mac("srv", hello + 5, challenge, NULL, 0, expect_mac);
        g_assert_cmpint(memcmp(expect_mac, challenge + 32, 32), ==, 0);
        plain[0] = 7;
        plain[8] = (uint8_t) strlen(addr);
        memcpy(plain + 10, addr, strlen(addr));
        mac("cli", hello + 5, challenge, plain, 10 + strlen(addr), auth);
        g_assert_cmpint(seal_stream_keys(k, 0, "prod", hello + 5, challenge, 32, &c2s, &s2c), ==, 0);
        g_assert_cmpint(seal_stream_seal(&c2s, plain, sizeof plain, auth + 32), ==, 0);
        n = 32 + 4 + sizeof plain + 16;
        g_assert_null(memmem(auth, n, addr, strlen(addr)));
        g_assert_cmpint(write(fd, auth, n), ==, (ssize_t) n);
        g_assert_cmpint(read_full(fd, &loop, &ok, 1), ==, 1);
        g_assert_cmpuint(ok, ==, 1);
        for (int i = 0; i < 1000 && a.accepted == 0; i++) {
                uv_run(&loop, UV_RUN_NOWAIT);
                g_usleep(1000);
        }
        g_assert_cmpuint(a.accepted, ==, 1);
        g_assert_cmpuint(a.peer_id, ==, 7);
        g_assert_cmpstr(a.peer_address, ==, addr);

        /* raw client → libraft's end */
        g_assert_cmpint(seal_stream_seal(&c2s, "ping", 4, rec), ==, 0);
        g_assert_cmpint(write(fd, rec, 24), ==, 24);
        a.stream->data = &a;
        g_assert_cmpint(uv_read_start(a.stream, on_alloc, on_read_eof), ==, 0);
        g_assert_true(pump_got(&loop, &a, 4));
        g_assert_cmpmem(a.got, a.n_got, "ping", 4);
        /* libraft's end → the wire: one sealed record, "pong" not in it */
        uv_buf_t w = uv_buf_init((char *) "pong", 4);
        g_assert_cmpint(uv_try_write(a.stream, &w, 1), ==, 4);
        g_assert_cmpint(read_full(fd, &loop, rec, 24), ==, 24);
        g_assert_null(memmem(rec, 24, "pong", 4));
        uint8_t back[8];
        g_assert_cmpint(seal_stream_open(&s2c, rec, 24, back, &n), ==, 0);
        g_assert_cmpmem(back, n, "pong", 4);
        /* a tampered record: the relay hangs up, libraft's end sees EOF */
        g_assert_false(a.closed);
        g_assert_cmpint(seal_stream_seal(&c2s, "next", 4, rec), ==, 0);
        rec[5] ^= 1;
        g_assert_cmpint(write(fd, rec, 24), ==, 24);
        g_assert_true(run_until(&loop, &a.closed, 3000));
        g_assert_cmpuint(a.n_got, ==, 4);
        a.closed = false;
        uv_read_stop(a.stream);
        close(fd);

        side_done(&a, &loop);
        uv_run(&loop, UV_RUN_DEFAULT);
        g_assert_cmpint(uv_loop_close(&loop), ==, 0);
}

static void test_cancel_on_close(void) {
        uv_loop_t loop;
        g_autofree char *addr_b = loopback_address();
        Side b;
        /* a listener that accepts and never answers */
        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        g_assert_cmpint(bind(lfd, (struct sockaddr *) &sa, sizeof sa), ==, 0);
        g_assert_cmpint(listen(lfd, 4), ==, 0);
        g_assert_cmpint(getsockname(lfd, (struct sockaddr *) &sa, &len), ==, 0);
        g_autofree char *silent = g_strdup_printf("127.0.0.1:%u", ntohs(sa.sin_port));

        uv_loop_init(&loop);
        side_init(&b, &loop, KEY, "prod", 2, addr_b);
        g_assert_cmpint(b.t->connect(b.t, &b.req, 1, silent, on_connect), ==, 0);
        for (int i = 0; i < 50; i++) {
                uv_run(&loop, UV_RUN_NOWAIT);
                g_usleep(1000);
        }
        g_assert_false(b.connect_done);
        b.t->close(b.t, on_transport_closed);
        g_assert_true(run_until(&loop, &b.closed, 2000));
        g_assert_true(b.connect_done);
        g_assert_cmpint(b.connect_status, ==, RAFT_CANCELED);
        uv_run(&loop, UV_RUN_DEFAULT);
        auth_transport_free(b.t);
        g_assert_cmpint(uv_loop_close(&loop), ==, 0);
        close(lfd);

        /* bad arguments */
        struct raft_uv_transport *t = NULL;
        g_assert_cmpint(auth_transport_new(NULL, KEY, 4, "x", &t), ==, -EINVAL);
        g_assert_cmpint(auth_transport_new(&loop, KEY, 0, "x", &t), ==, -EINVAL);
}

/* ---- two real Raft engines over the authenticated transport ---- */

typedef struct Fsm {
        unsigned applied;
} Fsm;

static void fsm_apply(void *userdata, const void *data, size_t size, uint64_t index) {
        ((Fsm *) userdata)->applied++;
}
static int fsm_snapshot(void *userdata, GBytes **ret) {
        *ret = g_bytes_new("s", 1);
        return 0;
}
static int fsm_restore(void *userdata, const void *data, size_t size) {
        return 0;
}
static void fsm_role(void *userdata) {
}
static const EngineCallbacks callbacks = { fsm_apply, fsm_snapshot, fsm_restore, fsm_role };

static int make_transport(void *userdata, struct uv_loop_s *loop, struct raft_uv_transport **ret) {
        return auth_transport_new(loop, userdata, strlen(userdata), "prod", ret);
}
/* Encrypt=yes: the same key, sealed */
static int make_sealed_transport(void *userdata, struct uv_loop_s *loop, struct raft_uv_transport **ret) {
        g_autoptr(Keyring) k = sealed_ring(userdata, NULL);
        int r = auth_transport_new(loop, userdata, strlen(userdata), "prod", ret);
        if (r >= 0)
                r = auth_transport_set_keyring(*ret, k);
        return r;
}
static void drop_transport(void *userdata, struct raft_uv_transport *t) {
        auth_transport_free(t);
}

typedef struct Done {
        unsigned n, ok;
} Done;
static void on_done(int status, void *userdata) {
        Done *d = userdata;
        d->n++;
        if (status == 0)
                d->ok++;
}

static bool pump_for(sd_event *e, bool (*cond)(void *), void *p, uint64_t usec) {
        uint64_t deadline = now_monotonic_usec() + usec;
        while (!cond(p) && now_monotonic_usec() < deadline)
                g_assert_cmpint(sd_event_run(e, 10 * USEC_PER_MSEC), >=, 0);
        return cond(p);
}
static bool pump(sd_event *e, bool (*cond)(void *), void *p) {
        return pump_for(e, cond, p, 10 * USEC_PER_SEC);
}
static bool is_leader(void *p) {
        return engine_is_leader(p);
}
typedef struct Want {
        unsigned *have, want;
} Want;
static bool enough(void *p) {
        Want *w = p;
        return *w->have >= w->want;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void engines_over(const char *key2, bool sealed1, bool sealed2, bool expect_replication) {
        g_autofree char *d1 = g_strdup("/tmp/electiond-transport-XXXXXX"), *d2 = g_strdup("/tmp/electiond-transport-XXXXXX");
        g_autofree char *a1 = loopback_address(), *a2 = loopback_address();
        sd_event *event = NULL;
        Engine *e1, *e2;
        Fsm f1 = {}, f2 = {};
        Done d = {}, change = {};

        g_assert_nonnull(g_mkdtemp(d1));
        g_assert_nonnull(g_mkdtemp(d2));
        EngineConfig c1 = { .dir = d1, .server_id = 1, .address = a1,
                            .transport_new = sealed1 ? make_sealed_transport : make_transport,
                            .transport_free = drop_transport, .transport_userdata = (void *) KEY };
        EngineConfig c2 = { .dir = d2, .server_id = 2, .address = a2,
                            .transport_new = sealed2 ? make_sealed_transport : make_transport,
                            .transport_free = drop_transport, .transport_userdata = (void *) key2 };
        EngineServer boot = { .id = 1, .address = a1, .voter = true };

        g_assert_cmpint(sd_event_new(&event), >=, 0);
        g_assert_cmpint(engine_new(event, &c1, &callbacks, &f1, &e1), ==, 0);
        g_assert_cmpint(engine_bootstrap(e1, &boot, 1), ==, 0);
        g_assert_cmpint(engine_start(e1), ==, 0);
        g_assert_true(pump(event, is_leader, e1));
        g_assert_cmpint(engine_new(event, &c2, &callbacks, &f2, &e2), ==, 0);
        g_assert_cmpint(engine_start(e2), ==, 0);

        for (int i = 0; i < 5; i++)
                g_assert_cmpint(engine_submit(e1, "xxxxxxxx", 8, on_done, &d), ==, 0);
        g_assert_cmpint(engine_add_member(e1, 2, a2, on_done, &change), ==, 0);
        Want w = { &change.n, 1 };
        g_assert_true(pump(event, enough, &w));
        /* a stand-by replicates the log (a spare would not); no catch-up rounds needed */
        g_assert_cmpint(engine_assign_member(e1, 2, false, on_done, &change), ==, 0);
        w.want = 2;
        g_assert_true(pump(event, enough, &w));

        Want applied = { &f2.applied, 5 };
        /* refused handshakes retry every few ms: 2 s is plenty to be sure nothing got through */
        bool replicated = pump_for(event, enough, &applied, (expect_replication ? 10 : 2) * USEC_PER_SEC);
        g_assert_true(replicated == expect_replication);
        if (!expect_replication)
                g_assert_cmpuint(f2.applied, ==, 0);

        engine_free(e2);
        engine_free(e1);
        sd_event_unref(event);
        nftw(d1, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        nftw(d2, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void engines_over_transport(const char *key2, bool expect_replication) {
        engines_over(key2, false, false, expect_replication);
}

static void test_engines_same_key(void) {
        engines_over_transport(KEY, true);
}

static void test_engines_wrong_key(void) {
        engines_over_transport("a different key of the same size", false);
}

/* Raft replicates over sealed streams; nothing gets through when only one side seals. */
static void test_engines_sealed(void) {
        engines_over(KEY, true, true, true);
}

static void test_engines_sealed_mismatch(void) {
        engines_over(KEY, true, false, false);
}

int main(int argc, char *argv[]) {
        signal(SIGPIPE, SIG_IGN);
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/transport/good-handshake", test_good_handshake);
        g_test_add_func("/transport/ipv6-listen-any-and-resolver", test_ipv6_listen_any_and_resolver);
        g_test_add_func("/transport/wrong-key", test_wrong_key);
        g_test_add_func("/transport/wrong-cluster", test_wrong_cluster);
        g_test_add_func("/transport/keyring-rotation", test_keyring_rotation);
        g_test_add_func("/transport/garbage-and-replay", test_garbage_and_replay);
        g_test_add_func("/transport/unknown-version", test_unknown_version);
        g_test_add_func("/transport/cancel-on-close", test_cancel_on_close);
        g_test_add_func("/transport/engines-same-key", test_engines_same_key);
        g_test_add_func("/transport/engines-wrong-key", test_engines_wrong_key);
        g_test_add_func("/transport/sealed-handshake", test_sealed_handshake);
        g_test_add_func("/transport/sealed-mismatch", test_sealed_mismatch);
        g_test_add_func("/transport/sealed-rotation", test_sealed_rotation);
        g_test_add_func("/transport/sealed-raw", test_sealed_raw);
        g_test_add_func("/transport/sealed-bulk", test_sealed_bulk);
        g_test_add_func("/transport/engines-sealed", test_engines_sealed);
        g_test_add_func("/transport/engines-sealed-mismatch", test_engines_sealed_mismatch);
        return g_test_run();
}
