/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Little-endian writing and bounds-checked reading, shared by the codecs of state that is
 * persisted or replicated (command batches, snapshots). Readers never read past their input. */

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct ByteReader {
        const uint8_t *p;
        size_t left;
} ByteReader;

void bytes_put_u8(GByteArray *b, uint8_t v);
void bytes_put_u32(GByteArray *b, uint32_t v);
void bytes_put_u64(GByteArray *b, uint64_t v);
/* u32 length, then the bytes; NULL is written as "". */
void bytes_put_str(GByteArray *b, const char *s);
uint32_t bytes_get_u32(const uint8_t *p);

bool bytes_read(ByteReader *r, size_t n, const uint8_t **ret);
bool bytes_read_u8(ByteReader *r, uint8_t *ret);
bool bytes_read_u32(ByteReader *r, uint32_t *ret);
bool bytes_read_u64(ByteReader *r, uint64_t *ret);
/* At most max bytes and no NUL inside; *ret is newly allocated. */
bool bytes_read_str(ByteReader *r, size_t max, char **ret);
