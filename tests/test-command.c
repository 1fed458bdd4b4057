/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The command codec: round trips, limits, and hostile input (truncation, bit flips, garbage). */

#include <glib.h>

#include "electiond-command.h"
#include "electiond-util.h"

static GRand *rnd;

static bool command_equal(const Command *a, const Command *b) {
        /* NULL encodes as "", so compare with that folding. */
#define S(x) ((x) ?: "")
        return a->type == b->type && streq_ptr(S(a->origin), S(b->origin)) && a->origin_run == b->origin_run &&
                a->request_id == b->request_id && streq_ptr(S(a->election), S(b->election)) &&
                streq_ptr(S(a->id), S(b->id)) && streq_ptr(S(a->node), S(b->node)) &&
                streq_ptr(S(a->owner), S(b->owner)) && a->run == b->run && a->uid == b->uid &&
                a->flags == b->flags && a->max_elections == b->max_elections &&
                a->max_candidates == b->max_candidates && a->max_persistent == b->max_persistent;
#undef S
}

/* 255 bytes of valid UTF-8: 127 two-byte characters plus one ASCII byte. */
static char *utf8_255(void) {
        GString *s = g_string_new(NULL);
        for (unsigned i = 0; i < 127; i++)
                g_string_append(s, "\xc3\xa9"); /* é */
        g_string_append_c(s, 'x');
        g_assert_cmpuint(s->len, ==, 255);
        g_assert_true(g_utf8_validate(s->str, -1, NULL));
        return g_string_free(s, FALSE);
}

static Command *make_command(CommandType t, const char *str) {
        Command *c = command_new(t);
        c->origin = g_strdup(str);
        c->origin_run = UINT64_MAX;
        c->request_id = 0x0123456789abcdefULL;
        c->election = g_strdup(str);
        c->id = g_strdup("");
        c->node = g_strdup(str);
        c->owner = g_strdup(":1.42");
        c->run = 1;
        c->uid = UINT32_MAX;
        c->flags = COMMAND_FLAG_PERSISTENT | COMMAND_FLAG_AUTHORIZED;
        c->max_elections = 7;
        c->max_candidates = UINT32_MAX;
        return c;
}

static Command *random_command(void) {
        static const char *const pool[] = { "", "a", "web", ":1.7", "n\xc3\xa9ud", "node-2" };
        Command *c = command_new(g_rand_int_range(rnd, 1, _COMMAND_TYPE_MAX));

        c->origin = g_strdup(pool[g_rand_int_range(rnd, 0, ELEMENTSOF(pool))]);
        c->origin_run = ((uint64_t) g_rand_int(rnd) << 32) | g_rand_int(rnd);
        c->request_id = g_rand_int(rnd);
        c->election = g_strdup(pool[g_rand_int_range(rnd, 0, ELEMENTSOF(pool))]);
        c->id = g_strdup(pool[g_rand_int_range(rnd, 0, ELEMENTSOF(pool))]);
        c->node = g_strdup(pool[g_rand_int_range(rnd, 0, ELEMENTSOF(pool))]);
        c->owner = g_strdup(pool[g_rand_int_range(rnd, 0, ELEMENTSOF(pool))]);
        c->run = g_rand_int(rnd);
        c->uid = g_rand_int(rnd);
        c->flags = g_rand_int_range(rnd, 0, 4);
        c->max_elections = g_rand_int_range(rnd, 0, 3);
        c->max_candidates = g_rand_int_range(rnd, 0, 3);
        c->max_persistent = g_rand_int_range(rnd, 0, 3);
        return c;
}

static GByteArray *encode(GPtrArray *cmds) {
        GByteArray *b = g_byte_array_new();
        for (unsigned i = 0; i < cmds->len; i++)
                g_assert_cmpint(command_batch_append(b, cmds->pdata[i]), ==, 0);
        return b;
}

static void assert_round_trip(GPtrArray *cmds) {
        g_autoptr(GByteArray) b = encode(cmds);
        g_autoptr(GPtrArray) out = NULL;

        g_assert_cmpint(command_batch_decode(b->data, b->len, &out), ==, 0);
        g_assert_cmpuint(out->len, ==, cmds->len);
        for (unsigned i = 0; i < cmds->len; i++)
                g_assert_true(command_equal(cmds->pdata[i], out->pdata[i]));
}

static void command_ptr_free(gpointer p) {
        command_free(p);
}

/* The quota field (issue 14 §1) is an extension: a command without it keeps the original bytes,
 * so older daemons decode it; with it, bit 7 of the type byte says that 4 more bytes follow. */
static void test_extension(void) {
        g_autoptr(Command) c = make_command(COMMAND_ENTER, "x");
        g_autoptr(GByteArray) plain = g_byte_array_new(), ext = g_byte_array_new();
        g_autoptr(GPtrArray) out = NULL;

        g_assert_cmpint(command_batch_append(plain, c), ==, 0);
        /* header 8 + type 1 + 5 strings ("x" x3, "", ":1.42") + 3 u64 + 4 u32: the original layout */
        g_assert_cmpuint(plain->len, ==, 8 + 1 + (5 * 4 + 3 + 5) + 3 * 8 + 4 * 4);
        g_assert_cmpuint(plain->data[8], ==, COMMAND_ENTER);

        c->max_persistent = 64;
        g_assert_cmpint(command_batch_append(ext, c), ==, 0);
        g_assert_cmpuint(ext->len, ==, plain->len + 4);
        g_assert_cmpuint(ext->data[8], ==, 0x80 | COMMAND_ENTER);
        g_assert_cmpmem(ext->data + 9, plain->len - 9, plain->data + 9, plain->len - 9);
        g_assert_cmpint(command_batch_decode(ext->data, ext->len, &out), ==, 0);
        g_assert_cmpuint(((Command *) out->pdata[0])->max_persistent, ==, 64);
        g_clear_pointer(&out, g_ptr_array_unref);
        g_assert_cmpint(command_batch_decode(plain->data, plain->len, &out), ==, 0);
        g_assert_cmpuint(((Command *) out->pdata[0])->max_persistent, ==, 0);
        g_clear_pointer(&out, g_ptr_array_unref);

        /* one encoding per command: an extension holding 0 is refused, as is a missing one */
        memset(ext->data + ext->len - 4, 0, 4);
        g_assert_cmpint(command_batch_decode(ext->data, ext->len, &out), ==, -EBADMSG);
        g_assert_cmpint(command_batch_decode(ext->data, ext->len - 4, &out), ==, -EBADMSG);
        plain->data[8] |= 0x80;
        g_assert_cmpint(command_batch_decode(plain->data, plain->len, &out), ==, -EBADMSG);
        g_assert_null(out);

        /* the new type has a name, and type 0x80 alone is still no type */
        g_assert_cmpstr(command_type_to_string(COMMAND_FORGET), ==, "forget");
        plain->data[8] = 0x80;
        g_assert_cmpint(command_batch_decode(plain->data, plain->len, &out), ==, -EBADMSG);
}

static void test_type_to_string(void) {
        g_assert_cmpstr(command_type_to_string(COMMAND_ENTER), ==, "enter");
        g_assert_cmpstr(command_type_to_string(COMMAND_DROP_NODE), ==, "drop-node");
        for (int t = 1; t < _COMMAND_TYPE_MAX; t++)
                g_assert_nonnull(command_type_to_string(t));
        g_assert_null(command_type_to_string(0));
        g_assert_null(command_type_to_string(_COMMAND_TYPE_MAX));
        g_assert_null(command_type_to_string(-1));
}

static void test_new_copy_free(void) {
        g_autoptr(Command) c = make_command(COMMAND_ENTER, "x");
        g_autoptr(Command) d = command_copy(c);
        g_autoptr(Command) empty = command_new(COMMAND_LEAVE);
        g_autoptr(Command) empty_copy = command_copy(empty);

        g_assert_true(command_equal(c, d));
        g_assert_true(c->origin != d->origin);
        g_assert_null(command_free(NULL));
        g_assert_null(command_copy(NULL));
        g_assert_null(empty_copy->election);
        g_assert_true(command_equal(empty, empty_copy));
}

static void test_round_trip_every_type(void) {
        g_autofree char *long_utf8 = utf8_255();
        g_autofree char *max_str = g_strnfill(COMMAND_STRING_MAX, 'z');
        const char *strings[] = { "", "a", long_utf8, max_str };

        for (int t = 1; t < _COMMAND_TYPE_MAX; t++)
                for (unsigned s = 0; s < ELEMENTSOF(strings); s++) {
                        g_autoptr(GPtrArray) cmds = g_ptr_array_new_with_free_func(command_ptr_free);
                        g_ptr_array_add(cmds, make_command(t, strings[s]));
                        assert_round_trip(cmds);
                }

        /* Unset (NULL) strings travel as "". */
        g_autoptr(GPtrArray) cmds = g_ptr_array_new_with_free_func(command_ptr_free);
        g_ptr_array_add(cmds, command_new(COMMAND_DROP_RUN));
        assert_round_trip(cmds);
}

static void test_batch_many(void) {
        g_autoptr(GPtrArray) cmds = g_ptr_array_new_with_free_func(command_ptr_free);
        g_autoptr(GByteArray) b = NULL;

        for (unsigned i = 0; i < 2000; i++)
                g_ptr_array_add(cmds, random_command());
        assert_round_trip(cmds);

        /* Header: magic then the count, bumped in place. */
        b = encode(cmds);
        g_assert_cmpmem(b->data, 4, "ELB1", 4);
        g_assert_cmpuint(b->data[4] | b->data[5] << 8 | b->data[6] << 16 | (unsigned) b->data[7] << 24, ==, 2000);
}

static void test_batch_cap(void) {
        g_autoptr(GByteArray) b = g_byte_array_new();
        g_autoptr(GPtrArray) out = NULL;
        g_autoptr(Command) c = command_new(COMMAND_LEAVE);

        for (unsigned i = 0; i < COMMAND_BATCH_MAX; i++)
                g_assert_cmpint(command_batch_append(b, c), ==, 0);
        g_assert_cmpint(command_batch_append(b, c), ==, -ENOBUFS);
        g_assert_cmpint(command_batch_decode(b->data, b->len, &out), ==, 0);
        g_assert_cmpuint(out->len, ==, COMMAND_BATCH_MAX);
        g_clear_pointer(&out, g_ptr_array_unref);

        /* One more command's bytes with the count bumped past the cap: rejected. */
        size_t one = (b->len - 8) / COMMAND_BATCH_MAX;
        g_byte_array_append(b, b->data + 8, (guint) one);
        b->data[4] = 0x01; b->data[5] = 0x00; b->data[6] = 0x01; b->data[7] = 0x00; /* 65537 */
        g_assert_cmpint(command_batch_decode(b->data, b->len, &out), ==, -EBADMSG);
        g_assert_null(out);
}

static void test_append_errors(void) {
        g_autoptr(GByteArray) b = g_byte_array_new();
        g_autoptr(Command) c = command_new(COMMAND_ENTER);
        g_autoptr(Command) bad = command_new(_COMMAND_TYPE_MAX);

        g_assert_cmpint(command_batch_append(b, bad), ==, -EINVAL);
        g_assert_cmpuint(b->len, ==, 0);

        c->id = g_strnfill(COMMAND_STRING_MAX + 1, 'a');
        g_assert_cmpint(command_batch_append(b, c), ==, -E2BIG);
        g_assert_cmpuint(b->len, ==, 0);

        g_byte_array_append(b, (const uint8_t *) "XXXXXXXX", 8);
        g_free(c->id);
        c->id = g_strdup("a");
        g_assert_cmpint(command_batch_append(b, c), ==, -EINVAL);
}

static void expect_bad(const void *data, size_t size) {
        GPtrArray *out = NULL;
        g_assert_cmpint(command_batch_decode(data, size, &out), ==, -EBADMSG);
        g_assert_null(out);
}

static void test_truncation(void) {
        g_autoptr(GPtrArray) cmds = g_ptr_array_new_with_free_func(command_ptr_free);
        g_autoptr(GByteArray) b = NULL;
        g_autoptr(GPtrArray) out = NULL;

        for (int t = 1; t < _COMMAND_TYPE_MAX; t++)
                g_ptr_array_add(cmds, make_command(t, t % 2 ? "elect" : ""));
        b = encode(cmds);

        for (size_t n = 0; n < b->len; n++)
                expect_bad(b->data, n);

        /* Trailing bytes. */
        g_byte_array_append(b, (const uint8_t *) "", 1);
        expect_bad(b->data, b->len);
        g_byte_array_set_size(b, b->len - 1);
        g_assert_cmpint(command_batch_decode(b->data, b->len, &out), ==, 0);

        /* Empty batch is fine, an empty buffer is not. */
        expect_bad("", 0);
        expect_bad(NULL, 0);
        g_clear_pointer(&out, g_ptr_array_unref);
        g_assert_cmpint(command_batch_decode("ELB1\0\0\0\0", 8, &out), ==, 0);
        g_assert_cmpuint(out->len, ==, 0);
}

static void test_malformed_fields(void) {
        g_autoptr(GPtrArray) cmds = g_ptr_array_new_with_free_func(command_ptr_free);
        g_autoptr(GByteArray) b = NULL;
        uint8_t *p;

        g_ptr_array_add(cmds, make_command(COMMAND_ENTER, "abc"));
        b = encode(cmds);
        /* Layout: magic(4) count(4) type(1) origin len(4) "abc" ... */
        p = g_memdup2(b->data, b->len);

        p[8] = 0;                       /* type 0 */
        expect_bad(p, b->len);
        p[8] = _COMMAND_TYPE_MAX;       /* unknown type */
        expect_bad(p, b->len);
        p[8] = 255;
        expect_bad(p, b->len);
        p[8] = b->data[8];

        p[13 + 1] = 0;                  /* NUL inside origin */
        expect_bad(p, b->len);
        p[14] = b->data[14];

        p[0] = 'X';                     /* magic */
        expect_bad(p, b->len);
        p[0] = b->data[0];

        /* String length over the cap, with enough bytes behind it to not be a mere truncation. */
        p[9] = 0x01; p[10] = 0x10; p[11] = 0; p[12] = 0; /* 4097 */
        {
                g_autoptr(GByteArray) big = g_byte_array_new();
                g_byte_array_append(big, p, 13);
                for (unsigned i = 0; i < 4097 + 100; i++)
                        g_byte_array_append(big, (const uint8_t *) "a", 1);
                expect_bad(big->data, big->len);
        }
        memcpy(p + 9, b->data + 9, 4);

        /* Huge counts do not allocate or crash. */
        p[4] = p[5] = p[6] = p[7] = 0xff;
        expect_bad(p, b->len);
        p[4] = 2; p[5] = p[6] = p[7] = 0;
        expect_bad(p, b->len);

        g_free(p);
}

/* Whatever decodes must re-encode to exactly the same bytes (the encoding is canonical). */
static void check_decode(const uint8_t *data, size_t size) {
        g_autoptr(GPtrArray) out = NULL;
        int r;

        r = command_batch_decode(data, size, &out);
        if (r < 0) {
                g_assert_cmpint(r, ==, -EBADMSG);
                g_assert_null(out);
                return;
        }
        g_autoptr(GByteArray) again = encode(out);
        if (out->len == 0) {
                g_assert_cmpuint(size, ==, 8);
                return;
        }
        g_assert_cmpmem(again->data, again->len, data, size);
}

static void test_bit_flips(void) {
        g_autoptr(GPtrArray) cmds = g_ptr_array_new_with_free_func(command_ptr_free);
        g_autoptr(GByteArray) b = NULL;
        unsigned ok = 0;

        for (unsigned i = 0; i < 6; i++)
                g_ptr_array_add(cmds, random_command());
        b = encode(cmds);

        for (unsigned iter = 0; iter < 50000; iter++) {
                g_autofree uint8_t *p = g_memdup2(b->data, b->len);
                unsigned flips = g_rand_int_range(rnd, 1, 5);

                for (unsigned k = 0; k < flips; k++) {
                        unsigned pos = g_rand_int_range(rnd, 0, b->len);
                        if (g_rand_boolean(rnd))
                                p[pos] ^= 1u << g_rand_int_range(rnd, 0, 8);
                        else
                                p[pos] = g_rand_int_range(rnd, 0, 256);
                }
                g_autoptr(GPtrArray) out = NULL;
                if (command_batch_decode(p, b->len, &out) == 0)
                        ok++;
                check_decode(p, g_rand_int_range(rnd, 0, b->len + 1));
                check_decode(p, b->len);
        }
        /* Flips in integer fields still decode: proves the test exercises both paths. */
        g_assert_cmpuint(ok, >, 0);
}

static void test_garbage(void) {
        for (unsigned iter = 0; iter < 50000; iter++) {
                size_t n = g_rand_int_range(rnd, 0, 256);
                g_autofree uint8_t *p = g_malloc(n + 8);

                for (size_t i = 0; i < n + 8; i++)
                        p[i] = g_rand_int_range(rnd, 0, 256);
                check_decode(p, n);
                /* With a valid header the body parser gets exercised too. */
                memcpy(p, "ELB1", 4);
                p[4] = g_rand_int_range(rnd, 0, 4);
                p[5] = p[6] = p[7] = 0;
                check_decode(p, n + 8);
        }
}

int main(int argc, char *argv[]) {
        const char *env = g_getenv("ELECTIOND_TEST_SEED");
        guint32 seed = env ? (guint32) g_ascii_strtoull(env, NULL, 10) : 4711;
        int r;

        g_test_init(&argc, &argv, NULL);
        g_print("# seed %u (set ELECTIOND_TEST_SEED to change)\n", seed);
        rnd = g_rand_new_with_seed(seed);

        g_test_add_func("/command/type-to-string", test_type_to_string);
        g_test_add_func("/command/new-copy-free", test_new_copy_free);
        g_test_add_func("/command/round-trip", test_round_trip_every_type);
        g_test_add_func("/command/extension", test_extension);
        g_test_add_func("/command/batch-many", test_batch_many);
        g_test_add_func("/command/batch-cap", test_batch_cap);
        g_test_add_func("/command/append-errors", test_append_errors);
        g_test_add_func("/command/truncation", test_truncation);
        g_test_add_func("/command/malformed", test_malformed_fields);
        g_test_add_func("/command/bit-flips", test_bit_flips);
        g_test_add_func("/command/garbage", test_garbage);

        r = g_test_run();
        g_rand_free(rnd);
        return r;
}
