/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one replay window of the daemon's datagrams (gossip, the cluster channel). Pure: no I/O,
 * no clocks.
 *
 * A sender stamps every packet with (epoch, seq): the epoch is larger at every start of the
 * sender, seq counts up from 1 within an epoch. Per sender we keep the newest epoch, the highest
 * seq accepted in it (top) and a 64-bit bitmap of the 64 sequence numbers top, top-1, ... top-63.
 * A packet is fresh when its epoch is newer, or in the same epoch its seq is above top, or within
 * the window and not yet seen. Older epochs, seqs below the window and repeats are replays.
 * A sequence counter that wrapped (seq back to 0 after 2^64 - 1) is thereby refused until the
 * sender picks a new epoch — no sender comes near that.
 *
 * Callers check first and record only what they accepted after their own checks (an
 * authenticated, well-formed packet), so forged or broken packets never move a window.
 *
 * The Raft stream (electiond-transport, Encrypt=yes) needs no window: its records travel over TCP
 * in order, under a per-connection key with a counter nonce (electiond-seal.h), so a replayed,
 * dropped or reordered record fails its AEAD tag.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPLAY_WINDOW_SIZE 64

typedef struct ReplayWindow {
        uint64_t epoch;
        uint64_t top;  /* highest seq accepted in epoch */
        uint64_t bits; /* bit i: top - i accepted */
} ReplayWindow;

/* A window's first packet. */
void replay_window_init(ReplayWindow *w, uint64_t epoch, uint64_t seq);
/* 0 if (epoch, seq) is fresh, -EALREADY if replayed or too old. Changes nothing. */
int replay_window_check(const ReplayWindow *w, uint64_t epoch, uint64_t seq);
/* Records a fresh (epoch, seq) (one replay_window_check() accepted). */
void replay_window_record(ReplayWindow *w, uint64_t epoch, uint64_t seq);

/* One window per sender id, at most max_senders of them: a new sender beyond that evicts the
 * least recently heard one (at worst, that sender's window reopens: its packets of the last
 * window would be accepted once more — only under the cluster key, which such a sender has). */
typedef struct ReplayTable ReplayTable;

ReplayTable *replay_table_new(size_t max_senders);
ReplayTable *replay_table_free(ReplayTable *t);
/* 0 fresh (an unknown sender's first packet is), -EALREADY replayed. Changes nothing. */
int replay_table_check(const ReplayTable *t, uint64_t sender, uint64_t epoch, uint64_t seq);
void replay_table_record(ReplayTable *t, uint64_t sender, uint64_t epoch, uint64_t seq);
/* Check, and record if fresh. */
int replay_table_accept(ReplayTable *t, uint64_t sender, uint64_t epoch, uint64_t seq);
void replay_table_forget(ReplayTable *t, uint64_t sender);
size_t replay_table_size(const ReplayTable *t);
