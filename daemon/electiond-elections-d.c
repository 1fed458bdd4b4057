/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>

#include "electiond-elections-d.h"

#define ELECTION_GROUP "Election"
#define CONF_SUFFIX    ".conf"

static const char *const unit_types[] = {
        "service", "socket", "target", "device", "mount", "automount",
        "swap", "path", "timer", "slice", "scope",
};

ElectionUnitConfig *election_unit_config_free(ElectionUnitConfig *c) {
        if (!c)
                return NULL;
        g_free(c->name);
        g_free(c->id);
        g_strfreev(c->units);
        g_free(c->health_unit);
        g_free(c);
        return NULL;
}

static bool unit_char_valid(char c) {
        return g_ascii_isalnum(c) || strchr(":-_.\\", c);
}

void election_unit_config_destroy(void *p) {
        election_unit_config_free(p);
}

bool unit_name_valid(const char *name) {
        const char *dot, *at;
        bool type_ok = false;

        if (!name || strlen(name) == 0 || strlen(name) > 255)
                return false;

        dot = strrchr(name, '.');
        if (!dot || dot == name)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(unit_types); i++)
                if (strcmp(dot + 1, unit_types[i]) == 0)
                        type_ok = true;
        if (!type_ok)
                return false;

        at = strchr(name, '@');
        if (at) {
                if (at == name || at + 1 == dot) /* no prefix, or a bare template */
                        return false;
                if (strchr(at + 1, '@'))
                        return false;
        }
        for (const char *p = name; p < dot; p++)
                if (p != at && !unit_char_valid(*p))
                        return false;
        return true;
}

char *leader_target_for_election(const char *name) {
        GString *s = g_string_new("electiond-leader@");

        /* The escaping systemd-escape does for instance names, so "%i" in units gives the name back. */
        for (const char *p = name; *p; p++) {
                unsigned char c = (unsigned char) *p;

                if (c == '/')
                        g_string_append_c(s, '-');
                else if ((c == '.' && p == name) || !(g_ascii_isalnum(c) || c == ':' || c == '_' || c == '.'))
                        g_string_append_printf(s, "\\x%02x", c);
                else
                        g_string_append_c(s, (char) c);
        }
        g_string_append(s, ".target");
        return g_string_free(s, FALSE);
}

bool election_name_is_file_safe(const char *name) {
        return election_string_valid(name) && !strchr(name, '/') && strcmp(name, ".") != 0 &&
               strcmp(name, "..") != 0;
}

static int fail(char **ret_error, const char *path, const char *fmt, ...) _printf_(3, 4);
static int fail(char **ret_error, const char *path, const char *fmt, ...) {
        va_list ap;
        g_autofree char *msg = NULL;

        va_start(ap, fmt);
        msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        if (ret_error)
                *ret_error = g_strdup_printf("%s: %s", path, msg);
        return -EINVAL;
}

int election_unit_config_parse_data(const char *path, const char *data, size_t size, const char *default_id,
                                    ElectionUnitConfig **ret, char **ret_error) {
        g_autoptr(ElectionUnitConfig) c = NULL;
        g_autoptr(GKeyFile) kf = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *base = NULL;
        g_auto(GStrv) groups = NULL, keys = NULL;

        g_assert(path);
        g_assert(data);
        g_assert(ret);

        base = g_path_get_basename(path);
        if (!g_str_has_suffix(base, CONF_SUFFIX) || strlen(base) == strlen(CONF_SUFFIX))
                return fail(ret_error, path, "file name must be NAME" CONF_SUFFIX);

        c = g_new0(ElectionUnitConfig, 1);
        c->name = g_strndup(base, strlen(base) - strlen(CONF_SUFFIX));
        if (!election_name_is_file_safe(c->name))
                return fail(ret_error, path, "'%s' is not a valid election name", c->name);

        kf = g_key_file_new();
        if (!g_key_file_load_from_data(kf, data, size, G_KEY_FILE_NONE, &error))
                return fail(ret_error, path, "%s", error->message);

        groups = g_key_file_get_groups(kf, NULL);
        for (char **g = groups; *g; g++)
                if (strcmp(*g, ELECTION_GROUP) != 0)
                        return fail(ret_error, path, "unknown section [%s]", *g);
        if (!g_key_file_has_group(kf, ELECTION_GROUP))
                return fail(ret_error, path, "missing section [" ELECTION_GROUP "]");

        /* Unknown keys are errors: a typo like "Unit=" must not silently run nothing. */
        keys = g_key_file_get_keys(kf, ELECTION_GROUP, NULL, NULL);
        for (char **k = keys; k && *k; k++)
                if (!g_str_equal(*k, "Id") && !g_str_equal(*k, "Units") && !g_str_equal(*k, "HealthUnit"))
                        return fail(ret_error, path, "unknown key %s= in [" ELECTION_GROUP "]", *k);

        if (g_key_file_has_key(kf, ELECTION_GROUP, "Id", NULL)) {
                c->id = g_key_file_get_string(kf, ELECTION_GROUP, "Id", &error);
                if (!c->id)
                        return fail(ret_error, path, "Id=: %s", error->message);
                g_strstrip(c->id);
                if (!election_string_valid(c->id))
                        return fail(ret_error, path, "Id=%s is not a valid candidate id", c->id);
        } else {
                if (!election_string_valid(default_id))
                        return fail(ret_error, path, "no Id= and the node name is not a valid candidate id");
                c->id = g_strdup(default_id);
        }

        if (g_key_file_has_key(kf, ELECTION_GROUP, "Units", NULL)) {
                g_autofree char *v = g_key_file_get_string(kf, ELECTION_GROUP, "Units", &error);
                g_autoptr(GPtrArray) units = g_ptr_array_new_with_free_func(g_free);

                if (!v)
                        return fail(ret_error, path, "Units=: %s", error->message);
                g_auto(GStrv) words = g_strsplit_set(v, " \t", -1);
                for (char **w = words; *w; w++) {
                        if (**w == '\0')
                                continue;
                        if (!unit_name_valid(*w))
                                return fail(ret_error, path, "Units=: '%s' is not a valid unit name", *w);
                        bool dup = false;
                        for (unsigned i = 0; i < units->len; i++)
                                dup = dup || g_str_equal(units->pdata[i], *w);
                        if (!dup)
                                g_ptr_array_add(units, g_strdup(*w));
                }
                g_ptr_array_add(units, NULL);
                c->units = (char **) g_ptr_array_free(g_steal_pointer(&units), FALSE);
        } else
                c->units = g_new0(char *, 1);

        if (g_key_file_has_key(kf, ELECTION_GROUP, "HealthUnit", NULL)) {
                c->health_unit = g_key_file_get_string(kf, ELECTION_GROUP, "HealthUnit", &error);
                if (!c->health_unit)
                        return fail(ret_error, path, "HealthUnit=: %s", error->message);
                g_strstrip(c->health_unit);
                if (c->health_unit[0] == '\0')
                        g_clear_pointer(&c->health_unit, g_free); /* empty = unset */
                else if (!unit_name_valid(c->health_unit))
                        return fail(ret_error, path, "HealthUnit=: '%s' is not a valid unit name", c->health_unit);
        }

        *ret = g_steal_pointer(&c);
        return 0;
}

int election_unit_config_parse_file(const char *path, const char *default_id,
                                    ElectionUnitConfig **ret, char **ret_error) {
        g_autofree char *data = NULL;
        g_autoptr(GError) error = NULL;
        size_t size;

        if (!g_file_get_contents(path, &data, &size, &error)) {
                if (ret_error)
                        *ret_error = g_strdup(error->message);
                return error->domain == G_FILE_ERROR && error->code == G_FILE_ERROR_NOENT ? -ENOENT : -EIO;
        }
        return election_unit_config_parse_data(path, data, size, default_id, ret, ret_error);
}

static int config_name_compare(gconstpointer a, gconstpointer b) {
        const ElectionUnitConfig *x = *(ElectionUnitConfig *const *) a, *y = *(ElectionUnitConfig *const *) b;
        return strcmp(x->name, y->name);
}

int elections_d_load(const char *dir, const char *default_id, GPtrArray **ret) {
        g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(election_unit_config_destroy);
        g_autoptr(GDir) d = NULL;
        g_autoptr(GError) error = NULL;
        const char *de;

        g_assert(dir);
        g_assert(ret);

        d = g_dir_open(dir, 0, &error);
        if (!d) {
                if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
                        *ret = g_steal_pointer(&list);
                        return 0;
                }
                log_error("Failed to open %s: %s", dir, error->message);
                return -EIO;
        }

        while ((de = g_dir_read_name(d))) {
                g_autofree char *path = NULL, *msg = NULL;
                ElectionUnitConfig *c = NULL;
                int r;

                if (!g_str_has_suffix(de, CONF_SUFFIX) || de[0] == '.')
                        continue;
                path = g_build_filename(dir, de, NULL);
                if (g_file_test(path, G_FILE_TEST_IS_DIR))
                        continue;
                r = election_unit_config_parse_file(path, default_id, &c, &msg);
                if (r < 0) {
                        log_error_errno(r, "Ignoring %s", msg ? msg : path);
                        continue;
                }
                g_ptr_array_add(list, c);
        }

        g_ptr_array_sort(list, config_name_compare);
        *ret = g_steal_pointer(&list);
        return 0;
}
