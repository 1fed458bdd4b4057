/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Tests of the cluster controller's pure decisions (daemon/electiond-cluster-rules.c). */
#include <glib.h>

#include "electiond-cluster-rules.h"

static void test_majority(void) {
        /* a strict majority of the voters, whatever their number */
        g_assert_false(cluster_drop_has_majority(0, 1));
        g_assert_true(cluster_drop_has_majority(1, 1));
        g_assert_false(cluster_drop_has_majority(1, 2));
        g_assert_true(cluster_drop_has_majority(2, 2));
        g_assert_false(cluster_drop_has_majority(1, 3));
        g_assert_true(cluster_drop_has_majority(2, 3));
        g_assert_false(cluster_drop_has_majority(2, 4));
        g_assert_true(cluster_drop_has_majority(3, 4));
        g_assert_false(cluster_drop_has_majority(2, 5));
        g_assert_true(cluster_drop_has_majority(3, 5));
        for (size_t voters = 1; voters < 50; voters++)
                for (size_t yes = 0; yes <= voters; yes++)
                        g_assert_true(cluster_drop_has_majority(yes, voters) == (2 * yes > voters));
}

static void test_answer_current(void) {
        g_assert_true(cluster_drop_answer_current(5, 5, 5));
        g_assert_true(cluster_drop_answer_current(6, 5, 7));
        g_assert_false(cluster_drop_answer_current(4, 5, 7)); /* an answer to an earlier vote */
        g_assert_false(cluster_drop_answer_current(8, 5, 7)); /* not asked yet */
        /* after a submitted drop first = last + 1: nothing counts until the next ask */
        g_assert_false(cluster_drop_answer_current(7, 8, 7));
}

/* Drop votes come only from voters: a stand-by's (or any other authenticated sender's) "yes"
 * must not make a majority (rule 2). */
static void test_answer_counts_voters_only(void) {
        g_assert_true(cluster_drop_answer_counts(true, 6, 5, 7));
        g_assert_false(cluster_drop_answer_counts(false, 6, 5, 7));
        g_assert_false(cluster_drop_answer_counts(true, 4, 5, 7));
        g_assert_false(cluster_drop_answer_counts(false, 4, 5, 7));
}

static void test_fault_tolerance(void) {
        static const int expected[] = { 0, 0, 0, 1, 1, 2, 2, 3 };

        for (size_t v = 0; v < G_N_ELEMENTS(expected); v++)
                g_assert_cmpint(cluster_fault_tolerance_of(v), ==, expected[v]);
}

static void test_member_protocol(void) {
        g_assert_cmpuint(cluster_member_protocol(true, 0), ==, 1);
        g_assert_cmpuint(cluster_member_protocol(true, 1), ==, 1);
        g_assert_cmpuint(cluster_member_protocol(true, 2), ==, 2);
        g_assert_cmpuint(cluster_member_protocol(false, 2), ==, 1); /* not seen alive: the least */
        g_assert_cmpuint(cluster_member_protocol(false, 0), ==, 1);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cluster-rules/majority", test_majority);
        g_test_add_func("/cluster-rules/answer-current", test_answer_current);
        g_test_add_func("/cluster-rules/answer-counts-voters-only", test_answer_counts_voters_only);
        g_test_add_func("/cluster-rules/fault-tolerance", test_fault_tolerance);
        g_test_add_func("/cluster-rules/member-protocol", test_member_protocol);
        return g_test_run();
}
