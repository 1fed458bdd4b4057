/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the cluster channel message codec: the first byte picks the type; whatever
 * decodes encodes back to the same bytes (names and addresses without a NUL inside). */
#include <glib.h>
#include <string.h>

#include "electiond-cluster-msg.h"
#include "fuzz.h"

static void same(GByteArray *b, const uint8_t *data, size_t size) {
        g_assert(b->len == size);
        g_assert(size == 0 || memcmp(b->data, data, size) == 0);
        g_byte_array_unref(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        uint8_t type = data[0];
        data++, size--;

        switch (type % 6) {
        case 0: {
                ClusterLeaseReq m;
                if (cluster_msg_lease_req_decode(data, size, &m) < 0)
                        break;
                if (strlen(m.name) == size - 32)
                        same(cluster_msg_lease_req_encode(&m), data, size);
                g_free(m.name);
                break;
        }
        case 1: {
                ClusterLeaseAck m;
                if (cluster_msg_lease_ack_decode(data, size, &m) == 0)
                        same(cluster_msg_lease_ack_encode(&m), data, size);
                break;
        }
        case 2: {
                ClusterExpiredQ m;
                if (cluster_msg_expired_q_decode(data, size, &m) == 0)
                        same(cluster_msg_expired_q_encode(&m), data, size);
                break;
        }
        case 3: {
                ClusterExpiredA m;
                if (cluster_msg_expired_a_decode(data, size, &m) == 0)
                        same(cluster_msg_expired_a_encode(&m), data, size);
                break;
        }
        case 4: {
                ClusterApplied m;
                if (cluster_msg_applied_decode(data, size, &m) < 0)
                        break;
                g_assert(18 + m.n_attested * 8 == size);
                same(cluster_msg_applied_encode(&m), data, size);
                cluster_applied_done(&m);
                break;
        }
        case 5: {
                ClusterJoin m;
                if (cluster_msg_join_decode(data, size, &m) < 0)
                        break;
                if (strlen(m.address) == size - 8)
                        same(cluster_msg_join_encode(&m), data, size);
                g_free(m.address);
                break;
        }
        }
        return 0;
}

void fuzz_seeds(GPtrArray *out) {
        ClusterLeaseReq lr = { .seq = 1, .applied = 2, .fingerprint = 3, .without_usec = 4, .name = (char *) "n1" };
        ClusterLeaseAck la = { .seq = 5, .epoch = 6 };
        ClusterExpiredQ eq = { .target = 7, .ask_id = 8 };
        ClusterExpiredA ea = { .target = 7, .ask_id = 8, .yes = 1 };
        uint64_t ids[] = { 9, 10 };
        ClusterApplied ap = { .confirmed_index = 11, .attest_index = 12, .attested = ids, .n_attested = 2 };
        ClusterJoin j = { .raft_id = 13, .address = (char *) "198.18.0.1:7946" };
        GByteArray *all[] = {
                cluster_msg_lease_req_encode(&lr), cluster_msg_lease_ack_encode(&la),
                cluster_msg_expired_q_encode(&eq), cluster_msg_expired_a_encode(&ea),
                cluster_msg_applied_encode(&ap), cluster_msg_join_encode(&j),
        };

        for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
                g_byte_array_prepend(all[i], (const uint8_t[]) { (uint8_t) i }, 1);
                g_ptr_array_add(out, g_byte_array_free_to_bytes(all[i]));
        }
}
