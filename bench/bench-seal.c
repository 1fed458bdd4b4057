/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CPU cost of the Encrypt=yes layer alone (electiond-seal.c), for bench/bench-encrypt.py: µs per
 * seal and per open of a full gossip datagram (1400 bytes), a lease-sized channel packet (100
 * bytes), and Raft stream records of 100 bytes and 64 KiB; plus, for comparison, the HMAC-SHA256
 * every packet already carries. One JSON line. Not a test, not installed. */
#include <glib.h>
#include <stdio.h>
#include <time.h>

#include "electiond-keyring.h"
#include "electiond-seal.h"

static double now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static unsigned rounds_for(size_t size) {
        return size > 4096 ? 2000 : 50000;
}

int main(void) {
        static const size_t dgram_sizes[] = { 100, 1400 };
        static const size_t record_sizes[] = { 100, SEAL_RECORD_PLAIN_MAX };
        g_autoptr(Keyring) k = keyring_new_single("bench-seal-cluster-key-0123456789", 33);
        g_autoptr(Keyring) k2 = keyring_new_single("bench-seal-new-key-0123456789abcd", 33);
        g_autofree uint8_t *plain = g_malloc0(SEAL_RECORD_PLAIN_MAX), *env = g_malloc(SEAL_RECORD_MAX + 64),
                           *out = g_malloc(SEAL_RECORD_MAX);
        uint8_t cn[32] = { 1 }, sn[32] = { 2 }, mac[KEYRING_MAC_SIZE];
        size_t n, m;
        int sep = 0;

        keyring_set_encrypt(k, true);
        (void) keyring_add(k2, "bench-seal-cluster-key-0123456789", 33, false); /* primary new, old accepted */
        printf("{");
        for (size_t i = 0; i < G_N_ELEMENTS(dgram_sizes); i++) {
                size_t size = dgram_sizes[i];
                unsigned r = rounds_for(size);
                double t0 = now_us();
                for (unsigned j = 0; j < r; j++)
                        g_assert(seal_packet(k, "BNCH", plain, size, env, size + SEAL_OVERHEAD, &n) == 0);
                double t1 = now_us();
                for (unsigned j = 0; j < r; j++)
                        g_assert(seal_open(k, "BNCH", env, n, out, size, &m) == 0);
                double t2 = now_us();
                /* during a rotation: sealed under the old key, the new primary is tried first */
                for (unsigned j = 0; j < r; j++)
                        g_assert(seal_open(k2, "BNCH", env, n, out, size, &m) == 1);
                double t3 = now_us();
                for (unsigned j = 0; j < r; j++)
                        keyring_sign(k, plain, size, mac);
                double t4 = now_us();
                printf("%s\"datagram_%zu\": {\"seal_us\": %.3f, \"open_us\": %.3f, \"open_second_key_us\": %.3f, "
                       "\"hmac_us\": %.3f}", sep++ ? ", " : "", size, (t1 - t0) / r, (t2 - t1) / r, (t3 - t2) / r,
                       (t4 - t3) / r);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(record_sizes); i++) {
                size_t size = record_sizes[i];
                unsigned r = rounds_for(size);
                SealStream tx, rx, tx2, rx2;
                g_assert(seal_stream_keys(k, 0, "bench", cn, sn, 32, &tx, &tx2) == 0);
                g_assert(seal_stream_keys(k, 0, "bench", cn, sn, 32, &rx, &rx2) == 0);
                double ts = 0, to = 0;
                for (unsigned j = 0; j < r; j++) {
                        double a = now_us();
                        g_assert(seal_stream_seal(&tx, plain, size, env) == 0);
                        double b = now_us();
                        g_assert(seal_stream_open(&rx, env, size + SEAL_RECORD_HEADER + SEAL_TAG_SIZE, out, &m) == 0);
                        to += now_us() - b;
                        ts += b - a;
                }
                printf(", \"record_%zu\": {\"seal_us\": %.3f, \"open_us\": %.3f, \"mb_per_s\": %.1f}", size, ts / r,
                       to / r, size * r / (ts + to));
        }
        printf("}\n");
        return 0;
}
