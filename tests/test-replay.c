/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The replay window of gossip and the cluster channel (electiond-replay). */
#include <errno.h>
#include <glib.h>

#include "electiond-replay.h"

/* check, then record if fresh: what the codecs do */
static int accept(ReplayWindow *w, uint64_t epoch, uint64_t seq) {
        int r = replay_window_check(w, epoch, seq);
        if (r == 0)
                replay_window_record(w, epoch, seq);
        return r;
}

static void test_in_order(void) {
        ReplayWindow w;

        replay_window_init(&w, 7, 1);
        for (uint64_t s = 2; s < 1000; s++)
                g_assert_cmpint(accept(&w, 7, s), ==, 0);
        g_assert_cmpuint(w.top, ==, 999);
        /* every one of the last 64 is marked */
        g_assert_cmpuint(w.bits, ==, UINT64_MAX);
}

static void test_duplicates(void) {
        ReplayWindow w;

        replay_window_init(&w, 7, 1);
        g_assert_cmpint(accept(&w, 7, 1), ==, -EALREADY);
        g_assert_cmpint(accept(&w, 7, 2), ==, 0);
        g_assert_cmpint(accept(&w, 7, 2), ==, -EALREADY);
        g_assert_cmpint(accept(&w, 7, 1), ==, -EALREADY);
        /* check alone changes nothing: asked twice, the answer stays "fresh" */
        g_assert_cmpint(replay_window_check(&w, 7, 3), ==, 0);
        g_assert_cmpint(replay_window_check(&w, 7, 3), ==, 0);
        g_assert_cmpint(accept(&w, 7, 3), ==, 0);
        g_assert_cmpint(replay_window_check(&w, 7, 3), ==, -EALREADY);
}

static void test_old_beyond_window(void) {
        ReplayWindow w;

        replay_window_init(&w, 1, 100);
        /* 37..99 are inside the window (top - 63 .. top - 1), 36 and older are not */
        g_assert_cmpint(replay_window_check(&w, 1, 100 - (REPLAY_WINDOW_SIZE - 1)), ==, 0);
        g_assert_cmpint(replay_window_check(&w, 1, 100 - REPLAY_WINDOW_SIZE), ==, -EALREADY);
        g_assert_cmpint(replay_window_check(&w, 1, 0), ==, -EALREADY);
        g_assert_cmpint(accept(&w, 1, 37), ==, 0);
        g_assert_cmpint(accept(&w, 1, 37), ==, -EALREADY);

        /* a jump of exactly the window size leaves nothing of the old window behind */
        replay_window_init(&w, 1, 100);
        g_assert_cmpint(accept(&w, 1, 100 + REPLAY_WINDOW_SIZE), ==, 0);
        g_assert_cmpuint(w.bits, ==, 1);
        g_assert_cmpint(accept(&w, 1, 100), ==, -EALREADY); /* now below the window */
        g_assert_cmpint(accept(&w, 1, 101), ==, 0);         /* the oldest slot, not seen */

        /* the same with a full window: none of the old marks survive the jump */
        replay_window_init(&w, 1, 100);
        for (uint64_t s = 101; s <= 110; s++)
                g_assert_cmpint(accept(&w, 1, s), ==, 0);
        g_assert_cmpint(accept(&w, 1, 110 + REPLAY_WINDOW_SIZE), ==, 0);
        g_assert_cmpuint(w.bits, ==, 1);
        for (uint64_t s = 111; s < 110 + REPLAY_WINDOW_SIZE; s++)
                g_assert_cmpint(accept(&w, 1, s), ==, 0);
        g_assert_cmpuint(w.bits, ==, UINT64_MAX);

        /* a jump of 63 keeps the old top as the window's oldest entry */
        replay_window_init(&w, 1, 100);
        g_assert_cmpint(accept(&w, 1, 163), ==, 0);
        g_assert_cmpint(accept(&w, 1, 100), ==, -EALREADY);
        g_assert_cmpint(accept(&w, 1, 101), ==, 0);
        g_assert_cmpint(accept(&w, 1, 99), ==, -EALREADY);

        /* a huge jump */
        g_assert_cmpint(accept(&w, 1, UINT64_C(1) << 40), ==, 0);
        g_assert_cmpint(accept(&w, 1, 163), ==, -EALREADY);
}

static void test_reordering(void) {
        ReplayWindow w;
        uint64_t order[] = { 5, 3, 4, 1, 2, 10, 7, 9, 8, 6 };

        replay_window_init(&w, 2, 0);
        for (size_t i = 0; i < G_N_ELEMENTS(order); i++)
                g_assert_cmpint(accept(&w, 2, order[i]), ==, 0);
        for (size_t i = 0; i < G_N_ELEMENTS(order); i++)
                g_assert_cmpint(accept(&w, 2, order[i]), ==, -EALREADY);
        g_assert_cmpuint(w.top, ==, 10);
        /* within the window out of order, far apart */
        g_assert_cmpint(accept(&w, 2, 70), ==, 0);
        g_assert_cmpint(accept(&w, 2, 11), ==, 0);
        g_assert_cmpint(accept(&w, 2, 40), ==, 0);
        g_assert_cmpint(accept(&w, 2, 6), ==, -EALREADY);   /* 70 - 6 = 64: gone */
        g_assert_cmpint(accept(&w, 2, 7), ==, -EALREADY);   /* seen (and at the edge) */
}

static void test_epoch(void) {
        ReplayWindow w;

        replay_window_init(&w, 10, 500);
        /* a restart: a new epoch starts a new window, wherever its seq starts */
        g_assert_cmpint(accept(&w, 11, 1), ==, 0);
        g_assert_cmpuint(w.epoch, ==, 11);
        g_assert_cmpuint(w.top, ==, 1);
        g_assert_cmpint(accept(&w, 11, 2), ==, 0);
        /* the old life's packets are all replays now, however new their seq */
        g_assert_cmpint(accept(&w, 10, 501), ==, -EALREADY);
        g_assert_cmpint(accept(&w, 10, 1000000), ==, -EALREADY);
        g_assert_cmpint(accept(&w, 0, 3), ==, -EALREADY);
        /* recording an older epoch (not what callers do) changes nothing */
        replay_window_record(&w, 10, 600);
        g_assert_cmpuint(w.epoch, ==, 11);
        g_assert_cmpuint(w.top, ==, 2);
        g_assert_cmpint(accept(&w, UINT64_MAX, 0), ==, 0);
        g_assert_cmpint(accept(&w, UINT64_MAX, 0), ==, -EALREADY);
}

static void test_wrap(void) {
        ReplayWindow w;

        /* near the end of the sequence space: no arithmetic overflow */
        replay_window_init(&w, 3, UINT64_MAX - 2);
        g_assert_cmpint(accept(&w, 3, UINT64_MAX), ==, 0);
        g_assert_cmpint(accept(&w, 3, UINT64_MAX - 1), ==, 0);
        g_assert_cmpint(accept(&w, 3, UINT64_MAX), ==, -EALREADY);
        g_assert_cmpint(accept(&w, 3, UINT64_MAX - 2), ==, -EALREADY);
        /* a counter that wrapped to 0, 1, ... looks ancient: refused, until a new epoch */
        g_assert_cmpint(accept(&w, 3, 0), ==, -EALREADY);
        g_assert_cmpint(accept(&w, 3, 1), ==, -EALREADY);
        g_assert_cmpint(accept(&w, 3, 63), ==, -EALREADY);
        g_assert_cmpint(accept(&w, 4, 1), ==, 0);

        /* the bitmap's shift at the edge: bit 63 is the last one kept */
        replay_window_init(&w, 1, 0);
        g_assert_cmpint(accept(&w, 1, 63), ==, 0);
        g_assert_cmpuint(w.bits, ==, (UINT64_C(1) << 63) | 1);
        g_assert_cmpint(accept(&w, 1, 64), ==, 0);
        g_assert_cmpuint(w.bits, ==, 3); /* seq 0 shifted out */
}

/* Against a plain model (the set of every seq accepted in the epoch): random traffic with
 * duplicates, reordering, jumps and restarts. */
static void test_model(void) {
        GRand *rand = g_rand_new_with_seed(14);

        for (unsigned run = 0; run < 50; run++) {
                g_autoptr(GHashTable) seen = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
                uint64_t epoch = 1, top = 0, next = 1;
                ReplayWindow w;

                replay_window_init(&w, epoch, 0);
                g_hash_table_add(seen, g_memdup2(&top, sizeof top));
                for (unsigned i = 0; i < 4000; i++) {
                        uint64_t e = epoch, s;
                        unsigned pick = (unsigned) g_rand_int_range(rand, 0, 100);
                        bool fresh;

                        if (pick < 50)
                                s = next++;                                        /* in order */
                        else if (pick < 85)
                                s = top - MIN(top, (uint64_t) g_rand_int_range(rand, 0, 80)); /* late or repeated */
                        else if (pick < 95)
                                s = next += (uint64_t) g_rand_int_range(rand, 1, 100); /* a gap */
                        else if (pick < 98)
                                e = epoch - (epoch > 0), s = next;                 /* an old life */
                        else
                                e = epoch + 1, s = next = (uint64_t) g_rand_int_range(rand, 0, 3); /* restart */

                        if (e != epoch)
                                fresh = e > epoch;
                        else
                                fresh = s > top || (top - s < REPLAY_WINDOW_SIZE && !g_hash_table_contains(seen, &s));
                        g_assert_cmpint(accept(&w, e, s), ==, (fresh ? 0 : -EALREADY));
                        if (!fresh)
                                continue;
                        if (e > epoch) {
                                epoch = e;
                                top = s;
                                g_hash_table_remove_all(seen);
                        }
                        top = MAX(top, s);
                        next = MAX(next, top + 1);
                        g_hash_table_add(seen, g_memdup2(&s, sizeof s));
                }
        }
        g_rand_free(rand);
}

static void test_table(void) {
        ReplayTable *t = replay_table_new(3);

        /* unknown senders are fresh; each sender has its own window */
        g_assert_cmpint(replay_table_check(t, 1, 5, 1), ==, 0);
        g_assert_cmpint(replay_table_accept(t, 1, 5, 1), ==, 0);
        g_assert_cmpint(replay_table_accept(t, 1, 5, 1), ==, -EALREADY);
        g_assert_cmpint(replay_table_accept(t, 2, 5, 1), ==, 0);
        g_assert_cmpint(replay_table_accept(t, 3, 5, 1), ==, 0);
        g_assert_cmpuint(replay_table_size(t), ==, 3);
        /* check alone records nothing */
        g_assert_cmpint(replay_table_check(t, 1, 5, 2), ==, 0);
        g_assert_cmpint(replay_table_check(t, 1, 5, 2), ==, 0);

        /* sender 1 heard again: 2 is now the least recently heard and is evicted by a 4th */
        g_assert_cmpint(replay_table_accept(t, 1, 5, 2), ==, 0);
        replay_table_record(t, 3, 5, 2);
        g_assert_cmpint(replay_table_accept(t, 4, 5, 1), ==, 0);
        g_assert_cmpuint(replay_table_size(t), ==, 3);
        g_assert_cmpint(replay_table_check(t, 2, 5, 1), ==, 0);          /* forgotten */
        g_assert_cmpint(replay_table_check(t, 1, 5, 2), ==, -EALREADY); /* kept */
        g_assert_cmpint(replay_table_check(t, 3, 5, 2), ==, -EALREADY);
        g_assert_cmpint(replay_table_check(t, 4, 5, 1), ==, -EALREADY);

        replay_table_forget(t, 1);
        g_assert_cmpint(replay_table_check(t, 1, 5, 2), ==, 0);
        g_assert_cmpuint(replay_table_size(t), ==, 2);
        replay_table_forget(NULL, 1);
        g_assert_null(replay_table_free(t));
        g_assert_null(replay_table_free(NULL));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/replay/in-order", test_in_order);
        g_test_add_func("/replay/duplicates", test_duplicates);
        g_test_add_func("/replay/old-beyond-window", test_old_beyond_window);
        g_test_add_func("/replay/reordering", test_reordering);
        g_test_add_func("/replay/epoch", test_epoch);
        g_test_add_func("/replay/wrap", test_wrap);
        g_test_add_func("/replay/model", test_model);
        g_test_add_func("/replay/table", test_table);
        return g_test_run();
}
