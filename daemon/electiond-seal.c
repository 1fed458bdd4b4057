/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "electiond-bytes.h"
#include "electiond-keyring.h"
#include "electiond-seal.h"

G_STATIC_ASSERT(SEAL_NONCE_SIZE == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
G_STATIC_ASSERT(SEAL_TAG_SIZE == crypto_aead_xchacha20poly1305_ietf_ABYTES);
G_STATIC_ASSERT(KEYRING_AEAD_KEY_SIZE == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
G_STATIC_ASSERT(SEAL_STREAM_KEY_SIZE == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);

bool seal_has_magic(const void *buf, size_t size, const char magic[static SEAL_MAGIC_SIZE]) {
        return buf && size >= SEAL_MAGIC_SIZE && memcmp(buf, magic, SEAL_MAGIC_SIZE) == 0;
}

int seal_packet(const Keyring *k, const char magic[static SEAL_MAGIC_SIZE], const void *plain, size_t plain_size,
                uint8_t *out, size_t out_size, size_t *ret_size) {
        const uint8_t *key = keyring_aead_key(k, 0);
        unsigned long long n;
        uint8_t nonce[SEAL_NONCE_SIZE];

        if (!key || (!plain && plain_size > 0) || !out)
                return -EINVAL;
        if (out_size < SEAL_OVERHEAD || plain_size > out_size - SEAL_OVERHEAD)
                return -EMSGSIZE;
        randombytes_buf(nonce, sizeof nonce);
        /* libsodium encrypts in place when plain == out + SEAL_HEADER_SIZE: write the header only after */
        if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_HEADER_SIZE, &n, plain, plain_size,
                                                       (const uint8_t *) magic, SEAL_MAGIC_SIZE, NULL, nonce, key) < 0)
                return -EINVAL;
        memcpy(out, magic, SEAL_MAGIC_SIZE);
        memcpy(out + SEAL_MAGIC_SIZE, nonce, SEAL_NONCE_SIZE);
        *ret_size = SEAL_HEADER_SIZE + (size_t) n;
        return 0;
}

int seal_open(const Keyring *k, const char magic[static SEAL_MAGIC_SIZE], const void *in, size_t size,
              uint8_t *out, size_t out_size, size_t *ret_size) {
        const uint8_t *p = in;

        if (!seal_has_magic(in, size, magic) || size < SEAL_OVERHEAD)
                return -EBADMSG;
        if (out_size < size - SEAL_OVERHEAD)
                return -EMSGSIZE;
        /* Primary first: in steady state the only key tried. A failed attempt writes nothing. */
        for (size_t i = 0; i < keyring_size(k); i++) {
                unsigned long long n;

                if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &n, NULL, p + SEAL_HEADER_SIZE, size - SEAL_HEADER_SIZE,
                                                               p, SEAL_MAGIC_SIZE, p + SEAL_MAGIC_SIZE,
                                                               keyring_aead_key(k, i)) == 0) {
                        *ret_size = (size_t) n;
                        return (int) i;
                }
        }
        return -EBADMSG;
}

int seal_stream_keys(const Keyring *k, size_t key_index, const char *cluster, const uint8_t *client_nonce,
                     const uint8_t *server_nonce, size_t nonce_size, SealStream *ret_c2s, SealStream *ret_s2c) {
        const uint8_t *key = keyring_aead_key(k, key_index);
        g_autoptr(GByteArray) info = NULL;
        uint8_t okm[2 * SEAL_STREAM_KEY_SIZE];
        uint8_t len;

        if (!key || !cluster || strlen(cluster) > 255)
                return -EINVAL;
        /* Both nonces are fresh random bytes of this connection: the keys are too, so the counter
         * nonces below can start at 0 on every connection, across restarts, without state. */
        len = (uint8_t) strlen(cluster);
        info = g_byte_array_new();
        g_byte_array_append(info, (const uint8_t *) "raft-stream", 11);
        g_byte_array_append(info, &len, 1);
        g_byte_array_append(info, (const uint8_t *) cluster, len);
        g_byte_array_append(info, client_nonce, (guint) nonce_size);
        g_byte_array_append(info, server_nonce, (guint) nonce_size);
        keyring_hkdf(key, KEYRING_AEAD_KEY_SIZE, "electiond-raft-stream-v1", info->data, info->len, okm, sizeof okm);
        *ret_c2s = (SealStream) {};
        *ret_s2c = (SealStream) {};
        memcpy(ret_c2s->key, okm, SEAL_STREAM_KEY_SIZE);
        memcpy(ret_s2c->key, okm + SEAL_STREAM_KEY_SIZE, SEAL_STREAM_KEY_SIZE);
        sodium_memzero(okm, sizeof okm);
        return 0;
}

static void stream_nonce(uint64_t counter, uint8_t ret[static SEAL_NONCE_SIZE]) {
        memset(ret, 0, SEAL_NONCE_SIZE);
        bytes_set_u64(ret, counter);
}

int seal_stream_seal(SealStream *s, const void *plain, size_t plain_size, uint8_t *out) {
        uint8_t nonce[SEAL_NONCE_SIZE];
        unsigned long long n;
        size_t len = plain_size + SEAL_TAG_SIZE;

        if (plain_size > SEAL_RECORD_PLAIN_MAX || s->counter == UINT64_MAX)
                return -EMSGSIZE;
        bytes_set_u32_be(out, (uint32_t) len);
        stream_nonce(s->counter++, nonce);
        if (crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_RECORD_HEADER, &n, plain, plain_size,
                                                       out, SEAL_RECORD_HEADER, NULL, nonce, s->key) < 0)
                return -EINVAL;
        return 0;
}

int seal_stream_record_size(const uint8_t header[static SEAL_RECORD_HEADER]) {
        uint32_t len = bytes_get_u32_be(header);

        if (len < SEAL_TAG_SIZE || len > SEAL_RECORD_PLAIN_MAX + SEAL_TAG_SIZE)
                return -EBADMSG;
        return (int) len;
}

int seal_stream_open(SealStream *s, const uint8_t *record, size_t record_size, uint8_t *out, size_t *ret_size) {
        uint8_t nonce[SEAL_NONCE_SIZE];
        unsigned long long n;
        int len;

        if (record_size < SEAL_RECORD_HEADER)
                return -EBADMSG;
        len = seal_stream_record_size(record);
        if (len < 0 || (size_t) len != record_size - SEAL_RECORD_HEADER || s->counter == UINT64_MAX)
                return -EBADMSG;
        stream_nonce(s->counter, nonce);
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &n, NULL, record + SEAL_RECORD_HEADER, (size_t) len,
                                                       record, SEAL_RECORD_HEADER, nonce, s->key) < 0)
                return -EBADMSG;
        s->counter++;
        *ret_size = (size_t) n;
        return 0;
}

void seal_stream_wipe(SealStream *s) {
        if (s)
                sodium_memzero(s, sizeof *s);
}
