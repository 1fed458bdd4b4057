/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The cluster's keys: one primary key, under which this node signs everything it sends, and any
 * number of further accepted keys. A receiver accepts a MAC made under any installed key, so a
 * key is rotated in three reloads without a lost packet (install the new key on every node,
 * switch every node's primary to it, remove the old one; see electiond.conf(5)).
 *
 * A Keyring is shared by reference between the codecs (gossip wire, cluster channel, Raft
 * transport); keyring_assign() swaps the keys of a shared one in place, so a reload reaches
 * every codec at once. Key 0 is always the primary. Keys are wiped when dropped.
 */

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYRING_KEY_MIN  16
#define KEYRING_KEYS_MAX 16
#define KEYRING_MAC_SIZE 32
#define KEYRING_AEAD_KEY_SIZE 32

typedef struct Keyring Keyring;

Keyring *keyring_new(void);
/* A ring holding just this key (the single-key form of every codec). NULL if key is empty. */
Keyring *keyring_new_single(const void *key, size_t size);
Keyring *keyring_ref(Keyring *k);
Keyring *keyring_unref(Keyring *k);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Keyring, keyring_unref)

/* Adds a key (copied). primary: it becomes key 0 (the previous primary stays accepted).
 * -EINVAL: empty (the codecs and keyring_load() apply their own minimum); -EEXIST: the same bytes are already installed (if
 * primary, it is made primary all the same); -E2BIG: more than KEYRING_KEYS_MAX keys. */
int keyring_add(Keyring *k, const void *key, size_t size, bool primary);
/* Replaces dst's keys by copies of src's. */
void keyring_assign(Keyring *dst, const Keyring *src);
bool keyring_equal(const Keyring *a, const Keyring *b);

size_t keyring_size(const Keyring *k);
/* Key i (0 = primary), NULL past the end. Borrowed. */
const uint8_t *keyring_key(const Keyring *k, size_t i, size_t *ret_size);
/* The encryption key derived from key i (HKDF-SHA256, salt "electiond-encrypt-v1"; never the
 * HMAC key itself), KEYRING_AEAD_KEY_SIZE bytes, NULL past the end. Borrowed. */
const uint8_t *keyring_aead_key(const Keyring *k, size_t i);
/* HKDF-SHA256 (RFC 5869): salt is a NUL-terminated domain label. ret_size <= 8160. */
void keyring_hkdf(const void *ikm, size_t ikm_size, const char *salt, const void *info, size_t info_size,
                  uint8_t *ret, size_t ret_size);
/* [Cluster] Encrypt=: whether the codecs sharing this ring seal what they send and require sealed
 * packets (electiond-seal.h). Part of what keyring_assign() copies (the daemon keeps it for a run). */
void keyring_set_encrypt(Keyring *k, bool encrypt);
bool keyring_encrypts(const Keyring *k);
/* A short non-secret tag of key i for logs (first 4 bytes of SHA-256 of the key, hex). */
void keyring_key_tag(const Keyring *k, size_t i, char ret[static 9]);

/* HMAC-SHA256 of the concatenated parts under key i (0 = primary). */
void keyring_mac(const Keyring *k, size_t i, const void *const *parts, const size_t *sizes, size_t n_parts,
                 uint8_t ret[static KEYRING_MAC_SIZE]);
void keyring_sign(const Keyring *k, const void *data, size_t size, uint8_t ret[static KEYRING_MAC_SIZE]);
/* Checks mac against every installed key, each comparison in constant time, all keys always
 * tried. Returns the index of the key that matched, or -EBADMSG. */
int keyring_verify(const Keyring *k, const void *data, size_t size, const uint8_t mac[static KEYRING_MAC_SIZE]);
int keyring_verify_parts(const Keyring *k, const void *const *parts, const size_t *sizes, size_t n_parts,
                         const uint8_t mac[static KEYRING_MAC_SIZE]);
bool keyring_mac_equal(const uint8_t *a, const uint8_t *b);

/* Loads the keys of [Cluster] KeyFile=, KeyDirectory= and PrimaryKey= (electiond.conf(5)):
 * KeyFile= is one key, the file's bytes; KeyDirectory= adds every regular "*.key" file in it
 * (other names are ignored); the primary is PrimaryKey= (a file name in KeyDirectory=), else
 * KeyFile=, else the directory's only key. Any unreadable or too short key, a missing
 * PrimaryKey=, or several directory keys without a choice fail the whole load (-EINVAL, message). */
int keyring_load(const char *key_file, const char *key_dir, const char *primary_key, Keyring **ret,
                 char **ret_error);
