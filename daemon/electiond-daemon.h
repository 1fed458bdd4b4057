/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The composition: creates the manager, the units module and (once serving starts) the bus edge
 * in order, subscribes them to the manager, takes the bus name, and owns the start and shutdown
 * order (electiond-manager.h lists it). Nothing below knows this module.
 */

#include "electiond-manager.h"

typedef struct Daemon Daemon;

int daemon_new(const ManagerOptions *opts, Daemon **ret);
/* Starts everything and runs the event loop until SIGTERM/SIGINT; returns its exit code. */
int daemon_run(Daemon *d);
Daemon *daemon_free(Daemon *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Daemon *, daemon_free)
