/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The metrics module: histogram buckets (inclusive upper bounds, cumulative, +Inf), term-change
 * counting, and the OpenMetrics/Prometheus text formatting of electionctl (metrics-text.c). */

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "electiond-metrics.h"
#include "metrics-text.h"

static void test_histogram(void) {
        static const double b[] = { 0.1, 0.5, 1 };
        Histogram h;
        char buf[32];

        g_assert_cmpint(histogram_init(&h, b, 3), ==, 0);
        histogram_observe(&h, 0.05);
        histogram_observe(&h, 0.1); /* on a bound: le is inclusive */
        histogram_observe(&h, 0.7);
        histogram_observe(&h, 3);
        histogram_observe(&h, NAN); /* ignored */
        g_assert_cmpuint(h.count, ==, 4);
        g_assert_cmpuint(histogram_cumulative(&h, 0), ==, 2);
        g_assert_cmpuint(histogram_cumulative(&h, 1), ==, 2);
        g_assert_cmpuint(histogram_cumulative(&h, 2), ==, 3);
        g_assert_cmpuint(histogram_cumulative(&h, 3), ==, 4);
        g_assert_cmpuint(histogram_cumulative(&h, 99), ==, 4);
        g_assert_cmpfloat_with_epsilon(h.sum, 3.85, 1e-9);
        g_assert_cmpstr(histogram_bound_label(&h, 0, buf, sizeof buf), ==, "0.1");
        g_assert_cmpstr(histogram_bound_label(&h, 2, buf, sizeof buf), ==, "1");
        g_assert_cmpstr(histogram_bound_label(&h, 3, buf, sizeof buf), ==, "+Inf");
}

static void test_histogram_invalid(void) {
        static const double unsorted[] = { 1, 0.5 }, dup[] = { 1, 1 }, inf[] = { INFINITY };
        double many[HISTOGRAM_BOUNDS_MAX + 1];
        Histogram h;

        for (size_t i = 0; i < G_N_ELEMENTS(many); i++)
                many[i] = (double) i;
        g_assert_cmpint(histogram_init(&h, unsorted, 2), ==, -EINVAL);
        g_assert_cmpint(histogram_init(&h, dup, 2), ==, -EINVAL);
        g_assert_cmpint(histogram_init(&h, inf, 1), ==, -EINVAL);
        g_assert_cmpint(histogram_init(&h, many, G_N_ELEMENTS(many)), ==, -E2BIG);
        g_assert_cmpint(histogram_init(&h, metrics_commit_latency_bounds, metrics_commit_latency_n_bounds), ==, 0);
}

static void test_term_changes(void) {
        Metrics m = {};

        metrics_reset(&m);
        g_assert_cmpuint(metrics_term_changes(&m, "db"), ==, 0);
        metrics_election_changed(&m, "db", 1, false);
        metrics_election_changed(&m, "db", 1, false); /* a candidate joined: same term */
        g_assert_cmpuint(metrics_term_changes(&m, "db"), ==, 1);
        metrics_election_changed(&m, "db", 2, false);
        g_assert_cmpuint(metrics_term_changes(&m, "db"), ==, 2);
        metrics_election_changed(&m, "web", 0, false); /* seen, never had a term */
        g_assert_cmpuint(metrics_term_changes(&m, "web"), ==, 0);
        metrics_election_changed(&m, "db", 0, true);
        g_assert_cmpuint(metrics_term_changes(&m, "db"), ==, 0);
        metrics_reset(&m);
        g_hash_table_destroy(m.elections);
}

static char *format(MetricsTextFormat fmt, void (*fill)(MetricsText *t, FILE *f)) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        MetricsText t;

        g_assert_nonnull(f);
        metrics_text_init(&t, fmt);
        fill(&t, f);
        g_assert_cmpint(metrics_text_end(&t, f), ==, 0);
        fclose(f);
        return buf;
}

static void fill_sample(MetricsText *t, FILE *f) {
        const char *drop[] = { "protocol", "gossip", "reason", "auth" };
        const char *le1[] = { "le", "0.5" }, *le2[] = { "le", "+Inf" };
        const char *el[] = { "election", "a\"b\\c\nd" };

        g_assert_cmpint(metrics_text_sample(t, f, "electiond_quorate", NULL, 0, 1), ==, 0);
        g_assert_cmpint(metrics_text_sample(t, f, "electiond_packets_dropped_total", drop, 2, 3), ==, 0);
        g_assert_cmpint(metrics_text_sample(t, f, "electiond_commit_latency_seconds_bucket", le1, 1, 2), ==, 0);
        g_assert_cmpint(metrics_text_sample(t, f, "electiond_commit_latency_seconds_bucket", le2, 1, 5), ==, 0);
        g_assert_cmpint(metrics_text_sample(t, f, "electiond_commit_latency_seconds_count", NULL, 0, 5), ==, 0);
        g_assert_cmpint(metrics_text_sample(t, f, "electiond_commit_latency_seconds_sum", NULL, 0, 0.25), ==, 0);
        g_assert_cmpint(metrics_text_sample(t, f, "electiond_election_term_id", el, 1, 42), ==, 0);
        /* invalid names are refused, nothing written */
        g_assert_cmpint(metrics_text_sample(t, f, "bad name", NULL, 0, 1), ==, -EINVAL);
        g_assert_cmpint(metrics_text_sample(t, f, "9bad", NULL, 0, 1), ==, -EINVAL);
}

static void test_openmetrics(void) {
        g_autofree char *s = format(METRICS_TEXT_OPENMETRICS, fill_sample);

        g_assert_cmpstr(s, ==,
                "# TYPE electiond_quorate gauge\n"
                "# HELP electiond_quorate 1 if this node holds an unexpired lease from a quorum (always 1 standalone).\n"
                "electiond_quorate 1\n"
                "# TYPE electiond_packets_dropped counter\n"
                "# HELP electiond_packets_dropped Received packets dropped, by protocol (gossip, channel) and reason.\n"
                "electiond_packets_dropped_total{protocol=\"gossip\",reason=\"auth\"} 3\n"
                "# TYPE electiond_commit_latency_seconds histogram\n"
                "# HELP electiond_commit_latency_seconds Time from submitting a call's command to its commit and apply on this node.\n"
                "electiond_commit_latency_seconds_bucket{le=\"0.5\"} 2\n"
                "electiond_commit_latency_seconds_bucket{le=\"+Inf\"} 5\n"
                "electiond_commit_latency_seconds_count 5\n"
                "electiond_commit_latency_seconds_sum 0.25\n"
                "# TYPE electiond_election_term_id gauge\n"
                "# HELP electiond_election_term_id The election's current term id.\n"
                "electiond_election_term_id{election=\"a\\\"b\\\\c\\nd\"} 42\n"
                "# EOF\n");
}

static void test_prometheus(void) {
        g_autofree char *s = format(METRICS_TEXT_PROMETHEUS, fill_sample);

        /* counters keep _total in the family name, and there is no # EOF */
        g_assert_nonnull(strstr(s, "# TYPE electiond_packets_dropped_total counter\n"
                                   "# HELP electiond_packets_dropped_total Received"));
        g_assert_null(strstr(s, "# EOF"));
        g_assert_nonnull(strstr(s, "# TYPE electiond_commit_latency_seconds histogram\n"));
}

static void test_values(void) {
        static const struct {
                double v;
                const char *s;
        } cases[] = {
                { 0, "0" }, { 3, "3" }, { 0.25, "0.25" }, { 1e15, "1000000000000000" }, { NAN, "NaN" },
                { INFINITY, "+Inf" }, { -INFINITY, "-Inf" }, { -2, "-2" }, { 0.01577, "0.01577" },
                { 0.1 + 0.2, "0.30000000000000004" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                char *buf = NULL;
                size_t size = 0;
                FILE *f = open_memstream(&buf, &size);

                metrics_text_value(f, cases[i].v);
                fclose(f);
                g_assert_cmpstr(buf, ==, cases[i].s);
                free(buf);
        }
}

static void fill_gauge_total_histogram_parts(MetricsText *t, FILE *f) {
        /* a _count that follows no histogram is its own gauge */
        g_assert_cmpint(metrics_text_sample(t, f, "x_count", NULL, 0, 1), ==, 0);
}

static void test_lonely_count(void) {
        g_autofree char *s = format(METRICS_TEXT_OPENMETRICS, fill_gauge_total_histogram_parts);

        g_assert_cmpstr(s, ==, "# TYPE x_count gauge\nx_count 1\n# EOF\n");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/metrics/histogram", test_histogram);
        g_test_add_func("/metrics/histogram-invalid", test_histogram_invalid);
        g_test_add_func("/metrics/term-changes", test_term_changes);
        g_test_add_func("/metrics/openmetrics", test_openmetrics);
        g_test_add_func("/metrics/prometheus", test_prometheus);
        g_test_add_func("/metrics/values", test_values);
        g_test_add_func("/metrics/lonely-count", test_lonely_count);
        return g_test_run();
}
