/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "electiond-bytes.h"

void bytes_put_u8(GByteArray *b, uint8_t v) {
        g_byte_array_append(b, &v, 1);
}

void bytes_put_u32(GByteArray *b, uint32_t v) {
        uint8_t x[4];
        for (unsigned i = 0; i < 4; i++)
                x[i] = (uint8_t) (v >> (8 * i));
        g_byte_array_append(b, x, sizeof x);
}

void bytes_put_u64(GByteArray *b, uint64_t v) {
        uint8_t x[8];
        for (unsigned i = 0; i < 8; i++)
                x[i] = (uint8_t) (v >> (8 * i));
        g_byte_array_append(b, x, sizeof x);
}

void bytes_put_str(GByteArray *b, const char *s) {
        size_t n = s ? strlen(s) : 0;
        bytes_put_u32(b, (uint32_t) n);
        if (n > 0)
                g_byte_array_append(b, (const uint8_t *) s, (guint) n);
}

uint32_t bytes_get_u32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

bool bytes_read(ByteReader *r, size_t n, const uint8_t **ret) {
        if (r->left < n)
                return false;
        *ret = r->p;
        r->p += n;
        r->left -= n;
        return true;
}

bool bytes_read_u8(ByteReader *r, uint8_t *ret) {
        const uint8_t *p;
        if (!bytes_read(r, 1, &p))
                return false;
        *ret = p[0];
        return true;
}

bool bytes_read_u32(ByteReader *r, uint32_t *ret) {
        const uint8_t *p;
        if (!bytes_read(r, 4, &p))
                return false;
        *ret = bytes_get_u32(p);
        return true;
}

bool bytes_read_u64(ByteReader *r, uint64_t *ret) {
        const uint8_t *p;
        uint64_t v = 0;
        if (!bytes_read(r, 8, &p))
                return false;
        for (unsigned i = 0; i < 8; i++)
                v |= (uint64_t) p[i] << (8 * i);
        *ret = v;
        return true;
}

bool bytes_read_str(ByteReader *r, size_t max, char **ret) {
        const uint8_t *p;
        uint32_t n;

        if (!bytes_read_u32(r, &n) || n > max || !bytes_read(r, n, &p) || memchr(p, 0, n))
                return false;
        *ret = g_strndup((const char *) p, n);
        return true;
}
