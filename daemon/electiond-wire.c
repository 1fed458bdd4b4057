/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <sys/socket.h>

#include "electiond-bytes.h"
#include "electiond-keyring.h"
#include "electiond-replay.h"
#include "electiond-seal.h"
#include "electiond-util.h"
#include "electiond-wire.h"

G_STATIC_ASSERT(WIRE_REPLAY_WINDOW == REPLAY_WINDOW_SIZE);

struct Wire {
        char *cluster_name;
        Keyring *keyring;       /* signs with the primary, accepts any installed key */
        uint64_t self_id;
        uint64_t epoch;
        uint64_t next_seq;
        ReplayTable *replay;    /* per sender: epoch + sequence window */
        uint64_t drops[_WIRE_DROP_MAX];
        uint64_t accepted;
};

static const char *const wire_drop_table[_WIRE_DROP_MAX] = {
        [WIRE_DROP_MALFORMED] = "malformed",
        [WIRE_DROP_MAGIC] = "magic",
        [WIRE_DROP_VERSION] = "version",
        [WIRE_DROP_CLUSTER] = "cluster",
        [WIRE_DROP_AUTH] = "auth",
        [WIRE_DROP_REPLAY] = "replay",
        [WIRE_DROP_SELF] = "self",
        [WIRE_DROP_PLAINTEXT] = "plaintext",
        [WIRE_DROP_ENCRYPTED] = "encrypted",
};

const char *wire_drop_to_string(WireDrop d) {
        return d < _WIRE_DROP_MAX ? wire_drop_table[d] : NULL;
}

void wire_set_epoch(Wire *w, uint64_t epoch) {
        if (epoch > w->epoch) {
                w->epoch = epoch;
                w->next_seq = 1;
        }
}

Wire *wire_new(const char *cluster_name, const void *key, size_t key_size, uint64_t self_id, uint64_t epoch) {
        Wire *w;

        if (!cluster_name || strlen(cluster_name) < 1 || strlen(cluster_name) > 255 ||
            !key || key_size < WIRE_KEY_MIN)
                return NULL;

        w = g_new0(Wire, 1);
        w->cluster_name = g_strdup(cluster_name);
        w->keyring = keyring_new_single(key, key_size);
        w->self_id = self_id;
        w->epoch = epoch;
        w->next_seq = 1;
        w->replay = replay_table_new(WIRE_SENDERS_MAX);
        return w;
}

Wire *wire_free(Wire *w) {
        if (!w)
                return NULL;
        keyring_unref(w->keyring);
        g_free(w->cluster_name);
        replay_table_free(w->replay);
        g_free(w);
        return NULL;
}

void wire_forget_sender(Wire *w, uint64_t sender_id) {
        if (w)
                replay_table_forget(w->replay, sender_id);
}

uint64_t wire_drop_count(const Wire *w, WireDrop d) {
        return d < _WIRE_DROP_MAX ? w->drops[d] : 0;
}

uint64_t wire_accepted_count(const Wire *w) {
        return w->accepted;
}

/* --- writing (integers big-endian) --- */

static void put_addresses(ByteWriter *wr, const GossipMessage *m) {
        bytes_write_u8(wr, m->n_addresses);
        for (size_t i = 0; i < m->n_addresses; i++) {
                bytes_write_u8(wr, m->addresses[i].family);
                bytes_write(wr, m->addresses[i].addr, 16);
                bytes_write_u16_be(wr, m->addresses[i].port);
        }
}

static void put_message(ByteWriter *wr, const GossipMessage *m) {
        size_t body = gossip_message_wire_size(m) - 3;

        bytes_write_u8(wr, m->type);
        bytes_write_u16_be(wr, (uint16_t) body);
        switch (m->type) {
        case GOSSIP_PING:
                bytes_write_u32_be(wr, m->seq);
                bytes_write_str8(wr, m->name);
                break;
        case GOSSIP_PING_REQ:
                bytes_write_u32_be(wr, m->seq);
                bytes_write_str8(wr, m->name);
                put_addresses(wr, m);
                break;
        case GOSSIP_ACK:
        case GOSSIP_NACK:
                bytes_write_u32_be(wr, m->seq);
                break;
        case GOSSIP_ALIVE:
                bytes_write_str8(wr, m->name);
                bytes_write_u64_be(wr, m->node_id);
                bytes_write_u64_be(wr, m->incarnation);
                put_addresses(wr, m);
                bytes_write_u16_be(wr, m->tags_size);
                bytes_write(wr, m->tags, m->tags_size);
                break;
        case GOSSIP_SUSPECT:
        case GOSSIP_DEAD:
                bytes_write_str8(wr, m->name);
                bytes_write_u64_be(wr, m->incarnation);
                bytes_write_str8(wr, m->from);
                bytes_write_u64_be(wr, m->silent_usec);
                break;
        case GOSSIP_LEFT:
                bytes_write_str8(wr, m->name);
                bytes_write_u64_be(wr, m->incarnation);
                break;
        case GOSSIP_USER:
                bytes_write_u32_be(wr, m->seq);
                bytes_write_u16_be(wr, m->tags_size);
                bytes_write(wr, m->tags, m->tags_size);
                break;
        }
}

int wire_set_keyring(Wire *w, Keyring *keyring) {
        size_t n;

        if (!w || keyring_size(keyring) == 0)
                return -EINVAL;
        for (size_t i = 0; i < keyring_size(keyring); i++)
                if (keyring_key(keyring, i, &n) && n < WIRE_KEY_MIN)
                        return -EINVAL;
        keyring_unref(w->keyring);
        w->keyring = keyring_ref(keyring);
        return 0;
}

static int wire_encode_plain(Wire *w, const GossipMessage *msgs, size_t n_msgs, uint8_t *buf, size_t buf_size,
                             size_t *ret_size) {
        ByteWriter wr = bytes_writer_fixed(buf, buf_size);
        uint8_t mac[WIRE_HMAC_SIZE];

        if (!w || (!msgs && n_msgs > 0) || !buf || !ret_size || n_msgs > WIRE_MESSAGES_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n_msgs; i++)
                if (!gossip_message_valid(&msgs[i]))
                        return -EINVAL;

        bytes_write(&wr, WIRE_MAGIC, 4);
        bytes_write_u8(&wr, WIRE_VERSION);
        bytes_write_str8(&wr, w->cluster_name);
        bytes_write_u64_be(&wr, w->self_id);
        bytes_write_u64_be(&wr, w->epoch);
        bytes_write_u64_be(&wr, w->next_seq);
        for (size_t i = 0; i < n_msgs; i++)
                put_message(&wr, &msgs[i]);
        if (bytes_writer_room(&wr) < WIRE_HMAC_SIZE)
                return -EMSGSIZE;
        keyring_sign(w->keyring, buf, bytes_writer_len(&wr), mac);
        bytes_write(&wr, mac, sizeof mac);

        w->next_seq++;
        *ret_size = bytes_writer_len(&wr);
        return 0;
}

/* --- reading --- */

static void get_addresses(ByteReader *rd, GossipMessage *m) {
        if (!bytes_read_u8(rd, &m->n_addresses) || m->n_addresses > MEMBER_ADDRESSES_MAX) {
                m->n_addresses = 0;
                bytes_reader_fail(rd);
                return;
        }
        for (size_t i = 0; i < m->n_addresses; i++) {
                const uint8_t *a;
                bytes_read_u8(rd, &m->addresses[i].family);
                if (bytes_read(rd, 16, &a))
                        memcpy(m->addresses[i].addr, a, 16);
                bytes_read_u16_be(rd, &m->addresses[i].port);
        }
}

/* u16 size (at most MEMBER_TAGS_MAX), then the tags. */
static bool get_tags(ByteReader *rd, GossipMessage *m) {
        const uint8_t *t;

        if (bytes_read_u16_be(rd, &m->tags_size) && m->tags_size > MEMBER_TAGS_MAX)
                return false;
        if (bytes_read(rd, m->tags_size, &t))
                memcpy(m->tags, t, m->tags_size);
        return true;
}

/* Returns 1 if a message was stored, 0 if skipped (unknown type), -EBADMSG if malformed. */
static int get_message(ByteReader *rd, GossipMessage *m) {
        uint8_t type;
        uint16_t len;
        const uint8_t *body;
        ByteReader b;

        bytes_read_u8(rd, &type);
        bytes_read_u16_be(rd, &len);
        if (!bytes_read(rd, len, &body))
                return -EBADMSG;
        b = bytes_reader(body, len);
        *m = (GossipMessage) { .type = type };
        switch (type) {
        case GOSSIP_PING:
                bytes_read_u32_be(&b, &m->seq);
                bytes_read_str8(&b, m->name);
                break;
        case GOSSIP_PING_REQ:
                bytes_read_u32_be(&b, &m->seq);
                bytes_read_str8(&b, m->name);
                get_addresses(&b, m);
                break;
        case GOSSIP_ACK:
        case GOSSIP_NACK:
                bytes_read_u32_be(&b, &m->seq);
                break;
        case GOSSIP_USER:
                bytes_read_u32_be(&b, &m->seq);
                if (!get_tags(&b, m))
                        return -EBADMSG;
                break;
        case GOSSIP_ALIVE:
                bytes_read_str8(&b, m->name);
                bytes_read_u64_be(&b, &m->node_id);
                bytes_read_u64_be(&b, &m->incarnation);
                get_addresses(&b, m);
                if (!get_tags(&b, m))
                        return -EBADMSG;
                break;
        case GOSSIP_SUSPECT:
        case GOSSIP_DEAD:
                bytes_read_str8(&b, m->name);
                bytes_read_u64_be(&b, &m->incarnation);
                bytes_read_str8(&b, m->from);
                bytes_read_u64_be(&b, &m->silent_usec);
                break;
        case GOSSIP_LEFT:
                bytes_read_str8(&b, m->name);
                bytes_read_u64_be(&b, &m->incarnation);
                break;
        default:
                return 0; /* a newer peer's message: skip it */
        }
        /* The body must be consumed exactly: no slack for smuggled bytes. */
        if (b.bad || b.left != 0 || !gossip_message_valid(m))
                return -EBADMSG;
        return 1;
}

static int drop(Wire *w, WireDrop reason, int error) {
        w->drops[reason]++;
        return -error;
}

static int wire_decode_plain(Wire *w, const void *buf, size_t size, WirePacketInfo *ret_info,
                             GossipMessage *msgs, size_t max_msgs) {
        ByteReader rd = bytes_reader(buf, size);
        char cluster[MEMBER_NAME_MAX + 1];
        uint8_t mac[WIRE_HMAC_SIZE];
        const uint8_t *magic;
        WirePacketInfo info;
        uint8_t version;
        size_t n = 0;
        int r;

        if (!w || (!buf && size > 0) || (!msgs && max_msgs > 0))
                return -EINVAL;

        if (!bytes_read(&rd, 4, &magic))
                return drop(w, WIRE_DROP_MALFORMED, EBADMSG);
        if (memcmp(magic, WIRE_MAGIC, 4) != 0)
                return drop(w, WIRE_DROP_MAGIC, EBADMSG);
        if (!bytes_read_u8(&rd, &version))
                return drop(w, WIRE_DROP_MALFORMED, EBADMSG);
        if (version < WIRE_VERSION_MIN || version > WIRE_VERSION)
                return drop(w, WIRE_DROP_VERSION, EBADMSG);
        bytes_read_str8(&rd, cluster);
        bytes_read_u64_be(&rd, &info.sender_id);
        bytes_read_u64_be(&rd, &info.epoch);
        bytes_read_u64_be(&rd, &info.seq);
        if (rd.bad || rd.left < WIRE_HMAC_SIZE)
                return drop(w, WIRE_DROP_MALFORMED, EBADMSG);
        /* Checked before the HMAC only to count it apart: nothing of it is trusted. */
        if (!streq_ptr(cluster, w->cluster_name))
                return drop(w, WIRE_DROP_CLUSTER, EXDEV);

        memcpy(mac, (const uint8_t *) buf + size - WIRE_HMAC_SIZE, WIRE_HMAC_SIZE);
        if (keyring_verify(w->keyring, buf, size - WIRE_HMAC_SIZE, mac) < 0)
                return drop(w, WIRE_DROP_AUTH, EPERM);

        if (info.sender_id == w->self_id) {
                if (info.epoch == w->epoch)
                        return drop(w, WIRE_DROP_SELF, ELOOP);
                /* our id, another life: a previous run's late packet, or a twin (cloned state) */
                if (ret_info)
                        *ret_info = info;
                return drop(w, WIRE_DROP_SELF, ENOTUNIQ);
        }
        if (replay_table_check(w->replay, info.sender_id, info.epoch, info.seq) < 0) {
                /* authenticated, so the caller may tell an older life of the sender apart */
                if (ret_info)
                        *ret_info = info;
                return drop(w, WIRE_DROP_REPLAY, EALREADY);
        }

        rd.left -= WIRE_HMAC_SIZE; /* the messages end where the HMAC starts */
        while (rd.left > 0) {
                GossipMessage tmp;
                r = get_message(&rd, n < max_msgs ? &msgs[n] : &tmp);
                if (r < 0)
                        return drop(w, WIRE_DROP_MALFORMED, EBADMSG);
                if (r == 0)
                        continue;
                if (n >= max_msgs || n >= WIRE_MESSAGES_MAX)
                        return drop(w, WIRE_DROP_MALFORMED, EBADMSG);
                n++;
        }
        /* The first message introduces the sender, and must be about the sender. */
        if (n == 0 || msgs[0].type != GOSSIP_ALIVE || msgs[0].node_id != info.sender_id)
                return drop(w, WIRE_DROP_MALFORMED, EBADMSG);

        replay_table_record(w->replay, info.sender_id, info.epoch, info.seq);
        w->accepted++;
        if (ret_info)
                *ret_info = info;
        return (int) n;
}

/* --- the seal/open layer of Encrypt=yes (electiond-seal.h): around the authenticated packet --- */

int wire_encode(Wire *w, const GossipMessage *msgs, size_t n_msgs, uint8_t *buf, size_t buf_size, size_t *ret_size) {
        size_t n;
        int r;

        if (!w || !buf || !ret_size || !keyring_encrypts(w->keyring))
                return wire_encode_plain(w, msgs, n_msgs, buf, buf_size, ret_size);
        if (buf_size < SEAL_OVERHEAD)
                return -EMSGSIZE;
        /* built where the ciphertext goes, sealed in place */
        r = wire_encode_plain(w, msgs, n_msgs, buf + SEAL_HEADER_SIZE, buf_size - SEAL_OVERHEAD, &n);
        if (r < 0)
                return r;
        return seal_packet(w->keyring, WIRE_SEALED_MAGIC, buf + SEAL_HEADER_SIZE, n, buf, buf_size, ret_size);
}

int wire_decode(Wire *w, const void *buf, size_t size, WirePacketInfo *ret_info,
                GossipMessage *msgs, size_t max_msgs) {
        uint8_t plain[WIRE_SEALED_MAX];
        size_t n;
        bool sealed;
        int r;

        if (!w || (!buf && size > 0) || (!msgs && max_msgs > 0))
                return -EINVAL;
        sealed = seal_has_magic(buf, size, WIRE_SEALED_MAGIC);
        if (!keyring_encrypts(w->keyring)) {
                if (sealed)
                        return drop(w, WIRE_DROP_ENCRYPTED, EPROTONOSUPPORT);
                return wire_decode_plain(w, buf, size, ret_info, msgs, max_msgs);
        }
        if (!sealed) {
                if (seal_has_magic(buf, size, WIRE_MAGIC))
                        return drop(w, WIRE_DROP_PLAINTEXT, EPROTO);
                return drop(w, size < SEAL_MAGIC_SIZE ? WIRE_DROP_MALFORMED : WIRE_DROP_MAGIC, EBADMSG);
        }
        if (size < SEAL_OVERHEAD || size > sizeof plain)
                return drop(w, WIRE_DROP_MALFORMED, EBADMSG);
        if (seal_open(w->keyring, WIRE_SEALED_MAGIC, buf, size, plain, sizeof plain, &n) < 0)
                return drop(w, WIRE_DROP_AUTH, EPERM);
        /* a sealed packet holds an ordinary one: its HMAC, replay window and checks apply unchanged */
        r = wire_decode_plain(w, plain, n, ret_info, msgs, max_msgs);
        explicit_bzero(plain, n);
        return r;
}
