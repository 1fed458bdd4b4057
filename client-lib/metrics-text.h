/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Formatting of GetMetrics() samples as OpenMetrics 1.0 or Prometheus 0.0.4 text (electionctl
 * metrics). Pure: no bus, no allocation beyond the FILE it writes to. Unit-tested in tests/test-metrics.c. */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum MetricsTextFormat {
        METRICS_TEXT_OPENMETRICS, /* application/openmetrics-text; version=1.0.0 */
        METRICS_TEXT_PROMETHEUS,  /* text/plain; version=0.0.4 (node_exporter's textfile collector) */
} MetricsTextFormat;

typedef struct MetricsText {
        MetricsTextFormat format;
        char family[256]; /* family of the previous sample: "" = none yet */
        bool family_is_histogram;
} MetricsText;

void metrics_text_init(MetricsText *t, MetricsTextFormat format);
/* One sample; labels: n_pairs key/value pairs (labels[2i], labels[2i+1]). Writes # HELP/# TYPE
 * before the first sample of each family (samples of one family must be contiguous). */
int metrics_text_sample(MetricsText *t, FILE *f, const char *name, const char *const *labels, size_t n_pairs,
                        double value);
/* OpenMetrics: "# EOF". */
int metrics_text_end(MetricsText *t, FILE *f);

/* Helpers (exposed for tests). */
void metrics_text_escape(FILE *f, const char *s);        /* label value: \\ \" \n */
void metrics_text_value(FILE *f, double v);               /* 3, 0.25, NaN, +Inf */
const char *metrics_text_help(const char *family);        /* NULL: unknown family */
const char *metrics_text_content_type(MetricsTextFormat format);
