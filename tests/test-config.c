/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Config parsing: defaults, every key, every malformed value, missing files. */
#include <glib.h>
#include <sys/socket.h>
#include <glib/gstdio.h>

#include "electiond-config.h"
#include "electiond-util.h"

static char *tmpdir;

static char *write_config(const char *name, const char *text) {
        char *path = g_build_filename(tmpdir, name, NULL);
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
        return path;
}

/* Loads text on top of the defaults; returns the status and the error message. */
static int load_text(const char *text, Config *c, char **ret_error) {
        g_autofree char *path = write_config("electiond.conf", text);

        config_init_defaults(c);
        return config_load(c, path, false, ret_error);
}

static void test_defaults(void) {
        Config c;

        config_init_defaults(&c);
        g_assert_cmpstr(c.node_name, ==, g_get_host_name());
        g_assert_cmpuint(c.max_elections, ==, 65536);
        g_assert_cmpuint(c.max_candidates, ==, 1024);
        g_assert_cmpuint(c.max_persistent_per_user, ==, 64);
        g_assert_cmpuint(c.remove_empty_usec, ==, 60 * USEC_PER_SEC);
        g_assert_cmpuint(c.commit_timeout_usec, ==, 5 * USEC_PER_SEC);
        g_assert_cmpstr(c.elections_dir, ==, "/etc/electiond/elections.d");
        g_assert_cmpstr(c.runtime_dir, ==, "/run/electiond");
        g_assert_cmpstr(c.cluster_name, ==, "default");
        g_assert_null(c.key_file);
        g_assert_null(c.interfaces);
        g_assert_null(c.peers);
        g_assert_cmpuint(c.port, ==, 7946);
        g_assert_cmpuint(c.bootstrap_expect, ==, 1);
        g_assert_cmpuint(c.max_voters, ==, 5);
        g_assert_cmpuint(c.probe_interval_usec, ==, 50 * USEC_PER_MSEC);
        g_assert_cmpuint(c.lease_usec, ==, 200 * USEC_PER_MSEC);
        g_assert_cmpuint(c.node_timeout_usec, ==, 350 * USEC_PER_MSEC);
        g_assert_cmpuint(c.act_margin_usec, ==, 100 * USEC_PER_MSEC);
        g_assert_cmpuint(c.raft_election_timeout_usec, ==, 150 * USEC_PER_MSEC);
        g_assert_cmpuint(c.raft_heartbeat_usec, ==, 30 * USEC_PER_MSEC);
        g_assert_cmpuint(c.dead_member_timeout_usec, ==, 3600 * USEC_PER_SEC);
        g_assert_false(config_is_clustered(&c));
        config_done(&c);
        config_done(NULL);
}

static void test_missing(void) {
        g_autofree char *path = g_build_filename(tmpdir, "does-not-exist.conf", NULL);
        g_autofree char *error = NULL;
        Config c;

        config_init_defaults(&c);
        g_assert_cmpint(config_load(&c, path, true, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpuint(c.max_elections, ==, 65536);

        g_assert_cmpint(config_load(&c, path, false, &error), ==, -ENOENT);
        g_assert_nonnull(error);
        g_assert_nonnull(strstr(error, path));
        config_done(&c);
}

static void test_every_key(void) {
        g_autofree char *error = NULL;
        Config c;

        g_assert_cmpint(load_text("# comment\n"
                                  "[Node]\n"
                                  "Name=node-ä 1\n"
                                  "MaxElections=7\n"
                                  "MaxCandidates=0\n"
                                  "MaxPersistentPerUser=0\n"
                                  "RemoveEmptyElectionsSec=0\n"
                                  "CommitTimeoutSec=0.25\n"
                                  "ElectionsDirectory=/srv/el.d\n"
                                  "RuntimeDirectory=/run/x\n"
                                  "[Cluster]\n"
                                  "Name=lab\n"
                                  "KeyFile=/etc/electiond/cluster.key\n"
                                  "Interfaces=eth0;br-lan, veth1\n"
                                  "Peers=10.0.0.2:7946;[fd00::1]:7000\n"
                                  "Port=8000\n"
                                  "BootstrapExpect=3\n"
                                  "MaxVoters=7\n"
                                  "ProbeIntervalSec=0.05\n"
                                  "LeaseSec=1\n"
                                  "NodeTimeoutSec=1.5\n"
                                  "RemoveDeadAfterSec=60\n"
                                  "ActionMarginSec=0.05\n"
                                  "RaftElectionTimeoutSec=0.2\n"
                                  "RaftHeartbeatSec=0.02\n",
                                  &c, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpstr(c.node_name, ==, "node-ä 1");
        g_assert_cmpuint(c.max_elections, ==, 7);
        g_assert_cmpuint(c.max_candidates, ==, 0);
        g_assert_cmpuint(c.max_persistent_per_user, ==, 0);
        g_assert_cmpuint(c.remove_empty_usec, ==, 0);    /* 0: off, unlike the other durations */
        g_assert_cmpuint(c.commit_timeout_usec, ==, 250 * USEC_PER_MSEC);
        g_assert_cmpstr(c.elections_dir, ==, "/srv/el.d");
        g_assert_cmpstr(c.runtime_dir, ==, "/run/x");
        g_assert_cmpstr(c.cluster_name, ==, "lab");
        g_assert_cmpstr(c.key_file, ==, "/etc/electiond/cluster.key");
        g_assert_true(config_is_clustered(&c));
        g_assert_cmpuint(g_strv_length(c.interfaces), ==, 3);
        g_assert_cmpstr(c.interfaces[0], ==, "eth0");
        g_assert_cmpstr(c.interfaces[1], ==, "br-lan");
        g_assert_cmpstr(c.interfaces[2], ==, "veth1");
        g_assert_cmpuint(g_strv_length(c.peers), ==, 2);
        g_assert_cmpstr(c.peers[0], ==, "10.0.0.2:7946");
        g_assert_cmpstr(c.peers[1], ==, "[fd00::1]:7000");
        g_assert_cmpuint(c.port, ==, 8000);
        g_assert_cmpuint(c.bootstrap_expect, ==, 3);
        g_assert_cmpuint(c.max_voters, ==, 7);
        g_assert_cmpuint(c.probe_interval_usec, ==, 50 * USEC_PER_MSEC);
        g_assert_cmpuint(c.lease_usec, ==, USEC_PER_SEC);
        g_assert_cmpuint(c.node_timeout_usec, ==, 1500 * USEC_PER_MSEC);
        g_assert_cmpuint(c.dead_member_timeout_usec, ==, 60 * USEC_PER_SEC);
        g_assert_cmpuint(c.act_margin_usec, ==, 50 * USEC_PER_MSEC);
        g_assert_cmpuint(c.raft_election_timeout_usec, ==, 200 * USEC_PER_MSEC);
        g_assert_cmpuint(c.raft_heartbeat_usec, ==, 20 * USEC_PER_MSEC);
        config_done(&c);
}

static void test_unknown_ignored(void) {
        g_autofree char *error = NULL;
        Config c;

        /* Unknown sections and keys only warn; known keys around them still apply. */
        g_assert_cmpint(load_text("[Node]\nFrobnicate=yes\nMaxElections=3\n[Whatever]\nX=1\n", &c, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpuint(c.max_elections, ==, 3);
        config_done(&c);
}

static void test_empty_lists(void) {
        g_autofree char *error = NULL;
        Config c;

        g_assert_cmpint(load_text("[Cluster]\nInterfaces=\nPeers= ; \n", &c, &error), ==, 0);
        g_assert_null(c.interfaces);
        g_assert_null(c.peers);
        config_done(&c);
}

typedef struct Malformed {
        const char *group, *key, *value;
} Malformed;

static const Malformed malformed[] = {
        { "Node",    "Name",               "" },
        { "Node",    "Name",               "a\\tb" },
        { "Node",    "MaxElections",       "many" },
        { "Node",    "MaxElections",       "-1" },
        { "Node",    "MaxElections",       "99999999999" },
        { "Node",    "MaxCandidates",      "1.5" },
        { "Node",    "CommitTimeoutSec",   "0" },
        { "Node",    "CommitTimeoutSec",   "5s" },
        { "Node",    "CommitTimeoutSec",   "inf" },
        { "Node",    "CommitTimeoutSec",   "0x10" },
        { "Node",    "CommitTimeoutSec",   "1.2.3" },
        { "Node",    "CommitTimeoutSec",   "100000000" },
        { "Node",    "MaxPersistentPerUser", "-1" },
        { "Node",    "MaxPersistentPerUser", "lots" },
        { "Node",    "RemoveEmptyElectionsSec", "-1" },
        { "Node",    "RemoveEmptyElectionsSec", "0.0000001" },
        { "Node",    "RemoveEmptyElectionsSec", "never" },
        { "Node",    "ElectionsDirectory", "elections.d" },
        { "Node",    "RuntimeDirectory",   "" },
        { "Cluster", "Name",               "" },
        { "Cluster", "KeyFile",            "relative/key" },
        { "Cluster", "Interfaces",         "eth0;a/b" },
        { "Cluster", "Interfaces",         "averyveryverylongname0" },
        { "Cluster", "Port",               "0" },
        { "Cluster", "Port",               "65536" },
        { "Cluster", "Port",               "65535" }, /* Port+1 must be a port too */
        { "Cluster", "Port",               "http" },
        { "Cluster", "BootstrapExpect",    "0" },
        { "Cluster", "MaxVoters",          "0" },
        { "Cluster", "MaxVoters",          "101" },
        { "Cluster", "ProbeIntervalSec",   "-0.1" },
        { "Cluster", "LeaseSec",           "nan" },
        { "Cluster", "NodeTimeoutSec",     "" },
        { "Cluster", "RemoveDeadAfterSec", "forever" },
        { "Cluster", "ActionMarginSec",    "0" },
        { "Cluster", "RaftElectionTimeoutSec", "-1" },
        { "Cluster", "RaftHeartbeatSec",   "1e-3" },
};

static void test_malformed(void) {
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++) {
                const Malformed *t = &malformed[i];
                g_autofree char *text = g_strdup_printf("[%s]\n%s=%s\n", t->group, t->key, t->value);
                g_autofree char *error = NULL;
                g_autofree char *expect = NULL;
                g_autofree char *path = g_build_filename(tmpdir, "electiond.conf", NULL);
                Config c;

                g_test_message("[%s] %s=%s", t->group, t->key, t->value);
                g_assert_cmpint(load_text(text, &c, &error), ==, -EINVAL);
                g_assert_nonnull(error);
                /* The message names file, section, key and (raw) value. */
                expect = g_strdup_printf("%s: [%s] %s=", path, t->group, t->key);
                g_assert_nonnull(strstr(error, expect));
                if (!strchr(t->value, '\\'))
                        g_assert_nonnull(strstr(error, t->value));
                config_done(&c);
        }
}

static void test_witness(void) {
        static const struct {
                const char *value;
                int expect; /* 1 yes, 0 no, -1 invalid */
        } cases[] = {
                { "yes", 1 }, { "YES", 1 }, { "true", 1 }, { "on", 1 }, { "1", 1 },
                { "no", 0 }, { "False", 0 }, { "off", 0 }, { "0", 0 },
                { "y", -1 }, { "2", -1 }, { "yes please", -1 },
        };
        Config c;

        config_init_defaults(&c);
        g_assert_false(c.witness);
        config_done(&c);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                g_autofree char *text = g_strdup_printf("[Node]\nWitness=%s\n", cases[i].value);
                g_autofree char *error = NULL;
                int r = load_text(text, &c, &error);

                g_test_message("Witness=%s", cases[i].value);
                if (cases[i].expect < 0) {
                        g_assert_cmpint(r, ==, -EINVAL);
                        g_assert_nonnull(strstr(error, "Witness="));
                } else {
                        g_assert_cmpint(r, ==, 0);
                        g_assert_cmpint(c.witness, ==, cases[i].expect);
                }
                config_done(&c);
        }
}

static void test_address_family(void) {
        static const struct {
                const char *value;
                int expect; /* CONFIG_FAMILY_*, -1 invalid */
        } cases[] = {
                { "any", CONFIG_FAMILY_ANY }, { "ipv4", CONFIG_FAMILY_IPV4 }, { "IPv6", CONFIG_FAMILY_IPV6 },
                { "both", -1 }, { "4", -1 }, { "", -1 },
        };
        Config c;

        config_init_defaults(&c);
        g_assert_cmpuint(c.address_family, ==, CONFIG_FAMILY_ANY);
        g_assert_true(config_family_allows(&c, AF_INET) && config_family_allows(&c, AF_INET6));
        g_assert_false(config_key_reloadable("Cluster", "AddressFamily"));
        config_done(&c);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                g_autofree char *text = g_strdup_printf("[Cluster]\nAddressFamily=%s\n", cases[i].value);
                g_autofree char *error = NULL;
                int r = load_text(text, &c, &error);

                g_test_message("AddressFamily=%s", cases[i].value);
                if (cases[i].expect < 0) {
                        g_assert_cmpint(r, ==, -EINVAL);
                        g_assert_nonnull(strstr(error, "AddressFamily="));
                } else {
                        g_assert_cmpint(r, ==, 0);
                        g_assert_cmpuint(c.address_family, ==, (unsigned) cases[i].expect);
                        g_assert_cmpint(config_family_allows(&c, AF_INET), ==, cases[i].expect != CONFIG_FAMILY_IPV6);
                        g_assert_cmpint(config_family_allows(&c, AF_INET6), ==, cases[i].expect != CONFIG_FAMILY_IPV4);
                }
                config_done(&c);
        }
        /* Peers= takes IPv6 literals as they are (gossip parses them, and ignores bad ones as before) */
        g_assert_cmpint(load_text("[Cluster]\nPeers=[fe80::1%eth0]:7946, [2001:db8::1]:7946;fe80::2%3\n", &c, NULL), ==, 0);
        g_assert_cmpuint(g_strv_length(c.peers), ==, 3);
        g_assert_cmpstr(c.peers[0], ==, "[fe80::1%eth0]:7946");
        g_assert_cmpstr(c.peers[2], ==, "fe80::2%3");
        config_done(&c);
}

/* [Cluster] Encrypt=: a boolean, default no, refused on reload (an established Raft connection
 * would stay unencrypted). */
static void test_encrypt(void) {
        g_autofree char *error = NULL;
        Config c, loaded;

        config_init_defaults(&c);
        g_assert_false(c.encrypt);
        config_done(&c);
        g_assert_cmpint(load_text("[Cluster]\nKeyFile=/k\nEncrypt=yes\n", &c, &error), ==, 0);
        g_assert_true(c.encrypt);
        g_assert_cmpint(load_text("[Cluster]\nKeyFile=/k\nEncrypt=no\n", &loaded, &error), ==, 0);
        g_assert_false(loaded.encrypt);
        g_assert_cmpuint(config_apply_reload(&c, &loaded, "test"), ==, 1);
        g_assert_true(c.encrypt);
        config_done(&loaded);
        config_done(&c);
        g_assert_cmpint(load_text("[Cluster]\nKeyFile=/k\nEncrypt=maybe\n", &c, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "Encrypt="));
        config_done(&c);
        g_assert_false(config_key_reloadable("Cluster", "Encrypt"));
}

static void test_cross_checks(void) {
        static const char *const bad[] = {
                "[Cluster]\nMaxVoters=4\n",
                /* 0.5 <= 0.4 * 1.01 + 0.1 = 0.504 */
                "[Cluster]\nLeaseSec=0.4\nNodeTimeoutSec=0.5\n",
                "[Cluster]\nLeaseSec=1\n",
                "[Cluster]\nProbeIntervalSec=0.5\n",
                /* δ enters the bound: 0.35 <= 0.2 * 1.01 + 0.15 = 0.352 */
                "[Cluster]\nActionMarginSec=0.15\n",
                "[Cluster]\nActionMarginSec=0.004\n",
                "[Cluster]\nRaftElectionTimeoutSec=0.0505\n",
                "[Cluster]\nRaftHeartbeatSec=0.0105\n",
                "[Cluster]\nRaftHeartbeatSec=0.15\n",
                "[Cluster]\nRaftElectionTimeoutSec=0.03\n",
                "[Cluster]\nRaftElectionTimeoutSec=61\nRaftHeartbeatSec=1\n",
        };
        static const char *const good[] = {
                "[Cluster]\nMaxVoters=1\n",
                "[Cluster]\nLeaseSec=0.39\nNodeTimeoutSec=0.5\n",
                /* 0.35 > 0.2 * 1.01 + 0.145 = 0.347 */
                "[Cluster]\nActionMarginSec=0.145\n",
                "[Cluster]\nLeaseSec=0.08\nActionMarginSec=0.04\nNodeTimeoutSec=0.13\n",
                "[Cluster]\nRaftElectionTimeoutSec=0.031\n",
                "[Cluster]\nRaftElectionTimeoutSec=0.06\nRaftHeartbeatSec=0.015\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                g_autofree char *error = NULL;
                Config c;

                g_assert_cmpint(load_text(bad[i], &c, &error), ==, -EINVAL);
                g_assert_nonnull(error);
                g_assert_nonnull(strstr(error, "electiond.conf"));
                config_done(&c);
        }
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                g_autofree char *error = NULL;
                Config c;

                g_assert_cmpint(load_text(good[i], &c, &error), ==, 0);
                g_assert_null(error);
                config_done(&c);
        }
}

static void test_syntax_error(void) {
        g_autofree char *error = NULL;
        Config c;

        g_assert_cmpint(load_text("this is not a key file\n", &c, &error), ==, -EINVAL);
        g_assert_nonnull(error);
        g_assert_nonnull(strstr(error, "electiond.conf"));
        config_done(&c);
}

/* Drop-ins: the *.conf files of <file>.d after the file, in lexical order; cross-key checks on the result. */
static void test_dropins(void) {
        g_autofree char *dir = g_build_filename(tmpdir, "drop.conf.d", NULL);
        g_autofree char *main_path = write_config("drop.conf", "[Cluster]\nLeaseSec=0.1\nMaxVoters=3\n");
        g_autofree char *a = NULL, *b = NULL, *ignored = NULL, *error = NULL;
        Config c;

        g_assert_cmpint(g_mkdir(dir, 0700), ==, 0);
        a = write_config("drop.conf.d/20-b.conf", "[Cluster]\nLeaseSec=0.2\nMaxVoters=7\n");
        b = write_config("drop.conf.d/10-a.conf", "[Cluster]\nLeaseSec=0.3\nBootstrapExpect=2\n");
        ignored = write_config("drop.conf.d/30-c.conf.example", "[Cluster]\nLeaseSec=5\n");

        config_init_defaults(&c);
        g_assert_cmpint(config_load(&c, main_path, false, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpuint(c.lease_usec, ==, 200 * USEC_PER_MSEC); /* 20-b after 10-a after the file */
        g_assert_cmpuint(c.max_voters, ==, 7);
        g_assert_cmpuint(c.bootstrap_expect, ==, 2);
        config_done(&c);

        /* A bad drop-in is named in the error; a cross-key error names the last file read. */
        g_assert_true(g_file_set_contents(b, "[Cluster]\nLeaseSec=soon\n", -1, NULL));
        config_init_defaults(&c);
        g_assert_cmpint(config_load(&c, main_path, false, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "10-a.conf"));
        g_clear_pointer(&error, g_free);
        config_done(&c);
        g_assert_true(g_file_set_contents(b, "[Cluster]\nNodeTimeoutSec=0.25\n", -1, NULL));
        config_init_defaults(&c);
        g_assert_cmpint(config_load(&c, main_path, false, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "20-b.conf"));
        g_assert_nonnull(strstr(error, "ActionMarginSec"));
        g_clear_pointer(&error, g_free);
        config_done(&c);

        /* A missing main file that may be missing still gets its drop-ins. */
        g_assert_cmpint(g_unlink(main_path), ==, 0);
        g_assert_cmpint(g_unlink(b), ==, 0);
        config_init_defaults(&c);
        g_assert_cmpint(config_load(&c, main_path, true, &error), ==, 0);
        g_assert_cmpuint(c.max_voters, ==, 7);
        config_done(&c);

        g_assert_cmpint(g_unlink(a), ==, 0);
        g_assert_cmpint(g_unlink(ignored), ==, 0);
        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* The shipped fast profile is valid on its own and names every timing key it changes. */
static void test_fast_profile(void) {
        const char *root = g_getenv("ELECTIOND_SOURCE_ROOT");
        g_autofree char *path = NULL, *error = NULL;
        Config c;

        if (!root) {
                g_test_skip("ELECTIOND_SOURCE_ROOT not set");
                return;
        }
        path = g_build_filename(root, "conf", "50-fast.conf", NULL);
        config_init_defaults(&c);
        g_assert_cmpint(config_load(&c, path, false, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpuint(c.probe_interval_usec, ==, 20 * USEC_PER_MSEC);
        g_assert_cmpuint(c.lease_usec, ==, 80 * USEC_PER_MSEC);
        g_assert_cmpuint(c.act_margin_usec, ==, 40 * USEC_PER_MSEC);
        g_assert_cmpuint(c.node_timeout_usec, ==, 130 * USEC_PER_MSEC);
        g_assert_cmpuint(c.raft_election_timeout_usec, ==, 60 * USEC_PER_MSEC);
        g_assert_cmpuint(c.raft_heartbeat_usec, ==, 15 * USEC_PER_MSEC);
        config_done(&c);
}

/* Reload: what may change live is copied in place, the rest refused and kept. */
static void test_reload(void) {
        Config running, loaded;
        g_autofree char *error = NULL;
        char *name_before, *dir_before;

        g_assert_cmpint(load_text("[Node]\nName=a\nMaxElections=10\n[Cluster]\nKeyFile=/k/old.key\nPort=7000\n"
                                  "Interfaces=eth0\n", &running, &error), ==, 0);
        name_before = running.node_name;
        dir_before = running.runtime_dir;

        /* the same file: nothing refused, nothing changes */
        g_assert_cmpint(load_text("[Node]\nName=a\nMaxElections=10\n[Cluster]\nKeyFile=/k/old.key\nPort=7000\n"
                                  "Interfaces=eth0\n", &loaded, &error), ==, 0);
        g_assert_cmpuint(config_apply_reload(&running, &loaded, "test"), ==, 0);
        config_done(&loaded);

        g_assert_cmpint(load_text("[Node]\nName=b\nMaxElections=20\nMaxCandidates=3\nCommitTimeoutSec=2\n"
                                  "ElectionsDirectory=/e\nRuntimeDirectory=/r\n"
                                  "[Cluster]\nKeyFile=/k/new.key\nKeyDirectory=/k/d\nPrimaryKey=x.key\nPort=7100\n"
                                  "Interfaces=eth1\nLeaseSec=0.3\nNodeTimeoutSec=0.5\n", &loaded, &error), ==, 0);
        /* Name, RuntimeDirectory, Port, Interfaces, LeaseSec, NodeTimeoutSec */
        g_assert_cmpuint(config_apply_reload(&running, &loaded, "test"), ==, 6);
        config_done(&loaded);
        g_assert_true(running.node_name == name_before); /* untouched pointers: the cluster keeps them */
        g_assert_true(running.runtime_dir == dir_before);
        g_assert_cmpstr(running.node_name, ==, "a");
        g_assert_cmpstr(running.runtime_dir, ==, "/run/electiond");
        g_assert_cmpuint(running.port, ==, 7000);
        g_assert_cmpstr(running.interfaces[0], ==, "eth0");
        g_assert_cmpuint(running.lease_usec, ==, 200 * USEC_PER_MSEC);
        g_assert_cmpuint(running.max_elections, ==, 20);
        g_assert_cmpuint(running.max_candidates, ==, 3);
        g_assert_cmpuint(running.commit_timeout_usec, ==, 2 * USEC_PER_SEC);
        g_assert_cmpstr(running.elections_dir, ==, "/e");
        g_assert_cmpstr(running.key_file, ==, "/k/new.key");
        g_assert_cmpstr(running.key_dir, ==, "/k/d");
        g_assert_cmpstr(running.primary_key, ==, "x.key");

        /* clustered -> standalone is refused as a whole, the keys stay */
        g_assert_cmpint(load_text("[Node]\nName=a\n[Cluster]\nPort=7000\nInterfaces=eth0\n", &loaded, &error), ==, 0);
        g_assert_cmpuint(config_apply_reload(&running, &loaded, "test"), ==, 1);
        config_done(&loaded);
        g_assert_true(config_is_clustered(&running));
        g_assert_cmpstr(running.key_file, ==, "/k/new.key");
        config_done(&running);

        g_assert_true(config_key_reloadable("Node", "CommitTimeoutSec"));
        g_assert_true(config_key_reloadable("Cluster", "KeyDirectory"));
        g_assert_false(config_key_reloadable("Cluster", "LeaseSec"));
        g_assert_false(config_key_reloadable("Node", "Name"));
        g_assert_false(config_key_reloadable("Node", "NoSuchKey"));

        /* PrimaryKey= needs KeyDirectory=, and names a .key file */
        g_assert_cmpint(load_text("[Cluster]\nKeyFile=/k\nPrimaryKey=a.key\n", &loaded, &error), ==, -EINVAL);
        g_clear_pointer(&error, g_free);
        config_done(&loaded);
        g_assert_cmpint(load_text("[Cluster]\nKeyDirectory=/k\nPrimaryKey=a/b.key\n", &loaded, &error), ==, -EINVAL);
        g_clear_pointer(&error, g_free);
        config_done(&loaded);
        g_assert_cmpint(load_text("[Cluster]\nKeyDirectory=/k\nPrimaryKey=a.txt\n", &loaded, &error), ==, -EINVAL);
        g_clear_pointer(&error, g_free);
        config_done(&loaded);
        g_assert_cmpint(load_text("[Cluster]\nKeyDirectory=/k\n", &loaded, &error), ==, 0);
        g_assert_true(config_is_clustered(&loaded));
        config_done(&loaded);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        log_set_max_level(LOG_ERR); /* the unknown-key warnings are expected */
        tmpdir = g_dir_make_tmp("test-config-XXXXXX", NULL);
        g_assert_nonnull(tmpdir);

        g_test_add_func("/config/defaults", test_defaults);
        g_test_add_func("/config/missing", test_missing);
        g_test_add_func("/config/every-key", test_every_key);
        g_test_add_func("/config/unknown-ignored", test_unknown_ignored);
        g_test_add_func("/config/empty-lists", test_empty_lists);
        g_test_add_func("/config/malformed", test_malformed);
        g_test_add_func("/config/cross-checks", test_cross_checks);
        g_test_add_func("/config/witness", test_witness);
        g_test_add_func("/config/address-family", test_address_family);
        g_test_add_func("/config/encrypt", test_encrypt);
        g_test_add_func("/config/syntax-error", test_syntax_error);
        g_test_add_func("/config/reload", test_reload);
        g_test_add_func("/config/dropins", test_dropins);
        g_test_add_func("/config/fast-profile", test_fast_profile);

        r = g_test_run();

        g_autofree char *conf = g_build_filename(tmpdir, "electiond.conf", NULL);
        (void) g_unlink(conf);
        (void) g_rmdir(tmpdir);
        g_free(tmpdir);
        return r;
}
