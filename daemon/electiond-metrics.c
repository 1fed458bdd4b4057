/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "electiond-channel.h"
#include "electiond-cluster.h"
#include "electiond-manager.h"
#include "electiond-metrics.h"
#include "electiond-transport.h"
#include "electiond-util.h"
#include "electiond-wire.h"

const double metrics_commit_latency_bounds[] = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
};
const size_t metrics_commit_latency_n_bounds = ELEMENTSOF(metrics_commit_latency_bounds);

int histogram_init(Histogram *h, const double *bounds, size_t n) {
        g_assert(h);
        if (n > HISTOGRAM_BOUNDS_MAX)
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
                        return -EINVAL;
        *h = (Histogram) { .n_bounds = n };
        memcpy(h->bounds, bounds, n * sizeof(double));
        return 0;
}

void histogram_observe(Histogram *h, double value) {
        size_t i = 0;

        if (isnan(value))
                return;
        /* le is inclusive: a value equal to a bound falls into that bucket */
        while (i < h->n_bounds && value > h->bounds[i])
                i++;
        h->buckets[i]++;
        h->count++;
        h->sum += value;
}

uint64_t histogram_cumulative(const Histogram *h, size_t i) {
        uint64_t n = 0;

        if (i > h->n_bounds)
                i = h->n_bounds;
        for (size_t j = 0; j <= i; j++)
                n += h->buckets[j];
        return n;
}

const char *histogram_bound_label(const Histogram *h, size_t i, char *buf, size_t size) {
        if (i >= h->n_bounds)
                snprintf(buf, size, "+Inf");
        else
                snprintf(buf, size, "%g", h->bounds[i]);
        return buf;
}

static Metrics global_metrics;
static bool global_metrics_ready;

Metrics *metrics_get(void) {
        if (!global_metrics_ready) {
                metrics_reset(&global_metrics);
                global_metrics_ready = true;
        }
        return &global_metrics;
}

void metrics_reset(Metrics *m) {
        if (m->elections)
                g_hash_table_destroy(m->elections);
        *m = (Metrics) {};
        (void) histogram_init(&m->commit_latency, metrics_commit_latency_bounds, metrics_commit_latency_n_bounds);
        m->elections = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

void metrics_election_changed(Metrics *m, const char *name, uint64_t term_id, bool gone) {
        MetricsElection *me;

        if (gone) {
                g_hash_table_remove(m->elections, name);
                return;
        }
        me = g_hash_table_lookup(m->elections, name);
        if (!me) {
                me = g_new0(MetricsElection, 1);
                g_hash_table_insert(m->elections, g_strdup(name), me);
        }
        /* an election first seen here counts when its term differs from "none" (0) */
        if (me->term_id != term_id) {
                me->term_id = term_id;
                me->term_changes++;
        }
}

uint64_t metrics_term_changes(const Metrics *m, const char *name) {
        const MetricsElection *me = m->elections ? g_hash_table_lookup(m->elections, name) : NULL;

        return me ? me->term_changes : 0;
}

static int append_sample_va(sd_bus_message *reply, const char *name, double value, va_list ap) {
        const char *k;
        int r;

        r = sd_bus_message_open_container(reply, 'r', "sa{ss}d");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{ss}");
        if (r < 0)
                return r;
        while ((k = va_arg(ap, const char *))) {
                const char *v = va_arg(ap, const char *);

                r = sd_bus_message_append(reply, "{ss}", k, v ?: "");
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "d", value);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

int metrics_append_sample(sd_bus_message *reply, const char *name, double value, ...) {
        va_list ap;
        int r;

        va_start(ap, value);
        r = append_sample_va(reply, name, value, ap);
        va_end(ap);
        return r;
}

#define SAMPLE(name, value, ...)                                                                   \
        do {                                                                                       \
                r = metrics_append_sample(reply, (name), (double) (value), ##__VA_ARGS__, NULL);   \
                if (r < 0)                                                                         \
                        return r;                                                                  \
        } while (0)

static const char *const channel_drop_names[_CHANNEL_DROP_MAX] = {
        [CHANNEL_DROP_MALFORMED] = "malformed",
        [CHANNEL_DROP_CLUSTER] = "cluster",
        [CHANNEL_DROP_AUTH] = "auth",
        [CHANNEL_DROP_REPLAY] = "replay",
        [CHANNEL_DROP_SELF] = "self",
        [CHANNEL_DROP_PLAINTEXT] = "plaintext",
        [CHANNEL_DROP_ENCRYPTED] = "encrypted",
};

static const char *const raft_roles[] = { "leader", "follower", "candidate", "unavailable" };

int metrics_append(sd_bus_message *reply, Manager *manager) {
        Metrics *m = metrics_get();
        Cluster *c = manager_get_cluster(manager);
        Engine *engine = manager_get_engine(manager);
        const char *role = engine ? engine_role_name(engine) : "unavailable";
        g_autoptr(GPtrArray) list = NULL;
        char le[32];
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(sa{ss}d)");
        if (r < 0)
                return r;

        SAMPLE("electiond_quorate", manager_quorate(manager) ? 1 : 0);
        SAMPLE("electiond_clustered", c ? 1 : 0);
        for (size_t i = 0; i < ELEMENTSOF(raft_roles); i++)
                SAMPLE("electiond_raft_role", streq_ptr(role, raft_roles[i]) ? 1 : 0, "role", raft_roles[i]);
        SAMPLE("electiond_lease_renewals_total", m->lease_renewals);
        SAMPLE("electiond_lease_failures_total", m->lease_failures);
        SAMPLE("electiond_step_downs_total", m->step_downs);
        SAMPLE("electiond_drop_vote_requests_total", m->drop_vote_requests);
        SAMPLE("electiond_drop_votes_total", m->drop_votes_yes, "vote", "yes");
        SAMPLE("electiond_drop_votes_total", m->drop_votes_no, "vote", "no");
        SAMPLE("electiond_drop_nodes_submitted_total", m->drop_nodes_submitted);

        for (WireDrop d = 0; d < _WIRE_DROP_MAX; d++)
                SAMPLE("electiond_packets_dropped_total", c ? cluster_wire_drop_count(c, d) : 0,
                       "protocol", "gossip", "reason", wire_drop_to_string(d));
        for (ChannelDrop d = 0; d < _CHANNEL_DROP_MAX; d++)
                SAMPLE("electiond_packets_dropped_total", c ? cluster_channel_drop_count(c, d) : 0,
                       "protocol", "channel", "reason", channel_drop_names[d]);
        {
                AuthTransportStats st = {};

                if (m->transport)
                        auth_transport_get_stats(m->transport, &st);
                SAMPLE("electiond_raft_connections_total", st.accepted, "direction", "in");
                SAMPLE("electiond_raft_connections_total", st.connected, "direction", "out");
                SAMPLE("electiond_raft_handshake_failures_total", st.rejected_in, "direction", "in");
                SAMPLE("electiond_raft_handshake_failures_total", st.rejected_out, "direction", "out");
                SAMPLE("electiond_raft_encryption_mismatches_total", st.mismatched);
        }

        SAMPLE("electiond_forwarded_calls_total", m->forwarded_sent, "direction", "sent");
        SAMPLE("electiond_forwarded_calls_total", m->forwarded_received, "direction", "received");
        SAMPLE("electiond_commits_failed_total", m->commits_failed);

        for (size_t i = 0; i <= m->commit_latency.n_bounds; i++)
                SAMPLE("electiond_commit_latency_seconds_bucket", histogram_cumulative(&m->commit_latency, i),
                       "le", histogram_bound_label(&m->commit_latency, i, le, sizeof le));
        SAMPLE("electiond_commit_latency_seconds_count", m->commit_latency.count);
        SAMPLE("electiond_commit_latency_seconds_sum", m->commit_latency.sum);

        /* per election: one pass over the state per family (families stay contiguous) */
        list = election_state_list(manager_get_state(manager));
        SAMPLE("electiond_elections", list->len);
        for (unsigned i = 0; i < list->len; i++) {
                const Election *e = list->pdata[i];
                SAMPLE("electiond_election_local_leader", manager_local_leader(manager, e) ? 1 : 0, "election", e->name);
        }
        for (unsigned i = 0; i < list->len; i++) {
                const Election *e = list->pdata[i];
                SAMPLE("electiond_election_term_id", e->term_id, "election", e->name);
        }
        for (unsigned i = 0; i < list->len; i++) {
                const Election *e = list->pdata[i];
                SAMPLE("electiond_election_term_changes_total", metrics_term_changes(m, e->name), "election", e->name);
        }
        for (unsigned i = 0; i < list->len; i++) {
                const Election *e = list->pdata[i];
                SAMPLE("electiond_election_candidates", e->candidates->len, "election", e->name);
        }

        return sd_bus_message_close_container(reply);
}
