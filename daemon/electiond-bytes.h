/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one byte reader/writer of every codec (command batches, snapshots, gossip, the cluster
 * channel and its messages, the Raft handshake, sealed stream records, log entry framing), and
 * the one constant-time compare.
 *
 * Byte order is each format's own: the plain names are little-endian (the channel, its messages,
 * commands, snapshots, the Raft handshake), the _be names big-endian (gossip, stream record
 * lengths). These functions are the only place that shifts bytes; a codec says which integers it
 * has, in what order, and never does offset arithmetic of its own.
 *
 *   bytes_get_* / bytes_set_*   load/store at a pointer the caller has bounds-checked
 *   ByteWriter                  appends to a GByteArray, or fills a fixed buffer (sticky overflow)
 *   ByteReader                  bounds-checked reads; never past its input (sticky failure)
 *   bytes_put_*                 shorthands that append to a GByteArray
 */

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- load/store ---- */
uint16_t bytes_get_u16(const uint8_t *p);
uint32_t bytes_get_u32(const uint8_t *p);
uint64_t bytes_get_u64(const uint8_t *p);
uint16_t bytes_get_u16_be(const uint8_t *p);
uint32_t bytes_get_u32_be(const uint8_t *p);
uint64_t bytes_get_u64_be(const uint8_t *p);
void bytes_set_u16(uint8_t *p, uint16_t v);
void bytes_set_u32(uint8_t *p, uint32_t v);
void bytes_set_u64(uint8_t *p, uint64_t v);
void bytes_set_u16_be(uint8_t *p, uint16_t v);
void bytes_set_u32_be(uint8_t *p, uint32_t v);
void bytes_set_u64_be(uint8_t *p, uint64_t v);

/* ---- writing ---- */
typedef struct ByteWriter {
        GByteArray *array; /* grows; or NULL: the fixed buffer below */
        uint8_t *p;
        size_t size, pos;
        bool overflow;     /* a fixed buffer was too small: this write and all later ones are dropped */
} ByteWriter;

ByteWriter bytes_writer_array(GByteArray *b);
ByteWriter bytes_writer_fixed(void *buf, size_t size);
/* Bytes written so far (for an array writer: the array's length). */
size_t bytes_writer_len(const ByteWriter *w);
/* Room left in a fixed buffer (SIZE_MAX for an array). */
size_t bytes_writer_room(const ByteWriter *w);
bool bytes_writer_ok(const ByteWriter *w);

void bytes_write(ByteWriter *w, const void *data, size_t n);
void bytes_write_u8(ByteWriter *w, uint8_t v);
void bytes_write_u16(ByteWriter *w, uint16_t v);
void bytes_write_u32(ByteWriter *w, uint32_t v);
void bytes_write_u64(ByteWriter *w, uint64_t v);
void bytes_write_u16_be(ByteWriter *w, uint16_t v);
void bytes_write_u32_be(ByteWriter *w, uint32_t v);
void bytes_write_u64_be(ByteWriter *w, uint64_t v);
/* u8 length, then the bytes (gossip's strings); s is at most 255 bytes (longer sets overflow). */
void bytes_write_str8(ByteWriter *w, const char *s);

/* Appending to a GByteArray, little-endian. */
void bytes_put_u8(GByteArray *b, uint8_t v);
void bytes_put_u16(GByteArray *b, uint16_t v);
void bytes_put_u32(GByteArray *b, uint32_t v);
void bytes_put_u64(GByteArray *b, uint64_t v);
/* u32 length, then the bytes; NULL is written as "". */
void bytes_put_str(GByteArray *b, const char *s);

/* ---- reading ---- */
typedef struct ByteReader {
        const uint8_t *p;
        size_t left;
        bool bad;          /* a read failed: every later one fails too */
} ByteReader;

static inline ByteReader bytes_reader(const void *data, size_t size) {
        return (ByteReader) { .p = data, .left = size };
}

/* False (and *ret zeroed or NULL) when fewer bytes are left, or after an earlier failure. */
bool bytes_read(ByteReader *r, size_t n, const uint8_t **ret);
bool bytes_read_u8(ByteReader *r, uint8_t *ret);
bool bytes_read_u16(ByteReader *r, uint16_t *ret);
bool bytes_read_u32(ByteReader *r, uint32_t *ret);
bool bytes_read_u64(ByteReader *r, uint64_t *ret);
bool bytes_read_u16_be(ByteReader *r, uint16_t *ret);
bool bytes_read_u32_be(ByteReader *r, uint32_t *ret);
bool bytes_read_u64_be(ByteReader *r, uint64_t *ret);
/* u32 length, at most max bytes and no NUL inside; *ret is newly allocated. */
bool bytes_read_str(ByteReader *r, size_t max, char **ret);
/* u8 length, no NUL inside, into ret (NUL-terminated; "" on failure). */
bool bytes_read_str8(ByteReader *r, char ret[static 256]);
/* Marks the reader failed (a codec's own check on what it read), returns false. */
bool bytes_reader_fail(ByteReader *r);

/* ---- comparing ---- */
/* Whether a and b (n bytes each) are equal, in time that depends on n only: every comparison of
 * a MAC, tag or key goes through this (libsodium's sodium_memcmp()). */
bool bytes_equal_ct(const void *a, const void *b, size_t n);
