/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <inttypes.h>

#include "electiond-cluster.h"
#include "electiond-metrics.h"
#include "electiond-bytes.h"
#include "electiond-submit.h"
#include "electiond-util.h"

/* A command waiting to be committed; completed exactly once (applied, failed or timed out). */
typedef struct Pending {
        Submit *submit;
        uint64_t request_id;     /* hash key */
        Command *command;        /* until it is encoded into a batch */
        GList link;              /* in Submit.queue while not yet handed to the engine */
        bool queued;
        bool submitted;          /* appended to our log or sent to the leader: it may commit */
        sd_event_source *timeout;
        ManagerDoneFn done;
        void *userdata;
        uint64_t submitted_usec; /* CLOCK_MONOTONIC, for the commit latency histogram */
} Pending;

/* One engine entry: the request ids it carries, to fail them if the entry cannot be committed. */
typedef struct Batch {
        Submit *submit;
        GArray *request_ids;     /* uint64_t */
        GBytes *encoded;         /* forwarded batches: the batch as sent to the leader */
        bool unsent;             /* engine_submit() refused it at once */
} Batch;

struct Submit {
        Manager *manager;        /* for done callbacks and the protocol version */
        sd_event *event;
        const Config *config;
        uint64_t run_id;
        Engine *engine;
        uint64_t next_request_id;

        GQueue queue;            /* Pending*, not yet submitted to the engine */
        GHashTable *pending;     /* &Pending.request_id -> Pending*, every uncompleted record */
        GHashTable *batches;     /* Batch*, submitted and not yet reported done */
        sd_event_source *flush_event;
        uint64_t name_refusal_logged; /* when we last refused commands under a name the sender does not hold */
        bool shutting_down;

        /* clustered (KeyFile=) only */
        Cluster *cluster;
        GQueue remote;           /* Command*: forwarded to us as Raft leader, for the next entry */
        GHashTable *forwarded;   /* Batch*: sent to the leader, resent until every record completes */
        sd_event_source *resend_timer;
};

/* Forwarded batches are resent this often until applied here (dedup makes resends harmless). */
#define FORWARD_RESEND_USEC (100 * USEC_PER_MSEC)

static Pending *pending_free(Pending *p) {
        if (!p)
                return NULL;
        command_free(p->command);
        sd_event_source_disable_unref(p->timeout);
        g_free(p);
        return NULL;
}

/* Detaches p from the pipeline, frees it, then reports: done() may submit again. */
static void pending_complete(Pending *p, int status, ElectionResult result, const Term *term) {
        Submit *s = p->submit;
        ManagerDoneFn done = p->done;
        void *userdata = p->userdata;

        if (status >= 0)
                histogram_observe(&metrics_get()->commit_latency,
                                  (double) (now_monotonic_usec() - p->submitted_usec) / (double) USEC_PER_SEC);
        else
                metrics_get()->commits_failed++;
        g_hash_table_remove(s->pending, &p->request_id);
        if (p->queued)
                g_queue_unlink(&s->queue, &p->link);
        pending_free(p);

        if (done)
                done(s->manager, status, result, term, userdata);
}

static void pending_fail(Pending *p, int status) {
        g_autoptr(Term) t = term_new_from_election(NULL);

        pending_complete(p, status, ELECTION_INVALID, t);
}

static int on_pending_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        Pending *p = userdata;

        log_debug("Request %" PRIu64 " not committed within %" PRIu64 " ms%s.",
                  p->request_id, p->submit->config->commit_timeout_usec / USEC_PER_MSEC,
                  p->submitted ? " (submitted: outcome unknown)" : " (never submitted)");
        pending_fail(p, p->submitted ? MANAGER_OUTCOME_UNKNOWN : -ETIMEDOUT);
        return 0;
}

/* The records of b's request ids still waiting: it was handed on, so they may commit. */
static void batch_mark_submitted(Submit *s, const Batch *b) {
        for (unsigned i = 0; i < b->request_ids->len; i++) {
                Pending *p = g_hash_table_lookup(s->pending, &g_array_index(b->request_ids, uint64_t, i));
                if (p)
                        p->submitted = true;
        }
}

static void forward_keep(Submit *s, Batch *b);

static void submit_schedule_flush(Submit *s);
static int submit_forward(Submit *s);

static Batch *batch_free(Batch *b) {
        if (!b)
                return NULL;
        if (b->encoded)
                g_bytes_unref(b->encoded);
        g_array_unref(b->request_ids);
        g_free(b);
        return NULL;
}

/* Commands a bus caller waits for (as opposed to the daemon's own housekeeping). */
static bool command_from_client(const Command *c) {
        switch (c->type) {
        case COMMAND_ENTER:
        case COMMAND_LEAVE:
        case COMMAND_ANOINT:
        case COMMAND_PROMOTE:
        case COMMAND_EVICT:
                return true;
        default:
                return false;
        }
}

static void on_batch_done(int status, void *userdata) {
        Batch *b = userdata;
        Submit *s = b->submit;

        g_hash_table_remove(s->batches, b);
        /* Whatever queued up while this entry was being written goes out as the next one. */
        if ((!g_queue_is_empty(&s->queue) || !g_queue_is_empty(&s->remote)) && !s->shutting_down)
                submit_schedule_flush(s);
        else if (status >= 0 && s->cluster && !s->shutting_down)
                /* nothing follows to carry the commit index: followers (and forwarding callers
                 * waiting there) would learn of this commit only with a heartbeat tick */
                (void) engine_nudge(s->engine);

        /* On success every record was completed when the entry was applied. */
        if (status < 0) {
                bool requeued = false;

                log_debug_errno(status, "Batch of %u commands failed: %m", b->request_ids->len);
                /* in reverse, so that the requeued ones keep their order at the head of the queue */
                for (unsigned i = b->request_ids->len; i > 0; i--) {
                        Pending *p = g_hash_table_lookup(s->pending, &g_array_index(b->request_ids, uint64_t, i - 1));

                        if (!p)
                                continue;
                        if (s->cluster && !s->shutting_down && !b->unsent && p->command && command_from_client(p->command)) {
                                /* Typically leadership lost: the entry may still be committed by
                                 * the next leader, or be gone. A caller is not told "failed": the
                                 * command goes out again (to the leader, or appended once we lead
                                 * again; request ids make a second copy harmless, whichever
                                 * applies first gives the result) and the record keeps waiting. */
                                p->queued = true;
                                g_queue_push_head_link(&s->queue, &p->link);
                                requeued = true;
                                continue;
                        }
                        /* our own housekeeping (DROP_NODE, ...) is decided afresh, not replayed
                         * late; appended, then failed: whether it is durable is not known */
                        pending_fail(p, p->submitted ? MANAGER_OUTCOME_UNKNOWN : status);
                }
                if (requeued)
                        submit_schedule_flush(s);
        }
        batch_free(b);
}

/* libraft wants entry lengths in multiples of 8 bytes, but the batch codec rejects trailing bytes:
 * an entry is the batch length (u64, little-endian), the batch, and zero padding. */
#define ENTRY_HEADER_SIZE 8

#define MAX_BATCHES_IN_FLIGHT 1u
/* Keeps an entry well inside one 1 MiB storage segment; the rest waits for the next entry. */
#define MAX_BATCH_BYTES (32u * 1024u)

static void entry_frame(GByteArray *buf) {
        uint8_t len[ENTRY_HEADER_SIZE];
        static const uint8_t zeros[8] = {};

        bytes_set_u64(len, buf->len);
        g_byte_array_prepend(buf, len, sizeof len);
        if (buf->len % 8 != 0)
                g_byte_array_append(buf, zeros, 8 - buf->len % 8);
}

int submit_entry_unframe(const void *data, size_t size, const void **ret_batch, size_t *ret_size) {
        uint64_t len;

        if (size < ENTRY_HEADER_SIZE)
                return -EBADMSG;
        len = bytes_get_u64(data);
        if (len > size - ENTRY_HEADER_SIZE || size - ENTRY_HEADER_SIZE - len >= 8)
                return -EBADMSG;
        *ret_batch = (const uint8_t *) data + ENTRY_HEADER_SIZE;
        *ret_size = len;
        return 0;
}

static int on_flush(sd_event_source *source, void *userdata) {
        Submit *s = userdata;
        g_autoptr(GByteArray) buf = NULL;
        Batch *b;
        GList *l;
        int r;

        if (g_queue_is_empty(&s->queue) && g_queue_is_empty(&s->remote))
                return 0;
        if (s->cluster && s->engine && !engine_is_leader(s->engine) && !g_queue_is_empty(&s->queue))
                return submit_forward(s);
        /* Not the leader (yet): the records stay queued until leadership returns or they time out. */
        if (!engine_is_leader(s->engine)) {
                log_debug("Engine is %s, holding %u queued commands.", engine_role_name(s->engine), s->queue.length);
                return 0;
        }

        /* One entry in flight at a time: calls arriving meanwhile share the next entry, which
         * gives more throughput than many small entries each waiting for its own disk write. */
        if (g_hash_table_size(s->batches) >= MAX_BATCHES_IN_FLIGHT)
                return 0;

        buf = g_byte_array_new();
        b = g_new0(Batch, 1);
        b->submit = s;
        b->request_ids = g_array_new(false, false, sizeof(uint64_t));

        /* commands forwarded by other nodes first: they have waited a round trip already */
        while (!g_queue_is_empty(&s->remote) && buf->len < MAX_BATCH_BYTES) {
                g_autoptr(Command) c = g_queue_pop_head(&s->remote);
                r = command_batch_append(buf, c);
                if (r < 0)
                        log_debug_errno(r, "Dropping a forwarded %s command: %m", command_type_to_string(c->type));
        }

        while (buf->len < MAX_BATCH_BYTES && (l = g_queue_pop_head_link(&s->queue))) {
                Pending *p = l->data;

                p->queued = false;
                r = command_batch_append(buf, p->command);
                if (r < 0) {
                        log_warning_errno(r, "Failed to encode %s command, refusing it: %m",
                                          command_type_to_string(p->command->type));
                        pending_fail(p, r);
                        continue;
                }
                g_array_append_val(b->request_ids, p->request_id);
                /* a client's command is kept to go out again should this entry not commit */
                if (!s->cluster || !command_from_client(p->command))
                        p->command = command_free(p->command);
        }

        if (buf->len == 0) {
                batch_free(b);
                return 0;
        }

        entry_frame(buf);
        log_debug("Submitting a batch of %u commands (%u bytes).", b->request_ids->len, buf->len);
        g_hash_table_add(s->batches, b);
        r = engine_submit(s->engine, buf->data, buf->len, on_batch_done, b);
        if (r < 0) {
                log_warning_errno(r, "Failed to submit a batch of %u commands: %m", b->request_ids->len);
                b->unsent = true; /* refused at once: not appended, and resubmitting would spin */
                on_batch_done(r, b);
        } else
                batch_mark_submitted(s, b);
        return 0;
}

static bool batch_still_pending(Submit *s, const Batch *b) {
        for (unsigned i = 0; i < b->request_ids->len; i++)
                if (g_hash_table_contains(s->pending, &g_array_index(b->request_ids, uint64_t, i)))
                        return true;
        return false;
}


static int on_resend(sd_event_source *source, uint64_t usec, void *userdata) {
        Submit *s = userdata;
        bool leader = engine_is_leader(s->engine);
        GHashTableIter it;
        gpointer k;

        g_hash_table_iter_init(&it, s->forwarded);
        while (g_hash_table_iter_next(&it, &k, NULL)) {
                Batch *b = k;
                gsize n;
                const void *data;

                if (!batch_still_pending(s, b)) {
                        g_hash_table_iter_remove(&it);
                        batch_free(b);
                        continue;
                }
                /* maybe the leader changed, or the datagram was lost: same request ids, applied once */
                data = g_bytes_get_data(b->encoded, &n);
                if (leader) {
                        /* we lead now: append them ourselves (dedup covers a copy already sent) */
                        (void) submit_remote_batch(s, 0, data, n);
                        g_hash_table_iter_remove(&it);
                        batch_free(b);
                        continue;
                }
                if (cluster_forward(s->cluster, data, n) >= 0)
                        batch_mark_submitted(s, b);
        }
        if (g_hash_table_size(s->forwarded) > 0)
                (void) sd_event_source_set_time_relative(source, FORWARD_RESEND_USEC);
        else
                (void) sd_event_source_set_enabled(source, SD_EVENT_OFF);
        return 0;
}

/* Not the Raft leader: hand our queued commands to it. They complete when we apply them. */
static int submit_forward(Submit *s) {
        g_autoptr(GByteArray) buf = g_byte_array_new();
        Batch *b = g_new0(Batch, 1);
        GList *l;
        int r;

        b->submit = s;
        b->request_ids = g_array_new(false, false, sizeof(uint64_t));
        while (buf->len < MAX_BATCH_BYTES && (l = g_queue_pop_head_link(&s->queue))) {
                Pending *p = l->data;
                p->queued = false;
                r = command_batch_append(buf, p->command);
                if (r < 0) {
                        pending_fail(p, r);
                        continue;
                }
                g_array_append_val(b->request_ids, p->request_id);
                p->command = command_free(p->command);
        }
        if (b->request_ids->len == 0) {
                batch_free(b);
                return 0;
        }
        b->encoded = g_bytes_new(buf->data, buf->len);
        r = cluster_forward(s->cluster, buf->data, buf->len);
        if (r < 0)
                log_debug_errno(r, "No Raft leader to forward %u commands to yet, will retry: %m", b->request_ids->len);
        else
                batch_mark_submitted(s, b);
        forward_keep(s, b);
        if (!g_queue_is_empty(&s->queue))
                submit_schedule_flush(s);
        return 0;
}

/* b (encoded) is resent to the Raft leader until none of its records waits any more. */
static void forward_keep(Submit *s, Batch *b) {
        g_hash_table_add(s->forwarded, b);
        if (sd_event_source_get_enabled(s->resend_timer, NULL) == 0) {
                (void) sd_event_source_set_time_relative(s->resend_timer, FORWARD_RESEND_USEC);
                (void) sd_event_source_set_enabled(s->resend_timer, SD_EVENT_ON);
        }
}

static void submit_schedule_flush(Submit *s) {
        int r;

        r = sd_event_source_set_enabled(s->flush_event, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule the command flush: %m");
}

/* timeout_usec == 0: no deadline (only for our own housekeeping commands). */
int submit_command(Submit *s, Command *c, uint64_t timeout_usec, ManagerDoneFn done, void *userdata) {
        g_autoptr(Command) cmd = c;
        Pending *p;
        int r;

        g_assert(s);
        g_assert(c);

        if (s->shutting_down)
                return -ESHUTDOWN;
        /* Older members would skip an entry holding a command they cannot decode (and everything
         * batched with it): a newer command waits for the cluster protocol version. SET_PROTOCOL
         * itself is gated by the cluster (every member advertises it). */
        if (c->type != COMMAND_SET_PROTOCOL && command_type_protocol(c->type) > manager_protocol_version(s->manager))
                return -EPROTONOSUPPORT;
        /* The same for the Enter quota's extension: below it the bus edge's check (against this
         * node's copy of the state) is all the quota there is. */
        if (cmd->max_persistent > 0 && manager_protocol_version(s->manager) < COMMAND_MAX_PERSISTENT_PROTOCOL)
                cmd->max_persistent = 0;

        g_free(cmd->origin);
        cmd->origin = g_strdup(s->config->node_name);
        cmd->origin_run = s->run_id;
        cmd->request_id = ++s->next_request_id;
        /* Our limits travel with the command so that every node decides alike. */
        cmd->max_elections = s->config->max_elections;
        cmd->max_candidates = s->config->max_candidates;

        p = g_new0(Pending, 1);
        p->submit = s;
        p->request_id = cmd->request_id;
        p->done = done;
        p->userdata = userdata;
        p->link.data = p;
        p->submitted_usec = now_monotonic_usec();

        if (timeout_usec > 0) {
                r = sd_event_add_time_relative(s->event, &p->timeout, CLOCK_MONOTONIC, timeout_usec,
                                               10 * USEC_PER_MSEC, on_pending_timeout, p);
                if (r < 0) {
                        pending_free(p);
                        return log_error_errno(r, "Failed to add commit timeout: %m");
                }
        }

        log_debug("Queued request %" PRIu64 ": %s election='%s' id='%s' node='%s' owner='%s' flags=%u",
                  cmd->request_id, command_type_to_string(cmd->type), cmd->election ?: "", cmd->id ?: "",
                  cmd->node ?: "", cmd->owner ?: "", cmd->flags);

        p->command = g_steal_pointer(&cmd);
        g_hash_table_insert(s->pending, &p->request_id, p);
        g_queue_push_tail_link(&s->queue, &p->link);
        p->queued = true;

        submit_schedule_flush(s);
        return 0;
}

/* sender_id 0: our own batch, appended now that we lead. */
bool submit_remote_batch(Submit *s, uint64_t sender_id, const void *batch, size_t size) {
        g_autoptr(GPtrArray) cmds = NULL;

        if (command_batch_decode(batch, size, &cmds) < 0) {
                log_debug("Dropping an undecodable forwarded batch (%zu bytes).", size);
                return true;
        }
        /* One holder per name: a process that took a name in use (a second machine with the same
         * host name) must not commit under it, or its DROP_RUN would end the real holder's run
         * and every later request of that run would be refused as stale. Gossip keeps the first
         * live holder of a name; commands are taken only from the node id it knows by that name. */
        for (unsigned i = 0; sender_id != 0 && s->cluster && i < cmds->len; i++) {
                const Command *c = cmds->pdata[i];

                if (cluster_peer_has_name(s->cluster, sender_id, c->origin ?: ""))
                        continue;
                uint64_t now = now_boottime_usec();
                if (s->name_refusal_logged == 0 || now - s->name_refusal_logged >= 10 * USEC_PER_SEC) {
                        s->name_refusal_logged = now;
                        log_warning("Refusing %u commands forwarded by node %016" PRIx64 " as '%s': gossip does not "
                                    "know it by that name (a second machine with the same name?).",
                                    cmds->len, sender_id, c->origin ?: "");
                }
                return false;
        }
        for (unsigned i = 0; i < cmds->len; i++)
                g_queue_push_tail(&s->remote, command_copy(cmds->pdata[i]));
        submit_schedule_flush(s);
        return true;
}


void submit_applied(Submit *s, uint64_t request_id, ElectionResult result, const Election *e) {
        Pending *p = g_hash_table_lookup(s->pending, &request_id);

        if (p) {
                g_autoptr(Term) t = term_new_from_election(e);
                pending_complete(p, 0, result, t);
        }
}

void submit_role_changed(Submit *s) {
        if (s->cluster && s->engine) {
                /* a follower forwards; the leader appends */
                submit_schedule_flush(s);
                if (engine_is_leader(s->engine) && g_hash_table_size(s->forwarded) > 0)
                        (void) sd_event_source_set_time_relative(s->resend_timer, 0);
                return;
        }
        if (!g_queue_is_empty(&s->queue))
                submit_schedule_flush(s);
}

void submit_set_engine(Submit *s, Engine *engine) {
        s->engine = engine;
}

int submit_set_cluster(Submit *s, Cluster *cluster) {
        int r;

        s->cluster = cluster;
        if (!cluster || s->resend_timer)
                return 0;
        r = sd_event_add_time_relative(s->event, &s->resend_timer, CLOCK_MONOTONIC, FORWARD_RESEND_USEC,
                                       10 * USEC_PER_MSEC, on_resend, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add the forward timer: %m");
        (void) sd_event_source_set_enabled(s->resend_timer, SD_EVENT_OFF);
        return 0;
}

int submit_new(Manager *manager, sd_event *event, const Config *config, uint64_t run_id, Submit **ret) {
        _cleanup_(submit_freep) Submit *s = NULL;
        int r;

        g_assert(manager);
        g_assert(event);
        g_assert(config);
        g_assert(ret);

        s = g_new0(Submit, 1);
        s->manager = manager;
        s->event = sd_event_ref(event);
        s->config = config;
        s->run_id = run_id;
        g_queue_init(&s->queue);
        g_queue_init(&s->remote);
        s->forwarded = g_hash_table_new(NULL, NULL);
        s->pending = g_hash_table_new(g_int64_hash, g_int64_equal);
        s->batches = g_hash_table_new(NULL, NULL);

        /* Idle priority: all pending bus messages are read first, so concurrent calls share one entry. */
        r = sd_event_add_defer(s->event, &s->flush_event, on_flush, s);
        if (r < 0)
                return log_error_errno(r, "Failed to add flush event source: %m");
        (void) sd_event_source_set_priority(s->flush_event, SD_EVENT_PRIORITY_IDLE);
        (void) sd_event_source_set_enabled(s->flush_event, SD_EVENT_OFF);
        (void) sd_event_source_set_description(s->flush_event, "command-flush");

        *ret = g_steal_pointer(&s);
        return 0;
}

void submit_begin_shutdown(Submit *s) {
        if (!s)
                return;

        s->shutting_down = true;

        /* Answer every caller still waiting, while the bus edge can still reply. */
        if (s->pending) {
                g_autoptr(GList) values = g_hash_table_get_values(s->pending);
                for (GList *l = values; l; l = l->next) {
                        Pending *p = l->data;
                        pending_fail(p, p->submitted ? MANAGER_OUTCOME_UNKNOWN : -ESHUTDOWN);
                }
        }
}

/* After the engine is gone (it may still report batches, as failed, while closing). */
Submit *submit_free(Submit *s) {
        GHashTableIter iter;
        gpointer v;

        if (!s)
                return NULL;

        s->shutting_down = true;
        s->flush_event = sd_event_source_disable_unref(s->flush_event);
        s->resend_timer = sd_event_source_disable_unref(s->resend_timer);
        if (s->forwarded) {
                g_hash_table_iter_init(&iter, s->forwarded);
                while (g_hash_table_iter_next(&iter, &v, NULL))
                        batch_free(v);
                g_hash_table_destroy(s->forwarded);
        }
        while (!g_queue_is_empty(&s->remote))
                command_free(g_queue_pop_head(&s->remote));
        if (s->batches) {
                g_hash_table_iter_init(&iter, s->batches);
                while (g_hash_table_iter_next(&iter, &v, NULL))
                        batch_free(v);
                g_hash_table_destroy(s->batches);
        }
        if (s->pending) {
                g_hash_table_iter_init(&iter, s->pending);
                while (g_hash_table_iter_next(&iter, NULL, &v))
                        pending_free(v);
                g_hash_table_destroy(s->pending);
        }
        sd_event_unref(s->event);
        g_free(s);
        return NULL;
}
