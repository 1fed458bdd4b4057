/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The submit/forward pipeline (docs/DESIGN.md "Batching and commit", "Forwarding and commit
 * propagation"): a pending record per submitted command (done callback, commit timeout), the
 * queue, batching into one engine entry at a time (entry framing), and in a cluster forwarding to
 * the Raft leader with resends until every record completes. The manager applies entries and
 * reports each of its own commands with submit_applied().
 */

#include <systemd/sd-event.h>

#include "electiond-command.h"
#include "electiond-config.h"
#include "electiond-engine.h"
#include "electiond-manager.h"

typedef struct Submit Submit;

/* config is the manager's (read at each use: reload changes it in place); done callbacks get
 * manager; run_id becomes every command's origin_run. */
int submit_new(Manager *manager, sd_event *event, const Config *config, uint64_t run_id, Submit **ret);
/* Fails every record still waiting; nothing is accepted or flushed from now on. */
void submit_begin_shutdown(Submit *s);
Submit *submit_free(Submit *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Submit *, submit_free)

/* The engine (NULL before it exists) and, clustered, the cluster (forwarding); NULL again once
 * the cluster is gone. */
void submit_set_engine(Submit *s, Engine *engine);
int submit_set_cluster(Submit *s, Cluster *cluster);

/* Takes ownership of c; fills in origin, origin_run, request_id and limits.
 * timeout_usec == 0: no deadline (only for the daemon's own housekeeping commands). */
int submit_command(Submit *s, Command *c, uint64_t timeout_usec, ManagerDoneFn done, void *userdata);
/* The manager applied this node's (this run's) command request_id: complete its record, if any,
 * with the result and the election right after it (e may be NULL). */
void submit_applied(Submit *s, uint64_t request_id, ElectionResult result, const Election *e);
/* The engine's role changed: flush (append, or forward to the leader), resend forwarded ones. */
void submit_role_changed(Submit *s);
/* As Raft leader: commands forwarded by node sender_id (0: our own batch, now that we lead). */
/* false: refused, sender_id does not hold the commands' origin name (one holder per name). */
bool submit_remote_batch(Submit *s, uint64_t sender_id, const void *batch, size_t size);

/* An engine entry: batch length (u64 LE), the batch, zero padding to 8 bytes. */
int submit_entry_unframe(const void *data, size_t size, const void **ret_batch, size_t *ret_size);
