/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The D-Bus edge: vtables, argument checks, authorization (uid 0 or polkit, asynchronously),
 * connection tracking, and signals. No election logic lives here. */

#include "electiond-manager.h"

#define ELECTIOND_BUS_NAME          "org.electiond.Election1"
#define ELECTIOND_MANAGER_PATH      "/org/electiond/Election1"
#define ELECTIOND_ELECTION_PREFIX   "/org/electiond/Election1/election"
#define ELECTIOND_MANAGER_INTERFACE "org.electiond.Election1.Manager"
#define ELECTIOND_ELECTION_INTERFACE "org.electiond.Election1.Election"
#define ELECTIOND_ERROR_NOT_CANDIDATE  "org.electiond.Election1.Error.NotCandidate"
#define ELECTIOND_ERROR_INVALID_NAME   "org.electiond.Election1.Error.InvalidName"
#define ELECTIOND_ERROR_INVALID_ID     "org.electiond.Election1.Error.InvalidId"
#define ELECTIOND_ERROR_LIMIT_EXCEEDED "org.electiond.Election1.Error.LimitExceeded"
#define ELECTIOND_ERROR_QUOTA_EXCEEDED "org.electiond.Election1.Error.QuotaExceeded"
#define ELECTIOND_ERROR_NO_QUORUM      "org.electiond.Election1.Error.NoQuorum"
#define ELECTIOND_ERROR_OUTCOME_UNKNOWN "org.electiond.Election1.Error.OutcomeUnknown"
#define ELECTIOND_ERROR_WITNESS        "org.electiond.Election1.Error.Witness"
#define ELECTIOND_POLKIT_ACTION        "org.electiond.Election1.manage"
#define ELECTIOND_POLKIT_ACTION_DRAIN  "org.electiond.Election1.drain"
/* a non-root caller's persistent Enter beyond MaxPersistentPerUser= */
#define ELECTIOND_POLKIT_ACTION_ENTER_PERSISTENT "org.electiond.Election1.enter-persistent"

typedef struct BusEdge BusEdge;

int bus_edge_new(Manager *m, sd_bus *bus, BusEdge **ret);
BusEdge *bus_edge_free(BusEdge *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(BusEdge *, bus_edge_free)

char *bus_election_path(const char *name); /* g_free */
