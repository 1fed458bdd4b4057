/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <glib/gi18n.h>
#include <math.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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
        KIND_DURATION0, /* the same, or 0 (off) */
        KIND_IFNAMES,   /* char **, interface names */
        KIND_STRV,      /* char **, non-empty words */
        KIND_KEYNAME,   /* char *, a file name "NAME.key" (no '/') */
        KIND_BOOL,      /* bool: yes/no, true/false, on/off, 1/0 */
        KIND_FAMILY,    /* unsigned CONFIG_FAMILY_*: any, ipv4, ipv6 */
} KeyKind;

typedef struct ConfigKey {
        const char *group;
        const char *key;
        KeyKind kind;
        size_t offset;
        uint64_t min, max;
        const char *fixed;      /* NULL: applied on reload; otherwise why it cannot change live */
} ConfigKey;

#define FIXED_IDENTITY  N_("it is this node's identity in the election state and the cluster; restart to change it")
#define FIXED_RESTART   N_("it takes effect only at start; restart the daemon to change it")
#define FIXED_CLUSTER   N_("every node of the cluster must agree on it; change it on all nodes and restart them")
#define FIXED_LEASE     N_("lease safety depends on it being the same on every node for a whole run; restart all nodes to change it")

static const ConfigKey config_keys[] = {
        { "Node",    "Name",               KIND_NAME,     offsetof(Config, node_name), .fixed = FIXED_IDENTITY },
        { "Node",    "MaxElections",       KIND_UINT,     offsetof(Config, max_elections), 0, UINT32_MAX },
        { "Node",    "MaxCandidates",      KIND_UINT,     offsetof(Config, max_candidates), 0, UINT32_MAX },
        { "Node",    "CommitTimeoutSec",   KIND_DURATION, offsetof(Config, commit_timeout_usec) },
        { "Node",    "MaxPersistentPerUser", KIND_UINT,   offsetof(Config, max_persistent_per_user), 0, UINT32_MAX },
        { "Node",    "RemoveEmptyElectionsSec", KIND_DURATION0, offsetof(Config, remove_empty_usec) },
        { "Node",    "ElectionsDirectory", KIND_PATH,     offsetof(Config, elections_dir) },
        { "Node",    "RuntimeDirectory",   KIND_PATH,     offsetof(Config, runtime_dir), .fixed = FIXED_RESTART },
        { "Cluster", "Name",               KIND_NAME,     offsetof(Config, cluster_name), .fixed = FIXED_CLUSTER },
        { "Node",    "Witness",            KIND_BOOL,     offsetof(Config, witness), .fixed = FIXED_RESTART },
        { "Cluster", "KeyFile",            KIND_PATH,     offsetof(Config, key_file) },
        { "Cluster", "KeyDirectory",       KIND_PATH,     offsetof(Config, key_dir) },
        { "Cluster", "PrimaryKey",         KIND_KEYNAME,  offsetof(Config, primary_key) },
        { "Cluster", "Encrypt",            KIND_BOOL,     offsetof(Config, encrypt), .fixed = FIXED_CLUSTER },
        { "Cluster", "Interfaces",         KIND_IFNAMES,  offsetof(Config, interfaces), .fixed = FIXED_RESTART },
        { "Cluster", "Port",               KIND_PORT,     offsetof(Config, port), 1, UINT16_MAX - 1, .fixed = FIXED_CLUSTER }, /* Port+1: the cluster channel */
        { "Cluster", "Peers",              KIND_STRV,     offsetof(Config, peers), .fixed = FIXED_RESTART },
        { "Cluster", "AddressFamily",      KIND_FAMILY,   offsetof(Config, address_family), .fixed = FIXED_RESTART },
        { "Cluster", "BootstrapExpect",    KIND_UINT,     offsetof(Config, bootstrap_expect), 1, 99, .fixed = FIXED_RESTART },
        { "Cluster", "MaxVoters",          KIND_UINT,     offsetof(Config, max_voters), 1, 99, .fixed = FIXED_RESTART },
        { "Cluster", "ProbeIntervalSec",   KIND_DURATION, offsetof(Config, probe_interval_usec), .fixed = FIXED_RESTART },
        { "Cluster", "LeaseSec",           KIND_DURATION, offsetof(Config, lease_usec), .fixed = FIXED_LEASE },
        { "Cluster", "NodeTimeoutSec",     KIND_DURATION, offsetof(Config, node_timeout_usec), .fixed = FIXED_LEASE },
        { "Cluster", "RemoveDeadAfterSec", KIND_DURATION, offsetof(Config, dead_member_timeout_usec), .fixed = FIXED_RESTART },
        { "Cluster", "ActionMarginSec",    KIND_DURATION, offsetof(Config, act_margin_usec), .fixed = FIXED_LEASE },
        { "Cluster", "RaftElectionTimeoutSec", KIND_DURATION, offsetof(Config, raft_election_timeout_usec), .fixed = FIXED_LEASE },
        { "Cluster", "RaftHeartbeatSec",   KIND_DURATION, offsetof(Config, raft_heartbeat_usec), .fixed = FIXED_LEASE },
};

void config_init_defaults(Config *c) {
        *c = (Config) {
                .node_name = g_strdup(g_get_host_name()),
                .max_elections = 65536,
                .max_candidates = 1024,
                .max_persistent_per_user = 64,
                .remove_empty_usec = 60 * USEC_PER_SEC,
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
                .act_margin_usec = CONFIG_LEASE_MARGIN_USEC,
                .raft_election_timeout_usec = CONFIG_RAFT_ELECTION_TIMEOUT_USEC,
                .raft_heartbeat_usec = CONFIG_RAFT_HEARTBEAT_USEC,
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
        g_clear_pointer(&c->key_dir, g_free);
        g_clear_pointer(&c->primary_key, g_free);
        g_clear_pointer(&c->interfaces, g_strfreev);
        g_clear_pointer(&c->peers, g_strfreev);
}

bool config_family_allows(const Config *c, int family) {
        return c->address_family == CONFIG_FAMILY_ANY ||
                (c->address_family == CONFIG_FAMILY_IPV4 && family == AF_INET) ||
                (c->address_family == CONFIG_FAMILY_IPV6 && family == AF_INET6);
}

bool config_is_clustered(const Config *c) {
        return c && (c->key_file || c->key_dir);
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

        case KIND_KEYNAME:
                if (!g_str_has_suffix(value, ".key") || strlen(value) <= 4 || strchr(value, '/') ||
                    !g_utf8_validate(value, -1, NULL)) {
                        *ret_reason = N_("not a file name ending in .key");
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

        case KIND_DURATION0:
                if (streq_ptr(value, "0")) {
                        *(uint64_t *) field = 0;
                        return 0;
                }
                __attribute__((fallthrough));
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

        case KIND_FAMILY:
                if (g_ascii_strcasecmp(value, "any") == 0)
                        *(unsigned *) field = CONFIG_FAMILY_ANY;
                else if (g_ascii_strcasecmp(value, "ipv4") == 0)
                        *(unsigned *) field = CONFIG_FAMILY_IPV4;
                else if (g_ascii_strcasecmp(value, "ipv6") == 0)
                        *(unsigned *) field = CONFIG_FAMILY_IPV6;
                else {
                        *ret_reason = N_("not one of any, ipv4, ipv6");
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

        if (c->primary_key && !c->key_dir) {
                *ret_error = g_strdup_printf(_("%s: [Cluster] PrimaryKey=%s needs KeyDirectory="), path, c->primary_key);
                return -EINVAL;
        }

        if (c->max_voters % 2 == 0) {
                *ret_error = g_strdup_printf(_("%s: [%s] %s=%u: %s"), path, "Cluster", "MaxVoters",
                                             c->max_voters, _("must be odd"));
                return -EINVAL;
        }

        if (c->act_margin_usec < CONFIG_LEASE_MARGIN_MIN_USEC) {
                *ret_error = g_strdup_printf(
                        _("%s: [Cluster] ActionMarginSec=%g must be at least %g: a node must be able to stop "
                          "acting as leader within it"),
                        path, (double) c->act_margin_usec / USEC_PER_SEC,
                        (double) CONFIG_LEASE_MARGIN_MIN_USEC / USEC_PER_SEC);
                return -EINVAL;
        }
        /* The cluster may take over a silent node's candidacies only once that node's lease has
         * surely expired, even if its clock runs slow. */
        bound = c->lease_usec + c->lease_usec * CONFIG_CLOCK_RATE_BOUND_PERCENT / 100 + c->act_margin_usec;
        if (c->node_timeout_usec <= bound) {
                *ret_error = g_strdup_printf(
                        _("%s: [Cluster] NodeTimeoutSec=%g must be greater than LeaseSec=%g * 1.01 + ActionMarginSec=%g (%g)"),
                        path, (double) c->node_timeout_usec / USEC_PER_SEC,
                        (double) c->lease_usec / USEC_PER_SEC, (double) c->act_margin_usec / USEC_PER_SEC,
                        (double) bound / USEC_PER_SEC);
                return -EINVAL;
        }
        /* libraft counts in milliseconds. */
        if (c->raft_election_timeout_usec % USEC_PER_MSEC != 0 || c->raft_heartbeat_usec % USEC_PER_MSEC != 0 ||
            c->raft_election_timeout_usec > 60 * USEC_PER_SEC) {
                *ret_error = g_strdup_printf(
                        _("%s: [Cluster] RaftElectionTimeoutSec=%g and RaftHeartbeatSec=%g must be whole milliseconds, "
                          "the election timeout at most 60"),
                        path, (double) c->raft_election_timeout_usec / USEC_PER_SEC,
                        (double) c->raft_heartbeat_usec / USEC_PER_SEC);
                return -EINVAL;
        }
        if (c->raft_heartbeat_usec >= c->raft_election_timeout_usec) {
                *ret_error = g_strdup_printf(
                        _("%s: [Cluster] RaftHeartbeatSec=%g must be less than RaftElectionTimeoutSec=%g"),
                        path, (double) c->raft_heartbeat_usec / USEC_PER_SEC,
                        (double) c->raft_election_timeout_usec / USEC_PER_SEC);
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

/* One file's keys into c, without the cross-key checks. */
static int config_load_file(Config *c, const char *path, bool allow_missing, char **ret_error) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) err = NULL;
        g_auto(GStrv) groups = NULL;
        g_autofree char *error = NULL;
        int r;

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

        return 0;

fail:
        if (ret_error)
                *ret_error = g_steal_pointer(&error);
        return r;
}

static int cmp_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The "*.conf" files in path + ".d", sorted; none if the directory does not exist. */
static int config_dropins(const char *path, GPtrArray **ret, char **ret_error) {
        g_autofree char *dir = g_strconcat(path, CONFIG_DROPIN_SUFFIX, NULL);
        g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) err = NULL;
        g_autoptr(GDir) d = g_dir_open(dir, 0, &err);
        const char *name;

        if (!d) {
                if (!g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT) &&
                    !g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOTDIR)) {
                        *ret_error = g_strdup_printf(_("%s: cannot read drop-in directory: %s"), dir, err->message);
                        return -EIO;
                }
                *ret = g_steal_pointer(&files);
                return 0;
        }
        while ((name = g_dir_read_name(d)))
                if (g_str_has_suffix(name, ".conf") && name[0] != '.')
                        g_ptr_array_add(files, g_build_filename(dir, name, NULL));
        qsort(files->pdata, files->len, sizeof(char *), cmp_strings);
        *ret = g_steal_pointer(&files);
        return 0;
}

int config_load(Config *c, const char *path, bool allow_missing, char **ret_error) {
        g_autoptr(GPtrArray) dropins = NULL;
        g_autofree char *error = NULL;
        const char *last = path;
        int r;

        g_assert(c);
        g_assert(path);

        r = config_load_file(c, path, allow_missing, &error);
        if (r >= 0)
                r = config_dropins(path, &dropins, &error);
        for (unsigned i = 0; r >= 0 && i < dropins->len; i++) {
                last = dropins->pdata[i];
                r = config_load_file(c, last, false, &error);
        }
        /* A cross-key error names the last file read: with drop-ins, the one that set the keys last. */
        if (r >= 0)
                r = config_verify(c, last, &error);
        if (r < 0 && ret_error)
                *ret_error = g_steal_pointer(&error);
        return r;
}

/* ---- reload ---- */

static bool field_equal(const ConfigKey *k, const Config *a, const Config *b) {
        const void *fa = (const uint8_t *) a + k->offset, *fb = (const uint8_t *) b + k->offset;

        switch (k->kind) {
        case KIND_NAME:
        case KIND_PATH:
        case KIND_KEYNAME:
                return streq_ptr(*(char *const *) fa, *(char *const *) fb);
        case KIND_UINT:
        case KIND_FAMILY:
                return *(const unsigned *) fa == *(const unsigned *) fb;
        case KIND_PORT:
                return *(const uint16_t *) fa == *(const uint16_t *) fb;
        case KIND_BOOL:
                return *(const bool *) fa == *(const bool *) fb;
        case KIND_DURATION:
        case KIND_DURATION0:
                return *(const uint64_t *) fa == *(const uint64_t *) fb;
        case KIND_IFNAMES:
        case KIND_STRV: {
                char *const *la = *(char **const *) fa, *const *lb = *(char **const *) fb;
                if (!la || !lb)
                        return la == lb;
                return g_strv_equal((const char *const *) la, (const char *const *) lb);
        }
        }
        return false;
}

static void field_copy(const ConfigKey *k, Config *dst, const Config *src) {
        void *fd = (uint8_t *) dst + k->offset;
        const void *fs = (const uint8_t *) src + k->offset;

        switch (k->kind) {
        case KIND_NAME:
        case KIND_PATH:
        case KIND_KEYNAME:
                g_free(*(char **) fd);
                *(char **) fd = g_strdup(*(char *const *) fs);
                return;
        case KIND_UINT:
        case KIND_FAMILY:
                *(unsigned *) fd = *(const unsigned *) fs;
                return;
        case KIND_PORT:
                *(uint16_t *) fd = *(const uint16_t *) fs;
                return;
        case KIND_BOOL:
                *(bool *) fd = *(const bool *) fs;
                return;
        case KIND_DURATION:
        case KIND_DURATION0:
                *(uint64_t *) fd = *(const uint64_t *) fs;
                return;
        case KIND_IFNAMES:
        case KIND_STRV:
                g_strfreev(*(char ***) fd);
                *(char ***) fd = g_strdupv(*(char **const *) fs);
                return;
        }
}

bool config_key_reloadable(const char *group, const char *key) {
        const ConfigKey *k = config_key_find(group, key);
        return k && !k->fixed;
}

unsigned config_apply_reload(Config *running, const Config *loaded, const char *path) {
        bool clustered_before = config_is_clustered(running), clustered_after = config_is_clustered(loaded);
        unsigned refused = 0;

        g_assert(running);
        g_assert(loaded);

        if (clustered_before != clustered_after) {
                /* Standalone ↔ clustered is a different engine: nothing about the keys applies. */
                log_warning(_("%s: reload refused [Cluster] KeyFile=/KeyDirectory=: the node would become %s; "
                              "restart the daemon for that. Keeping the running keys."),
                            path, clustered_after ? _("clustered") : _("standalone"));
                refused++;
        }

        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++) {
                const ConfigKey *k = &config_keys[i];
                bool key_setting = streq_ptr(k->group, "Cluster") &&
                        (streq_ptr(k->key, "KeyFile") || streq_ptr(k->key, "KeyDirectory") || streq_ptr(k->key, "PrimaryKey"));

                if (field_equal(k, running, loaded))
                        continue;
                if (key_setting && clustered_before != clustered_after)
                        continue; /* refused above */
                if (k->fixed) {
                        log_warning(_("%s: reload refused [%s] %s=: %s. Keeping the running value."),
                                    path, k->group, k->key, _(k->fixed));
                        refused++;
                        continue;
                }
                log_info(_("%s: reload applies [%s] %s=."), path, k->group, k->key);
                field_copy(k, running, loaded);
        }
        return refused;
}
