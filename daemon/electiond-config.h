/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define ELECTIOND_DEFAULT_CONFIG    "/etc/electiond/electiond.conf"
#define ELECTIOND_DEFAULT_STATE_DIR "/var/lib/electiond"

typedef struct Config {
        /* [Node] */
        char *node_name;            /* Name=, default: host name */
        unsigned max_elections;     /* MaxElections=, default 65536 (0 = unlimited) */
        unsigned max_candidates;    /* MaxCandidates=, default 1024 per election (0 = unlimited) */
        uint64_t commit_timeout_usec; /* CommitTimeoutSec=, default 5 s: pending calls fail with NoQuorum after it */
        char *elections_dir;        /* ElectionsDirectory=, default /etc/electiond/elections.d (units module) */
        char *runtime_dir;          /* RuntimeDirectory=, default /run/electiond (leader flag files) */
        bool witness;               /* Witness=, default no: a voter that never holds candidates or units */

        /* [Cluster]: only used when key_file is set; otherwise the node is standalone and
         * sends nothing on the network. */
        char *cluster_name;         /* Name=, default "default" */
        char *key_file;             /* KeyFile=: one key, the file's bytes (the primary unless PrimaryKey=) */
        char *key_dir;              /* KeyDirectory=: more accepted keys, every *.key file (electiond-keyring.h) */
        char *primary_key;          /* PrimaryKey=: file name in KeyDirectory= of the key packets are sent under */
        char **interfaces;          /* Interfaces=, NULL = every up non-loopback interface with an address */
        uint16_t port;              /* Port=, default 7946 */
        char **peers;               /* Peers= */
        unsigned bootstrap_expect;  /* BootstrapExpect=, default 1 */
        unsigned max_voters;        /* MaxVoters=, default 5, odd */
        uint64_t probe_interval_usec;   /* ProbeIntervalSec= */
        uint64_t lease_usec;            /* LeaseSec= */
        uint64_t node_timeout_usec;     /* NodeTimeoutSec= */
        uint64_t act_margin_usec;       /* ActionMarginSec=: δ, the time to act on an expired lease */
        uint64_t raft_election_timeout_usec; /* RaftElectionTimeoutSec=, whole ms */
        uint64_t raft_heartbeat_usec;   /* RaftHeartbeatSec=, whole ms, < the election timeout */
        uint64_t dead_member_timeout_usec; /* RemoveDeadAfterSec= */
} Config;

/* Bound on clock-rate difference between nodes, and the default time to act on lease expiry
 * (ActionMarginSec=): the cluster may only take over a node's candidacies after
 * NodeTimeout > Lease * (1 + RHO) + DELTA. */
#define CONFIG_CLOCK_RATE_BOUND_PERCENT 1
#define CONFIG_LEASE_MARGIN_USEC (100 * UINT64_C(1000))
/* Below this no timer on a busy machine reliably fires in time. */
#define CONFIG_LEASE_MARGIN_MIN_USEC (5 * UINT64_C(1000))
/* The clustered Raft timeouts (libraft randomizes the election timeout in [T, 2T]). */
#define CONFIG_RAFT_ELECTION_TIMEOUT_USEC (150 * UINT64_C(1000))
#define CONFIG_RAFT_HEARTBEAT_USEC (30 * UINT64_C(1000))
/* Drop-ins: every "*.conf" in "<config file>.d/", in lexical order, after the file itself. */
#define CONFIG_DROPIN_SUFFIX ".d"

void config_init_defaults(Config *c);
void config_done(Config *c);
/* Loads path into c (on top of the defaults), then the drop-ins of path + ".d/" ("*.conf", in
 * lexical order; a later one overrides a key of an earlier one). A missing file is not an error
 * (-ENOENT is swallowed when allow_missing; the drop-ins are still read); a malformed one, or a
 * malformed drop-in, is -EINVAL with a message in *ret_error. Cross-key checks run on the result. */
int config_load(Config *c, const char *path, bool allow_missing, char **ret_error);
bool config_is_clustered(const Config *c);

/* Reload (SIGHUP): copies the keys of loaded that can change while running into running, in
 * place (pointers of the others stay valid: the cluster keeps &running). A key that differs but
 * cannot change live is refused: logged with its reason, running keeps its value. Returns the
 * number of refused keys. */
unsigned config_apply_reload(Config *running, const Config *loaded, const char *path);
/* Whether [group] key= takes effect on reload (for tests and documentation). */
bool config_key_reloadable(const char *group, const char *key);
