/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics-text.h"

static const struct {
        const char *family;
        const char *help;
} helps[] = {
        { "electiond_quorate", "1 if this node holds an unexpired lease from a quorum (always 1 standalone)." },
        { "electiond_clustered", "1 if this node runs in a cluster (KeyFile= set)." },
        { "electiond_raft_role", "This node's Raft role: 1 for the current one." },
        { "electiond_lease_renewals", "Lease acks that moved this node's lease expiry forward." },
        { "electiond_lease_failures", "Times this node's lease ran out (quorum lost)." },
        { "electiond_step_downs", "Times LocalLeader of an election went from true to false on this node." },
        { "electiond_drop_vote_requests", "Expired-lease questions sent to voters before dropping a node (as Raft leader)." },
        { "electiond_drop_votes", "Answers this node gave to expired-lease questions, by vote." },
        { "electiond_drop_nodes_submitted", "DROP_NODE commands submitted by this node (as Raft leader)." },
        { "electiond_packets_dropped", "Received packets dropped, by protocol (gossip, channel) and reason." },
        { "electiond_raft_connections", "Authenticated Raft connections, by direction." },
        { "electiond_raft_handshake_failures", "Raft connection handshakes that failed, by direction." },
        { "electiond_raft_encryption_mismatches", "Inbound Raft handshakes refused because the peer's Encrypt= differs." },
        { "electiond_forwarded_calls", "Command batches forwarded to the Raft leader (sent, resends included) or received from other nodes." },
        { "electiond_commits_failed", "Calls that were not committed (timeout, shutdown, ...)." },
        { "electiond_commit_latency_seconds", "Time from submitting a call's command to its commit and apply on this node." },
        { "electiond_elections", "Elections known to this node." },
        { "electiond_election_local_leader", "1 if a candidate on this node leads the election and may act (LocalLeader)." },
        { "electiond_election_term_id", "The election's current term id." },
        { "electiond_election_term_changes", "Times the election's term id changed since this daemon started." },
        { "electiond_election_candidates", "Candidates of the election." },
};

const char *metrics_text_help(const char *family) {
        for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++)
                if (strcmp(helps[i].family, family) == 0)
                        return helps[i].help;
        return NULL;
}

const char *metrics_text_content_type(MetricsTextFormat format) {
        return format == METRICS_TEXT_OPENMETRICS ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                                  : "text/plain; version=0.0.4; charset=utf-8";
}

void metrics_text_init(MetricsText *t, MetricsTextFormat format) {
        *t = (MetricsText) { .format = format };
}

static bool has_suffix(const char *s, const char *suffix, size_t *ret_base) {
        size_t n = strlen(s), k = strlen(suffix);

        if (n <= k || strcmp(s + n - k, suffix) != 0)
                return false;
        *ret_base = n - k;
        return true;
}

void metrics_text_escape(FILE *f, const char *s) {
        for (; *s; s++)
                switch (*s) {
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                default:
                        fputc(*s, f);
                }
}

void metrics_text_value(FILE *f, double v) {
        if (isnan(v))
                fputs("NaN", f);
        else if (isinf(v))
                fputs(v > 0 ? "+Inf" : "-Inf", f);
        else if (v == floor(v) && fabs(v) < 9007199254740992.0)
                fprintf(f, "%.0f", v);
        else {
                /* the shortest of %.15g/%.17g that reads back as the same double */
                char buf[32];

                snprintf(buf, sizeof buf, "%.15g", v);
                if (strtod(buf, NULL) != v)
                        snprintf(buf, sizeof buf, "%.17g", v);
                fputs(buf, f);
        }
}

static bool name_valid(const char *s) {
        if (!s[0] || !(s[0] == '_' || s[0] == ':' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
                return false;
        for (const char *p = s + 1; *p; p++)
                if (!(*p == '_' || *p == ':' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9')))
                        return false;
        return true;
}

int metrics_text_sample(MetricsText *t, FILE *f, const char *name, const char *const *labels, size_t n_pairs,
                        double value) {
        char family[sizeof t->family];
        const char *type = "gauge";
        bool histogram = false;
        size_t base;

        if (!name_valid(name) || strlen(name) >= sizeof family)
                return -EINVAL;
        for (size_t i = 0; i < n_pairs; i++)
                if (!name_valid(labels[2 * i]))
                        return -EINVAL;

        /* which family: histogram parts stay in the histogram they follow */
        snprintf(family, sizeof family, "%s", name);
        if (has_suffix(name, "_bucket", &base)) {
                family[base] = 0;
                histogram = true;
        } else if (t->family_is_histogram &&
                   ((has_suffix(name, "_count", &base) || has_suffix(name, "_sum", &base)) &&
                    strncmp(name, t->family, base) == 0 && t->family[base] == 0)) {
                family[base] = 0;
                histogram = true;
        } else if (has_suffix(name, "_total", &base)) {
                type = "counter";
                /* OpenMetrics names the counter family without _total, Prometheus 0.0.4 with it */
                if (t->format == METRICS_TEXT_OPENMETRICS)
                        family[base] = 0;
        }
        if (histogram)
                type = "histogram";

        if (strcmp(family, t->family) != 0) {
                const char *help;
                char key[sizeof family];

                snprintf(key, sizeof key, "%s", family);
                if (t->format == METRICS_TEXT_PROMETHEUS && has_suffix(key, "_total", &base))
                        key[base] = 0;
                help = metrics_text_help(key);
                fprintf(f, "# TYPE %s %s\n", family, type);
                if (help)
                        fprintf(f, "# HELP %s %s\n", family, help);
                snprintf(t->family, sizeof t->family, "%s", family);
                t->family_is_histogram = histogram;
        }

        fputs(name, f);
        if (n_pairs > 0) {
                fputc('{', f);
                for (size_t i = 0; i < n_pairs; i++) {
                        fprintf(f, "%s%s=\"", i > 0 ? "," : "", labels[2 * i]);
                        metrics_text_escape(f, labels[2 * i + 1]);
                        fputc('"', f);
                }
                fputc('}', f);
        }
        fputc(' ', f);
        metrics_text_value(f, value);
        fputc('\n', f);
        return ferror(f) ? -EIO : 0;
}

int metrics_text_end(MetricsText *t, FILE *f) {
        if (t->format == METRICS_TEXT_OPENMETRICS)
                fputs("# EOF\n", f);
        return ferror(f) ? -EIO : 0;
}
