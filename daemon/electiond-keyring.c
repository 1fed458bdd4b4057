/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <glib/gi18n.h>
#include <sodium.h>
#include <string.h>

#include "electiond-bytes.h"
#include "electiond-keyring.h"
#include "electiond-util.h"

struct Keyring {
        unsigned n_ref;
        GPtrArray *keys; /* GBytes*, 0 = primary */
        GPtrArray *aead; /* uint8_t[KEYRING_AEAD_KEY_SIZE] derived from keys[i], same order */
        bool encrypt;
};

static void key_wipe_free(void *p) {
        GBytes *b = p;
        gsize n;
        gpointer data;

        if (!b)
                return;
        /* Our own copies: wiped before they go back to the allocator. */
        data = (gpointer) g_bytes_get_data(b, &n);
        if (data && n > 0)
                explicit_bzero(data, n);
        g_bytes_unref(b);
}

static void aead_wipe_free(void *p) {
        if (!p)
                return;
        sodium_memzero(p, KEYRING_AEAD_KEY_SIZE);
        g_free(p);
}

void keyring_hkdf(const void *ikm, size_t ikm_size, const char *salt, const void *info, size_t info_size,
                  uint8_t *ret, size_t ret_size) {
        crypto_auth_hmacsha256_state st;
        uint8_t prk[crypto_auth_hmacsha256_BYTES], t[crypto_auth_hmacsha256_BYTES];
        size_t done = 0;

        /* RFC 5869 with HMAC-SHA256: extract, then expand block by block. */
        g_assert(ret_size <= 255 * sizeof t);
        crypto_auth_hmacsha256_init(&st, (const unsigned char *) salt, strlen(salt));
        crypto_auth_hmacsha256_update(&st, ikm, ikm_size);
        crypto_auth_hmacsha256_final(&st, prk);
        for (uint8_t i = 1; done < ret_size; i++) {
                size_t n = MIN(sizeof t, ret_size - done);

                crypto_auth_hmacsha256_init(&st, prk, sizeof prk);
                if (i > 1)
                        crypto_auth_hmacsha256_update(&st, t, sizeof t);
                crypto_auth_hmacsha256_update(&st, info, info_size);
                crypto_auth_hmacsha256_update(&st, &i, 1);
                crypto_auth_hmacsha256_final(&st, t);
                memcpy(ret + done, t, n);
                done += n;
        }
        sodium_memzero(prk, sizeof prk);
        sodium_memzero(t, sizeof t);
        sodium_memzero(&st, sizeof st);
}

/* The encryption key of a cluster key: never the HMAC key itself (a separate HKDF use). */
static uint8_t *aead_derive(const void *key, size_t size) {
        static const char info[] = "aead-xchacha20poly1305";
        uint8_t *a = g_malloc(KEYRING_AEAD_KEY_SIZE);

        keyring_hkdf(key, size, "electiond-encrypt-v1", info, sizeof info - 1, a, KEYRING_AEAD_KEY_SIZE);
        return a;
}

Keyring *keyring_new(void) {
        Keyring *k = g_new0(Keyring, 1);

        /* idempotent; picks libsodium's implementations before the first derivation */
        if (sodium_init() < 0)
                g_error("libsodium failed to initialize");
        k->n_ref = 1;
        k->keys = g_ptr_array_new_with_free_func(key_wipe_free);
        k->aead = g_ptr_array_new_with_free_func(aead_wipe_free);
        return k;
}

Keyring *keyring_new_single(const void *key, size_t size) {
        g_autoptr(Keyring) k = keyring_new();

        if (keyring_add(k, key, size, true) < 0)
                return NULL;
        return g_steal_pointer(&k);
}

Keyring *keyring_ref(Keyring *k) {
        if (k)
                k->n_ref++;
        return k;
}

Keyring *keyring_unref(Keyring *k) {
        if (!k || --k->n_ref > 0)
                return NULL;
        g_ptr_array_unref(k->keys);
        g_ptr_array_unref(k->aead);
        g_free(k);
        return NULL;
}

static int keyring_find(const Keyring *k, const void *key, size_t size) {
        for (unsigned i = 0; i < k->keys->len; i++) {
                gsize n;
                const void *d = g_bytes_get_data(k->keys->pdata[i], &n);
                if (n == size && bytes_equal_ct(d, key, size))
                        return (int) i;
        }
        return -ENOENT;
}

int keyring_add(Keyring *k, const void *key, size_t size, bool primary) {
        int i;

        g_assert(k);
        if (!key || size == 0)
                return -EINVAL;

        i = keyring_find(k, key, size);
        if (i >= 0) {
                if (primary && i > 0) {
                        GBytes *b = g_ptr_array_steal_index(k->keys, (guint) i);
                        g_ptr_array_insert(k->keys, 0, b);
                        g_ptr_array_insert(k->aead, 0, g_ptr_array_steal_index(k->aead, (guint) i));
                }
                return -EEXIST;
        }
        if (k->keys->len >= KEYRING_KEYS_MAX)
                return -E2BIG;
        g_ptr_array_insert(k->keys, primary ? 0 : -1, g_bytes_new(key, size));
        g_ptr_array_insert(k->aead, primary ? 0 : -1, aead_derive(key, size));
        return 0;
}

void keyring_assign(Keyring *dst, const Keyring *src) {
        g_assert(dst);
        g_assert(src);
        if (dst == src)
                return;
        g_ptr_array_set_size(dst->keys, 0);
        g_ptr_array_set_size(dst->aead, 0);
        for (unsigned i = 0; i < src->keys->len; i++) {
                gsize n;
                const void *d = g_bytes_get_data(src->keys->pdata[i], &n);
                g_ptr_array_add(dst->keys, g_bytes_new(d, n));
                g_ptr_array_add(dst->aead, g_memdup2(src->aead->pdata[i], KEYRING_AEAD_KEY_SIZE));
        }
        dst->encrypt = src->encrypt;
}

bool keyring_equal(const Keyring *a, const Keyring *b) {
        if (!a || !b)
                return a == b;
        if (a->keys->len != b->keys->len || a->encrypt != b->encrypt)
                return false;
        for (unsigned i = 0; i < a->keys->len; i++) {
                gsize na, nb;
                const void *da = g_bytes_get_data(a->keys->pdata[i], &na);
                const void *db = g_bytes_get_data(b->keys->pdata[i], &nb);
                if (na != nb || !bytes_equal_ct(da, db, na))
                        return false;
        }
        return true;
}

size_t keyring_size(const Keyring *k) {
        return k ? k->keys->len : 0;
}

const uint8_t *keyring_key(const Keyring *k, size_t i, size_t *ret_size) {
        gsize n;
        const uint8_t *d;

        if (!k || i >= k->keys->len) {
                if (ret_size)
                        *ret_size = 0;
                return NULL;
        }
        d = g_bytes_get_data(k->keys->pdata[i], &n);
        if (ret_size)
                *ret_size = n;
        return d;
}

const uint8_t *keyring_aead_key(const Keyring *k, size_t i) {
        return k && i < k->aead->len ? k->aead->pdata[i] : NULL;
}

void keyring_set_encrypt(Keyring *k, bool encrypt) {
        g_assert(k);
        k->encrypt = encrypt;
}

bool keyring_encrypts(const Keyring *k) {
        return k && k->encrypt;
}

void keyring_key_tag(const Keyring *k, size_t i, char ret[static 9]) {
        size_t n;
        const uint8_t *key = keyring_key(k, i, &n);
        g_autofree char *hex = NULL;

        if (!key) {
                g_strlcpy(ret, "-", 9);
                return;
        }
        hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, key, n);
        g_strlcpy(ret, hex, 9);
}

void keyring_mac(const Keyring *k, size_t i, const void *const *parts, const size_t *sizes, size_t n_parts,
                 uint8_t ret[static KEYRING_MAC_SIZE]) {
        size_t n;
        const uint8_t *key = keyring_key(k, i, &n);
        g_autoptr(GHmac) h = NULL;
        gsize len = KEYRING_MAC_SIZE;

        g_assert(key);
        h = g_hmac_new(G_CHECKSUM_SHA256, key, n);
        for (size_t p = 0; p < n_parts; p++)
                if (sizes[p] > 0)
                        g_hmac_update(h, parts[p], (gssize) sizes[p]);
        g_hmac_get_digest(h, ret, &len);
}

void keyring_sign(const Keyring *k, const void *data, size_t size, uint8_t ret[static KEYRING_MAC_SIZE]) {
        keyring_mac(k, 0, &data, &size, 1, ret);
}

bool keyring_mac_equal(const uint8_t *a, const uint8_t *b) {
        return bytes_equal_ct(a, b, KEYRING_MAC_SIZE);
}

int keyring_verify_parts(const Keyring *k, const void *const *parts, const size_t *sizes, size_t n_parts,
                         const uint8_t mac[static KEYRING_MAC_SIZE]) {
        int found = -EBADMSG;

        /* Every key is tried even after a match: the time taken does not tell which key it was. */
        for (size_t i = 0; i < keyring_size(k); i++) {
                uint8_t m[KEYRING_MAC_SIZE];

                keyring_mac(k, i, parts, sizes, n_parts, m);
                if (keyring_mac_equal(m, mac) && found < 0)
                        found = (int) i;
        }
        return found;
}

int keyring_verify(const Keyring *k, const void *data, size_t size, const uint8_t mac[static KEYRING_MAC_SIZE]) {
        return keyring_verify_parts(k, &data, &size, 1, mac);
}

static int key_read(const char *path, GBytes **ret, char **ret_error) {
        g_autofree char *data = NULL;
        g_autoptr(GError) error = NULL;
        gsize n;

        if (!g_file_get_contents(path, &data, &n, &error)) {
                *ret_error = g_strdup_printf(_("Failed to read key %s: %s"), path, error->message);
                return -EINVAL;
        }
        if (n < KEYRING_KEY_MIN) {
                explicit_bzero(data, n);
                *ret_error = g_strdup_printf(_("Key %s holds %zu bytes; at least %d are needed."), path, n, KEYRING_KEY_MIN);
                return -EINVAL;
        }
        *ret = g_bytes_new_take(g_steal_pointer(&data), n);
        return 0;
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int keyring_load(const char *key_file, const char *key_dir, const char *primary_key, Keyring **ret,
                 char **ret_error) {
        g_autoptr(Keyring) k = keyring_new();
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *error = NULL;
        bool have_primary = false;
        int r;

        g_assert(ret);

        if (!key_file && !key_dir) {
                error = g_strdup(_("Neither KeyFile= nor KeyDirectory= is set."));
                r = -EINVAL;
                goto fail;
        }

        if (key_dir) {
                g_autoptr(GError) gerr = NULL;
                g_autoptr(GDir) d = g_dir_open(key_dir, 0, &gerr);
                const char *name;

                if (!d) {
                        error = g_strdup_printf(_("Failed to open KeyDirectory=%s: %s"), key_dir, gerr->message);
                        r = -EINVAL;
                        goto fail;
                }
                while ((name = g_dir_read_name(d)))
                        if (g_str_has_suffix(name, ".key") && strlen(name) > 4 && name[0] != '.')
                                g_ptr_array_add(names, g_strdup(name));
                g_ptr_array_sort(names, compare_names);
        }

        if (primary_key) {
                bool listed = false;
                for (unsigned i = 0; i < names->len; i++)
                        listed = listed || streq_ptr(names->pdata[i], primary_key);
                if (!listed) {
                        error = g_strdup_printf(_("PrimaryKey=%s is not a key file in KeyDirectory=%s."),
                                                primary_key, key_dir ?: "");
                        r = -EINVAL;
                        goto fail;
                }
        } else if (!key_file && names->len != 1) {
                error = names->len == 0
                        ? g_strdup_printf(_("KeyDirectory=%s holds no *.key file."), key_dir)
                        : g_strdup_printf(_("KeyDirectory=%s holds %u keys: set PrimaryKey= to the one to send under."),
                                          key_dir, names->len);
                r = -EINVAL;
                goto fail;
        }

        if (key_file) {
                g_autoptr(GBytes) b = NULL;
                gsize n;
                const void *data;

                r = key_read(key_file, &b, &error);
                if (r < 0)
                        goto fail;
                data = g_bytes_get_data(b, &n);
                (void) keyring_add(k, data, n, !primary_key);
                have_primary = !primary_key;
                explicit_bzero((void *) data, n);
        }

        for (unsigned i = 0; i < names->len; i++) {
                g_autofree char *path = g_build_filename(key_dir, names->pdata[i], NULL);
                g_autoptr(GBytes) b = NULL;
                bool primary = primary_key ? streq_ptr(names->pdata[i], primary_key) : !have_primary;
                gsize n;
                const void *data;

                r = key_read(path, &b, &error);
                if (r < 0)
                        goto fail;
                data = g_bytes_get_data(b, &n);
                r = keyring_add(k, data, n, primary);
                explicit_bzero((void *) data, n);
                if (r == -E2BIG) {
                        error = g_strdup_printf(_("More than %d keys installed."), KEYRING_KEYS_MAX);
                        r = -EINVAL;
                        goto fail;
                }
                have_primary = have_primary || primary;
        }

        g_assert(have_primary || primary_key);
        *ret = g_steal_pointer(&k);
        return 0;

fail:
        if (ret_error)
                *ret_error = g_steal_pointer(&error);
        return r;
}
