/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Leadership drives systemd units. For every election configured in elections.d
 * (electiond-elections-d.h) this node is a persistent candidate; while its candidate leads with
 * quorum (evaluated at the moment of every change, never cached) the module keeps
 * RUNTIME_DIR/leader/NAME (holding the term id) and starts electiond-leader@NAME.target plus the
 * election's Units=; when that stops being true it removes the flag file FIRST and issues the stop
 * jobs at once. Start/stop go through org.freedesktop.systemd1 on the manager's bus,
 * asynchronously; jobs are tracked through JobRemoved and failures retried with backoff. An
 * optional HealthUnit= withdraws the candidacy while it is failed.
 *
 * Hooks the manager calls (nothing here blocks):
 *   units_new()              after the bus is connected and the state exists;
 *   units_start()            once the engine is ready (after the DROP_RUN commit);
 *   units_election_changed() wherever bus_edge_term_changed() is called (each CHANGED election);
 *   units_quorum_changed()   wherever bus_edge_cluster_changed() is called (quorum/lease moved);
 *   units_free()             on shutdown, BEFORE the bus is closed (it stops leader units).
 */

#include "electiond-manager.h"

typedef struct Units Units;

/* Loads elections_dir (bad files are logged and skipped) and clears stale flag files from a
 * previous run in runtime_dir/leader. NULL dirs mean the defaults. */
int units_new(Manager *m, const char *elections_dir, const char *runtime_dir, Units **ret);
int units_start(Units *u);
void units_election_changed(Units *u, const Election *e);
void units_quorum_changed(Units *u);
/* Reload: re-reads elections_dir. New files enter, removed ones leave (and stop their units),
 * a changed Units= applies at once; elections whose file did not change are not touched (no
 * Leave/Enter, so no term change). A changed Id= or HealthUnit= of a still configured election is
 * refused with a logged reason. A directory that cannot be read keeps everything as it is. */
int units_reload(Units *u, const char *elections_dir);
Units *units_free(Units *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(Units *, units_free)

/* For STATUS= lines: configured elections, and how many this node currently leads. */
unsigned units_n_elections(const Units *u);
unsigned units_n_leading(const Units *u);
/* name is configured in elections.d (and not removed by a reload): never collected while so. */
bool units_configured(const Units *u, const char *name);
/* Stop jobs of a demotion still running: this node has not fully stepped down yet. */
bool units_stopping(const Units *u);
