/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The cluster controller's datagrams (leases, expiry votes, applied indexes, forwarded commands,
 * join requests): one UDP socket on Port+1, every packet authenticated like gossip's —
 *
 *   "ELCM" u8 version, u8 cluster-name length, name, u64 sender node id, u64 sender epoch,
 *   u64 seq, u8 type, u32 payload length, payload, HMAC-SHA256(key, everything before)
 *
 * Replay protection: per sender, the newest epoch (a restart picks a larger one) and a 64-entry
 * window of sequence numbers (electiond-replay.h, shared with gossip). Anything malformed,
 * unauthenticated, from another cluster or replayed is dropped and counted. The codec is pure
 * (tested and fuzzed); the socket part only exists once channel_start() is called.
 *
 * Encrypt=yes (keyring_encrypts()): the whole packet is sealed (electiond-seal.h) into "ELCS" |
 * nonce | ciphertext | tag, and only such envelopes are accepted; a plaintext "ELCM" packet is
 * then dropped as "plaintext" (-EPROTO), and a node without encryption drops an envelope as
 * "encrypted" (-EPROTONOSUPPORT). A decoded packet's payload stays valid until the next decode.
 */

#include <glib.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "electiond-util.h"

#define CHANNEL_MAGIC "ELCM"
#define CHANNEL_VERSION 1     /* sent; unchanged since v0.1.0 */
#define CHANNEL_VERSION_MIN 1 /* oldest accepted (v0.1.0's); see docs/DESIGN.md "Versions" */
#define CHANNEL_PAYLOAD_MAX (60 * 1024)
#define CHANNEL_REPLAY_WINDOW 64
#define CHANNEL_SENDERS_MAX 1024
#define CHANNEL_SEALED_MAGIC "ELCS"
#define CHANNEL_SEALED_MAX (CHANNEL_PAYLOAD_MAX + 1024)  /* the receive buffer: header, HMAC and envelope fit */

typedef enum ChannelDrop {
        CHANNEL_DROP_MALFORMED,
        CHANNEL_DROP_CLUSTER,
        CHANNEL_DROP_AUTH,
        CHANNEL_DROP_REPLAY,
        CHANNEL_DROP_SELF,
        CHANNEL_DROP_PLAINTEXT,  /* plaintext while Encrypt=yes here */
        CHANNEL_DROP_ENCRYPTED,  /* encrypted while Encrypt=no here */
        _CHANNEL_DROP_MAX,
} ChannelDrop;

typedef struct ChannelCodec ChannelCodec;

typedef struct ChannelPacket {
        uint64_t sender;
        uint64_t epoch;
        uint64_t seq;
        uint8_t type;
        const uint8_t *payload; /* points into the decoded buffer */
        size_t payload_size;
} ChannelPacket;

ChannelCodec *channel_codec_new(const char *cluster, const void *key, size_t key_size, uint64_t self_id, uint64_t epoch);
/* Shares keyring (a reference is kept): signs with its primary, accepts any of its keys. */
typedef struct Keyring Keyring;
int channel_codec_set_keyring(ChannelCodec *c, Keyring *keyring);
ChannelCodec *channel_codec_free(ChannelCodec *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ChannelCodec, channel_codec_free)
int channel_encode(ChannelCodec *c, uint8_t type, const void *payload, size_t size, GByteArray **ret);
/* 0 on success; -EBADMSG / -EPERM (auth) / -EALREADY (replay) / -ESRCH (other cluster) / -ELOOP (self) /
 * -EPROTO (plaintext, Encrypt=yes here) / -EPROTONOSUPPORT (encrypted, Encrypt=no here). */
int channel_decode(ChannelCodec *c, const void *data, size_t size, ChannelPacket *ret);
uint64_t channel_drop_count(const ChannelCodec *c, ChannelDrop d);
/* A larger epoch from now on (peers then drop what is older from us, including a twin's). */
void channel_codec_set_epoch(ChannelCodec *c, uint64_t epoch);

/* ---- socket ---- */
typedef struct Channel Channel;
typedef void (*ChannelReceiveFn)(Channel *ch, const ChannelPacket *p, const struct sockaddr_storage *from, void *userdata);

/* One UDP socket per family on port: 0.0.0.0 and [::] (IPV6_V6ONLY). channel_new() opens both;
 * an IPv6 socket the system cannot have (no IPv6) is left out unless it is the only family. */
int channel_new(sd_event *event, ChannelCodec *codec /* owned */, uint16_t port, ChannelReceiveFn cb, void *userdata,
                Channel **ret);
int channel_new_families(sd_event *event, ChannelCodec *codec /* owned */, uint16_t port, bool ipv4, bool ipv6,
                         ChannelReceiveFn cb, void *userdata, Channel **ret);
Channel *channel_free(Channel *ch);
/* -EAFNOSUPPORT when we have no socket of to's family. */
int channel_send(Channel *ch, const struct sockaddr_storage *to, uint8_t type, const void *payload, size_t size);
ChannelCodec *channel_get_codec(Channel *ch);
