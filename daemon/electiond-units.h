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
 * The composition (electiond-daemon.c) calls (nothing here blocks):
 *   units_new()              after the bus is connected and the state exists; it subscribes to
 *                            the manager (ManagerObserver, after the bus edge): each changed
 *                            election, quorum/lease changes, reload, and the manager's questions
 *                            (configured election? stop jobs running? STATUS= part);
 *   units_start()            once serving (standalone) or once this node holds a lease (cluster);
 *   units_free()             on shutdown, BEFORE the bus is closed (it stops leader units).
 */

#include "electiond-manager.h"

typedef struct Units Units;

/* Loads elections_dir (bad files are logged and skipped) and clears stale flag files from a
 * previous run in runtime_dir/leader. NULL dirs mean the defaults. */
int units_new(Manager *m, const char *elections_dir, const char *runtime_dir, Units **ret);
int units_start(Units *u);
Units *units_free(Units *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(Units *, units_free)

