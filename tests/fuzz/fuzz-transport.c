/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the Raft transport's handshake decoder (electiond-transport.c), which reads
 * network input before anything is authenticated. Each input goes to the real server side over a
 * loopback TCP connection: byte 0 odd = first send a well-formed HELLO and read the challenge, so
 * that the rest lands in the AUTH parser; even = the rest is the whole stream. The handshake must
 * end in a refusal (or, for the one correct AUTH, an accept) without crashing or leaking. Bit 1
 * set: the server has Encrypt=yes (and the HELLO of bit 0 is the sealed one), so the rest lands
 * in the sealed AUTH's opener. */
#include <arpa/inet.h>
#include <glib.h>
#include <poll.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "electiond-keyring.h"
#include "electiond-transport.h"
#include "electiond-util.h"
#include "fuzz.h"

static uv_loop_t loop;
static struct raft_uv_transport *server, *sealed_server;
static struct sockaddr_in addr, sealed_addr;
static unsigned accepted;

static void free_handle(uv_handle_t *h) {
        raft_free(h);
}

static void on_accept(struct raft_uv_transport *t, raft_id id, const char *address, uv_stream_t *stream) {
        accepted++;
        uv_close((uv_handle_t *) stream, free_handle);
}

static void listen_on(struct raft_uv_transport *t, struct sockaddr_in *ret) {
        char address[64];
        socklen_t len = sizeof *ret;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        *ret = (struct sockaddr_in) { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        g_assert(bind(fd, (struct sockaddr *) ret, sizeof *ret) == 0);
        g_assert(getsockname(fd, (struct sockaddr *) ret, &len) == 0);
        close(fd);
        snprintf(address, sizeof address, "127.0.0.1:%u", ntohs(ret->sin_port));
        g_assert(t->init(t, 1, address) == 0);
        g_assert(t->listen(t, on_accept) == 0);
}

static void setup(void) {
        char address[64];
        socklen_t len = sizeof addr;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        log_set_max_level(LOG_CRIT);
        signal(SIGPIPE, SIG_IGN);
        addr = (struct sockaddr_in) { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        g_assert(bind(fd, (struct sockaddr *) &addr, sizeof addr) == 0);
        g_assert(getsockname(fd, (struct sockaddr *) &addr, &len) == 0);
        close(fd);
        snprintf(address, sizeof address, "127.0.0.1:%u", ntohs(addr.sin_port));

        g_assert(uv_loop_init(&loop) == 0);
        g_assert(auth_transport_new(&loop, "fuzz-transport-key-0123456789", 29, "fuzz", &server) == 0);
        g_assert(server->init(server, 1, address) == 0);
        g_assert(server->listen(server, on_accept) == 0);

        Keyring *ring = keyring_new_single("fuzz-transport-key-0123456789", 29);
        keyring_set_encrypt(ring, true);
        g_assert(auth_transport_new(&loop, "fuzz-transport-key-0123456789", 29, "fuzz", &sealed_server) == 0);
        g_assert(auth_transport_set_keyring(sealed_server, ring) == 0);
        keyring_unref(ring);
        listen_on(sealed_server, &sealed_addr);
}

static uint64_t finished(void) {
        AuthTransportStats st, st2;
        auth_transport_get_stats(server, &st);
        auth_transport_get_stats(sealed_server, &st2);
        return st.rejected_in + st.accepted + st2.rejected_in + st2.accepted;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint64_t before;
        int fd;

        if (!server)
                setup();
        if (size < 1)
                return 0;
        before = finished();
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert(fd >= 0);
        g_assert(connect(fd, (struct sockaddr *) (data[0] & 2 ? &sealed_addr : &addr), sizeof addr) == 0);

        if (data[0] & 1) {
                uint8_t hello[37] = { 'E', 'D', 'R', data[0] & 2 ? 'S' : 'T', 1 }, challenge[64];
                size_t got = 0;
                g_assert(write(fd, hello, sizeof hello) == (ssize_t) sizeof hello);
                for (int i = 0; i < 2000 && got < sizeof challenge; i++) {
                        uv_run(&loop, UV_RUN_NOWAIT);
                        ssize_t k = recv(fd, challenge + got, sizeof challenge - got, MSG_DONTWAIT);
                        if (k > 0)
                                got += (size_t) k;
                        else if (k == 0)
                                break;
                }
        }
        if (size > 1)
                (void) !write(fd, data + 1, size - 1);
        close(fd); /* the end of the stream: every handshake finishes one way or the other */

        for (int i = 0; i < 5000 && finished() == before; i++) {
                uv_run(&loop, UV_RUN_NOWAIT);
                if (finished() == before)
                        (void) poll(NULL, 0, 0);
        }
        g_assert(finished() > before); /* no handshake may hang on a closed stream */
        return 0;
}

void fuzz_seeds(GPtrArray *out) {
        static const uint8_t hello[] = { 0, 'E', 'D', 'R', 'T', 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                         16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31 };
        uint8_t auth[1 + 32 + 10 + 11] = { 1 };
        memcpy(auth + 1 + 32 + 8, "\x0b\x00", 2);
        memcpy(auth + 1 + 32 + 10, "127.0.0.1:9", 11);
        uint8_t auth6[1 + 32 + 10 + 17] = { 1 };
        memcpy(auth6 + 1 + 32 + 8, "\x11\x00", 2);
        memcpy(auth6 + 1 + 32 + 10, "[fe80::1%lo]:7946", 17);
        g_ptr_array_add(out, g_bytes_new(hello, sizeof hello));
        g_ptr_array_add(out, g_bytes_new(auth, sizeof auth));
        g_ptr_array_add(out, g_bytes_new(auth6, sizeof auth6));
        /* the sealed server: a sealed AUTH's size of bytes */
        uint8_t sealed_auth[1 + 32 + 4 + 265 + 16] = { 3 };
        sealed_auth[1 + 32 + 2] = 0x01;
        sealed_auth[1 + 32 + 3] = 0x19;
        g_ptr_array_add(out, g_bytes_new(sealed_auth, sizeof sealed_auth));
}
