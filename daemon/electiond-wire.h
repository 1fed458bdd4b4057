/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Gossip packet codec. No I/O, no clocks.
 *
 * Packet (integers big-endian):
 *   magic "ELGP" | version u8 (1) | cluster name: len u8 + bytes | sender node id u64 |
 *   sender epoch u64 | sender seq u64 | messages… | HMAC-SHA256 (32 bytes)
 *   message = type u8 | body length u16 | body (layout: gossip_message_wire_size())
 * The HMAC, keyed with the cluster key, covers every byte before it.
 *
 * Replay protection: per sender node id we keep its epoch (the sender picks a larger one at every
 * start: realtime at start, in usec) and a 64-packet sliding window of sequence numbers. A packet
 * from an older epoch, older than the window, or already seen is dropped. The window is updated
 * only by authenticated, well-formed packets, so forged packets cannot disturb it
 * (electiond-replay.h, shared with the cluster channel).
 *
 * Encrypt=yes (keyring_encrypts()): the whole packet above is sealed (electiond-seal.h) into
 *   magic "ELGS" | nonce (24) | XChaCha20-Poly1305 ciphertext | tag (16)
 * and only such envelopes are accepted; an "ELGP" packet is then dropped as "plaintext", and a
 * node without encryption drops an "ELGS" one as "encrypted" (the two settings differ). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "electiond-membership.h"

#define WIRE_MAGIC              "ELGP"
#define WIRE_VERSION            1       /* sent; unchanged since v0.1.0 */
#define WIRE_VERSION_MIN        1       /* oldest accepted (v0.1.0's); see docs/DESIGN.md "Versions" */
#define WIRE_HMAC_SIZE          32
#define WIRE_PACKET_MAX         1400    /* stays below a 1500 MTU for IPv4 and IPv6 */
#define WIRE_MESSAGES_MAX       128
#define WIRE_REPLAY_WINDOW      64
#define WIRE_SENDERS_MAX        1024
#define WIRE_KEY_MIN            16
#define WIRE_SEALED_MAGIC       "ELGS"
#define WIRE_SEAL_OVERHEAD      (4 + 24 + 16)   /* SEAL_OVERHEAD */
/* An encrypted packet of a WIRE_PACKET_MAX one: 1444 bytes, still below a 1500 MTU (IPv6 too). */
#define WIRE_SEALED_MAX         (WIRE_PACKET_MAX + WIRE_SEAL_OVERHEAD)

typedef enum WireDrop {
        WIRE_DROP_MALFORMED,    /* truncated, bad lengths, invalid fields */
        WIRE_DROP_MAGIC,        /* not a gossip packet */
        WIRE_DROP_VERSION,
        WIRE_DROP_CLUSTER,      /* another cluster name */
        WIRE_DROP_AUTH,         /* HMAC mismatch: wrong key or tampered */
        WIRE_DROP_REPLAY,       /* old epoch, below the window, or seen */
        WIRE_DROP_SELF,         /* our own packet (multicast loop) */
        WIRE_DROP_PLAINTEXT,    /* plaintext while Encrypt=yes here */
        WIRE_DROP_ENCRYPTED,    /* encrypted while Encrypt=no here */
        _WIRE_DROP_MAX,
} WireDrop;

const char *wire_drop_to_string(WireDrop d);

typedef struct Wire Wire;

typedef struct WirePacketInfo {
        uint64_t sender_id;
        uint64_t epoch;
        uint64_t seq;
} WirePacketInfo;

/* key: the cluster secret, at least WIRE_KEY_MIN bytes. epoch: larger at every start. */
Wire *wire_new(const char *cluster_name, const void *key, size_t key_size, uint64_t self_id, uint64_t epoch);
Wire *wire_free(Wire *w);
/* Shares keyring (a reference is kept; keyring_assign() on it reaches this wire): packets are
 * signed with its primary and accepted under any of its keys. Every key >= WIRE_KEY_MIN. */
typedef struct Keyring Keyring;
int wire_set_keyring(Wire *w, Keyring *keyring);
/* A larger epoch from now on (see channel_codec_set_epoch). */
void wire_set_epoch(Wire *w, uint64_t epoch);

/* Encodes msgs into buf (WIRE_PACKET_MAX is enough for what membership builds). -EMSGSIZE if
 * it does not fit, -EINVAL for invalid messages. Each call uses the next sequence number. */
int wire_encode(Wire *w, const GossipMessage *msgs, size_t n_msgs, uint8_t *buf, size_t buf_size, size_t *ret_size);

/* Verifies and decodes. On success returns the number of messages stored in msgs (unknown
 * message types are skipped). On failure, counts the reason and returns -EBADMSG (malformed,
 * magic, version), -EXDEV (cluster), -EPERM (auth, also an envelope no key opens), -EALREADY
 * (replay), -ELOOP (self), -EPROTO (plaintext, Encrypt=yes here) or -EPROTONOSUPPORT (encrypted,
 * Encrypt=no here). With Encrypt=yes, encoding needs WIRE_SEAL_OVERHEAD more bytes in buf.
 * -ENOTUNIQ: authenticated, with our own sender id but another epoch (a previous run of ours, or
 * a twin with a copy of our state); *ret_info is filled then, and no messages are decoded.
 * -EALREADY fills *ret_info too (the packet authenticated: an older epoch of the sender than the
 * newest one seen is a replay, a straggler of its previous run, or a live twin of it). */
int wire_decode(Wire *w, const void *buf, size_t size, WirePacketInfo *ret_info,
                GossipMessage *msgs, size_t max_msgs);

/* Forget a sender's replay window, e.g. once the membership declared it dead or left: its next
 * life is then accepted even if its clock (and so its epoch) went backwards across the restart.
 * Replayed packets of its old life can then pass this check once, but carry nothing newer than
 * what the membership already knows. */
void wire_forget_sender(Wire *w, uint64_t sender_id);

uint64_t wire_drop_count(const Wire *w, WireDrop d);
uint64_t wire_accepted_count(const Wire *w);
