/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define ELECTIOND_DEFAULT_CONFIG    "/etc/electiond/electiond.conf"
#define ELECTIOND_DEFAULT_STATE_DIR "/var/lib/electiond"

/* [Cluster] AddressFamily=: which IP versions gossip, the channel and Raft use. */
enum {
        CONFIG_FAMILY_ANY,          /* "any": IPv4 and IPv6, whatever the interfaces have */
        CONFIG_FAMILY_IPV4,         /* "ipv4": IPv4 only, no IPv6 socket at all */
        CONFIG_FAMILY_IPV6,         /* "ipv6": IPv6 only, no IPv4 socket at all */
};


typedef struct Config {
        /* [Node] */
        char *node_name;            /* Name=, default: host name */
        unsigned max_elections;     /* MaxElections=, default 65536 (0 = unlimited) */
        unsigned max_candidates;    /* MaxCandidates=, default 1024 per election (0 = unlimited) */
        unsigned max_persistent_per_user; /* MaxPersistentPerUser=, default 64 (0 = unlimited): persistent candidacies per non-root uid */
        uint64_t remove_empty_usec; /* RemoveEmptyElectionsSec=, default 60 s (0 = never): empty elections are then deleted */
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
        bool encrypt;               /* Encrypt=, default no: seal gossip, channel and Raft traffic (electiond-seal.h) */
        char **interfaces;          /* Interfaces=, NULL = every up non-loopback interface with an address */
        uint16_t port;              /* Port=, default 7946 */
        char **peers;               /* Peers=: "192.0.2.1[:port]", "[2001:db8::1]:port", "[fe80::1%eth0]:port" (electiond-address.h) */
        unsigned address_family;    /* AddressFamily=: CONFIG_FAMILY_*, default any */
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
/* Whether AddressFamily= lets us use family (AF_INET or AF_INET6). */
bool config_family_allows(const Config *c, int family);

/* Reload (SIGHUP): copies the keys of loaded that can change while running into running, in
 * place (pointers of the others stay valid: the cluster keeps &running). A key that differs but
 * cannot change live is refused: logged with its reason, running keeps its value. Returns the
 * number of refused keys. */
unsigned config_apply_reload(Config *running, const Config *loaded, const char *path);
/* Whether [group] key= takes effect on reload (for tests and documentation). */
bool config_key_reloadable(const char *group, const char *key);
