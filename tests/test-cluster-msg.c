/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tests of the cluster channel message codec (daemon/electiond-cluster-msg.c): every type round
 * trips, the bytes are the documented little-endian layout, and input of any wrong size is refused.
 */
#include <errno.h>
#include <glib.h>
#include <string.h>

#include "electiond-cluster-msg.h"

static void test_lease_req(void) {
        ClusterLeaseReq in = {
                .seq = 1, .applied = UINT64_C(0x0102030405060708), .fingerprint = UINT64_MAX, .without_usec = 42,
                .name = (char *) "node-a",
        };
        g_autoptr(GByteArray) b = cluster_msg_lease_req_encode(&in);
        ClusterLeaseReq out;

        g_assert_cmpuint(b->len, ==, 32 + 6);
        g_assert_cmpuint(b->data[8], ==, 0x08); /* little-endian */
        g_assert_cmpuint(b->data[15], ==, 0x01);
        g_assert_cmpmem(b->data + 32, 6, "node-a", 6);
        g_assert_cmpint(cluster_msg_lease_req_decode(b->data, b->len, &out), ==, 0);
        g_assert_cmpuint(out.seq, ==, in.seq);
        g_assert_cmpuint(out.applied, ==, in.applied);
        g_assert_cmpuint(out.fingerprint, ==, in.fingerprint);
        g_assert_cmpuint(out.without_usec, ==, in.without_usec);
        g_assert_cmpstr(out.name, ==, "node-a");
        g_clear_pointer(&out.name, g_free);
        g_assert_null(out.name);

        /* no name, a name too long */
        g_assert_cmpint(cluster_msg_lease_req_decode(b->data, 32, &out), ==, -EBADMSG);
        g_autoptr(GByteArray) big = g_byte_array_new();
        g_byte_array_append(big, b->data, 32);
        for (unsigned i = 0; i < CLUSTER_MSG_NAME_MAX + 1; i++)
                g_byte_array_append(big, (const uint8_t *) "x", 1);
        g_assert_cmpint(cluster_msg_lease_req_decode(big->data, big->len, &out), ==, -EBADMSG);
        g_assert_cmpint(cluster_msg_lease_req_decode(big->data, big->len - 1, &out), ==, 0);
        g_assert_cmpuint(strlen(out.name), ==, CLUSTER_MSG_NAME_MAX);
        g_clear_pointer(&out.name, g_free);
        /* a NUL inside ends the name (as before the codec existed) */
        b->data[34] = 0;
        g_assert_cmpint(cluster_msg_lease_req_decode(b->data, b->len, &out), ==, 0);
        g_assert_cmpstr(out.name, ==, "no");
        g_clear_pointer(&out.name, g_free);
}

static void test_fixed(void) {
        ClusterLeaseAck ack = { .seq = 7, .epoch = 9 }, ack_out;
        ClusterExpiredQ q = { .target = 11, .ask_id = 12 }, q_out;
        ClusterExpiredA a = { .target = 21, .ask_id = 22, .yes = 1 }, a_out;
        g_autoptr(GByteArray) b1 = cluster_msg_lease_ack_encode(&ack);
        g_autoptr(GByteArray) b2 = cluster_msg_expired_q_encode(&q);
        g_autoptr(GByteArray) b3 = cluster_msg_expired_a_encode(&a);

        g_assert_cmpuint(b1->len, ==, 16);
        g_assert_cmpuint(b2->len, ==, 16);
        g_assert_cmpuint(b3->len, ==, 17);
        g_assert_cmpuint(b3->data[16], ==, 1);

        g_assert_cmpint(cluster_msg_lease_ack_decode(b1->data, b1->len, &ack_out), ==, 0);
        g_assert_cmpuint(ack_out.seq, ==, 7);
        g_assert_cmpuint(ack_out.epoch, ==, 9);
        g_assert_cmpint(cluster_msg_expired_q_decode(b2->data, b2->len, &q_out), ==, 0);
        g_assert_cmpuint(q_out.target, ==, 11);
        g_assert_cmpuint(q_out.ask_id, ==, 12);
        g_assert_cmpint(cluster_msg_expired_a_decode(b3->data, b3->len, &a_out), ==, 0);
        g_assert_cmpuint(a_out.target, ==, 21);
        g_assert_cmpuint(a_out.ask_id, ==, 22);
        g_assert_cmpuint(a_out.yes, ==, 1);

        /* one byte short or long: refused */
        g_assert_cmpint(cluster_msg_lease_ack_decode(b1->data, 15, &ack_out), ==, -EBADMSG);
        g_assert_cmpint(cluster_msg_lease_ack_decode(b3->data, 17, &ack_out), ==, -EBADMSG);
        g_assert_cmpint(cluster_msg_expired_q_decode(b3->data, 17, &q_out), ==, -EBADMSG);
        g_assert_cmpint(cluster_msg_expired_q_decode(b2->data, 0, &q_out), ==, -EBADMSG);
        g_assert_cmpint(cluster_msg_expired_a_decode(b2->data, 16, &a_out), ==, -EBADMSG);
        g_assert_cmpint(cluster_msg_expired_a_decode(NULL, 0, &a_out), ==, -EBADMSG);
}

static void test_applied(void) {
        uint64_t ids[] = { 5, UINT64_MAX, 0 };
        ClusterApplied in = { .confirmed_index = 100, .attest_index = 90, .attested = ids, .n_attested = 3 };
        ClusterApplied out;
        g_autoptr(GByteArray) b = cluster_msg_applied_encode(&in);

        g_assert_cmpuint(b->len, ==, 18 + 3 * 8);
        g_assert_cmpuint(b->data[16], ==, 3);
        g_assert_cmpuint(b->data[17], ==, 0);
        g_assert_cmpint(cluster_msg_applied_decode(b->data, b->len, &out), ==, 0);
        g_assert_cmpuint(out.confirmed_index, ==, 100);
        g_assert_cmpuint(out.attest_index, ==, 90);
        g_assert_cmpuint(out.n_attested, ==, 3);
        g_assert_cmpmem(out.attested, 3 * sizeof(uint64_t), ids, sizeof ids);
        cluster_applied_done(&out);
        g_assert_null(out.attested);

        /* the count must match the bytes exactly */
        g_assert_cmpint(cluster_msg_applied_decode(b->data, b->len - 1, &out), ==, -EBADMSG);
        g_assert_cmpint(cluster_msg_applied_decode(b->data, b->len - 8, &out), ==, -EBADMSG);
        g_assert_cmpint(cluster_msg_applied_decode(b->data, 17, &out), ==, -EBADMSG);
        b->data[17] = 0xff; /* n = 65283 */
        g_assert_cmpint(cluster_msg_applied_decode(b->data, b->len, &out), ==, -EBADMSG);

        /* none attested */
        ClusterApplied none = { .confirmed_index = 1, .attest_index = 2 };
        g_autoptr(GByteArray) e = cluster_msg_applied_encode(&none);
        g_assert_cmpuint(e->len, ==, 18);
        g_assert_cmpint(cluster_msg_applied_decode(e->data, e->len, &out), ==, 0);
        g_assert_cmpuint(out.n_attested, ==, 0);
        cluster_applied_done(&out);
}

static void test_join(void) {
        ClusterJoin in = { .raft_id = 77, .address = (char *) "198.18.0.1:7946" }, out;
        g_autoptr(GByteArray) b = cluster_msg_join_encode(&in);

        g_assert_cmpuint(b->len, ==, 8 + strlen(in.address));
        g_assert_cmpint(cluster_msg_join_decode(b->data, b->len, &out), ==, 0);
        g_assert_cmpuint(out.raft_id, ==, 77);
        g_assert_cmpstr(out.address, ==, in.address);
        g_clear_pointer(&out.address, g_free);

        g_assert_cmpint(cluster_msg_join_decode(b->data, 8, &out), ==, -EBADMSG);
        uint8_t big[8 + CLUSTER_MSG_ADDRESS_MAX + 1];
        memset(big, 'a', sizeof big);
        g_assert_cmpint(cluster_msg_join_decode(big, sizeof big, &out), ==, -EBADMSG);
        g_assert_cmpint(cluster_msg_join_decode(big, sizeof big - 1, &out), ==, 0);
        g_assert_cmpuint(strlen(out.address), ==, CLUSTER_MSG_ADDRESS_MAX);
        g_clear_pointer(&out.address, g_free);
}

/* Whatever the bytes, a decoder never reads past them (run under the sanitizers in CI, and here
 * with exact-size heap copies). */
static void test_random(void) {
        GRand *rnd = g_rand_new_with_seed(14);

        for (unsigned i = 0; i < 20000; i++) {
                size_t n = g_rand_int_range(rnd, 0, 64);
                g_autofree uint8_t *buf = g_malloc(MAX(n, 1));
                ClusterLeaseReq lr;
                ClusterLeaseAck la;
                ClusterExpiredQ eq;
                ClusterExpiredA ea;
                ClusterApplied ap;
                ClusterJoin j;

                for (size_t k = 0; k < n; k++)
                        buf[k] = (uint8_t) g_rand_int(rnd);
                if (n >= 18 && g_rand_boolean(rnd)) { /* make the count plausible */
                        buf[16] = (uint8_t) ((n - 18) / 8);
                        buf[17] = 0;
                }
                if (cluster_msg_lease_req_decode(buf, n, &lr) == 0)
                        g_clear_pointer(&lr.name, g_free);
                (void) cluster_msg_lease_ack_decode(buf, n, &la);
                (void) cluster_msg_expired_q_decode(buf, n, &eq);
                (void) cluster_msg_expired_a_decode(buf, n, &ea);
                if (cluster_msg_applied_decode(buf, n, &ap) == 0) {
                        g_assert_cmpuint(18 + ap.n_attested * 8, ==, n);
                        cluster_applied_done(&ap);
                }
                if (cluster_msg_join_decode(buf, n, &j) == 0)
                        g_clear_pointer(&j.address, g_free);
        }
        g_rand_free(rnd);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cluster-msg/lease-req", test_lease_req);
        g_test_add_func("/cluster-msg/fixed", test_fixed);
        g_test_add_func("/cluster-msg/applied", test_applied);
        g_test_add_func("/cluster-msg/join", test_join);
        g_test_add_func("/cluster-msg/random", test_random);
        return g_test_run();
}
