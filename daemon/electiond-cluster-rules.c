/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>

#include "electiond-cluster-rules.h"

bool cluster_drop_has_majority(size_t yes, size_t voters) {
        return yes > voters / 2;
}

bool cluster_drop_answer_current(uint64_t ask_id, uint64_t first_ask_id, uint64_t last_ask_id) {
        return ask_id >= first_ask_id && ask_id <= last_ask_id;
}

bool cluster_drop_answer_counts(bool from_voter, uint64_t ask_id, uint64_t first_ask_id, uint64_t last_ask_id) {
        return from_voter && cluster_drop_answer_current(ask_id, first_ask_id, last_ask_id);
}

int cluster_fault_tolerance_of(size_t voters) {
        return voters > 0 ? (int) ((voters - 1) / 2) : 0;
}

unsigned cluster_member_protocol(bool alive, unsigned advertised) {
        /* a member gossip does not see alive may be an old one that restarted: assume the least */
        return alive ? MAX(advertised, 1u) : 1u;
}
