/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <sys/socket.h>

#include "electiond-bytes.h"
#include "electiond-channel.h"
#include "electiond-keyring.h"
#include "electiond-replay.h"
#include "electiond-seal.h"

#define HMAC_SIZE 32
#define HEADER_FIXED (4 + 1 + 1) /* magic, version, name length */
#define AFTER_NAME (8 + 8 + 8 + 1 + 4)

G_STATIC_ASSERT(CHANNEL_REPLAY_WINDOW == REPLAY_WINDOW_SIZE);

struct ChannelCodec {
        char *cluster;
        Keyring *keyring;
        uint64_t self;
        uint64_t epoch;
        uint64_t seq;
        ReplayTable *replay; /* per sender: epoch + sequence window */
        uint64_t drops[_CHANNEL_DROP_MAX];
        uint8_t *plain;      /* Encrypt=yes: the opened packet, what ChannelPacket.payload points into */
};

void channel_codec_set_epoch(ChannelCodec *c, uint64_t epoch) {
        if (epoch > c->epoch) {
                c->epoch = epoch;
                c->seq = 0;
        }
}

ChannelCodec *channel_codec_new(const char *cluster, const void *key, size_t key_size, uint64_t self_id, uint64_t epoch) {
        ChannelCodec *c;

        if (!cluster || strlen(cluster) > 255 || !key || key_size == 0)
                return NULL;
        c = g_new0(ChannelCodec, 1);
        c->cluster = g_strdup(cluster);
        c->keyring = keyring_new_single(key, key_size);
        c->self = self_id;
        c->epoch = epoch;
        c->replay = replay_table_new(CHANNEL_SENDERS_MAX);
        return c;
}

ChannelCodec *channel_codec_free(ChannelCodec *c) {
        if (!c)
                return NULL;
        keyring_unref(c->keyring);
        g_free(c->cluster);
        replay_table_free(c->replay);
        if (c->plain)
                explicit_bzero(c->plain, CHANNEL_SEALED_MAX);
        g_free(c->plain);
        g_free(c);
        return NULL;
}

uint64_t channel_drop_count(const ChannelCodec *c, ChannelDrop d) {
        return d < _CHANNEL_DROP_MAX ? c->drops[d] : 0;
}

int channel_codec_set_keyring(ChannelCodec *c, Keyring *keyring) {
        if (!c || keyring_size(keyring) == 0)
                return -EINVAL;
        keyring_unref(c->keyring);
        c->keyring = keyring_ref(keyring);
        return 0;
}

static int channel_encode_plain(ChannelCodec *c, uint8_t type, const void *payload, size_t size, GByteArray **ret) {
        g_autoptr(GByteArray) b = NULL;
        ByteWriter w;
        uint8_t mac[HMAC_SIZE];
        uint8_t len = (uint8_t) strlen(c->cluster);

        if (size > CHANNEL_PAYLOAD_MAX)
                return -EMSGSIZE;
        b = g_byte_array_sized_new((guint) (HEADER_FIXED + len + AFTER_NAME + size + HMAC_SIZE));
        w = bytes_writer_array(b);
        bytes_write(&w, CHANNEL_MAGIC, 4);
        bytes_write_u8(&w, CHANNEL_VERSION);
        bytes_write_u8(&w, len);
        bytes_write(&w, c->cluster, len);
        bytes_write_u64(&w, c->self);
        bytes_write_u64(&w, c->epoch);
        bytes_write_u64(&w, ++c->seq);
        bytes_write_u8(&w, type);
        bytes_write_u32(&w, (uint32_t) size);
        bytes_write(&w, payload, size);
        keyring_sign(c->keyring, b->data, b->len, mac);
        bytes_write(&w, mac, HMAC_SIZE);
        *ret = g_steal_pointer(&b);
        return 0;
}

static int channel_decode_plain(ChannelCodec *c, const void *data, size_t size, ChannelPacket *ret) {
        ByteReader r = bytes_reader(data, size);
        const uint8_t *magic, *name, *payload, *mac;
        uint8_t version, name_len;
        uint32_t payload_len;
        ChannelPacket pk;

        if (!bytes_read(&r, 4, &magic) || memcmp(magic, CHANNEL_MAGIC, 4) != 0 ||
            !bytes_read_u8(&r, &version) || version < CHANNEL_VERSION_MIN || version > CHANNEL_VERSION ||
            !bytes_read_u8(&r, &name_len) || !bytes_read(&r, name_len, &name))
                goto malformed;
        pk = (ChannelPacket) {};
        bytes_read_u64(&r, &pk.sender);
        bytes_read_u64(&r, &pk.epoch);
        bytes_read_u64(&r, &pk.seq);
        bytes_read_u8(&r, &pk.type);
        if (!bytes_read_u32(&r, &payload_len) || payload_len > CHANNEL_PAYLOAD_MAX ||
            r.left != (size_t) payload_len + HMAC_SIZE)
                goto malformed;
        bytes_read(&r, payload_len, &payload);
        bytes_read(&r, HMAC_SIZE, &mac);
        pk.payload = payload;
        pk.payload_size = payload_len;
        if (name_len != strlen(c->cluster) || memcmp(name, c->cluster, name_len) != 0) {
                c->drops[CHANNEL_DROP_CLUSTER]++;
                return -ESRCH;
        }
        if (keyring_verify(c->keyring, data, size - HMAC_SIZE, mac) < 0) {
                c->drops[CHANNEL_DROP_AUTH]++;
                return -EPERM;
        }

        if (pk.sender == c->self) {
                c->drops[CHANNEL_DROP_SELF]++;
                return -ELOOP;
        }
        if (replay_table_accept(c->replay, pk.sender, pk.epoch, pk.seq) < 0) {
                c->drops[CHANNEL_DROP_REPLAY]++;
                return -EALREADY;
        }
        *ret = pk;
        return 0;

malformed:
        c->drops[CHANNEL_DROP_MALFORMED]++;
        return -EBADMSG;
}

/* ---- the seal/open layer of Encrypt=yes (electiond-seal.h): around the authenticated packet ---- */

int channel_encode(ChannelCodec *c, uint8_t type, const void *payload, size_t size, GByteArray **ret) {
        g_autoptr(GByteArray) plain = NULL, b = NULL;
        size_t n;
        int r;

        r = channel_encode_plain(c, type, payload, size, &plain);
        if (r < 0 || !keyring_encrypts(c->keyring)) {
                if (r >= 0)
                        *ret = g_steal_pointer(&plain);
                return r;
        }
        b = g_byte_array_sized_new(plain->len + SEAL_OVERHEAD);
        g_byte_array_set_size(b, plain->len + SEAL_OVERHEAD);
        r = seal_packet(c->keyring, CHANNEL_SEALED_MAGIC, plain->data, plain->len, b->data, b->len, &n);
        explicit_bzero(plain->data, plain->len);
        if (r < 0)
                return r;
        g_byte_array_set_size(b, (guint) n);
        *ret = g_steal_pointer(&b);
        return 0;
}

int channel_decode(ChannelCodec *c, const void *data, size_t size, ChannelPacket *ret) {
        bool sealed = seal_has_magic(data, size, CHANNEL_SEALED_MAGIC);
        size_t n;

        if (!keyring_encrypts(c->keyring)) {
                if (!sealed)
                        return channel_decode_plain(c, data, size, ret);
                c->drops[CHANNEL_DROP_ENCRYPTED]++;
                return -EPROTONOSUPPORT;
        }
        if (!sealed) {
                if (seal_has_magic(data, size, CHANNEL_MAGIC)) {
                        c->drops[CHANNEL_DROP_PLAINTEXT]++;
                        return -EPROTO;
                }
                c->drops[CHANNEL_DROP_MALFORMED]++;
                return -EBADMSG;
        }
        if (size < SEAL_OVERHEAD || size > CHANNEL_SEALED_MAX) {
                c->drops[CHANNEL_DROP_MALFORMED]++;
                return -EBADMSG;
        }
        if (!c->plain)
                c->plain = g_malloc(CHANNEL_SEALED_MAX);
        if (seal_open(c->keyring, CHANNEL_SEALED_MAGIC, data, size, c->plain, CHANNEL_SEALED_MAX, &n) < 0) {
                c->drops[CHANNEL_DROP_AUTH]++;
                return -EPERM;
        }
        /* an ordinary packet inside: its HMAC, replay window and checks apply unchanged */
        return channel_decode_plain(c, c->plain, n, ret);
}

/* ---- socket ---- */

#define ENCRYPT_MISMATCH_LOG_USEC (30 * USEC_PER_SEC)

struct Channel {
        ChannelCodec *codec;
        int fd4, fd6;           /* -EBADF: that family is off or unavailable */
        sd_event_source *io4, *io6;
        ChannelReceiveFn cb;
        void *userdata;
        uint64_t encrypt_mismatch_logged;
        uint8_t buf[CHANNEL_SEALED_MAX];
};

static void log_encrypt_mismatch(Channel *ch, int error, const struct sockaddr_storage *from) {
        char host[INET6_ADDRSTRLEN] = "?";
        uint64_t now = now_boottime_usec();

        if (ch->encrypt_mismatch_logged != 0 && now - ch->encrypt_mismatch_logged < ENCRYPT_MISMATCH_LOG_USEC)
                return;
        ch->encrypt_mismatch_logged = now;
        if (from->ss_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *) from)->sin_addr, host, sizeof host);
        else if (from->ss_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) from)->sin6_addr, host, sizeof host);
        log_error("Cluster channel: %s sends %s packets but this node has Encrypt=%s: its encryption settings differ, "
                  "its leases and votes are refused. Give every node of the cluster the same [Cluster] Encrypt=.",
                  host, error == -EPROTO ? "unencrypted" : "encrypted", error == -EPROTO ? "yes" : "no");
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Channel *ch = userdata;

        for (unsigned i = 0; i < 64; i++) {
                struct sockaddr_storage from;
                socklen_t len = sizeof from;
                ChannelPacket p;
                int r;
                ssize_t n = recvfrom(fd, ch->buf, sizeof ch->buf, MSG_DONTWAIT, (struct sockaddr *) &from, &len);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_debug_errno(errno, "Channel receive failed: %m");
                        return 0;
                }
                r = channel_decode(ch->codec, ch->buf, (size_t) n, &p);
                if (r == -EPROTO || r == -EPROTONOSUPPORT)
                        log_encrypt_mismatch(ch, r, &from);
                if (r < 0)
                        continue;
                ch->cb(ch, &p, &from, ch->userdata);
        }
        return 0;
}

/* No SO_REUSEADDR: another socket on this port (a second daemon, or any local process setting
 * it too) must fail to bind rather than take part of our traffic. */
static int open_socket(Channel *ch, int family, uint16_t port, bool optional, int *ret_fd, sd_event_source **ret_io,
                       sd_event *event) {
        struct sockaddr_storage ss = {};
        socklen_t len;
        _cleanup_close_ int fd = -EBADF;
        int one = 1, r;

        if (family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;
                *s6 = (struct sockaddr_in6) { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT };
                len = sizeof *s6;
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;
                *s4 = (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
                len = sizeof *s4;
        }
        fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                if (optional && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT))
                        return 0;
                return log_error_errno(errno, "Failed to create the cluster channel socket: %m");
        }
        /* one socket per family: IPv4 keeps its own exactly as without IPv6 */
        if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
                return log_error_errno(errno, "Failed to set IPV6_V6ONLY: %m");
        if (bind(fd, (struct sockaddr *) &ss, len) < 0) {
                if (optional && errno == EADDRNOTAVAIL)
                        return 0; /* IPv6 disabled */
                return log_error_errno(errno, "Failed to bind the cluster channel to %s port %u: %m",
                                       family == AF_INET6 ? "IPv6" : "IPv4", port);
        }
        r = sd_event_add_io(event, ret_io, fd, EPOLLIN, on_io, ch);
        if (r < 0)
                return r;
        /* leases and expiry votes must not wait behind bus traffic */
        (void) sd_event_source_set_priority(*ret_io, SD_EVENT_PRIORITY_IMPORTANT);
        *ret_fd = fd;
        fd = -EBADF;
        return 0;
}

int channel_new_families(sd_event *event, ChannelCodec *codec, uint16_t port, bool ipv4, bool ipv6, ChannelReceiveFn cb,
                         void *userdata, Channel **ret) {
        Channel *ch = g_new0(Channel, 1);
        int r = 0;

        ch->codec = codec;
        ch->cb = cb;
        ch->userdata = userdata;
        ch->fd4 = ch->fd6 = -EBADF;
        if (!ipv4 && !ipv6) {
                r = -EINVAL;
                goto fail;
        }
        if (ipv4)
                r = open_socket(ch, AF_INET, port, false, &ch->fd4, &ch->io4, event);
        if (r >= 0 && ipv6)
                r = open_socket(ch, AF_INET6, port, ipv4, &ch->fd6, &ch->io6, event);
        if (r < 0)
                goto fail;
        *ret = ch;
        return 0;

fail:
        ch->codec = NULL; /* the caller keeps it on failure */
        channel_free(ch);
        return r;
}

int channel_new(sd_event *event, ChannelCodec *codec, uint16_t port, ChannelReceiveFn cb, void *userdata, Channel **ret) {
        return channel_new_families(event, codec, port, true, true, cb, userdata, ret);
}

Channel *channel_free(Channel *ch) {
        if (!ch)
                return NULL;
        sd_event_source_disable_unref(ch->io4);
        sd_event_source_disable_unref(ch->io6);
        if (ch->fd4 >= 0)
                close(ch->fd4);
        if (ch->fd6 >= 0)
                close(ch->fd6);
        channel_codec_free(ch->codec);
        g_free(ch);
        return NULL;
}

ChannelCodec *channel_get_codec(Channel *ch) {
        return ch->codec;
}

int channel_send(Channel *ch, const struct sockaddr_storage *to, uint8_t type, const void *payload, size_t size) {
        g_autoptr(GByteArray) b = NULL;
        socklen_t len = to->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        int fd = to->ss_family == AF_INET6 ? ch->fd6 : ch->fd4;
        int r;

        if (fd < 0)
                return -EAFNOSUPPORT;
        r = channel_encode(ch->codec, type, payload, size, &b);
        if (r < 0)
                return r;
        if (sendto(fd, b->data, b->len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *) to, len) < 0)
                return -errno;
        return 0;
}
