/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Inside the cluster controller only: the Cluster object and what its three files share.
 * electiond-cluster.c (gossip, channel, lifecycle, forwarding), electiond-cluster-lease.c (leases,
 * fencing, failure -> DROP_NODE, hand-over confirmations), electiond-cluster-raft.c (the engine's
 * start, bootstrap and join, Raft configuration changes, witnesses, protocol version, removal).
 */

#include <sys/stat.h>
#include <ftw.h>

#include "electiond-address.h"
#include "electiond-channel.h"
#include "electiond-cluster.h"
#include "electiond-gossip.h"
#include "electiond-keyring.h"
#include "electiond-lease.h"
#include "electiond-transport.h"


#define TAGS_VERSION 1
/* 20 bytes in v0.1.0, which reads the first 20 of longer tags; byte 20 (protocol 2 on) is the
 * highest protocol version the node speaks: absent = 1. */
#define TAGS_SIZE 21
#define TAG_HAS_STATE   (1u << 0)
#define TAG_RAFT_LEADER (1u << 1)
#define TAG_WITNESS     (1u << 2) /* [Node] Witness=yes: always a voter, never holds candidacies */
#define BOOTSTRAP_STABLE_ROUNDS 4
#define JOIN_RETRY_USEC (300 * USEC_PER_MSEC)
#define PROTOCOL_RETRY_USEC (1 * USEC_PER_SEC)

typedef struct Tags {
        uint8_t version;
        uint8_t flags;
        uint64_t cluster_id;
        uint16_t raft_port;
        uint64_t fingerprint; /* of the timing settings; 0 = not told */
        uint8_t protocol;     /* highest protocol version it speaks; 1 when not told */
} Tags;

typedef struct Peer {
        char *name;
        uint64_t node_id;
        MemberState state;
        uint64_t dead_since; /* boottime µs, 0 when alive */
        uint64_t applied;    /* highest log index it confirmed (APPLIED) */
        bool have_address;
        MemberAddress addresses[MEMBER_ADDRESSES_MAX]; /* what it advertises (gossip port) */
        size_t n_addresses;
        Tags tags;
        uint64_t attest_index;  /* its latest attestation (rule 4): at this applied index ... */
        GArray *attested;       /* ... these lease ids hold no grant of its (u64) */
        uint64_t mismatch_logged; /* when we last logged that its timing settings differ */
        uint64_t protocol_logged; /* when we last refused its JOIN for its protocol version */
} Peer;

typedef struct DropVote {
        uint64_t target;     /* lease id */
        char *node;
        uint64_t ask_id;
        uint64_t first_ask_id; /* answers to any ask since this one count */
        uint64_t asked_at;
        uint64_t submitted_at;
        GHashTable *yes;     /* raft ids of voters that answered yes (each then fences the node) */
} DropVote;

struct Cluster {
        sd_event *event;
        const Config *config;
        char *state_dir;
        char *raft_dir;
        char *node_name;
        uint64_t node_id;
        uint64_t lease_id; /* our identity in leases: a hash of the node name */
        uint64_t cluster_id;
        uint64_t started;
        uint64_t channel_epoch;    /* ours; acks must echo it */
        uint64_t fingerprint;      /* lease_params_fingerprint() of our timing settings */
        uint64_t identity_logged;  /* when we last logged a refused duplicate Raft identity */
        bool identity_conflict;    /* we are the newer twin: exiting, and saying nothing in our name */
        bool bootstrap_refused_logged;

        Keyring *keyring;          /* shared with gossip, channel and transport; reload assigns in place */
        EngineCallbacks engine_cb;
        void *engine_userdata;
        ClusterHooks hooks;
        void *userdata;

        Gossip *gossip;
        Channel *channel;
        Engine *engine;
        bool was_member;

        GHashTable *peers; /* name → Peer */

        LeaseParams lease_params;
        LeaseRequester *requester;
        LeaseGranter *granter;
        uint64_t last_stored;
        bool stored_noted;         /* the granter has heard of our log at least once */
        uint64_t applied_changed_at; /* when confirmed_index last moved: APPLIED is resent for a while */
        GHashTable *handovers; /* election name → LeaseHandover* */
        bool last_quorate;

        GHashTable *drops; /* node name → DropVote */
        uint64_t next_ask_id;
        const ElectionState *state;
        void (*submit_drop)(void *userdata, const char *node);
        void (*submit_protocol)(void *userdata, unsigned version);
        unsigned protocol_pending;     /* SET_PROTOCOL submitted at protocol_submitted_at */
        uint64_t protocol_submitted_at;

        sd_event_source *tick;
        sd_event_source *deadline;
        sd_event_source *post;

        /* bootstrap */
        char *bootstrap_view;
        unsigned bootstrap_stable;
        uint64_t join_sent_at;
        bool links_up;
        bool conflict;
        uint8_t last_tags[TAGS_SIZE];
        bool change_in_flight;
        /* Hand-over confirmations (APPLIED) mean "applied, and my leader units are stopped":
         * while a demotion's stops run they wait (at most the hand-over wait). Leases never do. */
        uint64_t confirmed_index;
        uint64_t applying_index;   /* newest entry the manager applied (see confirm_applied) */
        uint64_t lead_change_index; /* newest applied entry that moved any election's lead */
        /* Nodes that own candidacies, rebuilt only after the state changed: scanning 10,000
         * elections every probe interval was most of an idle leader's CPU. */
        GHashTable *owners;        /* node name (owned) */
        bool owners_dirty;
        uint64_t unconfirmed_since;
        GHashTable *standby; /* raft ids we made stand-bys (EngineServer has no spare/standby bit) */

        /* --force-new-cluster / --restore (issue 11 §7): before the engine starts we listen to
         * gossip until force_deadline; a live member of the old cluster makes us refuse. */
        bool force_new;
        bool force_restore;
        uint64_t force_deadline;
};

typedef struct Servers {
        EngineServer *items;
        size_t n;
} Servers;

/* electiond-cluster.c */
uint64_t name_hash(const char *s);
int write_u64_file(const char *path, uint64_t v);
uint64_t random_u64(void);
bool raft_dir_has_state(const char *dir);
bool tags_decode(const uint8_t *p, size_t n, Tags *ret);
Peer *peer_by_id(Cluster *c, uint64_t id);
uint64_t now_usec(void);
void notify_status(Cluster *c);
void servers_done(Servers *s);
bool servers_get(Cluster *c, Servers *ret);
bool is_voter(const Servers *s, uint64_t id);
bool in_servers(const Servers *s, uint64_t id);
size_t count_voters(const Servers *s);
const MemberAddress *pick_address(Cluster *c, const MemberAddress *addrs, size_t n, int prefer_family);
void send_to_peer(Cluster *c, const Peer *p, uint8_t type, const void *data, size_t size);
void send_to_id(Cluster *c, uint64_t id, uint8_t type, const void *data, size_t size);
void update_tags(Cluster *c);

/* electiond-cluster-lease.c */
void update_voters(Cluster *c, const Servers *s);
void lease_round(Cluster *c, const Servers *s, uint64_t now);
void log_mismatch(Cluster *c, Peer *p, uint64_t now);
void on_lease_req(Cluster *c, const ChannelPacket *p, uint64_t now);
void check_quorum(Cluster *c, uint64_t now);
void on_lease_ack(Cluster *c, const ChannelPacket *p, uint64_t now);
int on_deadline(sd_event_source *s, uint64_t usec, void *userdata);
void drive_drops(Cluster *c, const Servers *s, uint64_t now);
void on_expired_q(Cluster *c, const ChannelPacket *p, uint64_t now);
void on_expired_a(Cluster *c, const ChannelPacket *p, uint64_t now);
void broadcast_applied(Cluster *c);
void on_applied(Cluster *c, const ChannelPacket *p, uint64_t now);

/* electiond-cluster-raft.c */
int start_engine(Cluster *c, const EngineServer *bootstrap, size_t n_bootstrap);
void bootstrap_or_join(Cluster *c, uint64_t now);
void maybe_send_join(Cluster *c, const Servers *s, uint64_t now);
void maybe_raise_protocol(Cluster *c, const Servers *s, uint64_t now);
void on_join(Cluster *c, const ChannelPacket *p);
void maintain_configuration(Cluster *c, const Servers *s, uint64_t now);
void mark_removed(Cluster *c);
void forget_membership_if_removed(const char *state_dir, const char *raft_dir);
