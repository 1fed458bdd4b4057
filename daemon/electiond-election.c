/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>

#include "electiond-election.h"
#include "electiond-bytes.h"
#include "electiond-util.h"

/* Request ids remembered per (origin, origin_run): those in (max - DEDUP_WINDOW, max]. Anything
 * older counts as already applied, so a very late retry can never apply twice. */
#define DEDUP_WINDOW 4096u

typedef struct DedupEntry {
        char *origin;
        uint64_t origin_run;
        uint64_t max;                       /* highest request id applied */
        uint64_t seen[DEDUP_WINDOW / 64];   /* bit (id % DEDUP_WINDOW): id applied */
} DedupEntry;

struct ElectionState {
        GHashTable *elections; /* name (borrowed from Election) -> Election* */
        /* Secondary indexes so that bulk drops touch only the elections concerned:
         * key -> (Election* -> number of matching candidacies). */
        GHashTable *by_owner;  /* owner bus name of connection-bound candidacies */
        GHashTable *by_node;   /* node of every candidacy */
        GHashTable *dedup;     /* set of DedupEntry* */
        /* node -> NodeRuns* (owned): set by DROP_RUN(node, run) or learned from a connection-bound
         * Enter; forgotten by DROP_NODE(node). */
        GHashTable *runs;
        unsigned n_parked;     /* parked candidacies in all elections: most states have none */
        /* node -> NodeDrain* (owned): DRAIN/UNDRAIN. Most states have none. */
        GHashTable *drained;
        /* uid -> number of its persistent candidacies, listed and parked (the Enter quota): kept
         * with candidacy_index() and the parked list, never serialized */
        GHashTable *persistent_by_uid;
        /* BUMP_TERMS adds its offset here too: an election created later starts above it, since the
         * lost members of a forced cluster may have created it and handed out its first ids. */
        uint64_t term_floor;
        /* The cluster protocol version (SET_PROTOCOL; 1 = v0.1.0's, which had no record of it). */
        uint32_t protocol;
};

typedef struct NodeDrain {
        bool all;              /* DRAIN(node, ""): every election */
        GHashTable *names;     /* election names (owned) drained one by one */
} NodeDrain;

typedef struct NodeRuns {
        uint64_t current;                   /* the node's current daemon run */
        unsigned n_old;
        uint64_t old[ELECTION_RUN_HISTORY]; /* runs it superseded, newest first */
} NodeRuns;

#define KNOWN_FLAGS (COMMAND_FLAG_PERSISTENT | COMMAND_FLAG_AUTHORIZED)
#define PARKED_MAX 4096u /* per election; beyond it the oldest parked candidacies are forgotten */

static const char *strempty(const char *s) {
        return s ?: "";
}

static bool isempty(const char *s) {
        return !s || !*s;
}

static gint string_compare_ptr(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static Candidacy *candidacy_free(Candidacy *c) {
        if (!c)
                return NULL;
        g_free(c->id);
        g_free(c->node);
        g_free(c->owner);
        g_free(c);
        return NULL;
}

static void candidacy_destroy(gpointer p) {
        candidacy_free(p);
}

static Election *election_new(const char *name) {
        Election *e = g_new0(Election, 1);
        e->name = g_strdup(name);
        e->candidates = g_ptr_array_new_with_free_func(candidacy_destroy);
        return e;
}

static Election *election_free(Election *e) {
        if (!e)
                return NULL;
        g_ptr_array_unref(e->candidates);
        if (e->parked)
                g_ptr_array_unref(e->parked);
        g_free(e->name);
        g_free(e);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Election *, election_free)

static void election_destroy(gpointer p) {
        election_free(p);
}

static DedupEntry *dedup_entry_free(DedupEntry *d) {
        if (!d)
                return NULL;
        g_free(d->origin);
        g_free(d);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(DedupEntry *, dedup_entry_free)

static void dedup_entry_destroy(gpointer p) {
        dedup_entry_free(p);
}

static guint dedup_entry_hash(gconstpointer p) {
        const DedupEntry *d = p;
        return g_str_hash(d->origin) ^ g_int64_hash(&d->origin_run);
}

static gboolean dedup_entry_equal(gconstpointer a, gconstpointer b) {
        const DedupEntry *x = a, *y = b;
        return x->origin_run == y->origin_run && strcmp(x->origin, y->origin) == 0;
}

static NodeDrain *node_drain_new(void) {
        NodeDrain *d = g_new0(NodeDrain, 1);
        d->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        return d;
}

static void node_drain_destroy(gpointer p) {
        NodeDrain *d = p;
        if (!d)
                return;
        g_hash_table_unref(d->names);
        g_free(d);
}

static void index_table_free(gpointer p) {
        g_hash_table_unref(p);
}

ElectionState *election_state_new(void) {
        ElectionState *s = g_new0(ElectionState, 1);

        s->elections = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, election_destroy);
        s->by_owner = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, index_table_free);
        s->by_node = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, index_table_free);
        s->dedup = g_hash_table_new_full(dedup_entry_hash, dedup_entry_equal, dedup_entry_destroy, NULL);
        s->runs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        s->drained = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, node_drain_destroy);
        s->persistent_by_uid = g_hash_table_new(NULL, NULL);
        s->protocol = PROTOCOL_VERSION_MIN;
        return s;
}

ElectionState *election_state_free(ElectionState *s) {
        if (!s)
                return NULL;
        /* Indexes first: they point at elections. */
        g_hash_table_unref(s->by_owner);
        g_hash_table_unref(s->by_node);
        g_hash_table_unref(s->elections);
        g_hash_table_unref(s->dedup);
        g_hash_table_unref(s->runs);
        g_hash_table_unref(s->drained);
        g_hash_table_unref(s->persistent_by_uid);
        g_free(s);
        return NULL;
}

const Election *election_state_get(const ElectionState *s, const char *name) {
        if (!s || !name)
                return NULL;
        return g_hash_table_lookup(s->elections, name);
}

static GPtrArray *parked_elections(ElectionState *s);

GPtrArray *election_state_parked(const ElectionState *s, const char *node) {
        GPtrArray *out = g_ptr_array_new();
        g_autoptr(GPtrArray) list = NULL;

        if (!s || s->n_parked == 0)
                return out;
        list = parked_elections((ElectionState *) s);
        for (unsigned i = 0; i < list->len; i++) {
                const Election *e = list->pdata[i];
                for (unsigned j = 0; j < e->parked->len; j++)
                        if (streq_ptr(((Candidacy *) e->parked->pdata[j])->node, node))
                                g_ptr_array_add(out, e->parked->pdata[j]);
        }
        return out;
}

unsigned election_state_parked_count(const ElectionState *s) {
        return s ? s->n_parked : 0;
}

uint64_t election_state_term_floor(const ElectionState *s) {
        return s ? s->term_floor : 0;
}

bool election_empty(const Election *e) {
        return !e || (e->candidates->len == 0 && (!e->parked || e->parked->len == 0));
}

unsigned election_state_persistent_count(const ElectionState *s, uint32_t uid) {
        return s ? GPOINTER_TO_UINT(g_hash_table_lookup(s->persistent_by_uid, GUINT_TO_POINTER(uid))) : 0;
}

unsigned election_state_protocol(const ElectionState *s) {
        return s ? s->protocol : PROTOCOL_VERSION_MIN;
}

unsigned election_state_count(const ElectionState *s) {
        return s ? g_hash_table_size(s->elections) : 0;
}

static gint election_compare_by_name(gconstpointer a, gconstpointer b) {
        const Election *x = *(Election *const *) a, *y = *(Election *const *) b;
        return strcmp(x->name, y->name);
}

GPtrArray *election_state_list(const ElectionState *s) {
        GPtrArray *l = g_ptr_array_sized_new(election_state_count(s));
        GHashTableIter i;
        gpointer v;

        if (!s)
                return l;
        g_hash_table_iter_init(&i, s->elections);
        while (g_hash_table_iter_next(&i, NULL, &v))
                g_ptr_array_add(l, v);
        g_ptr_array_sort(l, election_compare_by_name);
        return l;
}

const Candidacy *election_find(const Election *e, const char *id, unsigned *ret_index) {
        if (!e || !id)
                return NULL;
        for (unsigned i = 0; i < e->candidates->len; i++) {
                Candidacy *c = e->candidates->pdata[i];
                if (strcmp(c->id, id) == 0) {
                        if (ret_index)
                                *ret_index = i;
                        return c;
                }
        }
        return NULL;
}

char **election_candidate_ids(const Election *e) {
        unsigned n = e ? e->candidates->len : 0;
        char **ids = g_new0(char *, n + 1);

        for (unsigned i = 0; i < n; i++)
                ids[i] = g_strdup(((Candidacy *) e->candidates->pdata[i])->id);
        return ids;
}

/* ---- indexes ---- */

static void index_adjust(GHashTable *index, const char *key, Election *e, int delta) {
        GHashTable *set;
        unsigned n;

        set = g_hash_table_lookup(index, key);
        if (!set) {
                g_assert(delta > 0);
                set = g_hash_table_new(NULL, NULL);
                g_hash_table_insert(index, g_strdup(key), set);
        }

        n = GPOINTER_TO_UINT(g_hash_table_lookup(set, e));
        g_assert(delta > 0 || n > 0);
        n += delta;
        if (n > 0)
                g_hash_table_insert(set, e, GUINT_TO_POINTER(n));
        else {
                g_hash_table_remove(set, e);
                if (g_hash_table_size(set) == 0)
                        g_hash_table_remove(index, key);
        }
}

/* A persistent candidacy came (+1) or went (-1), listed or parked. */
static void uid_count(ElectionState *s, const Candidacy *c, int delta) {
        gpointer key = GUINT_TO_POINTER(c->uid);
        unsigned n;

        if (!c->persistent)
                return;
        n = GPOINTER_TO_UINT(g_hash_table_lookup(s->persistent_by_uid, key));
        g_assert(delta > 0 || n > 0);
        n += delta;
        if (n > 0)
                g_hash_table_insert(s->persistent_by_uid, key, GUINT_TO_POINTER(n));
        else
                g_hash_table_remove(s->persistent_by_uid, key);
}

static void candidacy_index(ElectionState *s, Election *e, const Candidacy *c, int delta) {
        uid_count(s, c, delta);
        index_adjust(s->by_node, c->node, e, delta);
        if (!c->persistent)
                index_adjust(s->by_owner, c->owner, e, delta);
}

/* Elections referenced by an index entry, in name order so that events are deterministic. */
static GPtrArray *index_elections(GHashTable *index, const char *key) {
        GPtrArray *l = g_ptr_array_new();
        GHashTable *set;
        GHashTableIter i;
        gpointer e;

        set = g_hash_table_lookup(index, key);
        if (!set)
                return l;
        g_hash_table_iter_init(&i, set);
        while (g_hash_table_iter_next(&i, &e, NULL))
                g_ptr_array_add(l, e);
        g_ptr_array_sort(l, election_compare_by_name);
        return l;
}

/* ---- dedup ---- */

static bool dedup_bit(const DedupEntry *d, uint64_t id) {
        uint64_t b = id % DEDUP_WINDOW;
        return d->seen[b / 64] & (UINT64_C(1) << (b % 64));
}

static void dedup_set(DedupEntry *d, uint64_t id, bool on) {
        uint64_t b = id % DEDUP_WINDOW;
        if (on)
                d->seen[b / 64] |= UINT64_C(1) << (b % 64);
        else
                d->seen[b / 64] &= ~(UINT64_C(1) << (b % 64));
}

/* Returns true if (origin, origin_run, id) was applied before; otherwise records it. */
static bool dedup_check_and_record(ElectionState *s, const char *origin, uint64_t origin_run, uint64_t id) {
        DedupEntry key = { .origin = (char *) origin, .origin_run = origin_run }, *d;

        d = g_hash_table_lookup(s->dedup, &key);
        if (!d) {
                d = g_new0(DedupEntry, 1);
                d->origin = g_strdup(origin);
                d->origin_run = origin_run;
                d->max = id;
                dedup_set(d, id, true);
                g_hash_table_add(s->dedup, d);
                return false;
        }

        if (id > d->max) {
                /* Slide the window: forget the ids that fall out of it. */
                if (id - d->max >= DEDUP_WINDOW)
                        memset(d->seen, 0, sizeof d->seen);
                else
                        for (uint64_t k = d->max + 1; k < id; k++)
                                dedup_set(d, k, false);
                d->max = id;
                dedup_set(d, id, true);
                return false;
        }

        if (d->max - id >= DEDUP_WINDOW || dedup_bit(d, id))
                return true;
        dedup_set(d, id, true);
        return false;
}

/* Forget the windows of origin's runs other than keep_run: requests of those runs are refused
 * from now on (command_from_old_run()), so nothing needs their ids any more. */
static void dedup_prune_other_runs(ElectionState *s, const char *origin, uint64_t keep_run) {
        GHashTableIter i;
        gpointer p;

        g_hash_table_iter_init(&i, s->dedup);
        while (g_hash_table_iter_next(&i, &p, NULL)) {
                const DedupEntry *d = p;

                if (d->origin_run != keep_run && streq_ptr(d->origin, origin))
                        g_hash_table_iter_remove(&i);
        }
}

unsigned election_state_dedup_count(const ElectionState *s) {
        return s ? g_hash_table_size(s->dedup) : 0;
}

/* ---- runs ---- */

bool election_state_node_run(const ElectionState *s, const char *node, uint64_t *ret_run) {
        const NodeRuns *n;

        n = s && node ? g_hash_table_lookup(s->runs, node) : NULL;
        if (!n)
                return false;
        if (ret_run)
                *ret_run = n->current;
        return true;
}

/* Makes run the node's current one; the previous one joins the history (the oldest drops out). */
static void node_run_set(ElectionState *s, const char *node, uint64_t run) {
        NodeRuns *n = g_hash_table_lookup(s->runs, node);

        if (!n) {
                n = g_new0(NodeRuns, 1);
                n->current = run;
                g_hash_table_insert(s->runs, g_strdup(node), n);
                return;
        }
        if (n->current == run)
                return;
        memmove(n->old + 1, n->old, sizeof n->old[0] * MIN(n->n_old, ELECTION_RUN_HISTORY - 1));
        n->old[0] = n->current;
        n->n_old = MIN(n->n_old + 1, ELECTION_RUN_HISTORY);
        n->current = run;
}

static bool node_run_superseded(const ElectionState *s, const char *node, uint64_t run) {
        const NodeRuns *n = g_hash_table_lookup(s->runs, node);

        for (unsigned i = 0; n && i < n->n_old; i++)
                if (n->old[i] == run)
                        return true;
        return false;
}

/* A command submitted by an earlier run of a node that has since started a new one: its caller
 * is gone, and its dedup window may be pruned already, so a retry could otherwise apply twice.
 * The new run's own DROP_RUN(node = origin, run = origin_run) is how the run changes: it passes. */
static bool command_from_old_run(const ElectionState *s, const Command *c) {
        uint64_t run;

        /* A late DROP_RUN of a run already superseded would bring it back, remove the live run's
         * candidacies and then refuse all of the live run's requests. */
        if (c->type == COMMAND_DROP_RUN && node_run_superseded(s, strempty(c->node), c->run))
                return true;
        if (!election_state_node_run(s, strempty(c->origin), &run) || run == c->origin_run)
                return false;
        return !(c->type == COMMAND_DROP_RUN && c->run == c->origin_run &&
                 streq_ptr(strempty(c->node), strempty(c->origin)));
}

/* ---- the rules ---- */

typedef bool (*CandidacyMatchFn)(const Candidacy *cand, const Command *c);

/* Removes every candidacy of e that match() selects. At most one term change: if the leader
 * went and someone is left, the first survivor leads with term_id + 1. Returns whether anything
 * was removed. */
static void park(ElectionState *s, Election *e, Candidacy *cand) {
        if (!e->parked)
                e->parked = g_ptr_array_new_with_free_func(candidacy_destroy);
        if (e->parked->len >= PARKED_MAX) {
                uid_count(s, e->parked->pdata[0], -1);
                g_ptr_array_remove_index(e->parked, 0);
                s->n_parked--;
        }
        g_ptr_array_add(e->parked, cand);
        uid_count(s, cand, +1);
        s->n_parked++;
}

/* Forgets e's parked candidacies that match(); returns whether any went. */
static bool parked_remove_where(ElectionState *s, Election *e, CandidacyMatchFn match, const Command *c) {
        bool removed = false;

        if (!e->parked)
                return false;
        for (unsigned i = 0; i < e->parked->len;) {
                if (!match(e->parked->pdata[i], c)) {
                        i++;
                        continue;
                }
                uid_count(s, e->parked->pdata[i], -1);
                g_ptr_array_remove_index(e->parked, i);
                s->n_parked--;
                removed = true;
        }
        if (e->parked->len == 0)
                g_clear_pointer(&e->parked, g_ptr_array_unref);
        return removed;
}

static Candidacy *parked_find(const Election *e, const char *id) {
        if (!e || !e->parked)
                return NULL;
        for (unsigned i = 0; i < e->parked->len; i++)
                if (streq_ptr(((Candidacy *) e->parked->pdata[i])->id, id))
                        return e->parked->pdata[i];
        return NULL;
}

/* Every election with parked candidacies (scanned only when there are any). */
static GPtrArray *parked_elections(ElectionState *s) {
        GPtrArray *a = g_ptr_array_new();
        GHashTableIter it;
        gpointer v;

        if (s->n_parked == 0)
                return a;
        g_hash_table_iter_init(&it, s->elections);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (((Election *) v)->parked)
                        g_ptr_array_add(a, v);
        g_ptr_array_sort(a, election_compare_by_name);
        return a;
}

static bool election_remove_where_full(ElectionState *s, Election *e, CandidacyMatchFn match, const Command *c,
                                       bool parking);

static bool election_remove_where(ElectionState *s, Election *e, CandidacyMatchFn match, const Command *c) {
        return election_remove_where_full(s, e, match, c, false);
}

static bool election_remove_where_full(ElectionState *s, Election *e, CandidacyMatchFn match, const Command *c,
                                       bool parking) {
        const Candidacy *leader = e->candidates->len > 0 ? e->candidates->pdata[0] : NULL;
        bool removed = false, leader_gone = false;

        for (unsigned i = 0; i < e->candidates->len;) {
                Candidacy *cand = e->candidates->pdata[i];

                if (!match(cand, c)) {
                        i++;
                        continue;
                }
                if (cand == leader)
                        leader_gone = true;
                candidacy_index(s, e, cand, -1);
                if (parking)
                        park(s, e, g_ptr_array_steal_index(e->candidates, i));
                else
                        g_ptr_array_remove_index(e->candidates, i);
                removed = true;
        }

        if (leader_gone && e->candidates->len > 0)
                e->term_id++;
        return removed;
}

static bool match_id(const Candidacy *cand, const Command *c) {
        return streq_ptr(cand->id, c->id);
}

static bool match_owner(const Candidacy *cand, const Command *c) {
        return !cand->persistent && cand->run == c->run &&
                streq_ptr(cand->node, strempty(c->node)) && streq_ptr(cand->owner, strempty(c->owner));
}

static bool match_old_run(const Candidacy *cand, const Command *c) {
        return !cand->persistent && cand->run != c->run && streq_ptr(cand->node, strempty(c->node));
}

static bool match_node(const Candidacy *cand, const Command *c) {
        return streq_ptr(cand->node, strempty(c->node));
}

/* The node the caller sits on: Enter/Leave carry it in node, falling back to the submitter. */
static const char *command_caller_node(const Command *c) {
        return !isempty(c->node) ? c->node : strempty(c->origin);
}

static bool candidacy_drained(const ElectionState *s, const Election *e, const Candidacy *c);
static void election_append(ElectionState *s, Election *e, Candidacy *cand);
static bool election_regroup(ElectionState *s, Election *e, const char *back);

static void candidacy_bind(Candidacy *cand, const Command *c) {
        bool persistent = c->flags & COMMAND_FLAG_PERSISTENT;

        g_free(cand->node);
        cand->node = g_strdup(command_caller_node(c));
        g_free(cand->owner);
        cand->owner = g_strdup(persistent ? "" : strempty(c->owner));
        cand->run = persistent ? 0 : c->run;
        cand->uid = c->uid;
        cand->persistent = persistent;
}

/* The quota of Enter (MaxPersistentPerUser=, carried in the command): existing is the candidacy
 * being re-bound, if any (a persistent one of the same uid is counted already). */
static bool enter_over_quota(const ElectionState *s, const Command *c, const Candidacy *existing) {
        unsigned n;

        if (c->max_persistent == 0 || c->uid == 0 || !(c->flags & COMMAND_FLAG_PERSISTENT))
                return false;
        if (existing && existing->persistent && existing->uid == c->uid)
                return false;
        n = election_state_persistent_count(s, c->uid);
        return n >= c->max_persistent;
}

static ElectionResult apply_enter(ElectionState *s, const Command *c, Election **e) {
        Candidacy *cand;

        if (!(c->flags & COMMAND_FLAG_PERSISTENT)) {
                const char *node = command_caller_node(c);
                uint64_t run;

                /* A connection of another run than the node's current one is gone (or about to be):
                 * binding a candidacy to it would leave one that no DROP_RUN/DROP_OWNER removes. */
                if (!election_state_node_run(s, node, &run))
                        node_run_set(s, node, c->run);
                else if (run != c->run)
                        return ELECTION_INVALID;
        }

        if (*e) {
                cand = (Candidacy *) election_find(*e, c->id, NULL);
                if (cand) {
                        /* Re-bind: another Unix user's candidacy needs authorization. */
                        if (cand->uid != c->uid && !(c->flags & COMMAND_FLAG_AUTHORIZED))
                                return ELECTION_ACCESS_DENIED;
                        if (enter_over_quota(s, c, cand))
                                return ELECTION_QUOTA_EXCEEDED;
                        bool was_drained = candidacy_drained(s, *e, cand);

                        candidacy_index(s, *e, cand, -1);
                        candidacy_bind(cand, c);
                        candidacy_index(s, *e, cand, +1);
                        /* bound to a node drained otherwise: it changes group */
                        if (was_drained != candidacy_drained(s, *e, cand) && election_regroup(s, *e, NULL))
                                return ELECTION_CHANGED;
                        return ELECTION_NOOP;
                }
                /* a parked one of the same id is superseded by this Enter: not one more */
                if (enter_over_quota(s, c, parked_find(*e, c->id)))
                        return ELECTION_QUOTA_EXCEEDED;
                if (c->max_candidates > 0 && (*e)->candidates->len >= c->max_candidates)
                        return ELECTION_LIMIT_EXCEEDED;
        } else {
                if (enter_over_quota(s, c, NULL))
                        return ELECTION_QUOTA_EXCEEDED;
                if (c->max_elections > 0 && election_state_count(s) >= c->max_elections)
                        return ELECTION_LIMIT_EXCEEDED;
                *e = election_new(c->election);
                (*e)->term_id = s->term_floor; /* 0 unless a forced cluster bumped the terms */
                g_hash_table_insert(s->elections, (*e)->name, *e);
        }

        cand = g_new0(Candidacy, 1);
        cand->id = g_strdup(c->id);
        candidacy_bind(cand, c);
        election_append(s, *e, cand);
        return ELECTION_CHANGED;
}

static ElectionResult apply_leave(ElectionState *s, const Command *c, Election *e) {
        const Candidacy *cand;

        cand = election_find(e, c->id, NULL);
        if (!cand)
                cand = parked_find(e, c->id);
        if (!cand)
                return ELECTION_NOOP;

        if (!cand->persistent) {
                /* Only the owning connection leaves a connection-bound candidacy (others Evict). */
                if (!streq_ptr(cand->node, command_caller_node(c)) || !streq_ptr(cand->owner, strempty(c->owner)))
                        return ELECTION_ACCESS_DENIED;
        } else if (cand->uid != c->uid && !(c->flags & COMMAND_FLAG_AUTHORIZED))
                return ELECTION_ACCESS_DENIED;

        /* a parked one is only forgotten: nothing anyone sees changes */
        if (parked_remove_where(s, e, match_id, c))
                return ELECTION_NOOP;
        election_remove_where(s, e, match_id, c);
        return ELECTION_CHANGED;
}

static ElectionResult apply_evict(ElectionState *s, const Command *c, Election *e) {
        if (parked_remove_where(s, e, match_id, c) && !election_find(e, c->id, NULL))
                return ELECTION_NOOP;
        if (!election_find(e, c->id, NULL))
                return ELECTION_NOT_CANDIDATE;
        election_remove_where(s, e, match_id, c);
        return ELECTION_CHANGED;
}

/* RESTORE_NODE(node, run): the node's parked candidacies re-enter at the back, in the order they
 * had, as Enter appends them: persistent ones, and connection-bound ones of that very run (older
 * runs' connections are gone). An id someone else holds by now stays with them. */
static ElectionResult apply_restore(ElectionState *s, const Command *c, ElectionChangedFn changed, void *userdata) {
        g_autoptr(GPtrArray) affected = parked_elections(s);
        const char *node = strempty(c->node);
        uint64_t run;
        bool any = false, know_run = election_state_node_run(s, node, &run);

        for (unsigned i = 0; i < affected->len; i++) {
                Election *e = affected->pdata[i];
                bool changed_here = false;

                for (unsigned j = 0; e->parked && j < e->parked->len;) {
                        Candidacy *cand = e->parked->pdata[j];

                        if (!streq_ptr(cand->node, node)) {
                                j++;
                                continue;
                        }
                        cand = g_ptr_array_steal_index(e->parked, j);
                        uid_count(s, cand, -1); /* back through election_append(), or gone */
                        s->n_parked--;
                        if ((!cand->persistent && (cand->run != c->run || (know_run && run != c->run))) ||
                            election_find(e, cand->id, NULL)) {
                                candidacy_free(cand);
                                continue;
                        }
                        if (!cand->persistent && !know_run) {
                                node_run_set(s, node, c->run);
                                know_run = true;
                                run = c->run;
                        }
                        election_append(s, e, cand);
                        changed_here = true;
                }
                if (e->parked && e->parked->len == 0)
                        g_clear_pointer(&e->parked, g_ptr_array_unref);
                if (changed_here) {
                        any = true;
                        if (changed)
                                changed(e, userdata);
                }
        }
        return any ? ELECTION_CHANGED : ELECTION_NOOP;
}

/* ---- drain ---- */

bool election_state_drained(const ElectionState *s, const char *node, const char *election) {
        const NodeDrain *d;

        if (!s || g_hash_table_size(s->drained) == 0)
                return false;
        d = g_hash_table_lookup(s->drained, strempty(node));
        return d && (d->all || (election && g_hash_table_contains(d->names, election)));
}

char **election_state_drained_names(const ElectionState *s, const char *node) {
        const NodeDrain *d = s ? g_hash_table_lookup(s->drained, strempty(node)) : NULL;
        g_autoptr(GPtrArray) out = g_ptr_array_new();
        GHashTableIter it;
        gpointer k;

        if (d && d->all)
                g_ptr_array_add(out, g_strdup(""));
        if (d) {
                g_autoptr(GPtrArray) names = g_ptr_array_new();
                g_hash_table_iter_init(&it, d->names);
                while (g_hash_table_iter_next(&it, &k, NULL))
                        g_ptr_array_add(names, k);
                g_ptr_array_sort(names, string_compare_ptr);
                for (unsigned i = 0; i < names->len; i++)
                        g_ptr_array_add(out, g_strdup(names->pdata[i]));
        }
        g_ptr_array_add(out, NULL);
        return (char **) g_ptr_array_free(g_steal_pointer(&out), false);
}

static bool candidacy_drained(const ElectionState *s, const Election *e, const Candidacy *c) {
        return election_state_drained(s, c->node, e->name);
}

/* Where a candidacy joins e as Enter/RESTORE_NODE append it: at the back of its group (drained
 * ones stand behind every other one). */
static void election_append(ElectionState *s, Election *e, Candidacy *cand) {
        unsigned at = e->candidates->len;

        if (!candidacy_drained(s, e, cand))
                while (at > 0 && candidacy_drained(s, e, e->candidates->pdata[at - 1]))
                        at--;
        g_ptr_array_insert(e->candidates, at, cand);
        candidacy_index(s, e, cand, +1);
        if (at == 0)
                e->term_id++; /* it leads: alone, or ahead of drained ones only */
}

/* Re-establishes the order invariant after the drained table changed, and moves the candidacies
 * of node `back` (may be NULL) behind the others of their group: a stable sort by
 * (drained, of `back`). Term + 1 if the leader changed. Returns whether the order changed. */
static bool election_regroup(ElectionState *s, Election *e, const char *back) {
        const Candidacy *leader = e->candidates->len > 0 ? e->candidates->pdata[0] : NULL;
        g_autofree gpointer *sorted = NULL;
        unsigned n = e->candidates->len, k = 0;
        bool moved = false;

        if (n < 2)
                return false;
        sorted = g_new(gpointer, n);
        for (unsigned key = 0; key < 4; key++)
                for (unsigned i = 0; i < n; i++) {
                        Candidacy *c = e->candidates->pdata[i];
                        unsigned ck = 2u * candidacy_drained(s, e, c) + (back && streq_ptr(c->node, back));
                        if (ck == key)
                                sorted[k++] = c;
                }
        for (unsigned i = 0; i < n; i++) {
                if (e->candidates->pdata[i] != sorted[i])
                        moved = true;
                e->candidates->pdata[i] = sorted[i];
        }
        if (moved && e->candidates->pdata[0] != leader)
                e->term_id++;
        return moved;
}

/* DRAIN/UNDRAIN(node, election): CHANGED iff the drained table changed; one event per election
 * whose order changed. */
static ElectionResult apply_drain(ElectionState *s, const Command *c, ElectionChangedFn changed, void *userdata) {
        const char *node = strempty(c->node), *name = strempty(c->election);
        NodeDrain *d = g_hash_table_lookup(s->drained, node);
        g_autoptr(GPtrArray) affected = NULL;
        bool drain = c->type == COMMAND_DRAIN, table = false;

        if (*name && !election_string_valid(name))
                return ELECTION_INVALID;
        if (isempty(node) || !election_string_valid(node))
                return ELECTION_INVALID;

        if (drain) {
                if (!d) {
                        d = node_drain_new();
                        g_hash_table_insert(s->drained, g_strdup(node), d);
                }
                if (!*name && !d->all)
                        table = d->all = true;
                else if (*name && !g_hash_table_contains(d->names, name)) {
                        g_hash_table_add(d->names, g_strdup(name));
                        table = true;
                }
        } else if (d) {
                if (!*name) {
                        table = d->all || g_hash_table_size(d->names) > 0;
                        g_hash_table_remove(s->drained, node);
                        d = NULL;
                } else
                        table = g_hash_table_remove(d->names, name);
                if (d && !d->all && g_hash_table_size(d->names) == 0)
                        g_hash_table_remove(s->drained, node);
        }
        if (!table)
                return ELECTION_NOOP;

        affected = index_elections(s->by_node, node);
        for (unsigned i = 0; i < affected->len; i++) {
                Election *e = affected->pdata[i];

                if (*name && !streq_ptr(e->name, name))
                        continue;
                if (election_regroup(s, e, NULL) && changed)
                        changed(e, userdata);
        }
        return ELECTION_CHANGED;
}

/* STEP_DOWN(node): a planned stop. In every election the node's candidacies move behind
 * everyone else's of their group (drained ones stay behind all others), keeping their order;
 * where that changes the leader, term + 1. Candidacies
 * stay what they are (persistent or bound, same run), so DROP_NODE/RESTORE_NODE treat them as
 * before; an election with only this node's candidacies is left as it is. */
static ElectionResult apply_step_down(ElectionState *s, const Command *c, ElectionChangedFn changed, void *userdata) {
        g_autoptr(GPtrArray) affected = index_elections(s->by_node, strempty(c->node));
        bool any = false;

        for (unsigned i = 0; i < affected->len; i++) {
                Election *e = affected->pdata[i];

                if (!election_regroup(s, e, strempty(c->node)))
                        continue;
                any = true;
                if (changed)
                        changed(e, userdata);
        }
        return any ? ELECTION_CHANGED : ELECTION_NOOP;
}

/* The first index of the group of e's candidacy at idx: 0, or for a drained one the first
 * drained one (drained ones never move ahead of the others). */
static unsigned group_front(const ElectionState *s, const Election *e, unsigned idx) {
        if (!candidacy_drained(s, e, e->candidates->pdata[idx]))
                return 0;
        while (idx > 0 && candidacy_drained(s, e, e->candidates->pdata[idx - 1]))
                idx--;
        return idx;
}

static ElectionResult apply_anoint(const ElectionState *s, const Command *c, Election *e) {
        unsigned idx, front;

        if (!election_find(e, c->id, &idx))
                return ELECTION_NOT_CANDIDATE;
        front = group_front(s, e, idx);
        if (idx == front)
                return ELECTION_NOOP;

        g_ptr_array_insert(e->candidates, front, g_ptr_array_steal_index(e->candidates, idx));
        if (front == 0)
                e->term_id++;
        return ELECTION_CHANGED;
}

static ElectionResult apply_promote(const ElectionState *s, const Command *c, Election *e) {
        gpointer t;
        unsigned idx;

        if (!election_find(e, c->id, &idx))
                return ELECTION_NOT_CANDIDATE;
        if (idx == group_front(s, e, idx))
                return ELECTION_NOOP;

        t = e->candidates->pdata[idx - 1];
        e->candidates->pdata[idx - 1] = e->candidates->pdata[idx];
        e->candidates->pdata[idx] = t;
        if (idx == 1)
                e->term_id++;
        return ELECTION_CHANGED;
}

static ElectionResult apply_drop(ElectionState *s, const Command *c, ElectionChangedFn changed, void *userdata) {
        g_autoptr(GPtrArray) affected = NULL;
        CandidacyMatchFn match;
        bool any = false;

        switch (c->type) {
        case COMMAND_DROP_OWNER:
                affected = index_elections(s->by_owner, strempty(c->owner));
                match = match_owner;
                break;
        case COMMAND_DROP_RUN:
                affected = index_elections(s->by_node, strempty(c->node));
                match = match_old_run;
                break;
        case COMMAND_DROP_NODE:
                affected = index_elections(s->by_node, strempty(c->node));
                match = match_node;
                break;
        default:
                g_assert_not_reached();
        }

        /* parked candidacies of a connection that is gone, or of an older run, go for good */
        if (c->type != COMMAND_DROP_NODE) {
                g_autoptr(GPtrArray) parked = parked_elections(s);
                for (unsigned i = 0; i < parked->len; i++)
                        (void) parked_remove_where(s, parked->pdata[i], match, c);
        }

        for (unsigned i = 0; i < affected->len; i++) {
                Election *e = affected->pdata[i];

                if (!election_remove_where_full(s, e, match, c, c->type == COMMAND_DROP_NODE))
                        continue;
                any = true;
                if (changed)
                        changed(e, userdata);
        }

        if (c->type == COMMAND_DROP_RUN) {
                node_run_set(s, strempty(c->node), c->run);
                dedup_prune_other_runs(s, strempty(c->node), c->run);
        } else if (c->type == COMMAND_DROP_NODE) {
                uint64_t run;

                /* The node may still be alive (paused, partitioned) and retry requests of its
                 * current run: that window stays until the node's next DROP_RUN. */
                if (election_state_node_run(s, strempty(c->node), &run)) {
                        dedup_prune_other_runs(s, strempty(c->node), run);
                        g_hash_table_remove(s->runs, strempty(c->node));
                }
        }
        return any ? ELECTION_CHANGED : ELECTION_NOOP;
}

/* BUMP_TERMS(offset in `run`): every election's term id grows by the offset (no candidate moves).
 * Committed first after a forced new cluster or a restored backup: the lost members may have
 * committed term changes this state never saw, and the ids they handed out must not come again. */
static ElectionResult apply_bump_terms(ElectionState *s, const Command *c, ElectionChangedFn changed, void *userdata) {
        GHashTableIter it;
        gpointer v;
        bool any = false;

        if (c->run == 0)
                return ELECTION_NOOP;
        s->term_floor = s->term_floor > UINT64_MAX - c->run ? UINT64_MAX : s->term_floor + c->run;
        g_hash_table_iter_init(&it, s->elections);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Election *e = v;

                if (e->term_id == 0)
                        continue;
                e->term_id = e->term_id > UINT64_MAX - c->run ? UINT64_MAX : e->term_id + c->run;
                any = true;
                if (changed)
                        changed(e, userdata);
        }
        return any ? ELECTION_CHANGED : ELECTION_NOOP;
}

/* FORGET(election, term in `run`): an empty election is deleted, so it no longer counts against
 * MaxElections. Its term id goes into the floor: re-created, it starts above every id it had. The
 * term must match, so a FORGET decided before someone came and went in between does nothing. */
static ElectionResult apply_forget(ElectionState *s, const Command *c, ElectionChangedFn changed, void *userdata) {
        Election *e;

        if (!election_string_valid(c->election))
                return ELECTION_INVALID;
        e = g_hash_table_lookup(s->elections, c->election);
        if (!e || !election_empty(e) || e->term_id != c->run)
                return ELECTION_NOOP;

        s->term_floor = MAX(s->term_floor, e->term_id);
        /* not indexed: no candidacy, none parked */
        g_hash_table_steal(s->elections, e->name);
        e->removed = true;
        if (changed)
                changed(e, userdata);
        election_free(e);
        return ELECTION_CHANGED;
}

/* SET_PROTOCOL(version in `run`): the cluster protocol version only grows (a late copy of an older
 * record is a NOOP). Every member advertised support before the leader submitted it. */
static ElectionResult apply_set_protocol(ElectionState *s, const Command *c) {
        if (c->run <= s->protocol || c->run > UINT32_MAX)
                return ELECTION_NOOP;
        s->protocol = (uint32_t) c->run;
        return ELECTION_CHANGED;
}

ElectionResult election_state_apply(ElectionState *s, const Command *c,
                                    ElectionChangedFn changed, void *userdata,
                                    const Election **ret_election) {
        ElectionResult r;
        Election *e = NULL;
        bool single;

        if (ret_election)
                *ret_election = NULL;
        if (!s || !c || (int) c->type <= 0 || c->type >= _COMMAND_TYPE_MAX)
                return ELECTION_INVALID;

        single = c->type <= COMMAND_PROMOTE;
        if (single && c->election)
                e = g_hash_table_lookup(s->elections, c->election);

        /* Before dedup, so that an old run's request does not bring back its pruned window. */
        if (command_from_old_run(s, c)) {
                r = ELECTION_INVALID;
                goto finish;
        }

        if (dedup_check_and_record(s, strempty(c->origin), c->origin_run, c->request_id)) {
                r = ELECTION_DUPLICATE;
                goto finish;
        }

        if ((c->flags & ~KNOWN_FLAGS) != 0 ||
            (single && (!election_string_valid(c->election) || !election_string_valid(c->id)))) {
                r = ELECTION_INVALID;
                goto finish;
        }

        switch (c->type) {
        case COMMAND_ENTER:
                r = apply_enter(s, c, &e);
                break;
        case COMMAND_LEAVE:
                r = e ? apply_leave(s, c, e) : ELECTION_NOOP;
                break;
        case COMMAND_EVICT:
                r = e ? apply_evict(s, c, e) : ELECTION_NOT_CANDIDATE;
                break;
        case COMMAND_ANOINT:
                r = e ? apply_anoint(s, c, e) : ELECTION_NOT_CANDIDATE;
                break;
        case COMMAND_PROMOTE:
                r = e ? apply_promote(s, c, e) : ELECTION_NOT_CANDIDATE;
                break;
        case COMMAND_RESTORE_NODE:
                return apply_restore(s, c, changed, userdata);
        case COMMAND_STEP_DOWN:
                return apply_step_down(s, c, changed, userdata);
        case COMMAND_DRAIN:
        case COMMAND_UNDRAIN:
                return apply_drain(s, c, changed, userdata);
        case COMMAND_BUMP_TERMS:
                return apply_bump_terms(s, c, changed, userdata);
        case COMMAND_FORGET:
                return apply_forget(s, c, changed, userdata);
        case COMMAND_SET_PROTOCOL:
                return apply_set_protocol(s, c);
        default:
                return apply_drop(s, c, changed, userdata);
        }

        /* a new Enter of a parked id supersedes the parked one */
        if (c->type == COMMAND_ENTER && (r == ELECTION_CHANGED || r == ELECTION_NOOP) && e)
                (void) parked_remove_where(s, e, match_id, c);

        if (r == ELECTION_CHANGED && changed)
                changed(e, userdata);
finish:
        if (ret_election)
                *ret_election = e;
        return r;
}

/* ---- snapshots ----
 * "ELST" u32 version=2
 * u32 n_elections, each: str name, u64 term_id, u32 n, n times:
 *     str id, str node, str owner, u64 run, u32 uid, u8 persistent
 * u32 n_dedup, each: str origin, u64 origin_run, u64 max, DEDUP_WINDOW/64 times u64 bits
 * u32 n_runs, each: str node, u64 current, u8 n_old, n_old times u64  (version >= 2)
 * u64 term_floor (version 5: written only when it is not 0)
 * u32 n_drained, each: str node, u8 all, u32 n, n times str election  (version >= 4; sorted)
 * u32 protocol (version 6, written only when the cluster protocol version is >= 2: then every
 *     member reads it; in version 6 the term_floor above is always written, 0 included)
 * Elections, dedup entries and runs are written sorted, so equal states serialize identically.
 * Version 1 (before the run table) is still restored, with an empty run table: it fills again
 * from the next DROP_RUN or connection-bound Enter of each node. */

#define SNAPSHOT_MAGIC "ELST"
#define SNAPSHOT_VERSION 6u
#define SNAPSHOT_STRING_MAX 4096u





static gint dedup_compare(gconstpointer a, gconstpointer b) {
        const DedupEntry *x = *(DedupEntry *const *) a, *y = *(DedupEntry *const *) b;
        int k = strcmp(x->origin, y->origin);
        if (k != 0)
                return k;
        return x->origin_run < y->origin_run ? -1 : x->origin_run > y->origin_run;
}

static gint string_compare(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static void put_candidacies(GByteArray *b, const GPtrArray *list) {
        bytes_put_u32(b, list ? list->len : 0);
        for (unsigned j = 0; list && j < list->len; j++) {
                const Candidacy *c = list->pdata[j];

                bytes_put_str(b, c->id);
                bytes_put_str(b, c->node);
                bytes_put_str(b, c->owner);
                bytes_put_u64(b, c->run);
                bytes_put_u32(b, c->uid);
                bytes_put_u8(b, c->persistent);
        }
}

static void put_drained(GByteArray *b, const ElectionState *s) {
        g_autoptr(GPtrArray) nodes = g_ptr_array_new();
        GHashTableIter it;
        gpointer k;

        g_hash_table_iter_init(&it, s->drained);
        while (g_hash_table_iter_next(&it, &k, NULL))
                g_ptr_array_add(nodes, k);
        g_ptr_array_sort(nodes, string_compare);
        bytes_put_u32(b, nodes->len);
        for (unsigned i = 0; i < nodes->len; i++) {
                const NodeDrain *d = g_hash_table_lookup(s->drained, nodes->pdata[i]);
                g_auto(GStrv) names = election_state_drained_names(s, nodes->pdata[i]);
                unsigned n = g_strv_length(names), first = d->all ? 1 : 0;

                bytes_put_str(b, nodes->pdata[i]);
                bytes_put_u8(b, d->all);
                bytes_put_u32(b, n - first);
                for (unsigned j = first; j < n; j++)
                        bytes_put_str(b, names[j]);
        }
}

int election_state_serialize(const ElectionState *s, GBytes **ret) {
        g_autoptr(GByteArray) b = NULL;
        g_autoptr(GPtrArray) elections = NULL, dedup = NULL, nodes = NULL;
        GHashTableIter it;
        gpointer d;
        uint32_t version;

        if (!s || !ret)
                return -EINVAL;

        b = g_byte_array_new();
        g_byte_array_append(b, (const uint8_t *) SNAPSHOT_MAGIC, 4);
        /* the oldest version that holds the state, so that every member can restore it: 6 only
         * once the protocol record says all do, 5 only after a forced cluster */
        version = s->protocol >= 2 ? 6u : s->term_floor > 0 ? 5u : 4u;
        bytes_put_u32(b, version);

        elections = election_state_list(s);
        bytes_put_u32(b, elections->len);
        for (unsigned i = 0; i < elections->len; i++) {
                const Election *e = elections->pdata[i];

                bytes_put_str(b, e->name);
                bytes_put_u64(b, e->term_id);
                put_candidacies(b, e->candidates);
                put_candidacies(b, e->parked);
        }

        dedup = g_ptr_array_sized_new(g_hash_table_size(s->dedup));
        g_hash_table_iter_init(&it, s->dedup);
        while (g_hash_table_iter_next(&it, &d, NULL))
                g_ptr_array_add(dedup, d);
        g_ptr_array_sort(dedup, dedup_compare);
        bytes_put_u32(b, dedup->len);
        for (unsigned i = 0; i < dedup->len; i++) {
                const DedupEntry *e = dedup->pdata[i];

                bytes_put_str(b, e->origin);
                bytes_put_u64(b, e->origin_run);
                bytes_put_u64(b, e->max);
                for (unsigned k = 0; k < ELEMENTSOF(e->seen); k++)
                        bytes_put_u64(b, e->seen[k]);
        }

        nodes = g_ptr_array_sized_new(g_hash_table_size(s->runs));
        g_hash_table_iter_init(&it, s->runs);
        while (g_hash_table_iter_next(&it, &d, NULL))
                g_ptr_array_add(nodes, d);
        g_ptr_array_sort(nodes, string_compare);
        bytes_put_u32(b, nodes->len);
        for (unsigned i = 0; i < nodes->len; i++) {
                const char *node = nodes->pdata[i];
                const NodeRuns *n = g_hash_table_lookup(s->runs, node);

                bytes_put_str(b, node);
                bytes_put_u64(b, n->current);
                bytes_put_u8(b, n->n_old);
                for (unsigned k = 0; k < n->n_old; k++)
                        bytes_put_u64(b, n->old[k]);
        }
        if (version >= 6 || s->term_floor > 0)
                bytes_put_u64(b, s->term_floor);

        put_drained(b, s);
        if (version >= 6)
                bytes_put_u32(b, s->protocol);

        *ret = g_byte_array_free_to_bytes(g_steal_pointer(&b));
        return 0;
}

typedef ByteReader Reader;






/* Refuse element counts the remaining input cannot hold, before allocating for them. */
static bool read_count(Reader *r, size_t min_element_size, uint32_t *ret) {
        if (!bytes_read_u32(r, ret))
                return false;
        return (uint64_t) *ret * min_element_size <= r->left;
}

#define CANDIDACY_MIN_SIZE (3 * 4 + 8 + 4 + 1)
#define ELECTION_MIN_SIZE (4 + 1 + 8 + 4)
#define DEDUP_MIN_SIZE (4 + 8 + 8 + DEDUP_WINDOW / 8)
#define RUN_MIN_SIZE (4 + 8 + 1)

/* Reads candidacies into list; ids must be unique within e (active and parked alike). */
static int restore_candidacies(Reader *r, Election *e, GPtrArray *list, uint32_t max) {
        uint32_t count;

        if (!read_count(r, CANDIDACY_MIN_SIZE, &count) || count > max)
                return -EBADMSG;
        for (uint32_t j = 0; j < count; j++) {
                g_autofree char *id = NULL;
                Candidacy *c;
                uint8_t persistent;

                if (!bytes_read_str(r, SNAPSHOT_STRING_MAX, &id) || !election_string_valid(id) || election_find(e, id, NULL) ||
                    parked_find(e, id))
                        return -EBADMSG;
                c = g_new0(Candidacy, 1);
                c->id = g_steal_pointer(&id);
                g_ptr_array_add(list, c); /* freed with e on error */
                if (!bytes_read_str(r, SNAPSHOT_STRING_MAX, &c->node) || !bytes_read_str(r, SNAPSHOT_STRING_MAX, &c->owner) ||
                    !bytes_read_u64(r, &c->run) || !bytes_read_u32(r, &c->uid) ||
                    !bytes_read_u8(r, &persistent) || persistent > 1)
                        return -EBADMSG;
                c->persistent = persistent;
        }
        return 0;
}

static int restore_election(ElectionState *n, Reader *r, uint32_t version) {
        _cleanup_(election_freep) Election *e = NULL;
        g_autofree char *name = NULL;
        int k;

        if (!bytes_read_str(r, SNAPSHOT_STRING_MAX, &name) || !election_string_valid(name) || g_hash_table_contains(n->elections, name))
                return -EBADMSG;
        e = election_new(name);
        if (!bytes_read_u64(r, &e->term_id) || e->term_id == 0) /* term-0 elections are never stored */
                return -EBADMSG;
        k = restore_candidacies(r, e, e->candidates, UINT32_MAX);
        if (k < 0)
                return k;
        if (version >= 3) {
                e->parked = g_ptr_array_new_with_free_func(candidacy_destroy);
                k = restore_candidacies(r, e, e->parked, PARKED_MAX);
                if (k < 0)
                        return k;
                n->n_parked += e->parked->len;
                for (unsigned j = 0; j < e->parked->len; j++)
                        uid_count(n, e->parked->pdata[j], +1);
                if (e->parked->len == 0)
                        g_clear_pointer(&e->parked, g_ptr_array_unref);
        }

        for (unsigned j = 0; j < e->candidates->len; j++)
                candidacy_index(n, e, e->candidates->pdata[j], +1);
        g_hash_table_insert(n->elections, e->name, e);
        e = NULL;
        return 0;
}

static int restore_dedup(ElectionState *n, Reader *r) {
        _cleanup_(dedup_entry_freep) DedupEntry *d = g_new0(DedupEntry, 1);

        if (!bytes_read_str(r, SNAPSHOT_STRING_MAX, &d->origin) || !bytes_read_u64(r, &d->origin_run) || !bytes_read_u64(r, &d->max))
                return -EBADMSG;
        for (unsigned k = 0; k < ELEMENTSOF(d->seen); k++)
                if (!bytes_read_u64(r, &d->seen[k]))
                        return -EBADMSG;
        if (g_hash_table_contains(n->dedup, d))
                return -EBADMSG;
        g_hash_table_add(n->dedup, g_steal_pointer(&d));
        return 0;
}

#define DRAIN_MIN_SIZE (4 + 1 + 4)

static int restore_drain(ElectionState *n, Reader *r) {
        g_autofree char *node = NULL;
        NodeDrain *d;
        uint32_t count;
        uint8_t all;

        if (!bytes_read_str(r, SNAPSHOT_STRING_MAX, &node) || !election_string_valid(node) ||
            g_hash_table_contains(n->drained, node) || !bytes_read_u8(r, &all) || all > 1 || !read_count(r, 4, &count))
                return -EBADMSG;
        d = node_drain_new();
        d->all = all;
        g_hash_table_insert(n->drained, g_steal_pointer(&node), d); /* freed with n on error */
        for (uint32_t i = 0; i < count; i++) {
                g_autofree char *name = NULL;

                if (!bytes_read_str(r, SNAPSHOT_STRING_MAX, &name) || !election_string_valid(name) ||
                    g_hash_table_contains(d->names, name))
                        return -EBADMSG;
                g_hash_table_add(d->names, g_steal_pointer(&name));
        }
        if (!d->all && g_hash_table_size(d->names) == 0)
                return -EBADMSG; /* never stored */
        return 0;
}

static int restore_run(ElectionState *n, Reader *r) {
        g_autofree char *node = NULL;
        g_autofree NodeRuns *runs = g_new0(NodeRuns, 1);
        uint8_t n_old;

        if (!bytes_read_str(r, SNAPSHOT_STRING_MAX, &node) || g_hash_table_contains(n->runs, node) || !bytes_read_u64(r, &runs->current) ||
            !bytes_read_u8(r, &n_old) || n_old > ELECTION_RUN_HISTORY)
                return -EBADMSG;
        runs->n_old = n_old;
        for (unsigned k = 0; k < n_old; k++)
                if (!bytes_read_u64(r, &runs->old[k]))
                        return -EBADMSG;
        g_hash_table_insert(n->runs, g_steal_pointer(&node), g_steal_pointer(&runs));
        return 0;
}

int election_state_restore(ElectionState *s, const void *data, size_t size) {
        g_autoptr(ElectionState) n = NULL;
        Reader r = { .p = data, .left = size };
        const uint8_t *magic;
        uint32_t version, count;
        ElectionState t;
        int k;

        if (!s || (!data && size > 0))
                return -EINVAL;

        if (!bytes_read(&r, 4, &magic) || memcmp(magic, SNAPSHOT_MAGIC, 4) != 0 ||
            !bytes_read_u32(&r, &version) || version < 1 || version > SNAPSHOT_VERSION)
                return -EBADMSG;

        n = election_state_new();

        if (!read_count(&r, ELECTION_MIN_SIZE, &count))
                return -EBADMSG;
        for (uint32_t i = 0; i < count; i++) {
                k = restore_election(n, &r, version);
                if (k < 0)
                        return k;
        }

        if (!read_count(&r, DEDUP_MIN_SIZE, &count))
                return -EBADMSG;
        for (uint32_t i = 0; i < count; i++) {
                k = restore_dedup(n, &r);
                if (k < 0)
                        return k;
        }

        if (version >= 2) {
                if (!read_count(&r, RUN_MIN_SIZE, &count))
                        return -EBADMSG;
                for (uint32_t i = 0; i < count; i++) {
                        k = restore_run(n, &r);
                        if (k < 0)
                                return k;
                }
        }
        if (version >= 5 && !bytes_read_u64(&r, &n->term_floor))
                return -EBADMSG;
        if (version == 5 && n->term_floor == 0)
                return -EBADMSG; /* written only when not 0 */

        if (version >= 4) {
                if (!read_count(&r, DRAIN_MIN_SIZE, &count))
                        return -EBADMSG;
                for (uint32_t i = 0; i < count; i++) {
                        k = restore_drain(n, &r);
                        if (k < 0)
                                return k;
                }
        }

        if (version >= 6 && (!bytes_read_u32(&r, &n->protocol) || n->protocol < 2))
                return -EBADMSG; /* written only from 2 on */

        if (r.left != 0)
                return -EBADMSG;

        /* Swap contents, so callers' pointer to s stays valid; the old state goes with n. */
        t = *s;
        *s = *n;
        *n = t;
        return 0;
}

static bool candidacy_equal(const Candidacy *a, const Candidacy *b) {
        return streq_ptr(a->id, b->id) && streq_ptr(a->node, b->node) && streq_ptr(a->owner, b->owner) &&
                a->run == b->run && a->uid == b->uid && a->persistent == b->persistent;
}

bool election_state_equal(const ElectionState *a, const ElectionState *b) {
        GHashTableIter i;
        gpointer v;

        if (a == b)
                return true;
        if (!a || !b)
                return false;
        if (a->n_parked != b->n_parked || a->term_floor != b->term_floor || a->protocol != b->protocol || g_hash_table_size(a->elections) != g_hash_table_size(b->elections) ||
            g_hash_table_size(a->dedup) != g_hash_table_size(b->dedup) ||
            g_hash_table_size(a->runs) != g_hash_table_size(b->runs) ||
            g_hash_table_size(a->drained) != g_hash_table_size(b->drained))
                return false;

        g_hash_table_iter_init(&i, a->drained);
        while (g_hash_table_iter_next(&i, &v, NULL)) {
                g_auto(GStrv) x = election_state_drained_names(a, v), y = election_state_drained_names(b, v);
                if (!g_strv_equal((const char *const *) x, (const char *const *) y))
                        return false;
        }

        g_hash_table_iter_init(&i, a->elections);
        while (g_hash_table_iter_next(&i, NULL, &v)) {
                const Election *x = v, *y = g_hash_table_lookup(b->elections, x->name);

                if (!y || x->term_id != y->term_id || x->candidates->len != y->candidates->len)
                        return false;
                for (unsigned j = 0; j < x->candidates->len; j++)
                        if (!candidacy_equal(x->candidates->pdata[j], y->candidates->pdata[j]))
                                return false;
                if ((x->parked ? x->parked->len : 0) != (y->parked ? y->parked->len : 0))
                        return false;
                for (unsigned j = 0; x->parked && j < x->parked->len; j++)
                        if (!candidacy_equal(x->parked->pdata[j], y->parked->pdata[j]))
                                return false;
        }

        g_hash_table_iter_init(&i, a->dedup);
        while (g_hash_table_iter_next(&i, &v, NULL)) {
                const DedupEntry *x = v, *y = g_hash_table_lookup(b->dedup, x);

                if (!y || x->max != y->max || memcmp(x->seen, y->seen, sizeof x->seen) != 0)
                        return false;
        }

        g_hash_table_iter_init(&i, a->runs);
        while (g_hash_table_iter_next(&i, &v, NULL)) {
                const NodeRuns *x = g_hash_table_lookup(a->runs, v), *y = g_hash_table_lookup(b->runs, v);

                if (!y || x->current != y->current || x->n_old != y->n_old ||
                    memcmp(x->old, y->old, sizeof x->old[0] * x->n_old) != 0)
                        return false;
        }
        return true;
}
