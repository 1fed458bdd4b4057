/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The byte reader/writer of every codec and the constant-time compare (electiond-bytes). */
#include <glib.h>
#include <string.h>

#include "electiond-bytes.h"

static void test_load_store(void) {
        uint8_t b[8];

        bytes_set_u16(b, 0x0102);
        g_assert_cmpmem(b, 2, "\x02\x01", 2);
        bytes_set_u32(b, 0x01020304);
        g_assert_cmpmem(b, 4, "\x04\x03\x02\x01", 4);
        bytes_set_u64(b, UINT64_C(0x0102030405060708));
        g_assert_cmpmem(b, 8, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
        g_assert_cmphex(bytes_get_u64(b), ==, UINT64_C(0x0102030405060708));
        g_assert_cmphex(bytes_get_u32(b), ==, 0x05060708);
        g_assert_cmphex(bytes_get_u16(b), ==, 0x0708);

        bytes_set_u16_be(b, 0x0102);
        g_assert_cmpmem(b, 2, "\x01\x02", 2);
        bytes_set_u32_be(b, 0x01020304);
        g_assert_cmpmem(b, 4, "\x01\x02\x03\x04", 4);
        bytes_set_u64_be(b, UINT64_C(0x0102030405060708));
        g_assert_cmpmem(b, 8, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
        g_assert_cmphex(bytes_get_u64_be(b), ==, UINT64_C(0x0102030405060708));
        g_assert_cmphex(bytes_get_u32_be(b), ==, 0x01020304);
        g_assert_cmphex(bytes_get_u16_be(b), ==, 0x0102);

        /* high bits survive (no sign extension) */
        bytes_set_u64(b, UINT64_MAX - 1);
        g_assert_cmphex(bytes_get_u64(b), ==, UINT64_MAX - 1);
        bytes_set_u64_be(b, UINT64_C(0x8000000000000080));
        g_assert_cmphex(bytes_get_u64_be(b), ==, UINT64_C(0x8000000000000080));
        bytes_set_u16_be(b, 0xff80);
        g_assert_cmphex(bytes_get_u16_be(b), ==, 0xff80);
}

static void test_writer_array(void) {
        g_autoptr(GByteArray) a = g_byte_array_new();
        ByteWriter w = bytes_writer_array(a);
        static const uint8_t expect[] = {
                'X', 0x01,
                0x03, 0x02, 0x07, 0x06, 0x05, 0x04, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08,
                0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
                0x02, 'h', 'i',
        };

        bytes_write(&w, "X", 1);
        bytes_write_u8(&w, 1);
        bytes_write_u16(&w, 0x0203);
        bytes_write_u32(&w, 0x04050607);
        bytes_write_u64(&w, UINT64_C(0x08090a0b0c0d0e0f));
        bytes_write_u16_be(&w, 0x0203);
        bytes_write_u32_be(&w, 0x04050607);
        bytes_write_u64_be(&w, UINT64_C(0x08090a0b0c0d0e0f));
        bytes_write_str8(&w, "hi");
        bytes_write(&w, NULL, 0);
        g_assert_true(bytes_writer_ok(&w));
        g_assert_cmpuint(bytes_writer_len(&w), ==, sizeof expect);
        g_assert_cmpuint(bytes_writer_room(&w), ==, SIZE_MAX);
        g_assert_cmpmem(a->data, a->len, expect, sizeof expect);

        /* the GByteArray shorthands write the same little-endian bytes */
        g_autoptr(GByteArray) b = g_byte_array_new();
        bytes_put_u8(b, 1);
        bytes_put_u16(b, 0x0203);
        bytes_put_u32(b, 0x04050607);
        bytes_put_u64(b, UINT64_C(0x08090a0b0c0d0e0f));
        g_assert_cmpmem(b->data, b->len, expect + 1, 1 + 2 + 4 + 8);
        g_byte_array_set_size(b, 0);
        bytes_put_str(b, "abc");
        bytes_put_str(b, NULL);
        g_assert_cmpmem(b->data, b->len, "\x03\0\0\0abc\0\0\0\0", 11);

        /* a string too long for a u8 length is refused, not truncated */
        char long_name[300];
        memset(long_name, 'a', sizeof long_name - 1);
        long_name[sizeof long_name - 1] = 0;
        g_byte_array_set_size(a, 0);
        w = bytes_writer_array(a);
        bytes_write_str8(&w, long_name);
        g_assert_false(bytes_writer_ok(&w));
        g_assert_cmpuint(a->len, ==, 0);
        long_name[255] = 0;
        w = bytes_writer_array(a);
        bytes_write_str8(&w, long_name);
        g_assert_true(bytes_writer_ok(&w));
        g_assert_cmpuint(a->len, ==, 256);
}

static void test_writer_fixed(void) {
        uint8_t buf[16];
        ByteWriter w;

        memset(buf, 0xee, sizeof buf);
        w = bytes_writer_fixed(buf, 12);
        bytes_write_u64_be(&w, 1);
        g_assert_cmpuint(bytes_writer_room(&w), ==, 4);
        bytes_write_u16(&w, 0xabcd);
        g_assert_true(bytes_writer_ok(&w));
        /* does not fit: nothing of it is written, and the overflow sticks */
        bytes_write_u32(&w, 0x11223344);
        g_assert_false(bytes_writer_ok(&w));
        g_assert_cmpuint(bytes_writer_room(&w), ==, 0);
        bytes_write_u8(&w, 0x55);
        g_assert_cmpuint(bytes_writer_len(&w), ==, 10);
        g_assert_cmpmem(buf, 12, "\0\0\0\0\0\0\0\x01\xcd\xab\xee\xee", 12);
        g_assert_cmphex(buf[12], ==, 0xee);

        /* exactly full is fine */
        w = bytes_writer_fixed(buf, 4);
        bytes_write_u32(&w, 7);
        g_assert_true(bytes_writer_ok(&w));
        g_assert_cmpuint(bytes_writer_room(&w), ==, 0);
        bytes_write(&w, "", 0);
        g_assert_true(bytes_writer_ok(&w));

        w = bytes_writer_fixed(buf, 0);
        bytes_write_str8(&w, "");
        g_assert_false(bytes_writer_ok(&w));
}

static void test_reader(void) {
        static const uint8_t in[] = {
                0x01, 0x03, 0x02, 0x07, 0x06, 0x05, 0x04, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08,
                0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
                0x02, 'h', 'i',
                0x03, 0, 0, 0, 'a', 'b', 'c',
                0xaa,
        };
        ByteReader r = bytes_reader(in, sizeof in);
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        char s[256];
        g_autofree char *str = NULL;
        const uint8_t *p;

        g_assert_true(bytes_read_u8(&r, &u8));
        g_assert_cmphex(u8, ==, 1);
        g_assert_true(bytes_read_u16(&r, &u16));
        g_assert_cmphex(u16, ==, 0x0203);
        g_assert_true(bytes_read_u32(&r, &u32));
        g_assert_cmphex(u32, ==, 0x04050607);
        g_assert_true(bytes_read_u64(&r, &u64));
        g_assert_cmphex(u64, ==, UINT64_C(0x08090a0b0c0d0e0f));
        g_assert_true(bytes_read_u16_be(&r, &u16));
        g_assert_cmphex(u16, ==, 0x0203);
        g_assert_true(bytes_read_u32_be(&r, &u32));
        g_assert_cmphex(u32, ==, 0x04050607);
        g_assert_true(bytes_read_u64_be(&r, &u64));
        g_assert_cmphex(u64, ==, UINT64_C(0x08090a0b0c0d0e0f));
        g_assert_true(bytes_read_str8(&r, s));
        g_assert_cmpstr(s, ==, "hi");
        g_assert_true(bytes_read_str(&r, 3, &str));
        g_assert_cmpstr(str, ==, "abc");
        g_assert_cmpuint(r.left, ==, 1);

        /* too short: fails, zeroes the result, consumes nothing, and sticks */
        u16 = 0x1234;
        g_assert_false(bytes_read_u16(&r, &u16));
        g_assert_cmpuint(u16, ==, 0);
        g_assert_true(r.bad);
        g_assert_cmpuint(r.left, ==, 1);
        g_assert_false(bytes_read_u8(&r, &u8));
        g_assert_false(bytes_read(&r, 0, &p));
        g_assert_null(p);

        /* strings: over max, NUL inside, truncated */
        r = bytes_reader("\x03\0\0\0abc", 7);
        g_assert_false(bytes_read_str(&r, 2, &str));
        g_assert_true(r.bad);
        r = bytes_reader("\x02" "a\0", 3);
        g_assert_false(bytes_read_str8(&r, s));
        g_assert_cmpstr(s, ==, "");
        r = bytes_reader("\x05" "ab", 3);
        g_assert_false(bytes_read_str8(&r, s));
        g_assert_cmpstr(s, ==, "");
        r = bytes_reader("", 0);
        g_assert_true(bytes_read(&r, 0, &p));
        g_assert_false(bytes_reader_fail(&r));
        g_assert_false(bytes_read(&r, 0, &p));

        /* the reader reads what the writer wrote */
        g_autoptr(GByteArray) a = g_byte_array_new();
        ByteWriter w = bytes_writer_array(a);
        bytes_write_u64_be(&w, UINT64_MAX);
        bytes_write_u16(&w, 0xfffe);
        bytes_write_str8(&w, "node-1");
        r = bytes_reader(a->data, a->len);
        g_assert_true(bytes_read_u64_be(&r, &u64));
        g_assert_cmphex(u64, ==, UINT64_MAX);
        g_assert_true(bytes_read_u16(&r, &u16));
        g_assert_cmphex(u16, ==, 0xfffe);
        g_assert_true(bytes_read_str8(&r, s));
        g_assert_cmpstr(s, ==, "node-1");
        g_assert_cmpuint(r.left, ==, 0);
        g_assert_false(r.bad);
}

static void test_equal_ct(void) {
        uint8_t a[32], b[32];

        for (size_t i = 0; i < sizeof a; i++)
                a[i] = b[i] = (uint8_t) (i * 7 + 1);
        g_assert_true(bytes_equal_ct(a, b, sizeof a));
        g_assert_true(bytes_equal_ct(a, b, 0));
        g_assert_true(bytes_equal_ct(NULL, NULL, 0));
        /* a difference anywhere, first byte, last byte, one bit */
        for (size_t i = 0; i < sizeof a; i++)
                for (unsigned bit = 0; bit < 8; bit++) {
                        b[i] ^= (uint8_t) (1u << bit);
                        g_assert_false(bytes_equal_ct(a, b, sizeof a));
                        b[i] ^= (uint8_t) (1u << bit);
                }
        g_assert_true(bytes_equal_ct(a, b, sizeof a));
        /* only n bytes count */
        b[31] ^= 0xff;
        g_assert_true(bytes_equal_ct(a, b, 31));
        g_assert_false(bytes_equal_ct(a, b, 32));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/bytes/load-store", test_load_store);
        g_test_add_func("/bytes/writer-array", test_writer_array);
        g_test_add_func("/bytes/writer-fixed", test_writer_fixed);
        g_test_add_func("/bytes/reader", test_reader);
        g_test_add_func("/bytes/equal-ct", test_equal_ct);
        return g_test_run();
}
