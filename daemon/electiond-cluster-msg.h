/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The cluster channel's messages (the payload of a ChannelPacket, electiond-channel.h): one struct
 * per type, encoded little-endian, decoded with bounds checks (-EBADMSG for anything of the wrong
 * size). Pure; the formats are the wire formats of docs/DESIGN.md "Wire protocols" and must not
 * change. FORWARD carries an encoded command batch as it is, NOT_MEMBER carries nothing.
 */

#include <glib.h>
#include <stdint.h>

/* 1 (LEASE_REQ), 2 (LEASE_ACK) and 5 (APPLIED) were the first formats: they are ignored now (an
 * old node gets no lease from us: the safe direction). */
typedef enum ClusterMsgType {
        CLUSTER_MSG_EXPIRED_Q = 3,  /* u64 target (lease id), u64 ask id */
        CLUSTER_MSG_EXPIRED_A = 4,  /* u64 target, u64 ask id, u8 yes */
        CLUSTER_MSG_FORWARD = 6,    /* an encoded command batch */
        CLUSTER_MSG_JOIN = 7,       /* u64 raft id, raft address */
        CLUSTER_MSG_NOT_MEMBER = 8, /* from the Raft leader: your server id is not in the configuration */
        CLUSTER_MSG_LEASE_REQ = 9,  /* u64 seq, u64 applied, u64 settings fingerprint, u64 µs without lease, name */
        CLUSTER_MSG_LEASE_ACK = 10, /* u64 seq, u64 the requester's channel epoch (an ack never outlives its run) */
        CLUSTER_MSG_APPLIED = 11,   /* u64 confirmed index, u64 attesting index, u16 n, n × u64 lease ids attested */
        CLUSTER_MSG_NAME_IN_USE = 12, /* from the Raft leader: your commands' name belongs to another node id */
} ClusterMsgType;

#define CLUSTER_MSG_NAME_MAX 255     /* LEASE_REQ name bytes */
#define CLUSTER_MSG_ADDRESS_MAX 63   /* JOIN address bytes */

typedef struct ClusterLeaseReq {
        uint64_t seq;
        uint64_t applied;
        uint64_t fingerprint;
        uint64_t without_usec;
        char *name;              /* 1..CLUSTER_MSG_NAME_MAX bytes (decoded: allocated, ends at a NUL inside) */
} ClusterLeaseReq;

typedef struct ClusterLeaseAck {
        uint64_t seq;
        uint64_t epoch;
} ClusterLeaseAck;

typedef struct ClusterExpiredQ {
        uint64_t target;
        uint64_t ask_id;
} ClusterExpiredQ;

typedef struct ClusterExpiredA {
        uint64_t target;
        uint64_t ask_id;
        uint8_t yes;
} ClusterExpiredA;

typedef struct ClusterApplied {
        uint64_t confirmed_index;
        uint64_t attest_index;
        uint64_t *attested;      /* lease ids; decoded: allocated */
        size_t n_attested;       /* at most UINT16_MAX */
} ClusterApplied;

typedef struct ClusterJoin {
        uint64_t raft_id;
        char *address;           /* 1..CLUSTER_MSG_ADDRESS_MAX bytes (decoded: allocated) */
} ClusterJoin;

/* Encoders return a new array (g_byte_array_unref()). */
GByteArray *cluster_msg_lease_req_encode(const ClusterLeaseReq *m);
GByteArray *cluster_msg_lease_ack_encode(const ClusterLeaseAck *m);
GByteArray *cluster_msg_expired_q_encode(const ClusterExpiredQ *m);
GByteArray *cluster_msg_expired_a_encode(const ClusterExpiredA *m);
GByteArray *cluster_msg_applied_encode(const ClusterApplied *m);
GByteArray *cluster_msg_join_encode(const ClusterJoin *m);

/* 0 or -EBADMSG; on success the allocated fields (name, address: g_free(); attested:
 * cluster_applied_done()) are the caller's. */
int cluster_msg_lease_req_decode(const void *data, size_t size, ClusterLeaseReq *ret);
int cluster_msg_lease_ack_decode(const void *data, size_t size, ClusterLeaseAck *ret);
int cluster_msg_expired_q_decode(const void *data, size_t size, ClusterExpiredQ *ret);
int cluster_msg_expired_a_decode(const void *data, size_t size, ClusterExpiredA *ret);
int cluster_msg_applied_decode(const void *data, size_t size, ClusterApplied *ret);
int cluster_msg_join_decode(const void *data, size_t size, ClusterJoin *ret);

void cluster_applied_done(ClusterApplied *m);
