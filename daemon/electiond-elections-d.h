/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * /etc/electiond/elections.d/NAME.conf: elections this node stands in persistently, and the units
 * that run only while its candidate leads. GKeyFile:
 *
 *   [Election]
 *   Id=web-1                        candidate id, default: the node name
 *   Units=nginx.service vip.service started while this node leads NAME with quorum, stopped otherwise
 *   HealthUnit=nginx-health.service optional: ActiveState "failed" withdraws the candidacy (Leave),
 *                                   "active" enters it again
 *
 * Where: [Node] ElectionsDirectory= and RuntimeDirectory= of electiond.conf (electiond-config.c);
 * flag files go to RuntimeDirectory/leader/NAME.
 * Pure parsing, no side effects; bad files give -EINVAL and a message, never a crash.
 */

#include <glib.h>
#include <stdbool.h>

#include "electiond-util.h"

#define ELECTIOND_DEFAULT_ELECTIONS_DIR "/etc/electiond/elections.d"
#define ELECTIOND_DEFAULT_RUNTIME_DIR   "/run/electiond"
#define ELECTIOND_LEADER_SUBDIR         "leader"

typedef struct ElectionUnitConfig {
        char *name;        /* election name: the file name without ".conf" */
        char *id;          /* Id=, default: the node name */
        char **units;      /* Units=, NULL-terminated, possibly empty */
        char *health_unit; /* HealthUnit=, NULL when unset */
} ElectionUnitConfig;

ElectionUnitConfig *election_unit_config_free(ElectionUnitConfig *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ElectionUnitConfig, election_unit_config_free)
void election_unit_config_destroy(void *p); /* GDestroyNotify */

/* A unit name we are willing to pass to systemd: "prefix[@instance].type" of known types. */
bool unit_name_valid(const char *name);
/* "electiond-leader@<escaped name>.target"; names are escaped like systemd-escape. g_free. */
char *leader_target_for_election(const char *name);
/* An election name that can be a file name in the leader directory (no '/', not "." or ".."). */
bool election_name_is_file_safe(const char *name);

/* Parses one NAME.conf from data (path is only used to derive NAME and in messages). */
int election_unit_config_parse_data(const char *path, const char *data, size_t size, const char *default_id,
                                    ElectionUnitConfig **ret, char **ret_error);
int election_unit_config_parse_file(const char *path, const char *default_id,
                                    ElectionUnitConfig **ret, char **ret_error);

/* Every *.conf of dir, sorted by name. A missing dir is an empty list; a bad file is logged and
 * skipped (the others still load). *ret is a GPtrArray of ElectionUnitConfig* (owning). */
int elections_d_load(const char *dir, const char *default_id, GPtrArray **ret);
