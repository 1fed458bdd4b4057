/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The seal/open layer of [Cluster] Encrypt=yes, shared by the gossip and channel codecs: a
 * datagram that the codec already built and authenticated (HMAC) is wrapped whole into
 *
 *   magic (4 bytes, in clear) | nonce (24 random bytes) | XChaCha20-Poly1305(plain) | tag (16)
 *
 * under the AEAD key derived from the keyring's primary key (keyring_aead_key()), with the magic
 * as associated data (a gossip envelope cannot be opened as a channel one). Nothing else is in
 * clear: not the cluster name, node names, ids, epochs or election names.
 *
 * Nonces: 192 random bits per packet (libsodium's randombytes), no state. A repeat under one key
 * is a birthday collision in 2^192, negligible however often the daemon restarts, which is why
 * this extended-nonce AEAD was chosen over 96-bit-nonce ones (see docs/DESIGN.md).
 *
 * Opening tries every installed key (a key rotation never loses a packet), primary first.
 * Replay protection stays the inner codec's (epoch + sequence window under the HMAC).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEAL_MAGIC_SIZE  4
#define SEAL_NONCE_SIZE  24
#define SEAL_TAG_SIZE    16
#define SEAL_HEADER_SIZE (SEAL_MAGIC_SIZE + SEAL_NONCE_SIZE)
#define SEAL_OVERHEAD    (SEAL_HEADER_SIZE + SEAL_TAG_SIZE)

typedef struct Keyring Keyring;

/* Seals plain (plain_size bytes) into out, which needs plain_size + SEAL_OVERHEAD bytes; out may
 * equal plain - SEAL_HEADER_SIZE (in place). -EMSGSIZE if out is too small, -EINVAL without a key. */
int seal_packet(const Keyring *k, const char magic[static SEAL_MAGIC_SIZE], const void *plain, size_t plain_size,
                uint8_t *out, size_t out_size, size_t *ret_size);
/* Opens an envelope into out (at least size - SEAL_OVERHEAD bytes). Returns the index of the key
 * that opened it; -EBADMSG if it is not an envelope of this magic, too short, or no installed key
 * opens it (wrong key, tampered, truncated); -EMSGSIZE if out is too small. */
int seal_open(const Keyring *k, const char magic[static SEAL_MAGIC_SIZE], const void *in, size_t size,
              uint8_t *out, size_t out_size, size_t *ret_size);
/* Whether buf starts with magic (so a codec can tell a sealed packet from a plaintext one). */
bool seal_has_magic(const void *buf, size_t size, const char magic[static SEAL_MAGIC_SIZE]);

/* One direction of a sealed stream (the Raft transport): a fresh key per connection and a
 * counter nonce, so a (key, nonce) pair never repeats. Records are
 *   u32 length (big-endian, of what follows; the associated data) | ciphertext | tag */
#define SEAL_STREAM_KEY_SIZE   32
#define SEAL_RECORD_HEADER     4
#define SEAL_RECORD_PLAIN_MAX  (64 * 1024)
#define SEAL_RECORD_MAX        (SEAL_RECORD_HEADER + SEAL_RECORD_PLAIN_MAX + SEAL_TAG_SIZE)

typedef struct SealStream {
        uint8_t key[SEAL_STREAM_KEY_SIZE];
        uint64_t counter;
} SealStream;

/* Derives both directions' keys of a connection from the AEAD key of keyring key `key_index`
 * and the handshake's two random nonces; the client sends with *c2s, the server with *s2c. */
int seal_stream_keys(const Keyring *k, size_t key_index, const char *cluster, const uint8_t *client_nonce,
                     const uint8_t *server_nonce, size_t nonce_size, SealStream *ret_c2s, SealStream *ret_s2c);
/* Seals plain (<= SEAL_RECORD_PLAIN_MAX) into a record of plain_size + SEAL_RECORD_HEADER +
 * SEAL_TAG_SIZE bytes at out. */
int seal_stream_seal(SealStream *s, const void *plain, size_t plain_size, uint8_t *out);
/* The length a record header announces (ciphertext + tag), or -EBADMSG if out of bounds. */
int seal_stream_record_size(const uint8_t header[static SEAL_RECORD_HEADER]);
/* Opens one whole record (header included) into out (record_size - header - tag bytes); the
 * records must arrive in order. -EBADMSG on a bad tag (tampered, reordered, replayed). */
int seal_stream_open(SealStream *s, const uint8_t *record, size_t record_size, uint8_t *out, size_t *ret_size);
void seal_stream_wipe(SealStream *s);
