/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Leases, fencing and hand-over: the rules that keep two nodes from acting as leader of one
 * election at the same time (docs/DESIGN.md, "Cluster safety"). Pure: no I/O, no clock reads;
 * every function takes the caller's CLOCK_BOOTTIME "now" in µs. Node ids are Raft server ids.
 */

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "electiond-util.h"

typedef struct LeaseParams {
        uint64_t lease_usec;        /* LeaseSec */
        uint64_t node_timeout_usec; /* NodeTimeoutSec, > lease × (1 + ρ) + δ */
        uint64_t act_margin_usec;   /* δ, ActionMarginSec; 0 = LEASE_ACT_MARGIN_USEC */
        /* Not used by the lease rules, only part of the fingerprint (rule 8): the Raft timeouts
         * (RaftElectionTimeoutSec, RaftHeartbeatSec); 0 = the built-in default, not hashed. */
        uint64_t raft_election_timeout_usec;
        uint64_t raft_heartbeat_usec;
} LeaseParams;

/* ρ of the design (clock-rate bound) and the default δ (time to act on an expired lease). */
#define LEASE_CLOCK_RATE_BOUND 0.01
#define LEASE_ACT_MARGIN_USEC (100 * USEC_PER_MSEC)

/* δ of these parameters. */
uint64_t lease_act_margin_usec(const LeaseParams *p);

/* Is NodeTimeout > Lease × (1 + ρ) + δ? */
bool lease_params_valid(const LeaseParams *p);
/* Lease × (1 + ρ) + δ: how long after a grant that grant may still back someone's action. */
uint64_t lease_bound_usec(const LeaseParams *p);
/* One number for the settings the safety bound ties together (Lease, NodeTimeout, ρ, δ), and the
 * Raft timeouts when they are not the defaults (so the defaults give the same number as releases
 * that had no such keys): a granter only grants to requesters whose fingerprint equals its own,
 * so every lease is measured with the values its granters fence with, whatever each node's
 * configuration says. */
uint64_t lease_params_fingerprint(const LeaseParams *p);
/* G: how far back a granter looks at its stored index (rule 3). */
uint64_t lease_grace_usec(const LeaseParams *p);
/* How long a new leader waits when the old one did not confirm (rule 4). */
uint64_t lease_handover_wait_usec(const LeaseParams *p);

/* ---- requester: every node ---- */
typedef struct LeaseRequester LeaseRequester;

LeaseRequester *lease_requester_new(uint64_t self_id, const LeaseParams *p);
LeaseRequester *lease_requester_free(LeaseRequester *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LeaseRequester, lease_requester_free)

/* The current voters (may include self). Acks from ids not in the set are ignored; acks of
 * voters that stay are kept. */
void lease_requester_set_voters(LeaseRequester *r, const uint64_t *ids, size_t n);
/* Start a round: returns its sequence number; the caller sends LEASE_REQ(seq) to every voter. */
uint64_t lease_requester_begin_round(LeaseRequester *r, uint64_t now);
/* A voter acknowledged round seq. Unknown or too old rounds are ignored. A node that is itself a
 * voter asks its own granter (lease_granter_request) each round and acks itself from the answer:
 * it gets no free vote, so a stale or fenced node cannot count itself. */
void lease_requester_ack(LeaseRequester *r, uint64_t voter, uint64_t seq);
/* When the lease ends (0 = no lease). Anchored at the send times of the acknowledged rounds. */
uint64_t lease_requester_expiry(const LeaseRequester *r);
bool lease_requester_quorate(const LeaseRequester *r, uint64_t now);
/* How long this requester has been without a lease (0 while it holds one), counted from its
 * first round if it never had one. Sent with every request: see LEASE_GIVE_UP_USEC. */
uint64_t lease_requester_without_usec(const LeaseRequester *r, uint64_t now);

/* ---- granter: every voter ---- */
typedef struct LeaseGranter LeaseGranter;

/* A requester that reports having had no lease for longer than this (it can send but does not
 * hear our acks: a one-way cut) gets grants that do not count as contact, so that it can be
 * fenced and dropped like a silent node instead of blocking its elections for as long as the
 * cut lasts. */
#define LEASE_GIVE_UP_USEC (1 * USEC_PER_SEC)

/* now: when this granter (process) started. Our start counts as a grant to every node: a grant of
 * our previous incarnation may still back someone's lease (nothing about grants is kept on disk,
 * so nothing can be lost: start time is an upper bound of every earlier grant). */
LeaseGranter *lease_granter_new(const LeaseParams *p, uint64_t now);
/* Our previous incarnation ran with this LeaseSec (kept in the state directory): if it was longer,
 * its grants may back leases for that long after our start. */
void lease_granter_set_prior_lease(LeaseGranter *g, uint64_t lease_usec);
/* Likewise its δ (ActionMarginSec): a grant of it backed actions for Lease × (1 + ρ) + that δ. */
void lease_granter_set_prior_margin(LeaseGranter *g, uint64_t margin_usec);
LeaseGranter *lease_granter_free(LeaseGranter *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LeaseGranter, lease_granter_free)

/* The last log index this node has stored, as of now (call whenever it changes, and once when the
 * log is loaded). Rule 3 looks up the index stored G ago; a time before the first note (just
 * after a restart) or older than the kept history is refused: it fails closed. */
void lease_granter_note_stored(LeaseGranter *g, uint64_t index, uint64_t now);
/* N asks for a lease, reporting its applied index and how long it has been without a lease.
 * Returns true to acknowledge (rule 3, fences). */
bool lease_granter_request(LeaseGranter *g, uint64_t node, uint64_t applied, uint64_t without_lease_usec,
                           uint64_t now);
/* The same, from process `holder` (its Raft id): one lease id (one node name) is granted to one
 * holder at a time. Another holder asking under a name whose holder we granted within
 * NodeTimeout is refused (two machines with one name must not both lead its candidacies); after
 * that silence the name may move (a node that rejoined under a new id). */
bool lease_granter_request_from(LeaseGranter *g, uint64_t node, uint64_t holder, uint64_t applied,
                                uint64_t without_lease_usec, uint64_t now);
/* The Raft leader asks whether N's grants expired (never ask N itself). True (and N is now
 * fenced for LEASE_FENCE_NODE_TIMEOUTS × NodeTimeout) iff this granter's last contact with N is
 * older than NodeTimeout. */
#define LEASE_FENCE_NODE_TIMEOUTS 4
bool lease_granter_expired(LeaseGranter *g, uint64_t node, uint64_t now);
/* DROP_NODE(N) at log index `index` was applied here: N is fenced until it reports having applied
 * that index itself (then it knows it lost its leads). */
void lease_granter_node_dropped(LeaseGranter *g, uint64_t node, uint64_t index);
/* Rule 4's attestation, for a node N that has not confirmed a hand-over at `index`: true iff no
 * grant of ours can back a lease of N any more (our last grant to N, or our start, is older than
 * lease_bound_usec). N is then fenced until it has applied `index`, so no later grant of ours
 * backs a node that may still act on the old leader. */
bool lease_granter_attest(LeaseGranter *g, uint64_t node, uint64_t index, uint64_t now);
/* Fences always end: a vote's after a bounded time, a drop's or an attestation's once N has
 * caught up (it reports an applied index at least as high). */
bool lease_granter_fenced(const LeaseGranter *g, uint64_t node, uint64_t now);
uint64_t lease_granter_last_grant(const LeaseGranter *g, uint64_t node); /* 0 = never */
/* What "expired" is measured from: the last request that counts as contact (granted or refused,
 * unless the node said it has had no lease for LEASE_GIVE_UP_USEC), or our start. */
uint64_t lease_granter_last_contact(const LeaseGranter *g, uint64_t node);

/* ---- hand-over: the node that gains the lead of an election ---- */
typedef struct LeaseHandover {
        uint64_t index;        /* log index of the entry that gave this node the lead; 0 = none pending */
        uint64_t applied_at;   /* when this node applied it */
        GHashTable *confirmed; /* node id → TRUE: reported applied >= index */
        GHashTable *attested;  /* voter id → GHashTable of node ids it attests (lease_granter_attest) at >= index */
} LeaseHandover;

/* Call whenever applying `index` gives this node's candidacy the lead of an election, whoever led
 * before (nobody included: a stale node may not have applied its own Leave yet). */
void lease_handover_begin(LeaseHandover *h, uint64_t index, uint64_t now);
/* Node reported APPLIED(index): applied, and its leader units stopped. */
void lease_handover_note_applied(LeaseHandover *h, uint64_t node, uint64_t applied);
/* Voter `voter`, having applied `index`, attests that none of its grants backs a lease of any of
 * `nodes` (replaces what it attested before). Ignored when index is below the hand-over's. */
void lease_handover_note_attest(LeaseHandover *h, uint64_t voter, uint64_t index, const uint64_t *nodes,
                                size_t n_nodes);
/* May this node act as leader now? members: every other Raft member; voters: every voter (this
 * node included if it votes). True once every member confirmed or is attested by a majority of
 * the voters other than itself (it can hold no lease, so it cannot act), or once the wait of
 * rule 4 has passed. */
bool lease_handover_cleared(const LeaseHandover *h, const uint64_t *members, size_t n_members,
                            const uint64_t *voters, size_t n_voters, const LeaseParams *p, uint64_t now);
/* When the wait ends at the latest (0 = nothing pending). */
uint64_t lease_handover_deadline(const LeaseHandover *h, const LeaseParams *p);
void lease_handover_done(LeaseHandover *h);
