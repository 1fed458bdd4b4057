/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>

#include "electiond-command.h"
#include "electiond-util.h"

/*
 * Batch format (all integers little-endian):
 *   "ELB1"  u32 count  then count times:
 *   u8 type, str origin, u64 origin_run, u64 request_id, str election, str id, str node,
 *   str owner, u64 run, u32 uid, u32 flags, u32 max_elections, u32 max_candidates
 * where str = u32 length + that many bytes (no NUL, at most COMMAND_STRING_MAX).
 */

#define BATCH_MAGIC "ELB1"
#define BATCH_HEADER_SIZE 8

Command *command_new(CommandType type) {
        Command *c = g_new0(Command, 1);
        c->type = type;
        return c;
}

Command *command_free(Command *c) {
        if (!c)
                return NULL;
        g_free(c->origin);
        g_free(c->election);
        g_free(c->id);
        g_free(c->node);
        g_free(c->owner);
        g_free(c);
        return NULL;
}

static void command_destroy(gpointer p) {
        command_free(p);
}

Command *command_copy(const Command *c) {
        Command *n;

        if (!c)
                return NULL;
        n = g_memdup2(c, sizeof *c);
        n->origin = g_strdup(c->origin);
        n->election = g_strdup(c->election);
        n->id = g_strdup(c->id);
        n->node = g_strdup(c->node);
        n->owner = g_strdup(c->owner);
        return n;
}

static const char *const command_type_table[_COMMAND_TYPE_MAX] = {
        [COMMAND_ENTER] = "enter",
        [COMMAND_LEAVE] = "leave",
        [COMMAND_EVICT] = "evict",
        [COMMAND_ANOINT] = "anoint",
        [COMMAND_PROMOTE] = "promote",
        [COMMAND_DROP_OWNER] = "drop-owner",
        [COMMAND_DROP_RUN] = "drop-run",
        [COMMAND_DROP_NODE] = "drop-node",
};

const char *command_type_to_string(CommandType t) {
        if ((int) t <= 0 || t >= _COMMAND_TYPE_MAX)
                return NULL;
        return command_type_table[t];
}

static void put_u32(GByteArray *buf, uint32_t v) {
        uint8_t b[4];
        for (unsigned i = 0; i < 4; i++)
                b[i] = (uint8_t) (v >> (8 * i));
        g_byte_array_append(buf, b, sizeof b);
}

static void put_u64(GByteArray *buf, uint64_t v) {
        uint8_t b[8];
        for (unsigned i = 0; i < 8; i++)
                b[i] = (uint8_t) (v >> (8 * i));
        g_byte_array_append(buf, b, sizeof b);
}

static void put_str(GByteArray *buf, const char *s) {
        size_t n = s ? strlen(s) : 0;
        put_u32(buf, (uint32_t) n);
        if (n > 0)
                g_byte_array_append(buf, (const uint8_t *) s, (guint) n);
}

static uint32_t get_u32_at(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static bool str_encodable(const char *s) {
        return !s || strlen(s) <= COMMAND_STRING_MAX;
}

int command_batch_append(GByteArray *buf, const Command *c) {
        uint32_t count;

        if (!buf || !c)
                return -EINVAL;
        if ((int) c->type <= 0 || c->type >= _COMMAND_TYPE_MAX)
                return -EINVAL;
        if (!str_encodable(c->origin) || !str_encodable(c->election) || !str_encodable(c->id) ||
            !str_encodable(c->node) || !str_encodable(c->owner))
                return -E2BIG;

        if (buf->len == 0) {
                g_byte_array_append(buf, (const uint8_t *) BATCH_MAGIC, 4);
                put_u32(buf, 0);
        } else if (buf->len < BATCH_HEADER_SIZE || memcmp(buf->data, BATCH_MAGIC, 4) != 0)
                return -EINVAL;

        count = get_u32_at(buf->data + 4);
        if (count >= COMMAND_BATCH_MAX)
                return -ENOBUFS; /* the caller starts a new batch */

        g_byte_array_append(buf, (const uint8_t[]) { (uint8_t) c->type }, 1);
        put_str(buf, c->origin);
        put_u64(buf, c->origin_run);
        put_u64(buf, c->request_id);
        put_str(buf, c->election);
        put_str(buf, c->id);
        put_str(buf, c->node);
        put_str(buf, c->owner);
        put_u64(buf, c->run);
        put_u32(buf, c->uid);
        put_u32(buf, c->flags);
        put_u32(buf, c->max_elections);
        put_u32(buf, c->max_candidates);

        /* Bump the count in place rather than re-encoding the batch. */
        count++;
        for (unsigned i = 0; i < 4; i++)
                buf->data[4 + i] = (uint8_t) (count >> (8 * i));
        return 0;
}

typedef struct Reader {
        const uint8_t *p;
        size_t left;
} Reader;

static bool read_bytes(Reader *r, size_t n, const uint8_t **ret) {
        if (r->left < n)
                return false;
        *ret = r->p;
        r->p += n;
        r->left -= n;
        return true;
}

static bool read_u8(Reader *r, uint8_t *ret) {
        const uint8_t *p;
        if (!read_bytes(r, 1, &p))
                return false;
        *ret = p[0];
        return true;
}

static bool read_u32(Reader *r, uint32_t *ret) {
        const uint8_t *p;
        if (!read_bytes(r, 4, &p))
                return false;
        *ret = get_u32_at(p);
        return true;
}

static bool read_u64(Reader *r, uint64_t *ret) {
        const uint8_t *p;
        uint64_t v = 0;
        if (!read_bytes(r, 8, &p))
                return false;
        for (unsigned i = 0; i < 8; i++)
                v |= (uint64_t) p[i] << (8 * i);
        *ret = v;
        return true;
}

static bool read_str(Reader *r, char **ret) {
        const uint8_t *p;
        uint32_t n;

        if (!read_u32(r, &n) || n > COMMAND_STRING_MAX || !read_bytes(r, n, &p))
                return false;
        if (memchr(p, 0, n))
                return false;
        *ret = g_strndup((const char *) p, n);
        return true;
}

/* Smallest possible encoded command: type + 5 empty strings + 3 u64 + 4 u32. */
#define COMMAND_MIN_SIZE (1 + 5 * 4 + 3 * 8 + 4 * 4)

static int command_decode_one(Reader *r, Command **ret) {
        g_autoptr(Command) c = NULL;
        uint8_t type;

        if (!read_u8(r, &type) || type == 0 || type >= _COMMAND_TYPE_MAX)
                return -EBADMSG;

        c = command_new((CommandType) type);
        if (!read_str(r, &c->origin) ||
            !read_u64(r, &c->origin_run) ||
            !read_u64(r, &c->request_id) ||
            !read_str(r, &c->election) ||
            !read_str(r, &c->id) ||
            !read_str(r, &c->node) ||
            !read_str(r, &c->owner) ||
            !read_u64(r, &c->run) ||
            !read_u32(r, &c->uid) ||
            !read_u32(r, &c->flags) ||
            !read_u32(r, &c->max_elections) ||
            !read_u32(r, &c->max_candidates))
                return -EBADMSG;

        *ret = g_steal_pointer(&c);
        return 0;
}

int command_batch_decode(const void *data, size_t size, GPtrArray **ret) {
        g_autoptr(GPtrArray) cmds = NULL;
        Reader r = { .p = data, .left = size };
        const uint8_t *magic;
        uint32_t count;

        if (!ret || (!data && size > 0))
                return -EINVAL;

        if (!read_bytes(&r, 4, &magic) || memcmp(magic, BATCH_MAGIC, 4) != 0)
                return -EBADMSG;
        if (!read_u32(&r, &count) || count > COMMAND_BATCH_MAX)
                return -EBADMSG;
        /* Refuse counts the remaining bytes cannot possibly hold before allocating anything. */
        if ((uint64_t) count * COMMAND_MIN_SIZE > r.left)
                return -EBADMSG;

        cmds = g_ptr_array_new_full(count, command_destroy);
        for (uint32_t i = 0; i < count; i++) {
                Command *c;
                int k;

                k = command_decode_one(&r, &c);
                if (k < 0)
                        return k;
                g_ptr_array_add(cmds, c);
        }
        if (r.left != 0)
                return -EBADMSG; /* trailing bytes */

        *ret = g_steal_pointer(&cmds);
        return 0;
}
