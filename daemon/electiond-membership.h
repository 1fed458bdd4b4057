/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SWIM-style membership and failure detection, as pure rules: no sockets, no clocks. The caller
 * passes the time (CLOCK_BOOTTIME usec) into every call, calls membership_tick() at
 * membership_next_deadline(), feeds received messages into membership_receive(), and sends what
 * the returned actions say. Members are keyed by node name.
 *
 * Timing (defaults for a LAN, ProbeIntervalSec=0.1):
 *   - every probe interval one member is probed round-robin over a shuffled list, plus every
 *     "watched" member (voters, owners of leaders) so that their silence is seen within one
 *     interval (in groups of up to watch_all_max = 7 members, all of them), plus every suspect (each packet to a suspect tells it first, so that its ack
 *     already carries the refutation);
 *   - direct probe timeout T_p = probe_timeout × (1 + awareness); then one direct retry plus
 *     ping-req through k = indirect_checks random members; no ack within
 *     probe_interval × (1 + awareness) → the target is suspected;
 *   - suspicion timeout: S_min = suspicion_mult × max(1, log10 N) × probe_interval,
 *     S_max = suspicion_max_mult × S_min, shrinking from S_max to S_min as independent suspicions
 *     arrive: S(c) = max(S_min, S_max − (S_max − S_min) × log(c + 1) / log(K + 1)),
 *     K = min(indirect_checks, N − 2); for watched members (probed every interval, so that
 *     NodeTimeout of silence is itself ≥ 4 failed rounds) S = watched_suspicion (200 ms);
 *     all scaled by (1 + awareness);
 *   - a suspect is declared dead at max(suspected_at + S(c), last_contact + node_timeout):
 *     never before node_timeout has passed since this node last heard from it. DEAD gossip
 *     from others makes it suspect and dead at our own last_contact + node_timeout.
 * Local health (Lifeguard): "awareness" grows when our own probes fail and when we must refute a
 * suspicion of ourselves, shrinks on successful probes, and scales the timeouts above. A tick that
 * fires late (we were paused/starved) shifts every contact time forward by the stall and keeps us
 * from suspecting anyone for a while: we could not have heard them. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMBER_NAME_MAX       255
#define MEMBER_ADDRESSES_MAX  8
#define MEMBER_TAGS_MAX       256
#define MEMBERSHIP_MEMBERS_MAX 1024     /* more than any LAN cluster; bounds memory */

/* No padding: compared with memcmp(). */
typedef struct MemberAddress {
        uint8_t family;         /* AF_INET or AF_INET6 */
        uint8_t reserved;       /* 0 */
        uint16_t port;          /* host byte order */
        uint8_t addr[16];       /* IPv4 uses the first 4 bytes */
} MemberAddress;

typedef enum MemberState {
        MEMBER_ALIVE,
        MEMBER_SUSPECT,
        MEMBER_DEAD,
        MEMBER_LEFT,
        _MEMBER_STATE_MAX,
} MemberState;

const char *member_state_to_string(MemberState s);

typedef enum GossipMessageType {
        GOSSIP_PING = 1,        /* seq, target ("" = whoever answers: discovery) */
        GOSSIP_PING_REQ = 2,    /* seq, target, target addresses: probe target for me */
        GOSSIP_ACK = 3,         /* seq */
        GOSSIP_ALIVE = 4,       /* name, node_id, incarnation, addresses, tags */
        GOSSIP_SUSPECT = 5,     /* name, incarnation, from, silent_usec */
        GOSSIP_DEAD = 6,        /* name, incarnation, from, silent_usec */
        GOSSIP_LEFT = 7,        /* name, incarnation */
        GOSSIP_NACK = 8,        /* seq: a relay could not reach the target (Lifeguard) */
        GOSSIP_USER = 9,        /* seq: kind, tags: payload; decoded, but nothing sends or uses it any more */
        _GOSSIP_MESSAGE_TYPE_MAX,
} GossipMessageType;

/* Fixed-size so that messages can be copied and queued without ownership questions. */
typedef struct GossipMessage {
        uint8_t type;                           /* GossipMessageType */
        uint32_t seq;                           /* PING, PING_REQ, ACK */
        char name[MEMBER_NAME_MAX + 1];         /* PING/PING_REQ: target; others: subject */
        char from[MEMBER_NAME_MAX + 1];         /* SUSPECT/DEAD: who is suspecting */
        uint64_t node_id;                       /* ALIVE */
        uint64_t incarnation;                   /* ALIVE, SUSPECT, DEAD, LEFT */
        uint64_t silent_usec;                   /* SUSPECT/DEAD: how long "from" has not heard it */
        uint8_t n_addresses;                    /* ALIVE, PING_REQ */
        MemberAddress addresses[MEMBER_ADDRESSES_MAX];
        uint16_t tags_size;                     /* ALIVE */
        uint8_t tags[MEMBER_TAGS_MAX];
} GossipMessage;

/* Bytes this message takes in a packet (the codec in electiond-wire.c uses the same layout). */
size_t gossip_message_wire_size(const GossipMessage *msg);
bool gossip_message_valid(const GossipMessage *msg);

typedef struct MembershipParams {
        uint64_t probe_interval_usec;   /* 100 ms */
        uint64_t probe_timeout_usec;    /* 40 ms: direct ack deadline */
        uint64_t node_timeout_usec;     /* 500 ms: never dead before this much silence */
        unsigned indirect_checks;       /* k = 3 */
        unsigned suspicion_mult;        /* 4 */
        unsigned suspicion_max_mult;    /* 3 */
        uint64_t watched_suspicion_usec; /* 200 ms: S for watched members, see above */
        unsigned watch_all_max;         /* 7: with at most this many members (self included),
                                         * every member counts as watched */
        unsigned retransmit_mult;       /* λ = 4: each update sent λ × ceil(log10(N + 1)) times */
        unsigned awareness_max;         /* 8 */
        size_t max_packet_payload;      /* bytes of messages per packet, 1200 */
        uint32_t random_seed;           /* 0 = random */
} MembershipParams;

void membership_params_init_defaults(MembershipParams *p);

typedef struct Member {
        char name[MEMBER_NAME_MAX + 1];
        uint64_t node_id;
        uint64_t incarnation;
        MemberState state;
        MemberAddress addresses[MEMBER_ADDRESSES_MAX];
        size_t n_addresses;
        uint8_t tags[MEMBER_TAGS_MAX];
        size_t tags_size;
        bool is_self;
        bool watched;
        uint64_t last_contact_usec;     /* latest time it is known to have been alive (our clock) */
        uint64_t state_change_usec;
        uint64_t suspected_usec;
        bool dead_reported;             /* someone declared it dead; we wait for our own NodeTimeout */
        uint64_t last_notice_usec;      /* we last told it our current incarnation */
        /* Who (including us) suspects it, and since when (our clock) they have not heard it. */
        size_t n_suspectors;
        struct {
                char name[MEMBER_NAME_MAX + 1];
                uint64_t silent_since_usec;
        } suspectors[8];
} Member;

typedef enum MembershipEvent {
        MEMBERSHIP_EVENT_JOINED,        /* new member, alive */
        MEMBERSHIP_EVENT_ALIVE,         /* suspect/dead/left → alive (refuted or came back) */
        MEMBERSHIP_EVENT_SUSPECT,
        MEMBERSHIP_EVENT_DEAD,
        MEMBERSHIP_EVENT_LEFT,
        MEMBERSHIP_EVENT_UPDATED,       /* addresses or tags changed */
        _MEMBERSHIP_EVENT_MAX,
} MembershipEvent;

const char *membership_event_to_string(MembershipEvent e);

typedef struct Membership Membership;
typedef void (*MembershipEventFunc)(Membership *m, MembershipEvent event, const Member *member, void *userdata);

/* One packet to send: to a member (to_name) or, for discovery, to an address only. The caller
 * sends one copy to each address (the ack is deduplicated by seq). */
typedef struct MembershipAction {
        char to_name[MEMBER_NAME_MAX + 1];      /* "" for discovery */
        MemberAddress addresses[MEMBER_ADDRESSES_MAX];
        size_t n_addresses;
        GossipMessage *messages;                /* messages[0] is always ALIVE(self) */
        size_t n_messages;
} MembershipAction;

typedef struct MembershipActions {
        MembershipAction *items;
        size_t n, allocated;
} MembershipActions;

void membership_actions_clear(MembershipActions *a);

typedef struct MembershipStats {
        uint64_t probes_sent;
        uint64_t probes_failed;         /* → we suspected the target */
        uint64_t suspicions_refuted;    /* of ourselves */
        uint64_t declared_dead;         /* by us */
        uint64_t name_conflicts;
        uint64_t stalls;                /* late ticks noticed */
        uint64_t members_refused;       /* table full */
} MembershipStats;

Membership *membership_new(
                const MembershipParams *params,
                const char *self_name,
                uint64_t self_node_id,
                uint64_t incarnation,
                const MemberAddress *addresses, size_t n_addresses,
                const void *tags, size_t tags_size,
                uint64_t now,
                MembershipEventFunc callback, void *userdata);
Membership *membership_free(Membership *m);

/* Runs everything due at now (probe rounds, probe deadlines, suspicion timeouts). */
int membership_tick(Membership *m, uint64_t now, MembershipActions *actions);
/* When membership_tick() must be called next. */
uint64_t membership_next_deadline(const Membership *m);
/* When the next probe round starts (UINT64_MAX while leaving). Rounds come every probe interval
 * at a fixed phase, so other periodic work can share their wake-ups (the cluster's lease tick). */
uint64_t membership_next_probe_usec(const Membership *m);
/* A decoded packet: messages[0] must be ALIVE(sender). from_address is where it came from
 * (used if the sender did not advertise an address). Returns -EBADMSG if the packet is not
 * acceptable (nothing was changed then). */
int membership_receive(Membership *m, const GossipMessage *messages, size_t n_messages,
                       const MemberAddress *from_address, uint64_t now, MembershipActions *actions);
/* Discovery/seed: ask whoever listens at address to introduce itself. */
int membership_ping_address(Membership *m, const MemberAddress *address, uint64_t now, MembershipActions *actions);
/* Graceful leave: tell up to a few members at once; the rest learn by gossip. */
int membership_leave(Membership *m, uint64_t now, MembershipActions *actions);
/* New addresses/tags for ourselves: bumps our incarnation and gossips it. */
int membership_update_self(Membership *m, const MemberAddress *addresses, size_t n_addresses,
                           const void *tags, size_t tags_size);
/* Watched members are probed every interval (voters, nodes owning leaders). */
int membership_set_watched(Membership *m, const char *name, bool watched);

const Member *membership_get_self(const Membership *m);
const Member *membership_get(const Membership *m, const char *name);
size_t membership_size(const Membership *m);     /* members, self included, any state */
size_t membership_count_alive(const Membership *m); /* alive + suspect, self included */
/* Calls f for every member (self included), in no particular order. */
void membership_foreach(const Membership *m, void (*f)(const Member *member, void *userdata), void *userdata);
const MembershipStats *membership_stats(const Membership *m);

