/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <glib/gi18n.h>
#include <math.h>
#include <net/if.h>

#include "electiond-config.h"
#include "electiond-elections-d.h"
#include "electiond-util.h"

/* Durations beyond a year are certainly typos; the cap also keeps usec arithmetic far from overflow. */
#define DURATION_MAX_SEC (366.0 * 24 * 3600)

typedef enum KeyKind {
        KIND_NAME,      /* char *, election_string_valid() */
        KIND_PATH,      /* char *, absolute path */
        KIND_UINT,      /* unsigned, [min, max] */
        KIND_PORT,      /* uint16_t, [min, max] */
        KIND_DURATION,  /* uint64_t usec, seconds as a decimal number > 0 */
        KIND_IFNAMES,   /* char **, interface names */
        KIND_STRV,      /* char **, non-empty words */
        KIND_BOOL,      /* bool: yes/no, true/false, on/off, 1/0 */
} KeyKind;

typedef struct ConfigKey {
        const char *group;
        const char *key;
        KeyKind kind;
        size_t offset;
        uint64_t min, max;
} ConfigKey;

static const ConfigKey config_keys[] = {
        { "Node",    "Name",               KIND_NAME,     offsetof(Config, node_name) },
        { "Node",    "MaxElections",       KIND_UINT,     offsetof(Config, max_elections), 0, UINT32_MAX },
        { "Node",    "MaxCandidates",      KIND_UINT,     offsetof(Config, max_candidates), 0, UINT32_MAX },
        { "Node",    "CommitTimeoutSec",   KIND_DURATION, offsetof(Config, commit_timeout_usec) },
        { "Node",    "ElectionsDirectory", KIND_PATH,     offsetof(Config, elections_dir) },
        { "Node",    "RuntimeDirectory",   KIND_PATH,     offsetof(Config, runtime_dir) },
        { "Node",    "Witness",            KIND_BOOL,     offsetof(Config, witness) },
        { "Cluster", "Name",               KIND_NAME,     offsetof(Config, cluster_name) },
        { "Cluster", "KeyFile",            KIND_PATH,     offsetof(Config, key_file) },
        { "Cluster", "Interfaces",         KIND_IFNAMES,  offsetof(Config, interfaces) },
        { "Cluster", "Port",               KIND_PORT,     offsetof(Config, port), 1, UINT16_MAX - 1 }, /* Port+1: the cluster channel */
        { "Cluster", "Peers",              KIND_STRV,     offsetof(Config, peers) },
        { "Cluster", "BootstrapExpect",    KIND_UINT,     offsetof(Config, bootstrap_expect), 1, 99 },
        { "Cluster", "MaxVoters",          KIND_UINT,     offsetof(Config, max_voters), 1, 99 },
        { "Cluster", "ProbeIntervalSec",   KIND_DURATION, offsetof(Config, probe_interval_usec) },
        { "Cluster", "LeaseSec",           KIND_DURATION, offsetof(Config, lease_usec) },
        { "Cluster", "NodeTimeoutSec",     KIND_DURATION, offsetof(Config, node_timeout_usec) },
        { "Cluster", "RemoveDeadAfterSec", KIND_DURATION, offsetof(Config, dead_member_timeout_usec) },
};

void config_init_defaults(Config *c) {
        *c = (Config) {
                .node_name = g_strdup(g_get_host_name()),
                .max_elections = 65536,
                .max_candidates = 1024,
                .commit_timeout_usec = 5 * USEC_PER_SEC,
                .elections_dir = g_strdup(ELECTIOND_DEFAULT_ELECTIONS_DIR),
                .runtime_dir = g_strdup(ELECTIOND_DEFAULT_RUNTIME_DIR),
                .cluster_name = g_strdup("default"),
                .port = 7946,
                .bootstrap_expect = 1,
                .max_voters = 5,
                .probe_interval_usec = 50 * USEC_PER_MSEC,
                .lease_usec = 200 * USEC_PER_MSEC,
                .node_timeout_usec = 350 * USEC_PER_MSEC,
                .dead_member_timeout_usec = 3600 * USEC_PER_SEC,
        };
}

void config_done(Config *c) {
        if (!c)
                return;
        g_clear_pointer(&c->node_name, g_free);
        g_clear_pointer(&c->elections_dir, g_free);
        g_clear_pointer(&c->runtime_dir, g_free);
        g_clear_pointer(&c->cluster_name, g_free);
        g_clear_pointer(&c->key_file, g_free);
        g_clear_pointer(&c->interfaces, g_strfreev);
        g_clear_pointer(&c->peers, g_strfreev);
}

bool config_is_clustered(const Config *c) {
        return c && c->key_file;
}

static const ConfigKey *config_key_find(const char *group, const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (streq_ptr(config_keys[i].group, group) && streq_ptr(config_keys[i].key, key))
                        return &config_keys[i];
        return NULL;
}

static bool group_known(const char *group) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (streq_ptr(config_keys[i].group, group))
                        return true;
        return false;
}

/* Lists accept ';' (GKeyFile style), ',' and whitespace as separators. */
static char **split_list(const char *value) {
        g_auto(GStrv) words = g_strsplit_set(value, ";, \t", -1);
        g_autoptr(GPtrArray) out = g_ptr_array_new();

        for (char **w = words; *w; w++)
                if (**w)
                        g_ptr_array_add(out, g_strdup(*w));
        if (out->len == 0)
                return NULL;
        g_ptr_array_add(out, NULL);
        return (char **) g_ptr_array_free(g_steal_pointer(&out), false);
}

static bool ifname_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n >= IFNAMSIZ || streq_ptr(s, ".") || streq_ptr(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (*p == '/' || *p == ':' || (unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7f)
                        return false;
        return true;
}

static int parse_duration(const char *value, uint64_t *ret, const char **ret_reason) {
        size_t digits = 0, dots = 0;
        double v;

        /* Plain decimal seconds only: strtod() would also take "inf", "nan" and hex floats. */
        for (const char *p = value; *p; p++) {
                if (g_ascii_isdigit(*p))
                        digits++;
                else if (*p == '.')
                        dots++;
                else {
                        *ret_reason = N_("not a number of seconds (e.g. 0.5)");
                        return -EINVAL;
                }
        }
        if (digits == 0 || dots > 1) {
                *ret_reason = N_("not a number of seconds (e.g. 0.5)");
                return -EINVAL;
        }

        v = g_ascii_strtod(value, NULL);
        if (!isfinite(v) || v > DURATION_MAX_SEC) {
                *ret_reason = N_("duration too large");
                return -ERANGE;
        }
        v = v * (double) USEC_PER_SEC + 0.5; /* round to the nearest µs */
        if (v < 1) {
                *ret_reason = N_("duration must be positive");
                return -ERANGE;
        }
        *ret = (uint64_t) v;
        return 0;
}

static int parse_key(Config *c, const ConfigKey *k, const char *value, const char **ret_reason) {
        void *field = (uint8_t *) c + k->offset;
        uint64_t u;
        int r;

        switch (k->kind) {
        case KIND_NAME:
                if (!election_string_valid(value)) {
                        *ret_reason = N_("must be 1-255 bytes of UTF-8 without control characters");
                        return -EINVAL;
                }
                g_free(*(char **) field);
                *(char **) field = g_strdup(value);
                return 0;

        case KIND_PATH:
                if (!g_path_is_absolute(value)) {
                        *ret_reason = N_("not an absolute path");
                        return -EINVAL;
                }
                g_free(*(char **) field);
                *(char **) field = g_strdup(value);
                return 0;

        case KIND_UINT:
        case KIND_PORT: {
                g_autoptr(GError) err = NULL;

                if (!g_ascii_string_to_unsigned(value, 10, k->min, k->max, &u, &err)) {
                        *ret_reason = g_error_matches(err, G_NUMBER_PARSER_ERROR, G_NUMBER_PARSER_ERROR_OUT_OF_BOUNDS)
                                ? N_("number out of range") : N_("not an unsigned integer");
                        return -EINVAL;
                }
                if (k->kind == KIND_PORT)
                        *(uint16_t *) field = (uint16_t) u;
                else
                        *(unsigned *) field = (unsigned) u;
                return 0;
        }

        case KIND_DURATION:
                r = parse_duration(value, &u, ret_reason);
                if (r < 0)
                        return r;
                *(uint64_t *) field = u;
                return 0;

        case KIND_BOOL:
                if (g_ascii_strcasecmp(value, "yes") == 0 || g_ascii_strcasecmp(value, "true") == 0 ||
                    g_ascii_strcasecmp(value, "on") == 0 || streq_ptr(value, "1"))
                        *(bool *) field = true;
                else if (g_ascii_strcasecmp(value, "no") == 0 || g_ascii_strcasecmp(value, "false") == 0 ||
                         g_ascii_strcasecmp(value, "off") == 0 || streq_ptr(value, "0"))
                        *(bool *) field = false;
                else {
                        *ret_reason = N_("not a boolean (yes or no)");
                        return -EINVAL;
                }
                return 0;

        case KIND_IFNAMES:
        case KIND_STRV: {
                g_auto(GStrv) l = split_list(value);

                if (k->kind == KIND_IFNAMES)
                        for (char **w = l; w && *w; w++)
                                if (!ifname_valid(*w)) {
                                        *ret_reason = N_("not a list of interface names");
                                        return -EINVAL;
                                }
                g_strfreev(*(char ***) field);
                *(char ***) field = g_steal_pointer(&l);
                return 0;
        }
        }

        *ret_reason = "internal error";
        return -EINVAL;
}

/* Constraints between keys, checked after the whole file is read. */
static int config_verify(const Config *c, const char *path, char **ret_error) {
        uint64_t bound;

        if (c->max_voters % 2 == 0) {
                *ret_error = g_strdup_printf(_("%s: [%s] %s=%u: %s"), path, "Cluster", "MaxVoters",
                                             c->max_voters, _("must be odd"));
                return -EINVAL;
        }

        /* The cluster may take over a silent node's candidacies only once that node's lease has
         * surely expired, even if its clock runs slow. */
        bound = c->lease_usec + c->lease_usec * CONFIG_CLOCK_RATE_BOUND_PERCENT / 100 + CONFIG_LEASE_MARGIN_USEC;
        if (c->node_timeout_usec <= bound) {
                *ret_error = g_strdup_printf(
                        _("%s: [Cluster] NodeTimeoutSec=%g must be greater than LeaseSec=%g * 1.01 + 0.1 (%g)"),
                        path, (double) c->node_timeout_usec / USEC_PER_SEC,
                        (double) c->lease_usec / USEC_PER_SEC, (double) bound / USEC_PER_SEC);
                return -EINVAL;
        }
        if (c->probe_interval_usec >= c->node_timeout_usec) {
                *ret_error = g_strdup_printf(
                        _("%s: [Cluster] ProbeIntervalSec=%g must be less than NodeTimeoutSec=%g"),
                        path, (double) c->probe_interval_usec / USEC_PER_SEC,
                        (double) c->node_timeout_usec / USEC_PER_SEC);
                return -EINVAL;
        }
        return 0;
}

int config_load(Config *c, const char *path, bool allow_missing, char **ret_error) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) err = NULL;
        g_auto(GStrv) groups = NULL;
        g_autofree char *error = NULL;
        int r;

        g_assert(c);
        g_assert(path);

        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
                if (g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
                        if (allow_missing) {
                                log_debug("No configuration file %s, using defaults.", path);
                                return 0;
                        }
                        r = -ENOENT;
                } else if (err->domain == G_FILE_ERROR)
                        r = -EIO;
                else
                        r = -EINVAL;
                error = g_strdup_printf(_("%s: cannot load configuration: %s"), path, err->message);
                goto fail;
        }

        groups = g_key_file_get_groups(kf, NULL);
        for (char **g = groups; *g; g++) {
                g_auto(GStrv) keys = NULL;

                if (!group_known(*g)) {
                        log_warning(_("%s: unknown section [%s], ignoring."), path, *g);
                        continue;
                }

                keys = g_key_file_get_keys(kf, *g, NULL, NULL);
                for (char **k = keys; k && *k; k++) {
                        const ConfigKey *ck = config_key_find(*g, *k);
                        g_autofree char *value = NULL;
                        g_autoptr(GError) verr = NULL;
                        const char *reason = NULL;

                        if (!ck) {
                                log_warning(_("%s: unknown key %s= in section [%s], ignoring."), path, *k, *g);
                                continue;
                        }

                        value = g_key_file_get_string(kf, *g, *k, &verr);
                        if (!value) {
                                g_autofree char *raw = g_key_file_get_value(kf, *g, *k, NULL);

                                error = g_strdup_printf(_("%s: [%s] %s=%s: %s"), path, *g, *k,
                                                        raw ?: "", verr ? verr->message : "?");
                                r = -EINVAL;
                                goto fail;
                        }

                        r = parse_key(c, ck, value, &reason);
                        if (r < 0) {
                                error = g_strdup_printf(_("%s: [%s] %s=%s: %s"), path, *g, *k, value, _(reason));
                                r = -EINVAL;
                                goto fail;
                        }
                }
        }

        r = config_verify(c, path, &error);
        if (r < 0)
                goto fail;

        return 0;

fail:
        if (ret_error)
                *ret_error = g_steal_pointer(&error);
        return r;
}
