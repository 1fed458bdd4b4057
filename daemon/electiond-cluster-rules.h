/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The cluster controller's small pure decisions (no I/O, no Cluster object), unit tested in
 * tests/test-cluster-rules.c. The lease rules themselves are electiond-lease.h. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* DROP_NODE: yes answers from more than half of the voters (rule 2 needs a majority). */
bool cluster_drop_has_majority(size_t yes, size_t voters);
/* An EXPIRED_A answers the current round of asks of a vote: first..last (inclusive). */
bool cluster_drop_answer_current(uint64_t ask_id, uint64_t first_ask_id, uint64_t last_ask_id);
/* Whether an EXPIRED_A "yes" counts toward a drop: only a voter's (issue 14 §1: any
 * authenticated sender's counted once), and only for the current round of asks. */
bool cluster_drop_answer_counts(bool from_voter, uint64_t ask_id, uint64_t first_ask_id, uint64_t last_ask_id);
/* How many voters may fail with the cluster still quorate: floor((voters - 1) / 2), 0 for none. */
int cluster_fault_tolerance_of(size_t voters);
/* Rolling upgrade: what a member counts with, given whether gossip sees it alive and the
 * highest version its tags advertise (0 or 1: not told, i.e. 1). */
unsigned cluster_member_protocol(bool alive, unsigned advertised);
