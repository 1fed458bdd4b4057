/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>

#include "electiond-command.h"
#include "electiond-bytes.h"
#include "electiond-util.h"

/*
 * Batch format (all integers little-endian):
 *   "ELB1"  u32 count  then count times:
 *   u8 type, str origin, u64 origin_run, u64 request_id, str election, str id, str node,
 *   str owner, u64 run, u32 uid, u32 flags, u32 max_elections, u32 max_candidates
 * where str = u32 length + that many bytes (no NUL, at most COMMAND_STRING_MAX).
 * The magic is the layout's version (unchanged since v0.1.0); which types a batch may hold is
 * the protocol version's (command_type_protocol()): a decoder refuses a type it does not know.
 * Extension (protocol 2, issue 14 §1): when bit 7 of the type byte (COMMAND_WIRE_EXT) is set,
 * the command is followed by u32 max_persistent. It is set only when that field is not 0, so
 * every other command keeps the v0.1.0 bytes; v0.1.0 refuses one that carries it (a persistent
 * Enter of a non-root caller under MaxPersistentPerUser=), so it is sent only from protocol 2.
 */

#define COMMAND_WIRE_EXT 0x80u

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
        [COMMAND_RESTORE_NODE] = "restore-node",
        [COMMAND_STEP_DOWN] = "step-down",
        [COMMAND_DRAIN] = "drain",
        [COMMAND_UNDRAIN] = "undrain",
        [COMMAND_BUMP_TERMS] = "bump-terms",
        [COMMAND_SET_PROTOCOL] = "set-protocol",
        [COMMAND_FORGET] = "forget",
};

const char *command_type_to_string(CommandType t) {
        if ((int) t <= 0 || t >= _COMMAND_TYPE_MAX)
                return NULL;
        return command_type_table[t];
}

unsigned command_type_protocol(CommandType t) {
        if ((int) t <= 0 || t >= _COMMAND_TYPE_MAX)
                return 0;
        /* v0.1.0 knew every type up to UNDRAIN: it cannot decode a batch holding a later one */
        return t <= COMMAND_UNDRAIN ? 1u : 2u;
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
                bytes_put_u32(buf, 0);
        } else if (buf->len < BATCH_HEADER_SIZE || memcmp(buf->data, BATCH_MAGIC, 4) != 0)
                return -EINVAL;

        count = bytes_get_u32(buf->data + 4);
        if (count >= COMMAND_BATCH_MAX)
                return -ENOBUFS; /* the caller starts a new batch */

        g_byte_array_append(buf, (const uint8_t[]) { (uint8_t) c->type | (c->max_persistent ? COMMAND_WIRE_EXT : 0) }, 1);
        bytes_put_str(buf, c->origin);
        bytes_put_u64(buf, c->origin_run);
        bytes_put_u64(buf, c->request_id);
        bytes_put_str(buf, c->election);
        bytes_put_str(buf, c->id);
        bytes_put_str(buf, c->node);
        bytes_put_str(buf, c->owner);
        bytes_put_u64(buf, c->run);
        bytes_put_u32(buf, c->uid);
        bytes_put_u32(buf, c->flags);
        bytes_put_u32(buf, c->max_elections);
        bytes_put_u32(buf, c->max_candidates);
        if (c->max_persistent)
                bytes_put_u32(buf, c->max_persistent);

        /* Bump the count in place rather than re-encoding the batch. */
        count++;
        bytes_set_u32(buf->data + 4, count);
        return 0;
}

typedef ByteReader Reader;






/* Smallest possible encoded command: type + 5 empty strings + 3 u64 + 4 u32. */
#define COMMAND_MIN_SIZE (1 + 5 * 4 + 3 * 8 + 4 * 4)

static int command_decode_one(Reader *r, Command **ret) {
        g_autoptr(Command) c = NULL;
        uint8_t type;
        bool ext;

        if (!bytes_read_u8(r, &type))
                return -EBADMSG;
        ext = type & COMMAND_WIRE_EXT;
        type &= ~COMMAND_WIRE_EXT;
        if (type == 0 || type >= _COMMAND_TYPE_MAX)
                return -EBADMSG;

        c = command_new((CommandType) type);
        if (!bytes_read_str(r, COMMAND_STRING_MAX, &c->origin) ||
            !bytes_read_u64(r, &c->origin_run) ||
            !bytes_read_u64(r, &c->request_id) ||
            !bytes_read_str(r, COMMAND_STRING_MAX, &c->election) ||
            !bytes_read_str(r, COMMAND_STRING_MAX, &c->id) ||
            !bytes_read_str(r, COMMAND_STRING_MAX, &c->node) ||
            !bytes_read_str(r, COMMAND_STRING_MAX, &c->owner) ||
            !bytes_read_u64(r, &c->run) ||
            !bytes_read_u32(r, &c->uid) ||
            !bytes_read_u32(r, &c->flags) ||
            !bytes_read_u32(r, &c->max_elections) ||
            !bytes_read_u32(r, &c->max_candidates))
                return -EBADMSG;
        /* the extension is written only when its field is not 0: one encoding per command */
        if (ext && (!bytes_read_u32(r, &c->max_persistent) || c->max_persistent == 0))
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

        if (!bytes_read(&r, 4, &magic) || memcmp(magic, BATCH_MAGIC, 4) != 0)
                return -EBADMSG;
        if (!bytes_read_u32(&r, &count) || count > COMMAND_BATCH_MAX)
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
