/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The cluster controller (only with KeyFile=): membership by gossip, Raft membership
 * (bootstrap, join, promotion, removal of the dead), leases, fencing and hand-over
 * (electiond-lease.h), and forwarding of commands to the Raft leader. See docs/DESIGN.md.
 *
 * The manager owns the election state and the pending calls; the controller owns the gossip
 * runtime, the cluster channel and, once the node is a member, the engine.
 */

#include <stdbool.h>
#include <stdint.h>

#include "electiond-config.h"
#include "electiond-election.h"
#include "electiond-channel.h"
#include "electiond-engine.h"
#include "electiond-wire.h"

typedef struct Cluster Cluster;

typedef struct ClusterHooks {
        /* The engine now exists and has been started (after bootstrap or to join). */
        void (*engine_started)(void *userdata, Engine *engine);
        /* Quorum, lease, hand-over or membership changed: re-read Quorate/LocalLeader/Members. */
        void (*status_changed)(void *userdata);
        /* As Raft leader: commands forwarded by node sender_id (an encoded batch, not framed);
         * false if refused because sender_id does not hold the commands' origin name. */
        bool (*remote_batch)(void *userdata, uint64_t sender_id, const void *batch, size_t size);
        /* The Raft leader (leader_name) refused our commands: gossip knows our name by another
         * node id (optional). */
        void (*name_in_use)(void *userdata, const char *leader_name);
        /* Leader units of a demotion are still stopping (optional). */
        bool (*units_stopping)(void *userdata);
        /* The lease may have moved (an ack, a round, an expiry): re-read cluster_lease_expiry()
         * (optional; called often, so compare with the last value). */
        void (*lease_renewed)(void *userdata);
} ClusterHooks;

typedef struct ClusterMember {
        char *name;
        char *address;
        const char *state; /* alive|suspect|dead|left|foreign */
        const char *role;  /* leader|voter|standby|spare|none */
} ClusterMember;

int cluster_new(sd_event *event, const Config *config, const char *state_dir, const char *node_name,
                const EngineCallbacks *engine_cb, void *engine_userdata, const ClusterHooks *hooks,
                void *userdata, Cluster **ret);
Cluster *cluster_free(Cluster *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Cluster *, cluster_free)
/* The manager's state (read to find which nodes own candidacies) and how to commit DROP_NODE. */
void cluster_set_state(Cluster *c, const ElectionState *state, void (*submit_drop)(void *userdata, const char *node));
/* Rolling upgrade: how the Raft leader commits SET_PROTOCOL(version) once every member of the
 * configuration advertises it (docs/DESIGN.md "Versions"). */
void cluster_set_protocol_hook(Cluster *c, void (*submit_protocol)(void *userdata, unsigned version));
int cluster_start(Cluster *c);
/* Reload: re-reads [Cluster] KeyFile=/KeyDirectory=/PrimaryKey= of the (already updated) config
 * and installs the keys in gossip, channel and transport at once. 1 if the keys changed, 0 if
 * not, < 0 (logged) if they cannot be loaded: the running keys stay. */
int cluster_reload_keys(Cluster *c);

/* Disaster recovery (issue 11 §7), before cluster_start(): the node keeps its Raft log and
 * snapshot but becomes the only voter of a new cluster (new cluster id), after listening
 * CLUSTER_FORCE_LISTEN_USEC for live members of the old one (any → exit 1). restore: the state
 * directory is a copied backup: the node also takes a new node id. The marker file tells the
 * manager to commit BUMP_TERMS(CLUSTER_FORCE_TERM_OFFSET) before serving; it goes once applied. */
#define CLUSTER_FORCE_BUMP_MARKER "force-new-cluster-bump"
#define CLUSTER_FORCE_TERM_OFFSET (UINT64_C(1) << 20)
#define CLUSTER_FORCE_LISTEN_USEC (3 * USEC_PER_SEC)
int cluster_set_force_new(Cluster *c, bool restore);

/* Evaluated at `now` (CLOCK_BOOTTIME µs), never cached. */
bool cluster_quorate(Cluster *c, uint64_t now);
bool cluster_local_leader(Cluster *c, const Election *e, uint64_t now);

/* The manager applied entry `index`; for each election whose leader changed in it, call
 * cluster_lead_changed() first (before this), with the previous leader's node. */
void cluster_lead_changed(Cluster *c, const Election *e, const char *prev_leader_node, uint64_t index);
void cluster_entry_applied(Cluster *c, uint64_t index, bool any_leader_changed);
/* The leader units' stop jobs finished: confirm what we applied. */
void cluster_units_settled(Cluster *c);
/* The highest index confirmed to peers by APPLIED ("applied, and my leader units stopped"). */
uint64_t cluster_confirmed_index(Cluster *c);
/* Planned stop: send the last APPLIED once more, as no later round will repeat it. */
void cluster_repeat_confirmation(Cluster *c);
/* Every live member of the Raft configuration (but us) reported APPLIED >= index. */
bool cluster_peers_applied(Cluster *c, uint64_t index);
/* A DROP_NODE(node) was applied at log index `index`. */
void cluster_node_dropped(Cluster *c, const char *node, uint64_t index);

/* Not the Raft leader: send an encoded batch to the leader. -ENOTCONN if none is known. */
int cluster_forward(Cluster *c, const void *batch, size_t size);

/* Members for the bus: newly allocated array, free with cluster_members_free(). */
int cluster_get_members(Cluster *c, ClusterMember **ret, size_t *ret_n);
void cluster_members_free(ClusterMember *m, size_t n);
const char *cluster_name(Cluster *c);
/* How many voters may fail with the cluster still quorate: floor((voters - 1) / 2), from the Raft
 * configuration as this node knows it; -ENOTCONN before the node is a member. */
int cluster_fault_tolerance(Cluster *c, unsigned *ret_voters, unsigned *ret_servers);
/* Whether gossip knows node `id` as a live member named `name` (one holder per name). */
bool cluster_peer_has_name(Cluster *c, uint64_t id, const char *name);

/* This node's lease expiry (CLOCK_BOOTTIME µs): 0 without engine or cluster link, else the
 * requester's expiry, which may lie in the past (compare with now). */
uint64_t cluster_lease_expiry(Cluster *c);

/* Drop counters of the gossip wire and the cluster channel (0 while they do not exist). */
uint64_t cluster_wire_drop_count(Cluster *c, WireDrop d);
uint64_t cluster_channel_drop_count(Cluster *c, ChannelDrop d);
