/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* elections.d parsing: good files, every kind of bad file (an error message, never a crash), the
 * directory loader that skips bad files, and the unit-name helpers. */
#include <glib.h>
#include <glib/gstdio.h>

#include "electiond-elections-d.h"

static ElectionUnitConfig *parse_ok(const char *path, const char *data) {
        ElectionUnitConfig *c = NULL;
        g_autofree char *msg = NULL;
        int r = election_unit_config_parse_data(path, data, strlen(data), "node-a", &c, &msg);
        if (r < 0)
                g_error("unexpected failure: %s", msg);
        g_assert_nonnull(c);
        return c;
}

static void parse_bad(const char *path, const char *data, const char *needle) {
        ElectionUnitConfig *c = NULL;
        g_autofree char *msg = NULL;
        int r = election_unit_config_parse_data(path, data, strlen(data), "node-a", &c, &msg);
        g_assert_cmpint(r, ==, -EINVAL);
        g_assert_null(c);
        g_assert_nonnull(msg);
        if (!strstr(msg, needle))
                g_error("error '%s' does not mention '%s'", msg, needle);
}

static void test_good(void) {
        g_autoptr(ElectionUnitConfig) a = parse_ok("/x/web.conf",
                "[Election]\nId=web-1\nUnits= nginx.service  vip@eth0.service nginx.service\nHealthUnit=check.service\n");
        g_assert_cmpstr(a->name, ==, "web");
        g_assert_cmpstr(a->id, ==, "web-1");
        g_assert_cmpuint(g_strv_length(a->units), ==, 2); /* duplicates dropped, order kept */
        g_assert_cmpstr(a->units[0], ==, "nginx.service");
        g_assert_cmpstr(a->units[1], ==, "vip@eth0.service");
        g_assert_cmpstr(a->health_unit, ==, "check.service");

        /* Defaults: id = node name, no units, no health unit. */
        g_autoptr(ElectionUnitConfig) b = parse_ok("db.conf", "[Election]\n");
        g_assert_cmpstr(b->name, ==, "db");
        g_assert_cmpstr(b->id, ==, "node-a");
        g_assert_nonnull(b->units);
        g_assert_null(b->units[0]);
        g_assert_null(b->health_unit);

        g_autoptr(ElectionUnitConfig) c = parse_ok("/e/a b.conf", "# comment\n[Election]\nHealthUnit=\nUnits=\n");
        g_assert_cmpstr(c->name, ==, "a b");
        g_assert_null(c->health_unit);
        g_assert_null(c->units[0]);
}

static void test_bad(void) {
        parse_bad("/x/web.txt", "[Election]\n", "NAME.conf");
        parse_bad("/x/.conf", "[Election]\n", "NAME.conf");
        parse_bad("/x/..conf", "[Election]\n", "not a valid election name");
        parse_bad("/x/w.conf", "", "missing section [Election]");
        parse_bad("/x/w.conf", "Units=a.service\n", "w.conf");
        parse_bad("/x/w.conf", "[Election\nId=x\n", "w.conf");
        parse_bad("/x/w.conf", "[Election]\nUnit=a.service\n", "unknown key Unit=");
        parse_bad("/x/w.conf", "[Election]\n[Other]\n", "unknown section [Other]");
        parse_bad("/x/w.conf", "[Election]\nUnits=nginx\n", "'nginx' is not a valid unit name");
        parse_bad("/x/w.conf", "[Election]\nUnits=a.service b/c.service\n", "'b/c.service'");
        parse_bad("/x/w.conf", "[Election]\nUnits=tmpl@.service\n", "'tmpl@.service'");
        parse_bad("/x/w.conf", "[Election]\nHealthUnit=x.bogus\n", "HealthUnit=");
        parse_bad("/x/w.conf", "[Election]\nId=\n", "Id=");
        parse_bad("/x/w.conf", "[Election]\nId=a\001b\n", "Id=");
        /* Binary garbage. */
        const char garbage[] = "[Election]\nId=\xff\xfe\x00zz";
        ElectionUnitConfig *c = NULL;
        g_autofree char *msg = NULL;
        g_assert_cmpint(election_unit_config_parse_data("/x/g.conf", garbage, sizeof garbage, "n", &c, &msg), <, 0);
        g_assert_null(c);
        g_assert_nonnull(msg);
        /* No Id= and an unusable node name. */
        g_autofree char *msg2 = NULL;
        g_assert_cmpint(election_unit_config_parse_data("/x/w.conf", "[Election]\n", 11, "", &c, &msg2), ==, -EINVAL);
        g_assert_nonnull(strstr(msg2, "node name"));
}

/* Random and mutated input: an error or a config, never a crash (run under ASan/valgrind too). */
static void test_garbage(void) {
        static const char *const seeds[] = {
                "[Election]\nId=a\nUnits=a.service b@c.target\nHealthUnit=h.service\n",
                "[Election]\n", "# c\n[Election]\nUnits=\\x2d.service\n",
        };
        GRand *rand = g_rand_new_with_seed(4242);

        for (unsigned i = 0; i < 5000; i++) {
                g_autofree char *msg = NULL;
                ElectionUnitConfig *c = NULL;
                const char *seed = seeds[i % G_N_ELEMENTS(seeds)];
                size_t n = strlen(seed);
                g_autofree char *buf = g_malloc(n + 16);
                size_t len = i % 3 == 0 ? (size_t) g_rand_int_range(rand, 0, (gint32) n + 16) : n;

                if (i % 3 == 0)
                        for (size_t k = 0; k < len; k++)
                                buf[k] = (char) g_rand_int_range(rand, 0, 256);
                else {
                        memcpy(buf, seed, n);
                        for (unsigned k = 0; k < 1 + i % 4; k++)
                                buf[g_rand_int_range(rand, 0, (gint32) n)] = (char) g_rand_int_range(rand, 0, 256);
                }
                int r = election_unit_config_parse_data("/x/fuzz.conf", buf, len, "node", &c, &msg);
                if (r < 0) {
                        g_assert_cmpint(r, ==, -EINVAL);
                        g_assert_null(c);
                        g_assert_nonnull(msg);
                } else {
                        g_assert_true(election_string_valid(c->id));
                        for (char **u = c->units; *u; u++)
                                g_assert_true(unit_name_valid(*u));
                        g_assert_true(!c->health_unit || unit_name_valid(c->health_unit));
                        election_unit_config_free(c);
                }
        }
        g_rand_free(rand);
}

static void write_file(const char *dir, const char *name, const char *data) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        g_assert_true(g_file_set_contents(p, data, -1, NULL));
}

static void test_dir(void) {
        g_autofree char *dir = g_dir_make_tmp("elections-d-XXXXXX", NULL);
        g_autoptr(GPtrArray) list = NULL;
        g_autofree char *missing = NULL;

        g_assert_nonnull(dir);
        write_file(dir, "zeta.conf", "[Election]\nUnits=z.service\n");
        write_file(dir, "alpha.conf", "[Election]\nId=me\n");
        write_file(dir, "broken.conf", "[Election]\nUnits=not-a-unit\n");
        write_file(dir, "ignored.txt", "garbage");
        write_file(dir, ".hidden.conf", "[Election]\n");

        g_assert_cmpint(elections_d_load(dir, "node-a", &list), ==, 0);
        g_assert_cmpuint(list->len, ==, 2);
        g_assert_cmpstr(((ElectionUnitConfig *) list->pdata[0])->name, ==, "alpha");
        g_assert_cmpstr(((ElectionUnitConfig *) list->pdata[0])->id, ==, "me");
        g_assert_cmpstr(((ElectionUnitConfig *) list->pdata[1])->name, ==, "zeta");
        g_assert_cmpstr(((ElectionUnitConfig *) list->pdata[1])->id, ==, "node-a");

        /* A missing directory is simply no elections. */
        g_clear_pointer(&list, g_ptr_array_unref);
        missing = g_build_filename(dir, "nope", NULL);
        g_assert_cmpint(elections_d_load(missing, "node-a", &list), ==, 0);
        g_assert_cmpuint(list->len, ==, 0);

        const char *names[] = { "zeta.conf", "alpha.conf", "broken.conf", "ignored.txt", ".hidden.conf" };
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                g_autofree char *p = g_build_filename(dir, names[i], NULL);
                g_assert_cmpint(g_unlink(p), ==, 0);
        }
        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void test_unit_names(void) {
        g_assert_true(unit_name_valid("a.service"));
        g_assert_true(unit_name_valid("foo@bar.target"));
        g_assert_true(unit_name_valid("a-b_c:d\\x2d.timer"));
        g_assert_false(unit_name_valid(""));
        g_assert_false(unit_name_valid(".service"));
        g_assert_false(unit_name_valid("@x.service"));
        g_assert_false(unit_name_valid("a@b@c.service"));
        g_assert_false(unit_name_valid("a b.service"));
        g_assert_false(unit_name_valid("a.exe"));

        g_autofree char *t1 = leader_target_for_election("web");
        g_autofree char *t2 = leader_target_for_election("a/b c-d.e");
        g_autofree char *t3 = leader_target_for_election(".x");
        g_assert_cmpstr(t1, ==, "electiond-leader@web.target");
        g_assert_cmpstr(t2, ==, "electiond-leader@a-b\\x20c\\x2dd.e.target");
        g_assert_cmpstr(t3, ==, "electiond-leader@\\x2ex.target");
        g_assert_true(unit_name_valid(t1) && unit_name_valid(t2) && unit_name_valid(t3));

        g_assert_true(election_name_is_file_safe("web"));
        g_assert_false(election_name_is_file_safe("a/b"));
        g_assert_false(election_name_is_file_safe(".."));
        g_assert_false(election_name_is_file_safe(""));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        log_set_max_level(LOG_EMERG); /* skipped files are logged; keep test output quiet */
        g_test_add_func("/elections-d/good", test_good);
        g_test_add_func("/elections-d/bad", test_bad);
        g_test_add_func("/elections-d/garbage", test_garbage);
        g_test_add_func("/elections-d/dir", test_dir);
        g_test_add_func("/elections-d/unit-names", test_unit_names);
        return g_test_run();
}
