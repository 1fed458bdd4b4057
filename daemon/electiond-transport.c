/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <glib.h>
#include <net/if.h>
#include <raft.h>
#include <raft/uv.h>
#include <sys/random.h>
#include <uv.h>

#include "electiond-bytes.h"
#include "electiond-keyring.h"
#include "electiond-seal.h"
#include "electiond-transport.h"
#include "electiond-util.h"

#define NONCE_SIZE 32
#define MAC_SIZE 32
#define HELLO_SIZE (4 + 1 + NONCE_SIZE)
#define CHALLENGE_SIZE (NONCE_SIZE + MAC_SIZE)
#define AUTH_FIXED_SIZE (MAC_SIZE + 8 + 2)
#define ADDRESS_MAX 255
#define PROTOCOL_VERSION 1     /* sent by clients; unchanged since v0.1.0 */
#define PROTOCOL_VERSION_OLDEST 1 /* oldest a server accepts (v0.1.0's); see docs/DESIGN.md "Versions" */
#define OK_BYTE 0x01
/* Encrypt=yes: AUTH's id and address travel as the first record of the client's sealed stream,
 * the address padded to ADDRESS_MAX so that its length does not show either. */
#define AUTH_SEALED_PLAIN (8 + 2 + ADDRESS_MAX)
#define AUTH_SEALED_SIZE (MAC_SIZE + SEAL_RECORD_HEADER + AUTH_SEALED_PLAIN + SEAL_TAG_SIZE)
#define HANDSHAKE_BUF_MAX MAX(AUTH_FIXED_SIZE + ADDRESS_MAX, AUTH_SEALED_SIZE)

static const char magic[4] = { 'E', 'D', 'R', 'T' };
static const char magic_sealed[4] = { 'E', 'D', 'R', 'S' };
static const char mac_domain[] = "electiond-raft-v1";

typedef struct AuthTransport AuthTransport;

typedef enum Stage {
        STAGE_CONNECTING,    /* client: TCP connect in progress */
        STAGE_HELLO,         /* server: reading HELLO */
        STAGE_CHALLENGE,     /* client: reading CHALLENGE */
        STAGE_AUTH_FIXED,    /* server: reading AUTH up to the address length */
        STAGE_AUTH_ADDRESS,  /* server: reading the address */
        STAGE_OK,            /* client: reading OK */
        STAGE_HANDING_OVER,  /* server: OK being written */
        STAGE_DONE,
} Stage;

typedef struct WriteReq WriteReq;

typedef struct Handshake {
        AuthTransport *transport;
        bool outbound;
        Stage stage;
        uv_tcp_t *tcp;       /* raft_malloc'ed: libraft frees it once it owns it */
        uv_timer_t timer;
        uv_connect_t connect;
        unsigned open_handles;
        unsigned pending_writes; /* each holds the handshake alive until its callback */
        bool failed;

        struct raft_uv_connect *req; /* outbound */
        raft_uv_connect_cb cb;

        uint64_t peer_id;
        char peer_address[ADDRESS_MAX + 1];

        uint8_t client_nonce[NONCE_SIZE];
        uint8_t server_nonce[NONCE_SIZE];
        uint8_t in[HANDSHAKE_BUF_MAX];
        size_t have, need;
        uint8_t out[HANDSHAKE_BUF_MAX];

        bool sealed;         /* Encrypt=yes: "EDRS", sealed AUTH, then a sealed stream (Relay) */
        SealStream tx, rx;

        GList link; /* in transport->handshakes */
} Handshake;

struct AuthTransport {
        struct raft_uv_transport iface; /* first: libraft hands us back this pointer */
        uv_loop_t *loop;
        Keyring *keyring;       /* MACs under its primary; any installed key is accepted */
        char *cluster;

        uint64_t id;
        char *address;

        uv_tcp_t *listener;
        raft_uv_accept_cb accept_cb;
        AuthTransportIdentityFn identity_check;
        void *identity_userdata;
        AuthTransportResolveFn resolve;
        void *resolve_userdata;
        bool listen_any;

        GQueue handshakes;
        GQueue relays;
        uint64_t mismatch_logged;
        bool closing;
        raft_uv_transport_close_cb close_cb;
        unsigned closing_handles;

        AuthTransportStats stats;
};

static AuthTransport *AUTH(struct raft_uv_transport *t) {
        return (AuthTransport *) t;
}

/* ---- MACs ---- */

/* The MAC's parts: domain, cluster name, role, both nonces, extra. */
static size_t mac_parts(const AuthTransport *t, const char *role, const Handshake *h, const uint8_t *extra,
                        size_t extra_size, uint8_t *len, const void *parts[7], size_t sizes[7]) {
        *len = (uint8_t) strlen(t->cluster);
        parts[0] = mac_domain;      sizes[0] = sizeof mac_domain;
        parts[1] = len;             sizes[1] = 1;
        parts[2] = t->cluster;      sizes[2] = *len;
        parts[3] = role;            sizes[3] = 3;
        parts[4] = h->client_nonce; sizes[4] = NONCE_SIZE;
        parts[5] = h->server_nonce; sizes[5] = NONCE_SIZE;
        parts[6] = extra;           sizes[6] = extra_size;
        return 7;
}

/* Under key i of the ring (0 = primary). */
static void mac_compute(const AuthTransport *t, size_t key, const char *role, const Handshake *h,
                        const uint8_t *extra, size_t extra_size, uint8_t ret[MAC_SIZE]) {
        const void *parts[7];
        size_t sizes[7], n;
        uint8_t len;

        n = mac_parts(t, role, h, extra, extra_size, &len, parts, sizes);
        keyring_mac(t->keyring, key, parts, sizes, n, ret);
}

/* The index of the installed key mac was made under, or -EBADMSG. */
static int mac_verify(const AuthTransport *t, const char *role, const Handshake *h,
                      const uint8_t *extra, size_t extra_size, const uint8_t mac[MAC_SIZE]) {
        const void *parts[7];
        size_t sizes[7], n;
        uint8_t len;

        n = mac_parts(t, role, h, extra, extra_size, &len, parts, sizes);
        return keyring_verify_parts(t->keyring, parts, sizes, n, mac);
}

static int random_bytes(void *p, size_t n) {
        uint8_t *b = p;
        while (n > 0) {
                ssize_t k = getrandom(b, n, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                b += k;
                n -= (size_t) k;
        }
        return 0;
}

/* "1.2.3.4:5", "[::1]:5" or "[fe80::1%eth0]:5" */
static int parse_address(const char *address, struct sockaddr_storage *ret) {
        char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
        const char *colon;
        unsigned long port;
        char *end;

        if (!address)
                return -EINVAL;
        if (address[0] == '[') {
                const char *close = strchr(address, ']');
                if (!close || close[1] != ':' || (size_t) (close - address - 1) >= sizeof host)
                        return -EINVAL;
                memcpy(host, address + 1, (size_t) (close - address - 1));
                host[close - address - 1] = 0;
                colon = close + 1;
        } else {
                colon = strrchr(address, ':');
                if (!colon || (size_t) (colon - address) >= sizeof host)
                        return -EINVAL;
                memcpy(host, address, (size_t) (colon - address));
                host[colon - address] = 0;
        }
        errno = 0;
        port = strtoul(colon + 1, &end, 10);
        if (errno != 0 || *end != 0 || port == 0 || port > 65535)
                return -EINVAL;

        memset(ret, 0, sizeof *ret);
        if (uv_ip4_addr(host, (int) port, (struct sockaddr_in *) ret) == 0)
                return 0;
        if (uv_ip6_addr(host, (int) port, (struct sockaddr_in6 *) ret) == 0)
                return 0;
        return -EINVAL;
}

/* ---- handshake lifetime ---- */

static void transport_maybe_closed(AuthTransport *t);

static void handshake_free(Handshake *h) {
        AuthTransport *t = h->transport;
        g_queue_unlink(&t->handshakes, &h->link);
        seal_stream_wipe(&h->tx);
        seal_stream_wipe(&h->rx);
        explicit_bzero(h, sizeof *h);
        g_free(h);
        transport_maybe_closed(t);
}

static void handshake_unref(Handshake *h) {
        if (h->open_handles == 0 && h->pending_writes == 0)
                handshake_free(h);
}

static void on_handshake_handle_closed(uv_handle_t *handle) {
        Handshake *h = handle->data;
        if (handle == (uv_handle_t *) h->tcp) {
                raft_free(h->tcp);
                h->tcp = NULL;
        }
        h->open_handles--;
        handshake_unref(h);
}

static void handshake_close(Handshake *h) {
        if (!uv_is_closing((uv_handle_t *) &h->timer))
                uv_close((uv_handle_t *) &h->timer, on_handshake_handle_closed);
        if (h->tcp && !uv_is_closing((uv_handle_t *) h->tcp))
                uv_close((uv_handle_t *) h->tcp, on_handshake_handle_closed);
}

static void handshake_fail(Handshake *h, const char *why) {
        AuthTransport *t = h->transport;

        if (h->failed || h->stage == STAGE_DONE)
                return;
        h->failed = true;
        if (h->outbound) {
                t->stats.rejected_out++;
                log_debug("Raft connection to %s refused: %s", h->peer_address, why);
                if (h->cb) {
                        raft_uv_connect_cb cb = h->cb;
                        h->cb = NULL;
                        cb(h->req, NULL, t->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
                }
        } else {
                t->stats.rejected_in++;
                log_debug("Inbound Raft connection dropped: %s", why);
        }
        handshake_close(h);
}

/* ---- Encrypt=yes: the sealed stream ----
 *
 * libraft reads and writes a plain byte stream. A sealed connection hands it one end of a local
 * socketpair instead of the TCP stream; the Relay seals what libraft writes into records on the
 * TCP stream and opens what arrives there back into the socketpair. Either side closing (or a
 * record that does not open) closes both, and libraft sees an ordinary disconnect. */

#define RELAY_QUEUE_MAX (4u << 20) /* stop reading a side while the other has this much unsent */

typedef struct Relay {
        AuthTransport *transport;
        uv_tcp_t *tcp;          /* raft_malloc'ed, taken over from the handshake */
        uv_pipe_t local;        /* our end of the socketpair */
        unsigned open_handles, pending_writes;
        bool closing, local_paused, tcp_paused;
        SealStream tx, rx;
        size_t have;            /* bytes of net_buf not yet opened */
        uint8_t local_buf[SEAL_RECORD_PLAIN_MAX];
        uint8_t net_buf[SEAL_RECORD_MAX];
        GList link;             /* in transport->relays */
} Relay;

typedef struct RelayWrite {
        uv_write_t req;
        Relay *relay;
        size_t size;
        uint8_t data[];
} RelayWrite;

static void on_raft_handle_closed(uv_handle_t *handle) {
        raft_free(handle);
}

static void relay_maybe_free(Relay *r) {
        AuthTransport *t = r->transport;

        if (r->open_handles > 0 || r->pending_writes > 0)
                return;
        g_queue_unlink(&t->relays, &r->link);
        seal_stream_wipe(&r->tx);
        seal_stream_wipe(&r->rx);
        explicit_bzero(r, sizeof *r);
        g_free(r);
        transport_maybe_closed(t);
}

static void on_relay_handle_closed(uv_handle_t *handle) {
        Relay *r = handle->data;

        if (handle == (uv_handle_t *) r->tcp) {
                raft_free(r->tcp);
                r->tcp = NULL;
        }
        r->open_handles--;
        relay_maybe_free(r);
}

static void relay_close(Relay *r) {
        if (r->closing)
                return;
        r->closing = true;
        uv_close((uv_handle_t *) r->tcp, on_relay_handle_closed);
        uv_close((uv_handle_t *) &r->local, on_relay_handle_closed);
}

static void on_relay_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
        Relay *r = handle->data;

        if (handle == (uv_handle_t *) &r->local)
                *buf = uv_buf_init((char *) r->local_buf, sizeof r->local_buf);
        else /* after opening every whole record, what is left is less than one record */
                *buf = uv_buf_init((char *) r->net_buf + r->have, (unsigned) (sizeof r->net_buf - r->have));
}

static void on_relay_local_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_relay_tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_relay_written(uv_write_t *req, int status) {
        RelayWrite *w = req->data;
        Relay *r = w->relay;
        uv_stream_t *to = req->handle;

        explicit_bzero(w->data, w->size);
        g_free(w);
        r->pending_writes--;
        if (status < 0)
                relay_close(r);
        else if (!r->closing && to->write_queue_size < RELAY_QUEUE_MAX / 2) {
                /* the side that was waiting for this one to drain may read again */
                if (to == (uv_stream_t *) r->tcp && r->local_paused) {
                        r->local_paused = false;
                        if (uv_read_start((uv_stream_t *) &r->local, on_relay_alloc, on_relay_local_read) < 0)
                                relay_close(r);
                } else if (to == (uv_stream_t *) &r->local && r->tcp_paused) {
                        r->tcp_paused = false;
                        if (uv_read_start((uv_stream_t *) r->tcp, on_relay_alloc, on_relay_tcp_read) < 0)
                                relay_close(r);
                }
        }
        relay_maybe_free(r);
}

/* Room for size bytes: sealed or opened straight into it, no further copy. */
static RelayWrite *relay_write_new(Relay *r, size_t size) {
        RelayWrite *w = g_malloc(sizeof *w + size);

        w->relay = r;
        w->size = size;
        w->req.data = w;
        return w;
}

/* Queues w (taken, also on failure) on to; stops reading from while to has too much unsent. */
static int relay_write(Relay *r, RelayWrite *w, uv_stream_t *to, uv_stream_t *from, bool *paused) {
        uv_buf_t buf = uv_buf_init((char *) w->data, (unsigned) w->size);
        int k;

        k = uv_write(&w->req, to, &buf, 1, on_relay_written);
        if (k < 0) {
                explicit_bzero(w->data, w->size);
                g_free(w);
                return k;
        }
        r->pending_writes++;
        if (to->write_queue_size > RELAY_QUEUE_MAX && !*paused) {
                *paused = true;
                uv_read_stop(from);
        }
        return 0;
}

/* libraft wrote plaintext: seal it onto the network. */
static void on_relay_local_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
        Relay *r = stream->data;
        RelayWrite *w;

        if (nread == 0 || r->closing)
                return;
        if (nread < 0)
                return relay_close(r);
        w = relay_write_new(r, (size_t) nread + SEAL_RECORD_HEADER + SEAL_TAG_SIZE);
        if (seal_stream_seal(&r->tx, r->local_buf, (size_t) nread, w->data) < 0) {
                g_free(w);
                return relay_close(r);
        }
        explicit_bzero(r->local_buf, (size_t) nread);
        if (relay_write(r, w, (uv_stream_t *) r->tcp, stream, &r->local_paused) < 0)
                relay_close(r);
}

/* Records from the network: open each whole one for libraft. */
static void on_relay_tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
        Relay *r = stream->data;
        size_t off = 0;

        if (nread == 0 || r->closing)
                return;
        if (nread < 0)
                return relay_close(r);
        r->have += (size_t) nread;
        while (r->have - off >= SEAL_RECORD_HEADER) {
                int len = seal_stream_record_size(r->net_buf + off);
                size_t n;

                if (len < 0) {
                        log_debug("Raft connection closed: a bad sealed record length");
                        return relay_close(r);
                }
                if (r->have - off < SEAL_RECORD_HEADER + (size_t) len)
                        break;
                RelayWrite *w = relay_write_new(r, (size_t) len - SEAL_TAG_SIZE);
                if (seal_stream_open(&r->rx, r->net_buf + off, SEAL_RECORD_HEADER + (size_t) len, w->data, &n) < 0) {
                        g_free(w);
                        log_debug("Raft connection closed: a sealed record does not open (tampered?)");
                        return relay_close(r);
                }
                off += SEAL_RECORD_HEADER + (size_t) len;
                w->size = n;
                if (n == 0)
                        g_free(w);
                else if (relay_write(r, w, (uv_stream_t *) &r->local, stream, &r->tcp_paused) < 0)
                        return relay_close(r);
        }
        memmove(r->net_buf, r->net_buf + off, r->have - off);
        r->have -= off;
}

/* Takes over h->tcp and h's stream keys; *ret is the stream to hand to libraft (raft_malloc'ed). */
static int relay_new(Handshake *h, uv_stream_t **ret) {
        AuthTransport *t = h->transport;
        uv_pipe_t *theirs;
        Relay *r;
        int fds[2], k;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
                return -errno;
        theirs = raft_malloc(sizeof *theirs);
        if (!theirs) {
                close(fds[0]);
                close(fds[1]);
                return -ENOMEM;
        }
        r = g_new0(Relay, 1);
        r->transport = t;
        r->link.data = r;
        r->tx = h->tx;
        r->rx = h->rx;
        seal_stream_wipe(&h->tx);
        seal_stream_wipe(&h->rx);
        r->tcp = h->tcp;
        r->tcp->data = r;
        uv_pipe_init(t->loop, &r->local, 0);
        r->local.data = r;
        uv_pipe_init(t->loop, theirs, 0);
        r->open_handles = 2;
        g_queue_push_tail_link(&t->relays, &r->link);
        h->tcp = NULL;

        k = uv_pipe_open(&r->local, fds[1]);
        if (k < 0)
                close(fds[1]);
        else {
                fds[1] = -1;
                k = uv_pipe_open(theirs, fds[0]);
        }
        if (k < 0)
                close(fds[0]);
        if (k == 0)
                k = uv_read_start((uv_stream_t *) &r->local, on_relay_alloc, on_relay_local_read);
        if (k == 0)
                k = uv_read_start((uv_stream_t *) r->tcp, on_relay_alloc, on_relay_tcp_read);
        if (k < 0) {
                uv_close((uv_handle_t *) theirs, on_raft_handle_closed);
                relay_close(r);
                return -EIO;
        }
        *ret = (uv_stream_t *) theirs;
        return 0;
}

/* Hand the stream to libraft: it owns (and frees) h->tcp from now on. */
static void handshake_succeed(Handshake *h) {
        AuthTransport *t = h->transport;
        uv_stream_t *stream = (uv_stream_t *) h->tcp;

        uv_read_stop(stream);
        if (h->sealed) {
                /* libraft gets the plain end of a relay, which owns h->tcp from now on */
                if (relay_new(h, &stream) < 0) {
                        if (!h->tcp)
                                h->open_handles--; /* taken over, and closed, by the relay */
                        return handshake_fail(h, "cannot set up the sealed stream");
                }
        } else
                stream->data = NULL;
        h->stage = STAGE_DONE;
        h->tcp = NULL;

        if (h->outbound) {
                t->stats.connected++;
                raft_uv_connect_cb cb = h->cb;
                h->cb = NULL;
                cb(h->req, stream, 0);
        } else {
                t->stats.accepted++;
                t->accept_cb(&t->iface, h->peer_id, h->peer_address, stream);
        }
        /* only the timer is left */
        h->open_handles--;
        handshake_close(h);
        handshake_unref(h);
}

static void on_timeout(uv_timer_t *timer) {
        handshake_fail(timer->data, "handshake timed out");
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
        Handshake *h = handle->data;
        /* exactly what the current stage still needs: never read past the handshake */
        *buf = uv_buf_init((char *) h->in + h->have, (unsigned) (h->need - h->have));
}

static void expect(Handshake *h, Stage stage, size_t need) {
        h->stage = stage;
        h->have = 0;
        h->need = need;
}

/* One per write: the next write may start before the previous one's callback ran (the peer's
 * answer can arrive first), and a write may complete after the stream was handed over. */
struct WriteReq {
        uv_write_t req;
        Handshake *h;
        uint8_t data[HANDSHAKE_BUF_MAX];
};

static void on_write_done(uv_write_t *req, int status) {
        WriteReq *w = req->data;
        Handshake *h = w->h;

        g_free(w);
        h->pending_writes--;
        if (status >= 0 && !h->failed && h->stage == STAGE_HANDING_OVER)
                handshake_succeed(h);
        else if (status < 0 && status != UV_ECANCELED)
                handshake_fail(h, uv_strerror(status));
        handshake_unref(h);
}

static int send_bytes(Handshake *h, size_t n) {
        WriteReq *w = g_new0(WriteReq, 1);
        uv_buf_t buf;
        int r;

        w->h = h;
        w->req.data = w;
        memcpy(w->data, h->out, n);
        buf = uv_buf_init((char *) w->data, (unsigned) n);
        r = uv_write(&w->req, (uv_stream_t *) h->tcp, &buf, 1, on_write_done);
        if (r < 0) {
                g_free(w);
                return r;
        }
        h->pending_writes++;
        return 0;
}

#define ENCRYPT_MISMATCH_LOG_USEC (30 * USEC_PER_SEC)

static void log_encrypt_mismatch(Handshake *h) {
        AuthTransport *t = h->transport;
        struct sockaddr_storage peer = {};
        char host[INET6_ADDRSTRLEN] = "?";
        int plen = sizeof peer;
        uint64_t now = now_boottime_usec();

        t->stats.mismatched++;
        if (t->mismatch_logged != 0 && now - t->mismatch_logged < ENCRYPT_MISMATCH_LOG_USEC)
                return;
        t->mismatch_logged = now;
        if (uv_tcp_getpeername(h->tcp, (struct sockaddr *) &peer, &plen) == 0) {
                if (peer.ss_family == AF_INET)
                        inet_ntop(AF_INET, &((struct sockaddr_in *) &peer)->sin_addr, host, sizeof host);
                else if (peer.ss_family == AF_INET6)
                        inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &peer)->sin6_addr, host, sizeof host);
        }
        log_error("Refused a Raft connection from %s: it has Encrypt=%s, this node Encrypt=%s. Give every node of "
                  "cluster '%s' the same [Cluster] Encrypt=.", host, h->sealed ? "no" : "yes",
                  h->sealed ? "yes" : "no", t->cluster);
}

static void handshake_step(Handshake *h);

/* Server, Encrypt=yes: the sealed AUTH opens under the stream keys of one installed key (the
 * client answers under the key that proved our CHALLENGE); then it is checked as a plain one. */
static void auth_open(Handshake *h) {
        AuthTransport *t = h->transport;
        uint8_t plain[AUTH_SEALED_PLAIN];
        size_t n = 0, alen;
        bool opened = false;

        for (size_t i = 0; i < keyring_size(t->keyring) && !opened; i++) {
                SealStream c2s, s2c;

                if (seal_stream_keys(t->keyring, i, t->cluster, h->client_nonce, h->server_nonce, NONCE_SIZE,
                                     &c2s, &s2c) < 0)
                        continue;
                if (seal_stream_open(&c2s, h->in + MAC_SIZE, AUTH_SEALED_SIZE - MAC_SIZE, plain, &n) == 0 &&
                    n == sizeof plain) {
                        h->rx = c2s;
                        h->tx = s2c;
                        opened = true;
                }
                seal_stream_wipe(&c2s);
                seal_stream_wipe(&s2c);
        }
        if (!opened)
                return handshake_fail(h, "client failed to prove the cluster key");
        alen = bytes_get_u16(plain + 8);
        if (alen == 0 || alen > ADDRESS_MAX)
                return handshake_fail(h, "bad address length");
        /* the plain AUTH layout, MAC already in place */
        memcpy(h->in + MAC_SIZE, plain, 10 + alen);
        explicit_bzero(plain, sizeof plain);
        h->stage = STAGE_AUTH_ADDRESS;
        h->have = h->need = AUTH_FIXED_SIZE + alen;
        handshake_step(h);
}

/* A stage's bytes are complete. */
static void handshake_step(Handshake *h) {
        AuthTransport *t = h->transport;
        int key;

        switch (h->stage) {
        case STAGE_HELLO: {
                ByteReader r = bytes_reader(h->in, HELLO_SIZE);
                const uint8_t *m, *nonce;
                uint8_t version;
                bool known;

                bytes_read(&r, 4, &m);
                bytes_read_u8(&r, &version);
                bytes_read(&r, NONCE_SIZE, &nonce);
                known = version >= PROTOCOL_VERSION_OLDEST && version <= PROTOCOL_VERSION;
                h->sealed = keyring_encrypts(t->keyring);
                if (memcmp(m, h->sealed ? magic : magic_sealed, 4) == 0 && known) {
                        log_encrypt_mismatch(h);
                        return handshake_fail(h, "the peer's Encrypt= differs from ours");
                }
                if (memcmp(m, h->sealed ? magic_sealed : magic, 4) != 0 || !known)
                        return handshake_fail(h, "not an electiond Raft handshake");
                memcpy(h->client_nonce, nonce, NONCE_SIZE);
                if (random_bytes(h->server_nonce, NONCE_SIZE) < 0)
                        return handshake_fail(h, "no randomness");
                memcpy(h->out, h->server_nonce, NONCE_SIZE);
                /* The server proves its primary key: the client accepts any key it has installed. */
                mac_compute(t, 0, "srv", h, NULL, 0, h->out + NONCE_SIZE);
                expect(h, STAGE_AUTH_FIXED, h->sealed ? AUTH_SEALED_SIZE : AUTH_FIXED_SIZE);
                if (send_bytes(h, CHALLENGE_SIZE) < 0)
                        return handshake_fail(h, "write failed");
                return;
        }

        case STAGE_CHALLENGE: {
                memcpy(h->server_nonce, h->in, NONCE_SIZE);
                key = mac_verify(t, "srv", h, NULL, 0, h->in + NONCE_SIZE);
                if (key < 0)
                        return handshake_fail(h, "server failed to prove the cluster key");

                size_t alen = strlen(t->address);
                uint8_t extra[AUTH_SEALED_PLAIN] = {};
                ByteWriter w = bytes_writer_fixed(extra, sizeof extra);
                bytes_write_u64(&w, t->id);
                bytes_write_u16(&w, (uint16_t) alen);
                bytes_write(&w, t->address, alen);
                /* Answered under the key the server used: that one both sides hold. */
                mac_compute(t, (size_t) key, "cli", h, extra, 10 + alen, h->out);
                expect(h, STAGE_OK, 1);
                if (!h->sealed) {
                        memcpy(h->out + MAC_SIZE, extra, 10 + alen);
                        if (send_bytes(h, MAC_SIZE + 10 + alen) < 0)
                                return handshake_fail(h, "write failed");
                        return;
                }
                /* Sealed: id and address are the first record of our stream, under that key too. */
                if (seal_stream_keys(t->keyring, (size_t) key, t->cluster, h->client_nonce, h->server_nonce,
                                     NONCE_SIZE, &h->tx, &h->rx) < 0 ||
                    seal_stream_seal(&h->tx, extra, sizeof extra, h->out + MAC_SIZE) < 0)
                        return handshake_fail(h, "cannot seal");
                explicit_bzero(extra, sizeof extra);
                if (send_bytes(h, AUTH_SEALED_SIZE) < 0)
                        return handshake_fail(h, "write failed");
                return;
        }

        case STAGE_AUTH_FIXED: {
                if (h->sealed)
                        return auth_open(h);
                size_t alen = bytes_get_u16(h->in + MAC_SIZE + 8);
                if (alen == 0 || alen > ADDRESS_MAX)
                        return handshake_fail(h, "bad address length");
                h->stage = STAGE_AUTH_ADDRESS;
                h->need = AUTH_FIXED_SIZE + alen; /* keep what we have, read the rest */
                return;
        }

        case STAGE_AUTH_ADDRESS: {
                size_t alen = h->need - AUTH_FIXED_SIZE;
                key = mac_verify(t, "cli", h, h->in + MAC_SIZE, 10 + alen, h->in);
                if (key < 0)
                        return handshake_fail(h, "client failed to prove the cluster key");
                if (memchr(h->in + AUTH_FIXED_SIZE, 0, alen))
                        return handshake_fail(h, "bad address");
                h->peer_id = bytes_get_u64(h->in + MAC_SIZE);
                memcpy(h->peer_address, h->in + AUTH_FIXED_SIZE, alen);
                h->peer_address[alen] = 0;
                if (h->peer_id == 0)
                        return handshake_fail(h, "bad server id");
                if (t->identity_check) {
                        struct sockaddr_storage peer = {};
                        int plen = sizeof peer;
                        if (uv_tcp_getpeername(h->tcp, (struct sockaddr *) &peer, &plen) < 0 ||
                            !t->identity_check(t->identity_userdata, h->peer_id, h->peer_address, &peer))
                                return handshake_fail(h, "identity refused");
                }

                uv_read_stop((uv_stream_t *) h->tcp);
                h->stage = STAGE_HANDING_OVER;
                h->out[0] = OK_BYTE;
                if (send_bytes(h, 1) < 0)
                        return handshake_fail(h, "write failed");
                return;
        }

        case STAGE_OK:
                if (h->in[0] != OK_BYTE)
                        return handshake_fail(h, "server refused");
                return handshake_succeed(h);

        default:
                return handshake_fail(h, "unexpected data");
        }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
        Handshake *h = stream->data;

        if (nread == 0)
                return;
        if (nread < 0)
                return handshake_fail(h, nread == UV_EOF ? "connection closed" : uv_strerror((int) nread));

        h->have += (size_t) nread;
        while (!h->failed && h->stage != STAGE_DONE && h->stage != STAGE_HANDING_OVER && h->have == h->need) {
                Stage before = h->stage;
                handshake_step(h);
                /* AUTH_FIXED → AUTH_ADDRESS keeps reading into the same buffer */
                if (h->stage == before)
                        break;
        }
}

static Handshake *handshake_new(AuthTransport *t, bool outbound) {
        Handshake *h = g_new0(Handshake, 1);
        h->transport = t;
        h->outbound = outbound;
        h->link.data = h;
        g_queue_push_tail_link(&t->handshakes, &h->link);

        h->tcp = raft_malloc(sizeof *h->tcp);
        if (!h->tcp) {
                g_queue_unlink(&t->handshakes, &h->link);
                g_free(h);
                return NULL;
        }
        uv_tcp_init(t->loop, h->tcp);
        h->tcp->data = h;
        uv_timer_init(t->loop, &h->timer);
        h->timer.data = h;
        h->open_handles = 2;
        uv_timer_start(&h->timer, on_timeout, AUTH_TRANSPORT_HANDSHAKE_TIMEOUT_MSEC, 0);
        return h;
}

/* ---- raft_uv_transport methods ---- */

void auth_transport_set_identity_check(struct raft_uv_transport *iface, AuthTransportIdentityFn fn, void *userdata) {
        AuthTransport *t = AUTH(iface);
        t->identity_check = fn;
        t->identity_userdata = userdata;
}

void auth_transport_set_resolver(struct raft_uv_transport *iface, AuthTransportResolveFn fn, void *userdata) {
        AuthTransport *t = AUTH(iface);
        t->resolve = fn;
        t->resolve_userdata = userdata;
}

void auth_transport_set_listen_any(struct raft_uv_transport *iface, bool any) {
        AUTH(iface)->listen_any = any;
}

static int transport_init(struct raft_uv_transport *iface, raft_id id, const char *address) {
        AuthTransport *t = AUTH(iface);
        t->id = id;
        g_free(t->address);
        t->address = g_strdup(address);
        return 0;
}

/* No Nagle, and a bound on unacknowledged data (AUTH_TRANSPORT_USER_TIMEOUT_MSEC). */
static void tune_stream(uv_tcp_t *tcp) {
        unsigned timeout = AUTH_TRANSPORT_USER_TIMEOUT_MSEC;
        uv_os_fd_t fd;

        uv_tcp_nodelay(tcp, 1);
        if (uv_fileno((uv_handle_t *) tcp, &fd) < 0)
                return;
        if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof timeout) < 0)
                log_debug_errno(errno, "Failed to set TCP_USER_TIMEOUT on a Raft connection, ignoring: %m");
}

static void on_connection(uv_stream_t *server, int status) {
        AuthTransport *t = server->data;
        Handshake *h;

        if (status < 0 || t->closing)
                return;
        h = handshake_new(t, false);
        if (!h)
                return;
        if (uv_accept(server, (uv_stream_t *) h->tcp) < 0)
                return handshake_fail(h, "accept failed");
        tune_stream(h->tcp);
        expect(h, STAGE_HELLO, HELLO_SIZE);
        if (uv_read_start((uv_stream_t *) h->tcp, on_alloc, on_read) < 0)
                handshake_fail(h, "read failed");
}

static int transport_listen(struct raft_uv_transport *iface, raft_uv_accept_cb cb) {
        AuthTransport *t = AUTH(iface);
        struct sockaddr_storage sa;
        int r;

        r = parse_address(t->address, &sa);
        if (r < 0 && !t->listen_any) {
                snprintf(iface->errmsg, sizeof iface->errmsg, "invalid address %s", t->address);
                return RAFT_INVALID;
        }
        if (t->listen_any) {
                /* [::]:port, dual-stack (libuv clears IPV6_V6ONLY without UV_TCP_IPV6ONLY) */
                const char *colon = strrchr(t->address, ':');
                int port = colon ? atoi(colon + 1) : 0;

                if (port <= 0 || port > 65535 || uv_ip6_addr("::", port, (struct sockaddr_in6 *) &sa) != 0) {
                        snprintf(iface->errmsg, sizeof iface->errmsg, "invalid address %s", t->address);
                        return RAFT_INVALID;
                }
        }
        t->accept_cb = cb;
        t->listener = g_new0(uv_tcp_t, 1);
        uv_tcp_init(t->loop, t->listener);
        t->listener->data = t;
        r = uv_tcp_bind(t->listener, (const struct sockaddr *) &sa, 0);
        if (r == 0)
                r = uv_listen((uv_stream_t *) t->listener, 16, on_connection);
        if (r < 0) {
                snprintf(iface->errmsg, sizeof iface->errmsg, "listen on %s: %s", t->address, uv_strerror(r));
                /* libraft does not pass this message on: say here which address failed */
                log_error("Cannot listen for Raft on TCP %s: %s", t->address, uv_strerror(r));
                return RAFT_IOERR;
        }
        return 0;
}

static void on_connected(uv_connect_t *req, int status) {
        Handshake *h = req->data;
        AuthTransport *t = h->transport;

        if (status == UV_ECANCELED || h->failed)
                return;
        if (status < 0)
                return handshake_fail(h, uv_strerror(status));

        tune_stream(h->tcp);
        h->sealed = keyring_encrypts(t->keyring);
        if (random_bytes(h->client_nonce, NONCE_SIZE) < 0)
                return handshake_fail(h, "no randomness");
        ByteWriter w = bytes_writer_fixed(h->out, sizeof h->out);
        bytes_write(&w, h->sealed ? magic_sealed : magic, 4);
        bytes_write_u8(&w, PROTOCOL_VERSION);
        bytes_write(&w, h->client_nonce, NONCE_SIZE);
        g_assert(bytes_writer_len(&w) == HELLO_SIZE);
        expect(h, STAGE_CHALLENGE, CHALLENGE_SIZE);
        if (uv_read_start((uv_stream_t *) h->tcp, on_alloc, on_read) < 0)
                return handshake_fail(h, "read failed");
        if (send_bytes(h, HELLO_SIZE) < 0)
                return handshake_fail(h, "write failed");
}

static int transport_connect(struct raft_uv_transport *iface, struct raft_uv_connect *req, raft_id id,
                             const char *address, raft_uv_connect_cb cb) {
        AuthTransport *t = AUTH(iface);
        struct sockaddr_storage sa;
        Handshake *h;

        if (!address || strlen(address) > ADDRESS_MAX)
                return RAFT_NOCONNECTION;
        if ((!t->resolve || t->resolve(t->resolve_userdata, id, address, &sa) < 0) && parse_address(address, &sa) < 0)
                return RAFT_NOCONNECTION;
        h = handshake_new(t, true);
        if (!h)
                return RAFT_NOMEM;
        h->req = req;
        h->cb = cb;
        h->peer_id = id;
        g_strlcpy(h->peer_address, address, sizeof h->peer_address);
        h->stage = STAGE_CONNECTING;
        h->connect.data = h;
        if (uv_tcp_connect(&h->connect, h->tcp, (const struct sockaddr *) &sa, on_connected) < 0) {
                /* report asynchronously is not required: a synchronous error return is allowed */
                h->cb = NULL;
                h->failed = true;
                t->stats.rejected_out++;
                handshake_close(h);
                return RAFT_NOCONNECTION;
        }
        return 0;
}

static void transport_maybe_closed(AuthTransport *t) {
        if (!t->closing || t->closing_handles > 0 || !g_queue_is_empty(&t->handshakes) ||
            !g_queue_is_empty(&t->relays) || !t->close_cb)
                return;
        raft_uv_transport_close_cb cb = t->close_cb;
        t->close_cb = NULL;
        cb(&t->iface);
}

static void on_listener_closed(uv_handle_t *handle) {
        AuthTransport *t = handle->data;
        g_free(handle);
        t->listener = NULL;
        t->closing_handles--;
        transport_maybe_closed(t);
}

static void transport_close(struct raft_uv_transport *iface, raft_uv_transport_close_cb cb) {
        AuthTransport *t = AUTH(iface);

        t->closing = true;
        t->close_cb = cb;
        if (t->listener) {
                t->closing_handles++;
                uv_close((uv_handle_t *) t->listener, on_listener_closed);
        }
        /* cancel every handshake in flight; outbound ones report RAFT_CANCELED */
        for (GList *l = t->handshakes.head; l;) {
                Handshake *h = l->data;
                l = l->next;
                if (h->stage == STAGE_DONE)
                        continue;
                handshake_fail(h, "transport closing");
        }
        for (GList *l = t->relays.head; l; l = l->next)
                relay_close(l->data);
        transport_maybe_closed(t);
}

int auth_transport_new(struct uv_loop_s *loop, const void *key, size_t key_size, const char *cluster_name,
                       struct raft_uv_transport **ret) {
        AuthTransport *t;

        if (!loop || !key || key_size == 0 || !cluster_name || strlen(cluster_name) > 255 || !ret)
                return -EINVAL;

        t = g_new0(AuthTransport, 1);
        t->loop = loop;
        t->keyring = keyring_new_single(key, key_size);
        t->cluster = g_strdup(cluster_name);
        g_queue_init(&t->handshakes);
        g_queue_init(&t->relays);

        t->iface.version = 1;
        t->iface.impl = t;
        t->iface.init = transport_init;
        t->iface.listen = transport_listen;
        t->iface.connect = transport_connect;
        t->iface.close = transport_close;

        *ret = &t->iface;
        return 0;
}

void auth_transport_free(struct raft_uv_transport *iface) {
        AuthTransport *t;

        if (!iface)
                return;
        t = AUTH(iface);
        keyring_unref(t->keyring);
        g_free(t->cluster);
        g_free(t->address);
        g_free(t);
}

int auth_transport_set_keyring(struct raft_uv_transport *iface, Keyring *keyring) {
        AuthTransport *t;

        if (!iface || keyring_size(keyring) == 0)
                return -EINVAL;
        t = AUTH(iface);
        keyring_unref(t->keyring);
        t->keyring = keyring_ref(keyring);
        return 0;
}

void auth_transport_get_stats(const struct raft_uv_transport *iface, AuthTransportStats *ret) {
        *ret = ((const AuthTransport *) iface)->stats;
}
