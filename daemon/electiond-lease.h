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
} LeaseParams;

/* ρ and δ of the design: clock-rate bound and time to act on an expired lease. */
#define LEASE_CLOCK_RATE_BOUND 0.01
#define LEASE_ACT_MARGIN_USEC (100 * USEC_PER_MSEC)

/* Is NodeTimeout > Lease × (1 + ρ) + δ? */
bool lease_params_valid(const LeaseParams *p);
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

/* ---- granter: every voter ---- */
typedef struct LeaseGranter LeaseGranter;

/* now: when this granter (process) started. Until NodeTimeout after it, "never granted" does not
 * count as expired: a grant of our previous incarnation may still back someone's lease. */
LeaseGranter *lease_granter_new(const LeaseParams *p, uint64_t now);
LeaseGranter *lease_granter_free(LeaseGranter *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LeaseGranter, lease_granter_free)

/* The last log index this node has stored, as of now (call whenever it changes). */
void lease_granter_note_stored(LeaseGranter *g, uint64_t index, uint64_t now);
/* N asks for a lease, reporting its applied index. Returns true to acknowledge (rule 3, fences). */
bool lease_granter_request(LeaseGranter *g, uint64_t node, uint64_t applied, uint64_t now);
/* The Raft leader asks whether N's grants expired (never ask N itself). True (and N is now
 * fenced) iff this granter's last grant to N is older than NodeTimeout, or it never granted one. */
bool lease_granter_expired(LeaseGranter *g, uint64_t node, uint64_t now);
/* DROP_NODE(N) was applied here: N stays fenced for G more, then rule 3 keeps it out until it
 * has applied the drop itself. */
void lease_granter_node_dropped(LeaseGranter *g, uint64_t node, uint64_t now);
/* A fence lasts until the DROP_NODE is applied. If that entry is lost with a Raft leader, the next
 * leader finds the fenced node without grants and drops it again: safe, and it heals itself. */
bool lease_granter_fenced(const LeaseGranter *g, uint64_t node, uint64_t now);
uint64_t lease_granter_last_grant(const LeaseGranter *g, uint64_t node); /* 0 = never */
/* What "expired" is measured from: the last grant, or our start, or — within a grace after the
 * last grant — the last request we refused (the node is alive, just briefly stale). */
uint64_t lease_granter_last_contact(const LeaseGranter *g, uint64_t node);

/* ---- hand-over: the node that gains the lead of an election ---- */
#define LEASE_NODE_NONE UINT64_MAX

typedef struct LeaseHandover {
        uint64_t index;        /* log index of the entry that gave this node the lead; 0 = none pending */
        uint64_t applied_at;   /* when this node applied it */
        uint64_t excused;      /* a node that need not confirm (dropped by that entry), or LEASE_NODE_NONE */
        GHashTable *confirmed; /* node id → TRUE: reported applied >= index */
} LeaseHandover;

/* Call whenever applying `index` gives this node's candidacy the lead of an election, whoever led
 * before (nobody included: a stale node may not have applied its own Leave yet). `excused` is the
 * node removed by that very entry (DROP_NODE): a majority has fenced it, it need not confirm. */
void lease_handover_begin(LeaseHandover *h, uint64_t index, uint64_t excused, uint64_t now);
/* Node reported APPLIED(index). */
void lease_handover_note_applied(LeaseHandover *h, uint64_t node, uint64_t applied);
/* May this node act as leader now? members: every other Raft member. True once every member
 * (but the excused one) confirmed, or the wait of rule 4 has passed. */
bool lease_handover_cleared(const LeaseHandover *h, const uint64_t *members, size_t n_members,
                            const LeaseParams *p, uint64_t now);
/* When the wait ends at the latest (0 = nothing pending). */
uint64_t lease_handover_deadline(const LeaseHandover *h, const LeaseParams *p);
void lease_handover_done(LeaseHandover *h);
