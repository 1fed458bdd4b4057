/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Counters for operators (GetMetrics(), electionctl metrics): plain uint64 fields incremented where
 * things happen, a fixed-bucket histogram, and per-election term-change counts. One process-wide
 * instance (metrics_get()); nothing here touches the network or the bus except metrics_append(),
 * which turns the counters and the state into the D-Bus reply a(sa{ss}d) of GetMetrics().
 */

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#define HISTOGRAM_BOUNDS_MAX 16

/* Cumulative histogram over fixed upper bounds (le), plus +Inf, a count and a sum. */
typedef struct Histogram {
        size_t n_bounds;
        double bounds[HISTOGRAM_BOUNDS_MAX]; /* strictly increasing upper bounds */
        uint64_t buckets[HISTOGRAM_BOUNDS_MAX + 1]; /* per bucket (not cumulative); [n_bounds] = +Inf */
        uint64_t count;
        double sum;
} Histogram;

int histogram_init(Histogram *h, const double *bounds, size_t n);
void histogram_observe(Histogram *h, double value);
/* Observations <= bounds[i]; i == n_bounds: all of them (le="+Inf"). */
uint64_t histogram_cumulative(const Histogram *h, size_t i);
/* Writes a bound as a label value ("0.005", "1", "+Inf" for i == n_bounds) into buf. */
const char *histogram_bound_label(const Histogram *h, size_t i, char *buf, size_t size);

/* Commit latency bounds, seconds. */
extern const double metrics_commit_latency_bounds[];
extern const size_t metrics_commit_latency_n_bounds;

typedef struct Metrics {
        uint64_t lease_renewals;        /* a lease ack moved this node's lease expiry forward */
        uint64_t lease_failures;        /* this node's lease ran out (quorate -> not quorate) */
        uint64_t step_downs;            /* LocalLeader of an election went true -> false */
        uint64_t drop_vote_requests;    /* as Raft leader: EXPIRED questions sent (per target, per round) */
        uint64_t drop_votes_yes;        /* answers we gave: yes, the node's lease from us expired */
        uint64_t drop_votes_no;
        uint64_t drop_nodes_submitted;  /* DROP_NODE commands submitted */
        uint64_t forwarded_sent;        /* batches forwarded to the Raft leader (resends included) */
        uint64_t forwarded_received;    /* batches received from other nodes as Raft leader */
        uint64_t commits_failed;        /* submitted calls that completed with an error (timeouts, ...) */
        Histogram commit_latency;       /* manager_submit() -> committed and applied, seconds */
        GHashTable *elections;          /* name -> MetricsElection* */
        const void *transport;          /* struct raft_uv_transport * while it exists (clustered) */
} Metrics;

typedef struct MetricsElection {
        uint64_t term_id;      /* as last seen */
        uint64_t term_changes; /* times the term id moved since this daemon started */
} MetricsElection;

Metrics *metrics_get(void);
/* Test helper: a fresh, zeroed instance (unit tests); frees the election table. */
void metrics_reset(Metrics *m);

/* An election's state changed (apply order); gone: it no longer exists (forget its counters). */
void metrics_election_changed(Metrics *m, const char *name, uint64_t term_id, bool gone);
uint64_t metrics_term_changes(const Metrics *m, const char *name);

/* Appends one (name, labels, value) sample; labels: key, value, ..., NULL. */
int metrics_append_sample(sd_bus_message *reply, const char *name, double value, ...) G_GNUC_NULL_TERMINATED;

typedef struct Manager Manager;
/* Opens and fills the a(sa{ss}d) array of GetMetrics(): node series, then per-election ones. */
int metrics_append(sd_bus_message *reply, Manager *m);
