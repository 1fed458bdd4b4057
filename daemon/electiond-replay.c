/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <glib.h>

#include "electiond-replay.h"

G_STATIC_ASSERT(REPLAY_WINDOW_SIZE == 64); /* one uint64_t of bits */

void replay_window_init(ReplayWindow *w, uint64_t epoch, uint64_t seq) {
        *w = (ReplayWindow) { .epoch = epoch, .top = seq, .bits = 1 };
}

int replay_window_check(const ReplayWindow *w, uint64_t epoch, uint64_t seq) {
        if (epoch != w->epoch)
                return epoch > w->epoch ? 0 : -EALREADY;
        if (seq > w->top)
                return 0;
        if (w->top - seq >= REPLAY_WINDOW_SIZE)
                return -EALREADY;
        return (w->bits >> (w->top - seq)) & 1 ? -EALREADY : 0;
}

void replay_window_record(ReplayWindow *w, uint64_t epoch, uint64_t seq) {
        if (epoch > w->epoch)
                replay_window_init(w, epoch, seq);
        else if (epoch < w->epoch)
                return;
        else if (seq > w->top) {
                uint64_t shift = seq - w->top;
                w->bits = shift >= REPLAY_WINDOW_SIZE ? 1 : (w->bits << shift) | 1;
                w->top = seq;
        } else if (w->top - seq < REPLAY_WINDOW_SIZE)
                w->bits |= UINT64_C(1) << (w->top - seq);
}

typedef struct Entry {
        ReplayWindow window;
        uint64_t used; /* for evicting the least recently heard sender */
} Entry;

struct ReplayTable {
        GHashTable *senders; /* uint64_t* → Entry* */
        size_t max;
        uint64_t use_counter;
};

ReplayTable *replay_table_new(size_t max_senders) {
        ReplayTable *t = g_new0(ReplayTable, 1);

        t->senders = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
        t->max = MAX(max_senders, (size_t) 1);
        return t;
}

ReplayTable *replay_table_free(ReplayTable *t) {
        if (!t)
                return NULL;
        g_hash_table_unref(t->senders);
        g_free(t);
        return NULL;
}

int replay_table_check(const ReplayTable *t, uint64_t sender, uint64_t epoch, uint64_t seq) {
        const Entry *e = g_hash_table_lookup(t->senders, &sender);
        return e ? replay_window_check(&e->window, epoch, seq) : 0;
}

static void evict_oldest(ReplayTable *t) {
        GHashTableIter it;
        gpointer k, v, oldest = NULL;
        uint64_t min = UINT64_MAX;

        g_hash_table_iter_init(&it, t->senders);
        while (g_hash_table_iter_next(&it, &k, &v))
                if (((Entry *) v)->used < min) {
                        min = ((Entry *) v)->used;
                        oldest = k;
                }
        if (oldest)
                g_hash_table_remove(t->senders, oldest);
}

void replay_table_record(ReplayTable *t, uint64_t sender, uint64_t epoch, uint64_t seq) {
        Entry *e = g_hash_table_lookup(t->senders, &sender);

        if (!e) {
                if (g_hash_table_size(t->senders) >= t->max)
                        evict_oldest(t);
                e = g_new0(Entry, 1);
                replay_window_init(&e->window, epoch, seq);
                g_hash_table_insert(t->senders, g_memdup2(&sender, sizeof sender), e);
        } else
                replay_window_record(&e->window, epoch, seq);
        e->used = ++t->use_counter;
}

int replay_table_accept(ReplayTable *t, uint64_t sender, uint64_t epoch, uint64_t seq) {
        int r = replay_table_check(t, sender, epoch, seq);

        if (r >= 0)
                replay_table_record(t, sender, epoch, seq);
        return r;
}

void replay_table_forget(ReplayTable *t, uint64_t sender) {
        if (t)
                g_hash_table_remove(t->senders, &sender);
}

size_t replay_table_size(const ReplayTable *t) {
        return t ? g_hash_table_size(t->senders) : 0;
}
