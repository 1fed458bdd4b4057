/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Stand-in for libFuzzer's main() so that the targets run as ordinary tests: every file (or
 * every file in a directory) named on the command line is fed to the target, then the target's
 * seeds mutated pseudo-randomly until FUZZ_ITERATIONS inputs or FUZZ_SECONDS have passed.
 * FUZZ_SEED picks the random sequence (printed, so a crash can be replayed).
 * With -fsanitize=fuzzer, build the target without this file instead, e.g.
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Idaemon tests/fuzz/fuzz-command.c \
 *         daemon/electiond-{command,election,util}.c $(pkg-config --cflags --libs glib-2.0)
 * and start it on the corpus that FUZZ_DUMP_SEEDS=<dir> makes this driver write.
 */

#include <glib.h>
#include <inttypes.h>
#include <stdio.h>

#include "electiond-util.h"
#include "fuzz.h"

static uint64_t env_u64(const char *name, uint64_t def) {
        const char *v = g_getenv(name);
        return v ? g_ascii_strtoull(v, NULL, 10) : def;
}

static void run_file(const char *path) {
        g_autofree char *data = NULL;
        g_autoptr(GError) error = NULL;
        gsize size;

        if (!g_file_get_contents(path, &data, &size, &error)) {
                fprintf(stderr, "%s: %s\n", path, error->message);
                exit(EXIT_FAILURE);
        }
        LLVMFuzzerTestOneInput((const uint8_t *) data, size);
}

static void run_path(const char *path) {
        g_autoptr(GDir) dir = NULL;
        const char *name;

        if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
                run_file(path);
                return;
        }
        dir = g_dir_open(path, 0, NULL);
        if (!dir)
                return;
        while ((name = g_dir_read_name(dir))) {
                g_autofree char *p = g_build_filename(path, name, NULL);
                run_file(p);
        }
}

/* One random edit of the kinds that find bugs in length-prefixed formats. */
static void mutate(GRand *r, GByteArray *b, GPtrArray *seeds) {
        static const uint32_t interesting[] = { 0, 1, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0x1000, 0x1001,
                                                0xffff, 0x10000, 0x10001, 0x7fffffff, 0x80000000, 0xffffffff };
        unsigned pos = b->len > 0 ? (unsigned) g_rand_int_range(r, 0, b->len) : 0;

        switch (g_rand_int_range(r, 0, 8)) {
        case 0: /* flip a bit */
                if (b->len > 0)
                        b->data[pos] ^= 1u << g_rand_int_range(r, 0, 8);
                break;
        case 1: /* random byte */
                if (b->len > 0)
                        b->data[pos] = g_rand_int_range(r, 0, 256);
                break;
        case 2: /* interesting little-endian u32, e.g. a length or count */
                if (b->len >= 4) {
                        uint32_t v = interesting[g_rand_int_range(r, 0, ELEMENTSOF(interesting))];
                        pos = g_rand_int_range(r, 0, b->len - 3);
                        for (unsigned i = 0; i < 4; i++)
                                b->data[pos + i] = (uint8_t) (v >> (8 * i));
                }
                break;
        case 3: /* truncate */
                g_byte_array_set_size(b, pos);
                break;
        case 4: /* insert a byte */
                g_byte_array_append(b, (const uint8_t[]) { 0 }, 1);
                memmove(b->data + pos + 1, b->data + pos, b->len - 1 - pos);
                b->data[pos] = g_rand_int_range(r, 0, 256);
                break;
        case 5: /* delete a range */
                if (b->len > 0) {
                        unsigned n = g_rand_int_range(r, 1, 16);
                        g_byte_array_remove_range(b, pos, MIN(b->len - pos, n));
                }
                break;
        case 6: { /* duplicate a chunk */
                unsigned n = g_rand_int_range(r, 1, 64);
                n = MIN(b->len - pos, n);
                g_autofree uint8_t *chunk = g_memdup2(b->data + pos, n);
                g_byte_array_append(b, chunk, n);
                break;
        }
        case 7: { /* splice with the tail of another seed */
                GBytes *o = seeds->pdata[g_rand_int_range(r, 0, seeds->len)];
                gsize on;
                const uint8_t *od = g_bytes_get_data(o, &on);
                unsigned from = on > 0 ? g_rand_int_range(r, 0, on) : 0;

                g_byte_array_set_size(b, pos);
                g_byte_array_append(b, od + from, on - from);
                break;
        }
        }
}

int main(int argc, char *argv[]) {
        g_autoptr(GPtrArray) seeds = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
        uint64_t iterations = env_u64("FUZZ_ITERATIONS", 1000000);
        uint64_t seconds = env_u64("FUZZ_SECONDS", 5);
        guint32 seed = (guint32) env_u64("FUZZ_SEED", 1);
        uint64_t deadline = now_monotonic_usec() + seconds * USEC_PER_SEC, n;
        GRand *r;

        /* A GLib critical from a target is a bug like a crash. */
        g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);

        for (int i = 1; i < argc; i++)
                run_path(argv[i]);

        fuzz_seeds(seeds);
        g_assert(seeds->len > 0);

        /* FUZZ_DUMP_SEEDS=dir writes the seeds out as a starting corpus for a real libFuzzer run. */
        const char *dump = g_getenv("FUZZ_DUMP_SEEDS");
        if (dump) {
                for (unsigned i = 0; i < seeds->len; i++) {
                        g_autofree char *p = g_strdup_printf("%s/seed-%u", dump, i);
                        gsize size;
                        const char *d = g_bytes_get_data(seeds->pdata[i], &size);

                        if (!g_file_set_contents(p, d, size, NULL))
                                return EXIT_FAILURE;
                }
                return EXIT_SUCCESS;
        }
        for (unsigned i = 0; i < seeds->len; i++) {
                gsize size;
                const uint8_t *d = g_bytes_get_data(seeds->pdata[i], &size);
                LLVMFuzzerTestOneInput(d, size);
        }

        r = g_rand_new_with_seed(seed);
        for (n = 0; n < iterations; n++) {
                g_autoptr(GByteArray) b = g_byte_array_new();
                GBytes *s = seeds->pdata[g_rand_int_range(r, 0, seeds->len)];
                gsize size;
                const uint8_t *d = g_bytes_get_data(s, &size);

                g_byte_array_append(b, d, size);
                for (unsigned k = g_rand_int_range(r, 1, 6); k > 0; k--)
                        mutate(r, b, seeds);
                LLVMFuzzerTestOneInput(b->data, b->len);

                if ((n & 255) == 0 && now_monotonic_usec() > deadline)
                        break;
        }
        g_rand_free(r);

        printf("# %s: %" PRIu64 " mutated inputs (FUZZ_SEED=%u), %u seeds, %d paths\n",
               argv[0], n, seed, seeds->len, argc - 1);
        return EXIT_SUCCESS;
}
