/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <sys/socket.h>

#include "electiond-keyring.h"
#include "electiond-seal.h"
#include "electiond-util.h"
#include "electiond-wire.h"

typedef struct ReplayWindow {
        uint64_t epoch;
        uint64_t top;           /* highest seq seen */
        uint64_t bits;          /* bit i: top - i was seen */
        uint64_t used;          /* for evicting the least recently heard sender */
} ReplayWindow;

struct Wire {
        char *cluster_name;
        Keyring *keyring;       /* signs with the primary, accepts any installed key */
        uint64_t self_id;
        uint64_t epoch;
        uint64_t next_seq;
        GHashTable *windows;    /* sender id (uint64_t*) → ReplayWindow* */
        uint64_t use_counter;
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
        w->windows = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        return w;
}

Wire *wire_free(Wire *w) {
        if (!w)
                return NULL;
        keyring_unref(w->keyring);
        g_free(w->cluster_name);
        g_hash_table_unref(w->windows);
        g_free(w);
        return NULL;
}

void wire_forget_sender(Wire *w, uint64_t sender_id) {
        if (w)
                g_hash_table_remove(w->windows, &sender_id);
}

uint64_t wire_drop_count(const Wire *w, WireDrop d) {
        return d < _WIRE_DROP_MAX ? w->drops[d] : 0;
}

uint64_t wire_accepted_count(const Wire *w) {
        return w->accepted;
}

/* --- writing --- */

typedef struct Writer {
        uint8_t *p;
        size_t size, pos;
        bool overflow;
} Writer;

static void put(Writer *wr, const void *data, size_t n) {
        if (wr->overflow || n > wr->size - wr->pos) {
                wr->overflow = true;
                return;
        }
        memcpy(wr->p + wr->pos, data, n);
        wr->pos += n;
}

static void put_u8(Writer *wr, uint8_t v) {
        put(wr, &v, 1);
}

static void put_u16(Writer *wr, uint16_t v) {
        uint8_t b[2] = { v >> 8, v & 0xff };
        put(wr, b, 2);
}

static void put_u32(Writer *wr, uint32_t v) {
        uint8_t b[4];
        for (int i = 0; i < 4; i++)
                b[i] = (uint8_t) (v >> (24 - 8 * i));
        put(wr, b, 4);
}

static void put_u64(Writer *wr, uint64_t v) {
        uint8_t b[8];
        for (int i = 0; i < 8; i++)
                b[i] = (uint8_t) (v >> (56 - 8 * i));
        put(wr, b, 8);
}

static void put_str(Writer *wr, const char *s) {
        size_t n = strlen(s);
        put_u8(wr, (uint8_t) n);
        put(wr, s, n);
}

static void put_addresses(Writer *wr, const GossipMessage *m) {
        put_u8(wr, m->n_addresses);
        for (size_t i = 0; i < m->n_addresses; i++) {
                put_u8(wr, m->addresses[i].family);
                put(wr, m->addresses[i].addr, 16);
                put_u16(wr, m->addresses[i].port);
        }
}

static void put_message(Writer *wr, const GossipMessage *m) {
        size_t body = gossip_message_wire_size(m) - 3;

        put_u8(wr, m->type);
        put_u16(wr, (uint16_t) body);
        switch (m->type) {
        case GOSSIP_PING:
                put_u32(wr, m->seq);
                put_str(wr, m->name);
                break;
        case GOSSIP_PING_REQ:
                put_u32(wr, m->seq);
                put_str(wr, m->name);
                put_addresses(wr, m);
                break;
        case GOSSIP_ACK:
        case GOSSIP_NACK:
                put_u32(wr, m->seq);
                break;
        case GOSSIP_ALIVE:
                put_str(wr, m->name);
                put_u64(wr, m->node_id);
                put_u64(wr, m->incarnation);
                put_addresses(wr, m);
                put_u16(wr, m->tags_size);
                put(wr, m->tags, m->tags_size);
                break;
        case GOSSIP_SUSPECT:
        case GOSSIP_DEAD:
                put_str(wr, m->name);
                put_u64(wr, m->incarnation);
                put_str(wr, m->from);
                put_u64(wr, m->silent_usec);
                break;
        case GOSSIP_LEFT:
                put_str(wr, m->name);
                put_u64(wr, m->incarnation);
                break;
        case GOSSIP_USER:
                put_u32(wr, m->seq);
                put_u16(wr, m->tags_size);
                put(wr, m->tags, m->tags_size);
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
        Writer wr = { .p = buf, .size = buf_size };
        uint8_t mac[WIRE_HMAC_SIZE];

        if (!w || (!msgs && n_msgs > 0) || !buf || !ret_size || n_msgs > WIRE_MESSAGES_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n_msgs; i++)
                if (!gossip_message_valid(&msgs[i]))
                        return -EINVAL;

        put(&wr, WIRE_MAGIC, 4);
        put_u8(&wr, WIRE_VERSION);
        put_str(&wr, w->cluster_name);
        put_u64(&wr, w->self_id);
        put_u64(&wr, w->epoch);
        put_u64(&wr, w->next_seq);
        for (size_t i = 0; i < n_msgs; i++)
                put_message(&wr, &msgs[i]);
        if (wr.overflow || wr.size - wr.pos < WIRE_HMAC_SIZE)
                return -EMSGSIZE;
        keyring_sign(w->keyring, buf, wr.pos, mac);
        put(&wr, mac, sizeof mac);

        w->next_seq++;
        *ret_size = wr.pos;
        return 0;
}

/* --- reading --- */

typedef struct Reader {
        const uint8_t *p;
        size_t size, pos;
        bool bad;
} Reader;

static const uint8_t *get(Reader *rd, size_t n) {
        const uint8_t *r;
        if (rd->bad || n > rd->size - rd->pos) {
                rd->bad = true;
                return NULL;
        }
        r = rd->p + rd->pos;
        rd->pos += n;
        return r;
}

static uint8_t get_u8(Reader *rd) {
        const uint8_t *b = get(rd, 1);
        return b ? b[0] : 0;
}

static uint16_t get_u16(Reader *rd) {
        const uint8_t *b = get(rd, 2);
        return b ? (uint16_t) (b[0] << 8 | b[1]) : 0;
}

static uint32_t get_u32(Reader *rd) {
        const uint8_t *b = get(rd, 4);
        uint32_t v = 0;
        for (int i = 0; b && i < 4; i++)
                v = v << 8 | b[i];
        return v;
}

static uint64_t get_u64(Reader *rd) {
        const uint8_t *b = get(rd, 8);
        uint64_t v = 0;
        for (int i = 0; b && i < 8; i++)
                v = v << 8 | b[i];
        return v;
}

/* Strings are 0..255 bytes without NULs; validity (UTF-8 etc.) is checked per message. */
static void get_str(Reader *rd, char ret[static MEMBER_NAME_MAX + 1]) {
        uint8_t n = get_u8(rd);
        const uint8_t *b = get(rd, n);

        ret[0] = 0;
        if (!b)
                return;
        if (memchr(b, 0, n)) {
                rd->bad = true;
                return;
        }
        memcpy(ret, b, n);
        ret[n] = 0;
}

static void get_addresses(Reader *rd, GossipMessage *m) {
        m->n_addresses = get_u8(rd);
        if (m->n_addresses > MEMBER_ADDRESSES_MAX) {
                rd->bad = true;
                return;
        }
        for (size_t i = 0; i < m->n_addresses; i++) {
                const uint8_t *a;
                m->addresses[i].family = get_u8(rd);
                a = get(rd, 16);
                if (a)
                        memcpy(m->addresses[i].addr, a, 16);
                m->addresses[i].port = get_u16(rd);
        }
}

/* Returns 1 if a message was stored, 0 if skipped (unknown type), -EBADMSG if malformed. */
static int get_message(Reader *rd, GossipMessage *m) {
        uint8_t type = get_u8(rd);
        uint16_t len = get_u16(rd);
        const uint8_t *body = get(rd, len);
        Reader b = { .p = body, .size = len };

        if (!body)
                return -EBADMSG;
        *m = (GossipMessage) { .type = type };
        switch (type) {
        case GOSSIP_PING:
                m->seq = get_u32(&b);
                get_str(&b, m->name);
                break;
        case GOSSIP_PING_REQ:
                m->seq = get_u32(&b);
                get_str(&b, m->name);
                get_addresses(&b, m);
                break;
        case GOSSIP_ACK:
        case GOSSIP_NACK:
                m->seq = get_u32(&b);
                break;
        case GOSSIP_USER: {
                const uint8_t *t;
                m->seq = get_u32(&b);
                m->tags_size = get_u16(&b);
                if (m->tags_size > MEMBER_TAGS_MAX)
                        return -EBADMSG;
                t = get(&b, m->tags_size);
                if (t)
                        memcpy(m->tags, t, m->tags_size);
                break;
        }
        case GOSSIP_ALIVE: {
                const uint8_t *t;
                get_str(&b, m->name);
                m->node_id = get_u64(&b);
                m->incarnation = get_u64(&b);
                get_addresses(&b, m);
                m->tags_size = get_u16(&b);
                if (m->tags_size > MEMBER_TAGS_MAX)
                        return -EBADMSG;
                t = get(&b, m->tags_size);
                if (t)
                        memcpy(m->tags, t, m->tags_size);
                break;
        }
        case GOSSIP_SUSPECT:
        case GOSSIP_DEAD:
                get_str(&b, m->name);
                m->incarnation = get_u64(&b);
                get_str(&b, m->from);
                m->silent_usec = get_u64(&b);
                break;
        case GOSSIP_LEFT:
                get_str(&b, m->name);
                m->incarnation = get_u64(&b);
                break;
        default:
                return 0; /* a newer peer's message: skip it */
        }
        /* The body must be consumed exactly: no slack for smuggled bytes. */
        if (b.bad || b.pos != b.size || !gossip_message_valid(m))
                return -EBADMSG;
        return 1;
}

static int drop(Wire *w, WireDrop reason, int error) {
        w->drops[reason]++;
        return -error;
}

/* 0: fresh; -EALREADY: replay. Does not modify anything. */
static int replay_check(const ReplayWindow *rw, uint64_t epoch, uint64_t seq) {
        if (!rw || epoch > rw->epoch)
                return 0;
        if (epoch < rw->epoch)
                return -EALREADY;
        if (seq > rw->top)
                return 0;
        if (rw->top - seq >= WIRE_REPLAY_WINDOW)
                return -EALREADY;
        return (rw->bits >> (rw->top - seq)) & 1 ? -EALREADY : 0;
}

static void window_evict_oldest(Wire *w) {
        GHashTableIter it;
        gpointer k, v, oldest = NULL;
        uint64_t min = UINT64_MAX;

        g_hash_table_iter_init(&it, w->windows);
        while (g_hash_table_iter_next(&it, &k, &v))
                if (((ReplayWindow *) v)->used < min) {
                        min = ((ReplayWindow *) v)->used;
                        oldest = k;
                }
        if (oldest)
                g_hash_table_remove(w->windows, oldest);
}

static void replay_record(Wire *w, uint64_t sender, uint64_t epoch, uint64_t seq) {
        ReplayWindow *rw = g_hash_table_lookup(w->windows, &sender);

        if (!rw) {
                if (g_hash_table_size(w->windows) >= WIRE_SENDERS_MAX)
                        window_evict_oldest(w);
                uint64_t *k = g_new(uint64_t, 1);
                *k = sender;
                rw = g_new0(ReplayWindow, 1);
                g_hash_table_insert(w->windows, k, rw);
                rw->epoch = epoch;
                rw->top = seq;
                rw->bits = 1;
        } else if (epoch > rw->epoch) {
                rw->epoch = epoch;
                rw->top = seq;
                rw->bits = 1;
        } else if (seq > rw->top) {
                uint64_t shift = seq - rw->top;
                rw->bits = shift >= 64 ? 0 : rw->bits << shift;
                rw->bits |= 1;
                rw->top = seq;
        } else
                rw->bits |= UINT64_C(1) << (rw->top - seq);
        rw->used = ++w->use_counter;
}

static int wire_decode_plain(Wire *w, const void *buf, size_t size, WirePacketInfo *ret_info,
                             GossipMessage *msgs, size_t max_msgs) {
        Reader rd = { .p = buf, .size = size };
        char cluster[MEMBER_NAME_MAX + 1];
        uint8_t mac[WIRE_HMAC_SIZE];
        const uint8_t *magic;
        WirePacketInfo info;
        uint8_t version;
        size_t n = 0;
        int r;

        if (!w || (!buf && size > 0) || (!msgs && max_msgs > 0))
                return -EINVAL;

        magic = get(&rd, 4);
        if (!magic)
                return drop(w, WIRE_DROP_MALFORMED, EBADMSG);
        if (memcmp(magic, WIRE_MAGIC, 4) != 0)
                return drop(w, WIRE_DROP_MAGIC, EBADMSG);
        version = get_u8(&rd);
        if (rd.bad || version < WIRE_VERSION_MIN || version > WIRE_VERSION)
                return drop(w, rd.bad ? WIRE_DROP_MALFORMED : WIRE_DROP_VERSION, EBADMSG);
        get_str(&rd, cluster);
        info.sender_id = get_u64(&rd);
        info.epoch = get_u64(&rd);
        info.seq = get_u64(&rd);
        if (rd.bad || size - rd.pos < WIRE_HMAC_SIZE)
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
        if (replay_check(g_hash_table_lookup(w->windows, &info.sender_id), info.epoch, info.seq) < 0)
                return drop(w, WIRE_DROP_REPLAY, EALREADY);

        rd.size = size - WIRE_HMAC_SIZE;
        while (rd.pos < rd.size) {
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

        replay_record(w, info.sender_id, info.epoch, info.seq);
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
