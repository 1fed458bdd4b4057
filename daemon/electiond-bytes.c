/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sodium.h>
#include <string.h>

#include "electiond-bytes.h"

/* ---- load/store: the only byte shifting of the daemon's formats ---- */

static uint64_t get_le(const uint8_t *p, unsigned n) {
        uint64_t v = 0;
        for (unsigned i = 0; i < n; i++)
                v |= (uint64_t) p[i] << (8 * i);
        return v;
}

static uint64_t get_be(const uint8_t *p, unsigned n) {
        uint64_t v = 0;
        for (unsigned i = 0; i < n; i++)
                v = v << 8 | p[i];
        return v;
}

static void set_le(uint8_t *p, uint64_t v, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void set_be(uint8_t *p, uint64_t v, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                p[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
}

uint16_t bytes_get_u16(const uint8_t *p) { return (uint16_t) get_le(p, 2); }
uint32_t bytes_get_u32(const uint8_t *p) { return (uint32_t) get_le(p, 4); }
uint64_t bytes_get_u64(const uint8_t *p) { return get_le(p, 8); }
uint16_t bytes_get_u16_be(const uint8_t *p) { return (uint16_t) get_be(p, 2); }
uint32_t bytes_get_u32_be(const uint8_t *p) { return (uint32_t) get_be(p, 4); }
uint64_t bytes_get_u64_be(const uint8_t *p) { return get_be(p, 8); }
void bytes_set_u16(uint8_t *p, uint16_t v) { set_le(p, v, 2); }
void bytes_set_u32(uint8_t *p, uint32_t v) { set_le(p, v, 4); }
void bytes_set_u64(uint8_t *p, uint64_t v) { set_le(p, v, 8); }
void bytes_set_u16_be(uint8_t *p, uint16_t v) { set_be(p, v, 2); }
void bytes_set_u32_be(uint8_t *p, uint32_t v) { set_be(p, v, 4); }
void bytes_set_u64_be(uint8_t *p, uint64_t v) { set_be(p, v, 8); }

/* ---- writing ---- */

ByteWriter bytes_writer_array(GByteArray *b) {
        return (ByteWriter) { .array = b };
}

ByteWriter bytes_writer_fixed(void *buf, size_t size) {
        return (ByteWriter) { .p = buf, .size = size };
}

size_t bytes_writer_len(const ByteWriter *w) {
        return w->array ? w->array->len : w->pos;
}

size_t bytes_writer_room(const ByteWriter *w) {
        if (w->array)
                return SIZE_MAX;
        return w->overflow ? 0 : w->size - w->pos;
}

bool bytes_writer_ok(const ByteWriter *w) {
        return !w->overflow;
}

/* Where the next n bytes go, or NULL (overflow, now sticky). */
static uint8_t *writer_reserve(ByteWriter *w, size_t n) {
        if (w->overflow)
                return NULL;
        if (w->array) {
                guint at = w->array->len;
                if (n > G_MAXUINT - at) {
                        w->overflow = true;
                        return NULL;
                }
                g_byte_array_set_size(w->array, at + (guint) n);
                return w->array->data + at;
        }
        if (n > w->size - w->pos) {
                w->overflow = true;
                return NULL;
        }
        w->pos += n;
        return w->p + w->pos - n;
}

void bytes_write(ByteWriter *w, const void *data, size_t n) {
        uint8_t *p = writer_reserve(w, n);
        if (p && n > 0)
                memcpy(p, data, n);
}

static void write_le(ByteWriter *w, uint64_t v, unsigned n) {
        uint8_t *p = writer_reserve(w, n);
        if (p)
                set_le(p, v, n);
}

static void write_be(ByteWriter *w, uint64_t v, unsigned n) {
        uint8_t *p = writer_reserve(w, n);
        if (p)
                set_be(p, v, n);
}

void bytes_write_u8(ByteWriter *w, uint8_t v) { write_le(w, v, 1); }
void bytes_write_u16(ByteWriter *w, uint16_t v) { write_le(w, v, 2); }
void bytes_write_u32(ByteWriter *w, uint32_t v) { write_le(w, v, 4); }
void bytes_write_u64(ByteWriter *w, uint64_t v) { write_le(w, v, 8); }
void bytes_write_u16_be(ByteWriter *w, uint16_t v) { write_be(w, v, 2); }
void bytes_write_u32_be(ByteWriter *w, uint32_t v) { write_be(w, v, 4); }
void bytes_write_u64_be(ByteWriter *w, uint64_t v) { write_be(w, v, 8); }

void bytes_write_str8(ByteWriter *w, const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n > UINT8_MAX) {
                w->overflow = true;
                return;
        }
        bytes_write_u8(w, (uint8_t) n);
        bytes_write(w, s, n);
}

void bytes_put_u8(GByteArray *b, uint8_t v) {
        ByteWriter w = bytes_writer_array(b);
        bytes_write_u8(&w, v);
}

void bytes_put_u16(GByteArray *b, uint16_t v) {
        ByteWriter w = bytes_writer_array(b);
        bytes_write_u16(&w, v);
}

void bytes_put_u32(GByteArray *b, uint32_t v) {
        ByteWriter w = bytes_writer_array(b);
        bytes_write_u32(&w, v);
}

void bytes_put_u64(GByteArray *b, uint64_t v) {
        ByteWriter w = bytes_writer_array(b);
        bytes_write_u64(&w, v);
}

void bytes_put_str(GByteArray *b, const char *s) {
        ByteWriter w = bytes_writer_array(b);
        size_t n = s ? strlen(s) : 0;

        bytes_write_u32(&w, (uint32_t) n);
        bytes_write(&w, s, n);
}

/* ---- reading ---- */

bool bytes_reader_fail(ByteReader *r) {
        r->bad = true;
        return false;
}

bool bytes_read(ByteReader *r, size_t n, const uint8_t **ret) {
        if (r->bad || r->left < n) {
                *ret = NULL;
                return bytes_reader_fail(r);
        }
        *ret = r->p;
        r->p += n;
        r->left -= n;
        return true;
}

static bool read_le(ByteReader *r, unsigned n, uint64_t *ret) {
        const uint8_t *p;
        bool ok = bytes_read(r, n, &p);

        *ret = ok ? get_le(p, n) : 0;
        return ok;
}

static bool read_be(ByteReader *r, unsigned n, uint64_t *ret) {
        const uint8_t *p;
        bool ok = bytes_read(r, n, &p);

        *ret = ok ? get_be(p, n) : 0;
        return ok;
}

#define DEFINE_READ(name, type, how, n)                         \
        bool name(ByteReader *r, type *ret) {                   \
                uint64_t v;                                     \
                bool ok = how(r, n, &v);                        \
                *ret = (type) v;                                \
                return ok;                                      \
        }

DEFINE_READ(bytes_read_u8, uint8_t, read_le, 1)
DEFINE_READ(bytes_read_u16, uint16_t, read_le, 2)
DEFINE_READ(bytes_read_u32, uint32_t, read_le, 4)
DEFINE_READ(bytes_read_u64, uint64_t, read_le, 8)
DEFINE_READ(bytes_read_u16_be, uint16_t, read_be, 2)
DEFINE_READ(bytes_read_u32_be, uint32_t, read_be, 4)
DEFINE_READ(bytes_read_u64_be, uint64_t, read_be, 8)

bool bytes_read_str(ByteReader *r, size_t max, char **ret) {
        const uint8_t *p;
        uint32_t n;

        if (!bytes_read_u32(r, &n))
                return false;
        if (n > max || !bytes_read(r, n, &p) || memchr(p, 0, n))
                return bytes_reader_fail(r);
        *ret = g_strndup((const char *) p, n);
        return true;
}

bool bytes_read_str8(ByteReader *r, char ret[static 256]) {
        const uint8_t *p;
        uint8_t n;

        ret[0] = 0;
        if (!bytes_read_u8(r, &n) || !bytes_read(r, n, &p))
                return false;
        if (memchr(p, 0, n))
                return bytes_reader_fail(r);
        memcpy(ret, p, n);
        ret[n] = 0;
        return true;
}

/* ---- comparing ---- */

bool bytes_equal_ct(const void *a, const void *b, size_t n) {
        return n == 0 || sodium_memcmp(a, b, n) == 0;
}
