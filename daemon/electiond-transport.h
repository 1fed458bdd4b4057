/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The Raft transport of a clustered node: TCP (IPv4 or IPv6, "ip:port" / "[ip6]:port" /
 * "[fe80::1%eth0]:port"), where
 * every connection first passes a mutual HMAC-SHA256 challenge-response under the cluster key
 * before libraft sees the stream:
 *
 *   client → server  HELLO     "EDRT" u8 version, 32-byte client nonce
 *   server → client  CHALLENGE 32-byte server nonce, MAC("srv", cn, sn)
 *   client → server  AUTH      MAC("cli", cn, sn, id, address), u64 id, u16 len, address
 *   server → client  OK        one byte
 *
 * MAC(x…) = HMAC-SHA256(key, "electiond-raft-v1" ‖ cluster name ‖ x…). With a keyring (several
 * installed keys, electiond-keyring.h) the server MACs its CHALLENGE under its primary key; the
 * client checks it against every installed key and MACs its AUTH under the key that matched; the
 * server checks AUTH against every installed key. So two nodes whose primaries differ still
 * connect as long as the server's primary is installed at the client. Fresh nonces on both sides
 * defeat replays; a server that cannot prove the key is refused by the client, and the other way
 * round. Failures are counted and logged at debug level, never fatal.
 *
 * Encrypt=yes (keyring_encrypts() at the time of the handshake): HELLO's magic is "EDRS"; AUTH is
 *   MAC("cli", …) as above, then one sealed record (electiond-seal.h) holding u64 id, u16 len and
 *   the address zero-padded to 255 bytes
 * and everything after OK is a sealed stream both ways: records of u32 length, XChaCha20-Poly1305
 * ciphertext, tag, under per-connection keys HKDF(AEAD key of the key the CHALLENGE was proved
 * under, cluster name, both nonces) with counter nonces (fresh keys per connection: no nonce can
 * repeat, across restarts too). libraft gets the plain end of a local socketpair, a relay in the
 * same loop seals and opens. A server whose Encrypt= differs from the HELLO's refuses it with a
 * rate-limited error log (AuthTransportStats.mismatched).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct raft_uv_transport;
struct uv_loop_s;

typedef struct AuthTransportStats {
        uint64_t accepted;
        uint64_t connected;
        uint64_t rejected_in;   /* inbound handshakes that failed (bad MAC, garbage, timeout) */
        uint64_t rejected_out;  /* outbound handshakes that failed */
        uint64_t mismatched;    /* inbound ones refused because the peer's Encrypt= differs (in rejected_in too) */
} AuthTransportStats;

/* Creates an initialized transport (version 1) for raft_uv_init(). key is copied. */
int auth_transport_new(struct uv_loop_s *loop, const void *key, size_t key_size, const char *cluster_name,
                       struct raft_uv_transport **ret);
/* After the transport was closed (raft_uv's close runs transport->close first). NULL is fine. */
void auth_transport_free(struct raft_uv_transport *t);
/* Shares keyring (a reference is kept; keyring_assign() on it applies to the next handshake). */
typedef struct Keyring Keyring;
int auth_transport_set_keyring(struct raft_uv_transport *t, Keyring *keyring);
void auth_transport_get_stats(const struct raft_uv_transport *t, AuthTransportStats *ret);

/* After authentication, before libraft sees an inbound connection: may a server that proved
 * the key claim this Raft id and address from where it connects? (A cloned state directory
 * gives two machines one id; a Raft id with two logs would break consensus.) */
typedef bool (*AuthTransportIdentityFn)(void *userdata, uint64_t id, const char *address,
                                        const struct sockaddr_storage *peer);
void auth_transport_set_identity_check(struct raft_uv_transport *t, AuthTransportIdentityFn fn, void *userdata);

/* Where to connect to server id whose configured address is `address`: 0 and *ret filled, or
 * negative to use the address string itself. Lets a node reach a peer on another family than
 * the string's (mixed IPv4/IPv6 clusters) and give a link-local address its scope. */
typedef int (*AuthTransportResolveFn)(void *userdata, uint64_t id, const char *address, struct sockaddr_storage *ret);
void auth_transport_set_resolver(struct raft_uv_transport *t, AuthTransportResolveFn fn, void *userdata);
/* Listen on [::]:port (dual-stack) instead of the configured address itself; set before listen. */
void auth_transport_set_listen_any(struct raft_uv_transport *t, bool any);

/* Exposed for tests. */
#define AUTH_TRANSPORT_HANDSHAKE_TIMEOUT_MSEC 2000
/* TCP_USER_TIMEOUT of every Raft connection: data unacknowledged this long ends it. Without it a
 * connection whose peer vanished inside a cut (its FIN/RST lost) stays "established" while the
 * retransmission timer doubles (…6.4, 12.8, 25.6 s), and the peer hears nothing on it for that
 * long after the heal; with it libraft reconnects within a second of the heal. Heartbeats go
 * every 30 ms, so a live peer acknowledges well within it. */
#define AUTH_TRANSPORT_USER_TIMEOUT_MSEC 1000
