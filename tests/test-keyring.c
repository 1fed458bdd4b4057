/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The keyring: primary + accepted keys, verification under any key, and the KeyFile=/
 * KeyDirectory=/PrimaryKey= loader. */
#include <glib.h>
#include <glib/gstdio.h>

#include "electiond-keyring.h"

#define K1 "key-one-0123456789abcdef"
#define K2 "key-two-0123456789abcdef"
#define K3 "key-three-0123456789abcd"

static void test_basics(void) {
        g_autoptr(Keyring) k = keyring_new();
        size_t n;

        g_assert_cmpuint(keyring_size(k), ==, 0);
        g_assert_null(keyring_key(k, 0, &n));
        g_assert_cmpuint(n, ==, 0);
        g_assert_cmpint(keyring_add(k, K1, 0, true), ==, -EINVAL);
        g_assert_cmpint(keyring_add(k, NULL, 16, true), ==, -EINVAL);
        g_assert_null(keyring_new_single(K1, 0));

        g_assert_cmpint(keyring_add(k, K1, strlen(K1), true), ==, 0);
        g_assert_cmpint(keyring_add(k, K2, strlen(K2), false), ==, 0);
        g_assert_cmpuint(keyring_size(k), ==, 2);
        g_assert_cmpmem(keyring_key(k, 0, &n), n, K1, strlen(K1));
        g_assert_cmpmem(keyring_key(k, 1, &n), n, K2, strlen(K2));

        /* a new primary pushes the old one to the accepted keys */
        g_assert_cmpint(keyring_add(k, K3, strlen(K3), true), ==, 0);
        g_assert_cmpmem(keyring_key(k, 0, &n), n, K3, strlen(K3));
        g_assert_cmpmem(keyring_key(k, 1, &n), n, K1, strlen(K1));
        /* the same bytes twice are one key; asked as primary it becomes primary */
        g_assert_cmpint(keyring_add(k, K2, strlen(K2), false), ==, -EEXIST);
        g_assert_cmpuint(keyring_size(k), ==, 3);
        g_assert_cmpint(keyring_add(k, K2, strlen(K2), true), ==, -EEXIST);
        g_assert_cmpmem(keyring_key(k, 0, &n), n, K2, strlen(K2));
        g_assert_cmpuint(keyring_size(k), ==, 3);

        for (int i = 3; i < KEYRING_KEYS_MAX; i++) {
                g_autofree char *key = g_strdup_printf("filler-key-number-%02d", i);
                g_assert_cmpint(keyring_add(k, key, strlen(key), false), ==, 0);
        }
        g_assert_cmpint(keyring_add(k, "one-too-many-keys!!", 19, false), ==, -E2BIG);
}

static void test_sign_verify(void) {
        g_autoptr(Keyring) a = keyring_new_single(K1, strlen(K1));
        g_autoptr(Keyring) b = keyring_new(), c = keyring_new_single(K3, strlen(K3));
        const char msg[] = "a packet";
        uint8_t mac[KEYRING_MAC_SIZE], mac2[KEYRING_MAC_SIZE];

        g_assert_cmpint(keyring_add(b, K2, strlen(K2), true), ==, 0);
        g_assert_cmpint(keyring_add(b, K1, strlen(K1), false), ==, 0);

        keyring_sign(a, msg, sizeof msg, mac);
        g_assert_cmpint(keyring_verify(a, msg, sizeof msg, mac), ==, 0);
        g_assert_cmpint(keyring_verify(b, msg, sizeof msg, mac), ==, 1); /* under b's accepted key */
        g_assert_cmpint(keyring_verify(c, msg, sizeof msg, mac), ==, -EBADMSG);
        g_assert_cmpint(keyring_verify(a, msg, sizeof msg - 1, mac), ==, -EBADMSG);
        mac[5] ^= 1;
        g_assert_cmpint(keyring_verify(b, msg, sizeof msg, mac), ==, -EBADMSG);

        /* b signs with its primary K2, which a does not have */
        keyring_sign(b, msg, sizeof msg, mac);
        g_assert_cmpint(keyring_verify(a, msg, sizeof msg, mac), ==, -EBADMSG);
        g_assert_cmpint(keyring_verify(b, msg, sizeof msg, mac), ==, 0);

        /* parts are the concatenation */
        const void *parts[] = { "a pa", "", "cket" };
        size_t sizes[] = { 4, 0, 5 };
        keyring_mac(b, 1, parts, sizes, 3, mac2);
        keyring_sign(a, msg, sizeof msg, mac);
        g_assert_true(keyring_mac_equal(mac, mac2));
        g_assert_cmpint(keyring_verify_parts(b, parts, sizes, 3, mac), ==, 1);

        /* an empty ring accepts nothing */
        g_autoptr(Keyring) e = keyring_new();
        g_assert_cmpint(keyring_verify(e, msg, sizeof msg, mac), ==, -EBADMSG);
}

static void test_assign_shared(void) {
        g_autoptr(Keyring) shared = keyring_new_single(K1, strlen(K1));
        g_autoptr(Keyring) held = keyring_ref(shared);
        g_autoptr(Keyring) next = keyring_new();
        const char msg[] = "x";
        uint8_t mac[KEYRING_MAC_SIZE];
        char tag1[9], tag2[9];

        keyring_key_tag(shared, 0, tag1);
        g_assert_cmpuint(strlen(tag1), ==, 8);
        g_assert_cmpint(keyring_add(next, K2, strlen(K2), true), ==, 0);
        g_assert_cmpint(keyring_add(next, K1, strlen(K1), false), ==, 0);
        g_assert_false(keyring_equal(shared, next));
        keyring_assign(shared, next);
        g_assert_true(keyring_equal(held, next)); /* every holder sees the new keys */
        keyring_key_tag(held, 0, tag2);
        g_assert_cmpstr(tag1, !=, tag2);
        keyring_key_tag(held, 9, tag2);
        g_assert_cmpstr(tag2, ==, "-");
        keyring_sign(held, msg, 1, mac);
        g_assert_cmpint(keyring_verify(next, msg, 1, mac), ==, 0);
        keyring_assign(shared, shared);
        g_assert_true(keyring_equal(held, next));
        g_assert_true(keyring_equal(NULL, NULL));
        g_assert_false(keyring_equal(NULL, next));
}

static void write_file(const char *dir, const char *name, const char *content) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        g_assert_true(g_file_set_contents(p, content, -1, NULL));
}

static void test_load(void) {
        g_autofree char *tmp = g_dir_make_tmp("test-keyring-XXXXXX", NULL);
        g_autofree char *dir = g_build_filename(tmp, "keys.d", NULL);
        g_autofree char *file = g_build_filename(tmp, "cluster.key", NULL);
        g_autofree char *missing = g_build_filename(tmp, "missing", NULL);
        g_autoptr(Keyring) k = NULL;
        char *error = NULL;
        size_t n;

        g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
        write_file(tmp, "cluster.key", K1 "\n");

        /* today's form: one key, the file's bytes (newline included) */
        g_assert_cmpint(keyring_load(file, NULL, NULL, &k, &error), ==, 0);
        g_assert_cmpuint(keyring_size(k), ==, 1);
        g_assert_cmpmem(keyring_key(k, 0, &n), n, K1 "\n", strlen(K1) + 1);
        g_clear_pointer(&k, keyring_unref);

        /* nothing configured, a short key, a missing file */
        g_assert_cmpint(keyring_load(NULL, NULL, NULL, &k, &error), ==, -EINVAL);
        g_clear_pointer(&error, g_free);
        write_file(tmp, "short.key", "0123456789abcde");
        {
                g_autofree char *s = g_build_filename(tmp, "short.key", NULL);
                g_assert_cmpint(keyring_load(s, NULL, NULL, &k, &error), ==, -EINVAL);
                g_assert_nonnull(strstr(error, "at least 16"));
                g_clear_pointer(&error, g_free);
        }
        g_assert_cmpint(keyring_load(missing, NULL, NULL, &k, &error), ==, -EINVAL);
        g_clear_pointer(&error, g_free);
        g_assert_cmpint(keyring_load(NULL, missing, NULL, &k, &error), ==, -EINVAL);
        g_clear_pointer(&error, g_free);

        /* an empty directory alone has no key */
        g_assert_cmpint(keyring_load(NULL, dir, NULL, &k, &error), ==, -EINVAL);
        g_clear_pointer(&error, g_free);

        /* KeyFile= stays primary, the directory's keys are accepted; other names are ignored */
        write_file(dir, "b.key", K2);
        write_file(dir, "README", "not a key at all, ignored");
        write_file(dir, ".hidden.key", "hidden-key-0123456789");
        g_assert_cmpint(keyring_load(file, dir, NULL, &k, &error), ==, 0);
        g_assert_cmpuint(keyring_size(k), ==, 2);
        g_assert_cmpmem(keyring_key(k, 0, &n), n, K1 "\n", strlen(K1) + 1);
        g_assert_cmpmem(keyring_key(k, 1, &n), n, K2, strlen(K2));
        g_clear_pointer(&k, keyring_unref);

        /* the directory's only key is primary */
        g_assert_cmpint(keyring_load(NULL, dir, NULL, &k, &error), ==, 0);
        g_assert_cmpuint(keyring_size(k), ==, 1);
        g_clear_pointer(&k, keyring_unref);

        /* two keys need a choice */
        write_file(dir, "a.key", K3);
        g_assert_cmpint(keyring_load(NULL, dir, NULL, &k, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "PrimaryKey="));
        g_clear_pointer(&error, g_free);
        g_assert_cmpint(keyring_load(NULL, dir, "b.key", &k, &error), ==, 0);
        g_assert_cmpuint(keyring_size(k), ==, 2);
        g_assert_cmpmem(keyring_key(k, 0, &n), n, K2, strlen(K2));
        g_assert_cmpmem(keyring_key(k, 1, &n), n, K3, strlen(K3));
        g_clear_pointer(&k, keyring_unref);

        /* PrimaryKey= wins over KeyFile=, which stays accepted */
        g_assert_cmpint(keyring_load(file, dir, "a.key", &k, &error), ==, 0);
        g_assert_cmpuint(keyring_size(k), ==, 3);
        g_assert_cmpmem(keyring_key(k, 0, &n), n, K3, strlen(K3));
        g_clear_pointer(&k, keyring_unref);

        /* a PrimaryKey= that is not there */
        g_assert_cmpint(keyring_load(file, dir, "c.key", &k, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "c.key"));
        g_clear_pointer(&error, g_free);

        /* a short key in the directory fails the whole load */
        write_file(dir, "z.key", "short");
        g_assert_cmpint(keyring_load(NULL, dir, "a.key", &k, &error), ==, -EINVAL);
        g_clear_pointer(&error, g_free);
        g_assert_null(k);

        {
                g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", tmp);
                g_assert_cmpint(system(cmd), ==, 0);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/keyring/basics", test_basics);
        g_test_add_func("/keyring/sign-verify", test_sign_verify);
        g_test_add_func("/keyring/assign-shared", test_assign_shared);
        g_test_add_func("/keyring/load", test_load);
        return g_test_run();
}
