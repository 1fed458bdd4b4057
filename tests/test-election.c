/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The election rules: every operation in every relevant state, then a long random sequence checked
 * step by step against a small independent model. */

#include <glib.h>
#include <inttypes.h>
#include <stdio.h>

#include "electiond-election.h"
#include "electiond-util.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers for the hand-written cases
 * ------------------------------------------------------------------------------------------- */

typedef struct Caller {
        const char *node;
        const char *owner;
        uint64_t run;
        uint32_t uid;
} Caller;

static const Caller A = { "n1", ":1.1", 11, 1000 };   /* n1, connection :1.1, uid 1000 */
static const Caller A2 = { "n1", ":1.2", 11, 1000 };  /* same node and uid, other connection */
static const Caller B = { "n1", ":1.3", 11, 1001 };   /* other uid */
static const Caller R = { "n2", ":1.1", 22, 0 };      /* other node, same bus name as A */

static uint64_t next_request_id = 1;

typedef struct Events {
        unsigned n;
        char *names; /* "e1,e2," in callback order */
} Events;

static Events events;

static void on_changed(const Election *e, void *userdata) {
        char *n;

        g_assert_true(userdata == &events);
        g_assert_nonnull(e);
        /* Invariant visible to the bus edge: leader == candidates[0]. */
        if (e->candidates->len > 0)
                g_assert_cmpstr(election_leader(e), ==, ((Candidacy *) e->candidates->pdata[0])->id);
        n = g_strdup_printf("%s%s,", events.names ?: "", e->name);
        g_free(events.names);
        events.names = n;
        events.n++;
}

static void events_reset(void) {
        g_clear_pointer(&events.names, g_free);
        events.n = 0;
}

static Command *cmd(CommandType t, const char *election, const char *id, const Caller *who, uint32_t flags) {
        Command *c = command_new(t);

        c->origin = g_strdup(who->node);
        c->origin_run = who->run;
        c->request_id = next_request_id++;
        c->election = g_strdup(election);
        c->id = g_strdup(id);
        c->node = g_strdup(who->node);
        c->owner = g_strdup(who->owner);
        c->run = who->run;
        c->uid = who->uid;
        c->flags = flags;
        return c;
}

/* Applies c (consumed), checks result and number of changed() calls. */
static const Election *apply_full(ElectionState *s, Command *c, ElectionResult expect, unsigned expect_events) {
        g_autoptr(Command) owned = c;
        const Election *e = (const Election *) 0x1;
        ElectionResult r;

        events_reset();
        r = election_state_apply(s, c, on_changed, &events, &e);
        g_assert_cmpint(r, ==, expect);
        g_assert_cmpuint(events.n, ==, expect_events);
        if (c->type <= COMMAND_PROMOTE)
                g_assert_true(e == election_state_get(s, c->election));
        else
                g_assert_null(e);
        return e;
}

static const Election *apply(ElectionState *s, CommandType t, const char *election, const char *id,
                             const Caller *who, uint32_t flags, ElectionResult expect) {
        return apply_full(s, cmd(t, election, id, who, flags), expect,
                          expect == ELECTION_CHANGED && t <= COMMAND_PROMOTE ? 1 : 0);
}

#define ENTER(s, e, id, who, flags, r)  apply((s), COMMAND_ENTER, (e), (id), (who), (flags), (r))
#define LEAVE(s, e, id, who, flags, r)  apply((s), COMMAND_LEAVE, (e), (id), (who), (flags), (r))
#define EVICT(s, e, id, r)              apply((s), COMMAND_EVICT, (e), (id), &R, COMMAND_FLAG_AUTHORIZED, (r))
#define ANOINT(s, e, id, r)             apply((s), COMMAND_ANOINT, (e), (id), &R, COMMAND_FLAG_AUTHORIZED, (r))
#define PROMOTE(s, e, id, r)            apply((s), COMMAND_PROMOTE, (e), (id), &R, COMMAND_FLAG_AUTHORIZED, (r))

/* candidates as "a,b,c" */
static void assert_term(const ElectionState *s, const char *name, uint64_t term, const char *candidates) {
        const Election *e = election_state_get(s, name);
        g_auto(GStrv) ids = NULL;
        g_autofree char *joined = NULL;

        if (term == 0) {
                g_assert_null(e);
                return;
        }
        g_assert_nonnull(e);
        g_assert_cmpstr(e->name, ==, name);
        g_assert_cmpuint(e->term_id, ==, term);
        ids = election_candidate_ids(e);
        joined = g_strjoinv(",", ids);
        g_assert_cmpstr(joined, ==, candidates);
        g_assert_cmpstr(election_leader(e), ==, ids[0] ?: "");
}

static const Candidacy *get_candidacy(const ElectionState *s, const char *name, const char *id) {
        const Candidacy *c = election_find(election_state_get(s, name), id, NULL);
        g_assert_nonnull(c);
        return c;
}

/* [a, b, c] entered by A, term 1 */
static ElectionState *state_abc(void) {
        ElectionState *s = election_state_new();
        ENTER(s, "e", "a", &A, 0, ELECTION_CHANGED);
        ENTER(s, "e", "b", &A, 0, ELECTION_CHANGED);
        ENTER(s, "e", "c", &A, 0, ELECTION_CHANGED);
        assert_term(s, "e", 1, "a,b,c");
        return s;
}

/* ---------------------------------------------------------------------------------------------
 * Enter
 * ------------------------------------------------------------------------------------------- */

static void test_enter(void) {
        g_autoptr(ElectionState) s = election_state_new();
        const Election *e;
        const Candidacy *c;

        g_assert_cmpuint(election_state_count(s), ==, 0);
        g_assert_null(election_state_get(s, "e"));

        e = ENTER(s, "e", "a", &A, 0, ELECTION_CHANGED);
        g_assert_nonnull(e);
        assert_term(s, "e", 1, "a");
        g_assert_cmpstr(events.names, ==, "e,");

        ENTER(s, "e", "b", &A, 0, ELECTION_CHANGED);
        assert_term(s, "e", 1, "a,b");
        ENTER(s, "e", "c", &B, COMMAND_FLAG_PERSISTENT, ELECTION_CHANGED);
        assert_term(s, "e", 1, "a,b,c");
        g_assert_cmpuint(election_state_count(s), ==, 1);

        c = get_candidacy(s, "e", "a");
        g_assert_cmpstr(c->node, ==, "n1");
        g_assert_cmpstr(c->owner, ==, ":1.1");
        g_assert_cmpuint(c->run, ==, 11);
        g_assert_cmpuint(c->uid, ==, 1000);
        g_assert_false(c->persistent);

        c = get_candidacy(s, "e", "c");
        g_assert_cmpstr(c->owner, ==, "");
        g_assert_cmpuint(c->run, ==, 0);
        g_assert_cmpuint(c->uid, ==, 1001);
        g_assert_true(c->persistent);

        /* A second election is independent. */
        ENTER(s, "f", "a", &A, 0, ELECTION_CHANGED);
        assert_term(s, "f", 1, "a");
        assert_term(s, "e", 1, "a,b,c");
        g_assert_cmpuint(election_state_count(s), ==, 2);
}

static void test_enter_rebind(void) {
        g_autoptr(ElectionState) s = state_abc();
        const Candidacy *c;

        /* Same uid, other connection: re-bind at front, middle, back; no reorder, no term, no event. */
        ENTER(s, "e", "a", &A2, 0, ELECTION_NOOP);
        ENTER(s, "e", "b", &A2, 0, ELECTION_NOOP);
        ENTER(s, "e", "c", &A2, COMMAND_FLAG_PERSISTENT, ELECTION_NOOP);
        assert_term(s, "e", 1, "a,b,c");
        g_assert_cmpstr(get_candidacy(s, "e", "a")->owner, ==, ":1.2");
        c = get_candidacy(s, "e", "c");
        g_assert_true(c->persistent);
        g_assert_cmpstr(c->owner, ==, "");
        g_assert_cmpuint(c->run, ==, 0);

        /* Persistent back to connection-bound. */
        ENTER(s, "e", "c", &A, 0, ELECTION_NOOP);
        c = get_candidacy(s, "e", "c");
        g_assert_false(c->persistent);
        g_assert_cmpstr(c->owner, ==, ":1.1");
        g_assert_cmpuint(c->run, ==, 11);

        /* Other uid: refused without authorization, state untouched. */
        ENTER(s, "e", "b", &B, 0, ELECTION_ACCESS_DENIED);
        ENTER(s, "e", "b", &B, COMMAND_FLAG_PERSISTENT, ELECTION_ACCESS_DENIED);
        c = get_candidacy(s, "e", "b");
        g_assert_cmpuint(c->uid, ==, 1000);
        g_assert_cmpstr(c->owner, ==, ":1.2");
        g_assert_false(c->persistent);

        /* Authorized: takes it over (uid, node, owner, run). */
        ENTER(s, "e", "b", &R, COMMAND_FLAG_AUTHORIZED, ELECTION_NOOP);
        c = get_candidacy(s, "e", "b");
        g_assert_cmpuint(c->uid, ==, 0);
        g_assert_cmpstr(c->node, ==, "n2");
        g_assert_cmpuint(c->run, ==, 22);
        assert_term(s, "e", 1, "a,b,c");

        /* The new owner's identity now governs Leave. */
        LEAVE(s, "e", "b", &A2, 0, ELECTION_ACCESS_DENIED);
        LEAVE(s, "e", "b", &R, 0, ELECTION_CHANGED);
        assert_term(s, "e", 1, "a,c");
}

static void test_enter_node_fallback(void) {
        g_autoptr(ElectionState) s = election_state_new();
        Command *c;

        /* node "" means the submitting node (origin). */
        c = cmd(COMMAND_ENTER, "e", "a", &A, 0);
        g_free(c->node);
        c->node = g_strdup("");
        apply_full(s, c, ELECTION_CHANGED, 1);
        g_assert_cmpstr(get_candidacy(s, "e", "a")->node, ==, "n1");

        c = cmd(COMMAND_LEAVE, "e", "a", &A, 0);
        g_clear_pointer(&c->node, g_free);
        apply_full(s, c, ELECTION_CHANGED, 1);
        assert_term(s, "e", 1, "");
}

static void test_invalid(void) {
        g_autoptr(ElectionState) s = election_state_new();
        g_autofree char *long_name = g_strnfill(256, 'x');
        g_autofree char *max_name = g_strnfill(255, 'x');
        const char *bad[] = { "", "a\nb", "tab\there", "\xff\xfe", "\x7f", long_name };

        for (unsigned i = 0; i < ELEMENTSOF(bad); i++)
                for (CommandType t = COMMAND_ENTER; t <= COMMAND_PROMOTE; t++) {
                        apply(s, t, bad[i], "a", &A, 0, ELECTION_INVALID);
                        apply(s, t, "e", bad[i], &A, 0, ELECTION_INVALID);
                }
        g_assert_cmpuint(election_state_count(s), ==, 0);

        /* NULL strings are invalid, not a crash. */
        apply_full(s, command_new(COMMAND_ENTER), ELECTION_INVALID, 0);

        /* Unknown flag bits. */
        ENTER(s, "e", "a", &A, 1u << 7, ELECTION_INVALID);
        apply_full(s, cmd(COMMAND_DROP_NODE, "", "", &A, 1u << 5), ELECTION_INVALID, 0);
        g_assert_cmpuint(election_state_count(s), ==, 0);

        /* Unknown command type. */
        g_autoptr(Command) c = cmd(COMMAND_ENTER, "e", "a", &A, 0);
        c->type = _COMMAND_TYPE_MAX;
        g_assert_cmpint(election_state_apply(s, c, on_changed, &events, NULL), ==, ELECTION_INVALID);

        /* Limits of the valid range, incl. UTF-8. */
        ENTER(s, max_name, max_name, &A, 0, ELECTION_CHANGED);
        ENTER(s, "wahl-\xc3\xa4\xc3\xb6", "kandidat \xe2\x9c\x93", &A, 0, ELECTION_CHANGED);
        g_assert_cmpuint(election_state_count(s), ==, 2);
}

/* ---------------------------------------------------------------------------------------------
 * Leave / Evict
 * ------------------------------------------------------------------------------------------- */

static void test_leave(void) {
        g_autoptr(ElectionState) s = NULL;
        const Election *e;

        /* Not a candidate: no-op, and no empty election left behind. */
        s = election_state_new();
        e = LEAVE(s, "e", "a", &A, 0, ELECTION_NOOP);
        g_assert_null(e);
        g_assert_cmpuint(election_state_count(s), ==, 0);
        g_clear_pointer(&s, election_state_free);

        /* Leader leaves: next leads, term + 1. */
        s = state_abc();
        LEAVE(s, "e", "x", &A, 0, ELECTION_NOOP);
        LEAVE(s, "e", "a", &A, 0, ELECTION_CHANGED);
        assert_term(s, "e", 2, "b,c");
        g_clear_pointer(&s, election_state_free);

        /* Middle and back: no term change. */
        s = state_abc();
        LEAVE(s, "e", "b", &A, 0, ELECTION_CHANGED);
        assert_term(s, "e", 1, "a,c");
        LEAVE(s, "e", "c", &A, 0, ELECTION_CHANGED);
        assert_term(s, "e", 1, "a");
        LEAVE(s, "e", "c", &A, 0, ELECTION_NOOP);

        /* Last one leaves: no leader, term stays, election kept (its term id is never reused). */
        e = LEAVE(s, "e", "a", &A, 0, ELECTION_CHANGED);
        g_assert_nonnull(e);
        assert_term(s, "e", 1, "");
        g_assert_cmpuint(election_state_count(s), ==, 1);
        LEAVE(s, "e", "a", &A, 0, ELECTION_NOOP);

        /* Entering again starts the next term, never term 1 again. */
        ENTER(s, "e", "a", &A, 0, ELECTION_CHANGED);
        assert_term(s, "e", 2, "a");
}

static void test_leave_access(void) {
        g_autoptr(ElectionState) s = state_abc();

        /* Connection-bound: only (node, owner) of the candidacy, whatever uid or authorization. */
        LEAVE(s, "e", "a", &A2, 0, ELECTION_ACCESS_DENIED);
        LEAVE(s, "e", "a", &A2, COMMAND_FLAG_AUTHORIZED, ELECTION_ACCESS_DENIED);
        LEAVE(s, "e", "a", &R, COMMAND_FLAG_AUTHORIZED, ELECTION_ACCESS_DENIED); /* same owner name, other node */
        LEAVE(s, "e", "b", &B, 0, ELECTION_ACCESS_DENIED);
        assert_term(s, "e", 1, "a,b,c");

        /* Persistent: same uid from any connection; other uid only when authorized. */
        ENTER(s, "p", "x", &A, COMMAND_FLAG_PERSISTENT, ELECTION_CHANGED);
        ENTER(s, "p", "y", &A, COMMAND_FLAG_PERSISTENT, ELECTION_CHANGED);
        LEAVE(s, "p", "x", &B, 0, ELECTION_ACCESS_DENIED);
        assert_term(s, "p", 1, "x,y");
        LEAVE(s, "p", "x", &B, COMMAND_FLAG_AUTHORIZED, ELECTION_CHANGED);
        assert_term(s, "p", 2, "y");
        LEAVE(s, "p", "y", &A2, 0, ELECTION_CHANGED);
        assert_term(s, "p", 2, "");
}

static void test_evict(void) {
        g_autoptr(ElectionState) s = NULL;

        s = election_state_new();
        EVICT(s, "e", "a", ELECTION_NOT_CANDIDATE);
        g_assert_cmpuint(election_state_count(s), ==, 0);
        g_clear_pointer(&s, election_state_free);

        s = state_abc();
        EVICT(s, "e", "x", ELECTION_NOT_CANDIDATE);
        EVICT(s, "e", "b", ELECTION_CHANGED); /* middle */
        assert_term(s, "e", 1, "a,c");
        ENTER(s, "e", "b", &B, COMMAND_FLAG_PERSISTENT, ELECTION_CHANGED);
        EVICT(s, "e", "b", ELECTION_CHANGED); /* back, persistent of another uid: no ownership check */
        assert_term(s, "e", 1, "a,c");
        EVICT(s, "e", "a", ELECTION_CHANGED); /* front */
        assert_term(s, "e", 2, "c");
        EVICT(s, "e", "c", ELECTION_CHANGED); /* only */
        assert_term(s, "e", 2, "");
        EVICT(s, "e", "c", ELECTION_NOT_CANDIDATE);
        assert_term(s, "e", 2, "");
}

/* ---------------------------------------------------------------------------------------------
 * Anoint / Promote
 * ------------------------------------------------------------------------------------------- */

static void test_anoint(void) {
        g_autoptr(ElectionState) s = election_state_new();

        ANOINT(s, "e", "a", ELECTION_NOT_CANDIDATE);
        g_assert_cmpuint(election_state_count(s), ==, 0);
        g_clear_pointer(&s, election_state_free);

        s = state_abc();
        ANOINT(s, "e", "x", ELECTION_NOT_CANDIDATE);
        ANOINT(s, "e", "a", ELECTION_NOOP);
        assert_term(s, "e", 1, "a,b,c");
        ANOINT(s, "e", "b", ELECTION_CHANGED); /* middle */
        assert_term(s, "e", 2, "b,a,c");
        ANOINT(s, "e", "c", ELECTION_CHANGED); /* back */
        assert_term(s, "e", 3, "c,b,a");
        ANOINT(s, "e", "c", ELECTION_NOOP);
        assert_term(s, "e", 3, "c,b,a");
}

static void test_bump_terms(void) {
        g_autoptr(ElectionState) s = state_abc();
        Command *c;

        ENTER(s, "f", "x", &A, 0, ELECTION_CHANGED);
        LEAVE(s, "f", "x", &A, 0, ELECTION_CHANGED);       /* term 1, nobody leads */
        assert_term(s, "f", 1, "");

        c = cmd(COMMAND_BUMP_TERMS, "", "", &R, 0);
        c->run = UINT64_C(1) << 20;
        apply_full(s, c, ELECTION_CHANGED, 2);             /* one event per election */
        assert_term(s, "e", 1 + (UINT64_C(1) << 20), "a,b,c");
        assert_term(s, "f", 1 + (UINT64_C(1) << 20), "");
        ANOINT(s, "e", "b", ELECTION_CHANGED);             /* counting goes on from there */
        assert_term(s, "e", 2 + (UINT64_C(1) << 20), "b,a,c");

        /* an election created after the bump starts above the offset: the lost members may have
         * created it and handed out its first ids */
        g_assert_cmpuint(election_state_term_floor(s), ==, UINT64_C(1) << 20);
        ENTER(s, "g", "y", &A, 0, ELECTION_CHANGED);
        assert_term(s, "g", 1 + (UINT64_C(1) << 20), "y");
        {
                /* the floor is part of snapshots (version 5; 4 without a floor) */
                g_autoptr(GBytes) snap = NULL;
                g_autoptr(ElectionState) copy = election_state_new();
                const uint8_t *p;

                g_assert_cmpint(election_state_serialize(s, &snap), ==, 0);
                p = g_bytes_get_data(snap, NULL);
                g_assert_cmpuint(p[4], ==, 5);
                g_assert_cmpint(election_state_restore(copy, p, g_bytes_get_size(snap)), ==, 0);
                g_assert_true(election_state_equal(s, copy));
                g_assert_cmpuint(election_state_term_floor(copy), ==, UINT64_C(1) << 20);
                g_clear_pointer(&snap, g_bytes_unref);
                g_clear_pointer(&copy, election_state_free);
                copy = state_abc();
                g_assert_cmpint(election_state_serialize(copy, &snap), ==, 0);
                g_assert_cmpuint(((const uint8_t *) g_bytes_get_data(snap, NULL))[4], ==, 4);
        }

        c = cmd(COMMAND_BUMP_TERMS, "", "", &R, 0);        /* offset 0: nothing */
        c->run = 0;
        apply_full(s, c, ELECTION_NOOP, 0);
        c = cmd(COMMAND_BUMP_TERMS, "", "", &R, 0);        /* saturates, never wraps */
        c->run = UINT64_MAX;
        apply_full(s, c, ELECTION_CHANGED, 3);
        assert_term(s, "e", UINT64_MAX, "b,a,c");
        g_assert_cmpuint(election_state_term_floor(s), ==, UINT64_MAX);
        g_clear_pointer(&s, election_state_free);

        s = election_state_new();                          /* empty state: nothing to bump */
        c = cmd(COMMAND_BUMP_TERMS, "", "", &R, 0);
        c->run = 5;
        apply_full(s, c, ELECTION_NOOP, 0);
        g_assert_cmpuint(election_state_count(s), ==, 0);
        ENTER(s, "h", "z", &A, 0, ELECTION_CHANGED);       /* but the floor moved */
        assert_term(s, "h", 6, "z");
}

static void test_promote(void) {
        g_autoptr(ElectionState) s = election_state_new();

        PROMOTE(s, "e", "a", ELECTION_NOT_CANDIDATE);
        g_assert_cmpuint(election_state_count(s), ==, 0);
        g_clear_pointer(&s, election_state_free);

        s = state_abc();
        PROMOTE(s, "e", "x", ELECTION_NOT_CANDIDATE);
        PROMOTE(s, "e", "a", ELECTION_NOOP);
        PROMOTE(s, "e", "c", ELECTION_CHANGED); /* back -> middle: leader unchanged, still an event */
        assert_term(s, "e", 1, "a,c,b");
        PROMOTE(s, "e", "c", ELECTION_CHANGED); /* reaches the front */
        assert_term(s, "e", 2, "c,a,b");
        PROMOTE(s, "e", "c", ELECTION_NOOP);
        PROMOTE(s, "e", "a", ELECTION_CHANGED);
        assert_term(s, "e", 3, "a,c,b");
}

/* ---------------------------------------------------------------------------------------------
 * Limits
 * ------------------------------------------------------------------------------------------- */

static void enter_limited(ElectionState *s, const char *e, const char *id, uint32_t max_e, uint32_t max_c,
                          ElectionResult expect) {
        Command *c = cmd(COMMAND_ENTER, e, id, &A, 0);
        c->max_elections = max_e;
        c->max_candidates = max_c;
        apply_full(s, c, expect, expect == ELECTION_CHANGED);
}

static void test_limits(void) {
        g_autoptr(ElectionState) s = election_state_new();

        enter_limited(s, "e1", "a", 2, 0, ELECTION_CHANGED);
        enter_limited(s, "e2", "a", 2, 0, ELECTION_CHANGED);
        enter_limited(s, "e3", "a", 2, 0, ELECTION_LIMIT_EXCEEDED);
        g_assert_null(election_state_get(s, "e3"));
        g_assert_cmpuint(election_state_count(s), ==, 2);
        /* Existing elections still take candidates. */
        enter_limited(s, "e2", "b", 2, 0, ELECTION_CHANGED);
        /* An election without candidates still exists (term > 0) and counts. */
        LEAVE(s, "e1", "a", &A, 0, ELECTION_CHANGED);
        enter_limited(s, "e3", "a", 2, 0, ELECTION_LIMIT_EXCEEDED);
        enter_limited(s, "e1", "a", 2, 0, ELECTION_CHANGED);
        assert_term(s, "e1", 2, "a");
        /* 0 = unlimited. */
        enter_limited(s, "e3", "a", 0, 0, ELECTION_CHANGED);

        /* Candidates per election. */
        enter_limited(s, "e2", "c", 0, 3, ELECTION_CHANGED);
        enter_limited(s, "e2", "d", 0, 3, ELECTION_LIMIT_EXCEEDED);
        assert_term(s, "e2", 1, "a,b,c");
        /* Re-bind at the limit is not a new candidacy. */
        enter_limited(s, "e2", "c", 0, 3, ELECTION_NOOP);
        enter_limited(s, "e2", "d", 0, 4, ELECTION_CHANGED);
        enter_limited(s, "e4", "a", 0, 1, ELECTION_CHANGED);
        enter_limited(s, "e4", "b", 0, 1, ELECTION_LIMIT_EXCEEDED);
        assert_term(s, "e4", 1, "a");
}

/* ---------------------------------------------------------------------------------------------
 * Bulk drops
 * ------------------------------------------------------------------------------------------- */

static void drop(ElectionState *s, CommandType t, const char *node, uint64_t run, const char *owner,
                 ElectionResult expect, unsigned n_events, const char *names) {
        Command *c = command_new(t);

        /* As submitted in the daemon: DROP_RUN by the restarted node itself, the others here by a
         * node "ctl" that never enters anything (so no run rule applies to it). */
        c->origin = g_strdup(t == COMMAND_DROP_RUN ? node : "ctl");
        c->origin_run = t == COMMAND_DROP_RUN ? run : 999;
        c->request_id = next_request_id++;
        c->election = g_strdup("");
        c->id = g_strdup("");
        c->node = g_strdup(node);
        c->owner = g_strdup(owner);
        c->run = run;
        apply_full(s, c, expect, n_events);
        g_assert_cmpstr(events.names, ==, names);
}

/* Various owners in several elections. */
static ElectionState *state_mixed(void) {
        static const Caller R2 = { "n2", ":1.9", 22, 0 };
        ElectionState *s = election_state_new();

        ENTER(s, "e1", "a", &A, 0, ELECTION_CHANGED);             /* A leads */
        ENTER(s, "e1", "b", &R, 0, ELECTION_CHANGED);
        ENTER(s, "e2", "x", &R, 0, ELECTION_CHANGED);
        ENTER(s, "e2", "a", &A, 0, ELECTION_CHANGED);             /* A in the middle */
        ENTER(s, "e3", "a", &A, 0, ELECTION_CHANGED);             /* two of A's incl. the leader */
        ENTER(s, "e3", "p", &A, COMMAND_FLAG_PERSISTENT, ELECTION_CHANGED);
        ENTER(s, "e3", "b", &A, 0, ELECTION_CHANGED);
        ENTER(s, "e3", "r", &R2, 0, ELECTION_CHANGED);
        ENTER(s, "e4", "a", &A, 0, ELECTION_CHANGED);             /* only A */
        ENTER(s, "e5", "r", &R, 0, ELECTION_CHANGED);             /* not n1 at all */
        ENTER(s, "e6", "z", &A2, 0, ELECTION_CHANGED);            /* n1, other connection */
        return s;
}

static void test_drop_owner(void) {
        g_autoptr(ElectionState) s = state_mixed();

        /* (n1, 11, :1.1): leaves R's ":1.1" on n2, the persistent p, A2 alone. */
        drop(s, COMMAND_DROP_OWNER, "n1", 11, ":1.1", ELECTION_CHANGED, 4, "e1,e2,e3,e4,");
        assert_term(s, "e1", 2, "b");
        assert_term(s, "e2", 1, "x");
        assert_term(s, "e3", 2, "p,r"); /* two removed incl. leader: one term change */
        assert_term(s, "e4", 1, "");
        assert_term(s, "e5", 1, "r");
        assert_term(s, "e6", 1, "z");

        drop(s, COMMAND_DROP_OWNER, "n1", 11, ":1.1", ELECTION_NOOP, 0, NULL);
        drop(s, COMMAND_DROP_OWNER, "n3", 11, ":1.1", ELECTION_NOOP, 0, NULL);
        drop(s, COMMAND_DROP_OWNER, "n1", 10, ":1.2", ELECTION_NOOP, 0, NULL); /* other run */
        drop(s, COMMAND_DROP_OWNER, "n1", 11, ":1.2", ELECTION_CHANGED, 1, "e6,");
        assert_term(s, "e6", 1, "");
}

static void test_drop_run(void) {
        g_autoptr(ElectionState) s = state_mixed();

        /* n1's DROP_RUN of its current run 11 (learned from its Enters): nothing to remove. */
        drop(s, COMMAND_DROP_RUN, "n1", 11, "", ELECTION_NOOP, 0, NULL);
        drop(s, COMMAND_DROP_RUN, "n1", 11, "", ELECTION_NOOP, 0, NULL);
        assert_term(s, "e2", 1, "x,a");

        /* n1 restarted as run 12: every connection-bound one of n1 goes. */
        drop(s, COMMAND_DROP_RUN, "n1", 12, "", ELECTION_CHANGED, 5, "e1,e2,e3,e4,e6,");
        assert_term(s, "e1", 2, "b");
        assert_term(s, "e2", 1, "x");
        assert_term(s, "e3", 2, "p,r");
        assert_term(s, "e4", 1, "");
        assert_term(s, "e5", 1, "r");
        assert_term(s, "e6", 1, "");
        uint64_t run = 0;
        g_assert_true(election_state_node_run(s, "n1", &run));
        g_assert_cmpuint(run, ==, 12);

        /* Submitted by another node, DROP_RUN works alike. */
        Command *c = command_new(COMMAND_DROP_RUN);
        c->origin = g_strdup("n2");
        c->origin_run = 22;
        c->request_id = next_request_id++;
        c->node = g_strdup("n2");
        c->run = 23;
        apply_full(s, c, ELECTION_CHANGED, 4);
        g_assert_cmpstr(events.names, ==, "e1,e2,e3,e5,");
        assert_term(s, "e1", 2, "");
        assert_term(s, "e3", 2, "p");
        g_assert_true(election_state_node_run(s, "n2", &run));
        g_assert_cmpuint(run, ==, 23);
}

static void test_drop_node(void) {
        g_autoptr(ElectionState) s = state_mixed();

        g_assert_true(election_state_node_run(s, "n1", NULL));
        drop(s, COMMAND_DROP_NODE, "n1", 0, "", ELECTION_CHANGED, 5, "e1,e2,e3,e4,e6,");
        g_assert_false(election_state_node_run(s, "n1", NULL)); /* forgotten */
        g_assert_true(election_state_node_run(s, "n2", NULL));
        assert_term(s, "e1", 2, "b");
        assert_term(s, "e2", 1, "x");
        assert_term(s, "e3", 2, "r"); /* a, p (persistent), b gone: one term change */
        assert_term(s, "e4", 1, "");
        assert_term(s, "e5", 1, "r");
        assert_term(s, "e6", 1, "");
        drop(s, COMMAND_DROP_NODE, "n1", 0, "", ELECTION_NOOP, 0, NULL);

        drop(s, COMMAND_DROP_NODE, "n2", 0, "", ELECTION_CHANGED, 4, "e1,e2,e3,e5,");
        assert_term(s, "e1", 2, "");
        assert_term(s, "e3", 2, "");
        g_assert_cmpuint(election_state_count(s), ==, 6);
}

static GBytes *serialize(const ElectionState *s);

/* DROP_NODE parks instead of forgetting: a fenced node may well be alive. RESTORE_NODE from the
 * node brings back its persistent ones and those of its live connections, at the back. */
static void test_park_restore(void) {
        g_autoptr(ElectionState) s = state_mixed();
        g_autoptr(GPtrArray) parked = NULL;
        g_autoptr(GBytes) snap = NULL;
        g_autoptr(ElectionState) t = election_state_new();

        drop(s, COMMAND_DROP_NODE, "n1", 0, "", ELECTION_CHANGED, 5, "e1,e2,e3,e4,e6,");
        assert_term(s, "e3", 2, "r");
        parked = election_state_parked(s, "n1");
        g_assert_cmpuint(parked->len, ==, 7); /* e1 a, e2 a, e3 a p b, e4 a, e6 z */
        g_clear_pointer(&parked, g_ptr_array_unref);
        g_assert_cmpuint(election_state_parked_count(s), ==, 7);

        /* snapshots carry them */
        snap = serialize(s);
        g_assert_cmpint(election_state_restore(t, g_bytes_get_data(snap, NULL), g_bytes_get_size(snap)), ==, 0);
        g_assert_true(election_state_equal(s, t));

        /* a Leave by its connection forgets a parked one (nothing visible changes) */
        LEAVE(s, "e2", "a", &A, 0, ELECTION_NOOP);
        /* an Evict forgets one too; a new Enter of the same id supersedes it */
        EVICT(s, "e4", "a", ELECTION_NOOP);
        EVICT(s, "e4", "a", ELECTION_NOT_CANDIDATE);
        /* a connection that went away while parked: gone for good */
        drop(s, COMMAND_DROP_OWNER, "n1", 11, ":1.2", ELECTION_NOOP, 0, NULL);
        g_assert_cmpuint(election_state_parked_count(s), ==, 4);
        g_assert_false(election_state_equal(s, t));

        /* restore as the same run: e1 a (back, behind b), e3 a p b (behind r), e6 stays empty */
        Command *c = command_new(COMMAND_RESTORE_NODE);
        c->origin = g_strdup("n1");
        c->origin_run = 11;
        c->request_id = next_request_id++;
        c->node = g_strdup("n1");
        c->run = 11;
        apply_full(s, c, ELECTION_CHANGED, 2);
        g_assert_cmpstr(events.names, ==, "e1,e3,");
        assert_term(s, "e1", 2, "b,a");
        assert_term(s, "e3", 2, "r,a,p,b");
        assert_term(s, "e2", 1, "x");
        g_assert_cmpuint(election_state_parked_count(s), ==, 0);
        g_assert_true(election_state_node_run(s, "n1", NULL));

        /* restarted meanwhile: only persistent ones come back, and only ids nobody else took */
        drop(s, COMMAND_DROP_NODE, "n1", 0, "", ELECTION_CHANGED, 2, "e1,e3,");
        ENTER(s, "e3", "p", &R, COMMAND_FLAG_PERSISTENT | COMMAND_FLAG_AUTHORIZED, ELECTION_CHANGED); /* n2 takes id p */
        drop(s, COMMAND_DROP_RUN, "n1", 99, "", ELECTION_NOOP, 0, NULL);
        g_assert_cmpuint(election_state_parked_count(s), ==, 0); /* a, b of run 11 gone; p superseded */
        drop(s, COMMAND_DROP_NODE, "n2", 0, "", ELECTION_CHANGED, 4, "e1,e2,e3,e5,");
        assert_term(s, "e3", 2, "");
        c = command_new(COMMAND_RESTORE_NODE);
        c->origin = g_strdup("n2");
        c->origin_run = 22;
        c->request_id = next_request_id++;
        c->node = g_strdup("n2");
        c->run = 22;
        apply_full(s, c, ELECTION_CHANGED, 4);
        assert_term(s, "e3", 3, "r,p"); /* the first back leads, with a new term */
        assert_term(s, "e1", 3, "b");
}


/* STEP_DOWN: a planned stop moves the node's candidacies behind everyone else's. */
static void test_step_down(void) {
        g_autoptr(ElectionState) s = state_mixed();

        /* e1 a(n1),b; e2 x,a(n1); e3 a,p,b(n1),r; e4 a(n1) only; e5 r; e6 z(n1) only */
        drop(s, COMMAND_STEP_DOWN, "n1", 0, "", ELECTION_CHANGED, 2, "e1,e3,");
        assert_term(s, "e1", 2, "b,a");
        assert_term(s, "e2", 1, "x,a");     /* already at the back: untouched, no event */
        assert_term(s, "e3", 2, "r,a,p,b"); /* order kept, one term change */
        assert_term(s, "e4", 1, "a");       /* nobody else: keeps leading */
        assert_term(s, "e5", 1, "r");
        assert_term(s, "e6", 1, "z");
        g_assert_true(get_candidacy(s, "e3", "p")->persistent);
        g_assert_cmpuint(election_state_parked_count(s), ==, 0);
        drop(s, COMMAND_STEP_DOWN, "n1", 0, "", ELECTION_NOOP, 0, NULL);

        /* a non-leader that is not at the back moves too: the order changes, the term does not */
        ENTER(s, "e1", "c", &R, 0, ELECTION_CHANGED); /* b,a,c */
        drop(s, COMMAND_STEP_DOWN, "n1", 0, "", ELECTION_CHANGED, 1, "e1,");
        assert_term(s, "e1", 2, "b,c,a");
        drop(s, COMMAND_STEP_DOWN, "n9", 0, "", ELECTION_NOOP, 0, NULL);

        /* the stopped node is dropped later and restored at the back, as after any failure */
        drop(s, COMMAND_DROP_NODE, "n1", 0, "", ELECTION_CHANGED, 5, "e1,e2,e3,e4,e6,");
        assert_term(s, "e3", 2, "r");
        Command *c = command_new(COMMAND_RESTORE_NODE);
        c->origin = g_strdup("n1");
        c->origin_run = 12;
        c->request_id = next_request_id++;
        c->node = g_strdup("n1");
        c->run = 12;
        apply_full(s, c, ELECTION_CHANGED, 1); /* a new run: only the persistent p comes back */
        g_assert_cmpstr(events.names, ==, "e3,");
        assert_term(s, "e3", 2, "r,p");
        assert_term(s, "e4", 1, "");
}


static void drain_cmd(ElectionState *s, CommandType t, const char *node, const char *election, ElectionResult expect,
                      unsigned n_events, const char *names) {
        Command *c = command_new(t);

        c->origin = g_strdup("ctl"); /* no run recorded: the run rules do not apply */
        c->origin_run = 999;
        c->request_id = next_request_id++;
        c->election = g_strdup(election);
        c->id = g_strdup("");
        c->node = g_strdup(node);
        apply_full(s, c, expect, n_events);
        g_assert_cmpstr(events.names, ==, names);
}

/* DRAIN: the node's candidacies stand behind every other node's, so it leads only when nobody
 * else is a candidate; UNDRAIN makes them ordinary again (at the back of the others). */
static void test_drain(void) {
        g_autoptr(ElectionState) s = state_mixed();
        g_autoptr(ElectionState) t = election_state_new();
        g_autoptr(GBytes) snap = NULL;
        g_auto(GStrv) names = NULL;

        /* e1 a(n1),b(n2); e2 x(n2),a(n1); e3 a,p,b(n1),r(n2); e4 a(n1); e6 z(n1) */
        drain_cmd(s, COMMAND_DRAIN, "n1", "", ELECTION_CHANGED, 2, "e1,e3,");
        assert_term(s, "e1", 2, "b,a");
        assert_term(s, "e2", 1, "x,a");
        assert_term(s, "e3", 2, "r,a,p,b");
        assert_term(s, "e4", 1, "a"); /* nobody else: it leads */
        g_assert_true(election_state_drained(s, "n1", "e1"));
        g_assert_true(election_state_drained(s, "n1", "other"));
        g_assert_false(election_state_drained(s, "n2", "e1"));
        drain_cmd(s, COMMAND_DRAIN, "n1", "", ELECTION_NOOP, 0, NULL);

        /* Anoint/Promote never move a drained candidacy ahead of another node's */
        ANOINT(s, "e1", "a", ELECTION_NOOP);
        PROMOTE(s, "e3", "a", ELECTION_NOOP);
        ANOINT(s, "e3", "b", ELECTION_CHANGED); /* within the drained ones: r,b,a,p */
        assert_term(s, "e3", 2, "r,b,a,p");
        /* a new Enter of n1 joins the back; one of n2 goes ahead of the drained ones */
        ENTER(s, "e1", "c", &A, 0, ELECTION_CHANGED);
        ENTER(s, "e4", "y", &R, 0, ELECTION_CHANGED);
        assert_term(s, "e1", 2, "b,a,c");
        assert_term(s, "e4", 2, "y,a");  /* the drained a loses the lead */
        /* the other node leaves: the drained one leads, nobody else is there */
        LEAVE(s, "e4", "y", &R, 0, ELECTION_CHANGED);
        assert_term(s, "e4", 3, "a");

        /* snapshots carry the table (version 4) */
        snap = serialize(s);
        g_assert_cmpint(election_state_restore(t, g_bytes_get_data(snap, NULL), g_bytes_get_size(snap)), ==, 0);
        g_assert_true(election_state_equal(s, t));
        g_assert_true(election_state_drained(t, "n1", "e1"));

        /* one election by name as well; undrain of a name keeps the drain of every election */
        drain_cmd(s, COMMAND_DRAIN, "n2", "e3", ELECTION_CHANGED, 0, NULL);
        assert_term(s, "e3", 2, "r,b,a,p"); /* all drained now: the order stays, r leads */
        g_assert_false(election_state_equal(s, t));
        names = election_state_drained_names(s, "n2");
        g_assert_cmpuint(g_strv_length(names), ==, 1);
        g_assert_cmpstr(names[0], ==, "e3");
        g_clear_pointer(&names, g_strfreev);
        drain_cmd(s, COMMAND_DRAIN, "n1", "e1", ELECTION_CHANGED, 0, NULL);
        drain_cmd(s, COMMAND_UNDRAIN, "n1", "e1", ELECTION_CHANGED, 0, NULL);
        g_assert_true(election_state_drained(s, "n1", "e1"));
        drain_cmd(s, COMMAND_UNDRAIN, "n1", "e1", ELECTION_NOOP, 0, NULL);
        drain_cmd(s, COMMAND_DRAIN, "n1", "bad\x01", ELECTION_INVALID, 0, NULL);

        /* UNDRAIN: n1's candidacies are ordinary again; in e3 they go ahead of n2's drained r */
        drain_cmd(s, COMMAND_UNDRAIN, "n1", "", ELECTION_CHANGED, 1, "e3,");
        assert_term(s, "e3", 3, "b,a,p,r");
        assert_term(s, "e1", 2, "b,a,c");
        ANOINT(s, "e1", "a", ELECTION_CHANGED);
        assert_term(s, "e1", 3, "a,b,c");
        drain_cmd(s, COMMAND_UNDRAIN, "n2", "", ELECTION_CHANGED, 0, NULL);
        names = election_state_drained_names(s, "n2");
        g_assert_cmpuint(g_strv_length(names), ==, 0);

        /* malformed drain tables are refused, the state stays */
        static const struct {
                uint8_t all;
                uint32_t n;
                const char *name;
                int want;
        } cases[] = {
                { 1, 0, NULL, 0 },
                { 0, 1, "e", 0 },
                { 2, 0, NULL, -EBADMSG },      /* flag out of range */
                { 0, 0, NULL, -EBADMSG },      /* an empty entry is never stored */
                { 0, 1, "", -EBADMSG },        /* not a valid name */
                { 0, 2, "e", -EBADMSG },       /* the same name twice */
        };
        for (unsigned i = 0; i < ELEMENTSOF(cases); i++) {
                g_autoptr(GByteArray) b = g_byte_array_new();
                g_autoptr(ElectionState) u = election_state_new();
                uint8_t u32[4];
#define PUT32(v) do { uint32_t _v = (v); for (int k = 0; k < 4; k++) u32[k] = _v >> (8 * k); g_byte_array_append(b, u32, 4); } while (0)
#define PUTS(x) do { PUT32(strlen(x)); g_byte_array_append(b, (const uint8_t *) (x), strlen(x)); } while (0)
                g_byte_array_append(b, (const uint8_t *) "ELST", 4);
                PUT32(4);
                PUT32(0); /* elections */
                PUT32(0); /* dedup */
                PUT32(0); /* runs */
                PUT32(1);
                PUTS("n1");
                g_byte_array_append(b, &cases[i].all, 1);
                PUT32(cases[i].n);
                for (uint32_t k = 0; k < cases[i].n; k++)
                        PUTS(cases[i].name);
#undef PUT32
#undef PUTS
                g_assert_cmpint(election_state_restore(u, b->data, b->len), ==, cases[i].want);
                g_assert_true(election_state_drained(u, "n1", "e") == (cases[i].want == 0));
        }
}

/* ---------------------------------------------------------------------------------------------
 * Runs: requests of a node's earlier daemon run
 * ------------------------------------------------------------------------------------------- */

/* A command of type t by caller who, submitted by origin/origin_run. */
static Command *cmd_from(CommandType t, const char *id, const Caller *who, uint32_t flags, const char *origin,
                         uint64_t origin_run) {
        Command *c = cmd(t, "e", id, who, flags);

        g_free(c->origin);
        c->origin = g_strdup(origin);
        c->origin_run = origin_run;
        return c;
}

/* The history of superseded runs is bounded: the oldest drops out. */
static void test_run_history(void) {
        g_autoptr(ElectionState) s = election_state_new();
        uint64_t run = 0;

        for (uint64_t r = 1; r <= ELECTION_RUN_HISTORY + 1; r++)
                drop(s, COMMAND_DROP_RUN, "n1", r, "", ELECTION_NOOP, 0, NULL);
        /* Current 9, history 8..1: all refused. */
        for (uint64_t r = 1; r <= ELECTION_RUN_HISTORY; r++)
                drop(s, COMMAND_DROP_RUN, "n1", r, "", ELECTION_INVALID, 0, NULL);
        drop(s, COMMAND_DROP_RUN, "n1", ELECTION_RUN_HISTORY + 1, "", ELECTION_NOOP, 0, NULL);
        /* Run 10: 1 drops out of the history and may come again; 2 may not. */
        drop(s, COMMAND_DROP_RUN, "n1", ELECTION_RUN_HISTORY + 2, "", ELECTION_NOOP, 0, NULL);
        drop(s, COMMAND_DROP_RUN, "n1", 2, "", ELECTION_INVALID, 0, NULL);
        drop(s, COMMAND_DROP_RUN, "n1", 1, "", ELECTION_NOOP, 0, NULL);
        g_assert_true(election_state_node_run(s, "n1", &run));
        g_assert_cmpuint(run, ==, 1);
        /* Another node's history is its own. */
        drop(s, COMMAND_DROP_RUN, "n2", 2, "", ELECTION_NOOP, 0, NULL);
        /* DROP_NODE forgets the history with the run. */
        drop(s, COMMAND_DROP_NODE, "n1", 0, "", ELECTION_NOOP, 0, NULL);
        drop(s, COMMAND_DROP_RUN, "n1", 2, "", ELECTION_NOOP, 0, NULL);
        g_assert_true(election_state_node_run(s, "n1", &run));
        g_assert_cmpuint(run, ==, 2);
}

static void test_stale_run(void) {
        static const Caller A10 = { "n1", ":1.1", 10, 1000 }; /* n1's previous run */
        g_autoptr(ElectionState) s = election_state_new();
        g_autoptr(Command) late = cmd(COMMAND_ENTER, "e", "a", &A10, 0);
        uint64_t run = 0;

        /* The exact race: run 10 entered; n1 restarts as 11 (DROP_RUN); a retry of run 10's Enter
         * commits after that. It is refused and nothing is left that no DROP_* would remove. */
        ENTER(s, "e", "a", &A10, 0, ELECTION_CHANGED);
        g_assert_true(election_state_node_run(s, "n1", &run)); /* learned from the Enter */
        g_assert_cmpuint(run, ==, 10);
        drop(s, COMMAND_DROP_RUN, "n1", 11, "", ELECTION_CHANGED, 1, "e,");
        g_assert_true(election_state_node_run(s, "n1", &run));
        g_assert_cmpuint(run, ==, 11);
        apply_full(s, command_copy(late), ELECTION_INVALID, 0);
        assert_term(s, "e", 1, "");
        /* Also when forwarded by another node (origin n2, current run): the Enter's own run decides. */
        apply_full(s, cmd_from(COMMAND_ENTER, "a", &A10, 0, "n2", 22), ELECTION_INVALID, 0);
        /* ... and for a re-bind of a candidacy of the new run. */
        ENTER(s, "e", "a", &A, 0, ELECTION_CHANGED);
        assert_term(s, "e", 2, "a");
        apply_full(s, cmd_from(COMMAND_ENTER, "a", &A10, 0, "n2", 22), ELECTION_INVALID, 0);
        g_assert_cmpuint(get_candidacy(s, "e", "a")->run, ==, 11);
        /* Persistent candidacies carry no run: an Enter forwarded from elsewhere is fine. */
        apply_full(s, cmd_from(COMMAND_ENTER, "p", &A10, COMMAND_FLAG_PERSISTENT, "n2", 22), ELECTION_CHANGED, 1);

        /* Every request submitted by the old run is refused, whatever its type, before dedup. */
        for (CommandType t = COMMAND_ENTER; t <= COMMAND_PROMOTE; t++)
                apply_full(s, cmd_from(t, "p", &A10, t == COMMAND_ENTER ? COMMAND_FLAG_PERSISTENT :
                                       COMMAND_FLAG_AUTHORIZED, "n1", 10), ELECTION_INVALID, 0);
        Command *d;

        d = command_new(COMMAND_DROP_OWNER);
        d->origin = g_strdup("n1");
        d->origin_run = 10;
        d->request_id = next_request_id++;
        d->node = g_strdup("n1");
        d->owner = g_strdup(":1.1");
        d->run = 11;
        apply_full(s, d, ELECTION_INVALID, 0);
        assert_term(s, "e", 2, "a,p");
        /* The new run's requests pass. */
        PROMOTE(s, "e", "p", ELECTION_CHANGED);
        LEAVE(s, "e", "a", &A, 0, ELECTION_CHANGED);
        assert_term(s, "e", 3, "p");

        /* A late DROP_RUN of the superseded run 10 (by n1's old run or anyone) would bring run 10
         * back, remove run 11's candidacies and lock run 11 out: refused. */
        ENTER(s, "e", "a", &A, 0, ELECTION_CHANGED);
        drop(s, COMMAND_DROP_RUN, "n1", 10, "", ELECTION_INVALID, 0, NULL);
        d = command_new(COMMAND_DROP_RUN);
        d->origin = g_strdup("n2");
        d->origin_run = 22;
        d->request_id = next_request_id++;
        d->node = g_strdup("n1");
        d->run = 10;
        apply_full(s, d, ELECTION_INVALID, 0);
        g_assert_true(election_state_node_run(s, "n1", &run));
        g_assert_cmpuint(run, ==, 11);
        assert_term(s, "e", 3, "p,a");
        LEAVE(s, "e", "a", &A, 0, ELECTION_CHANGED);

        /* DROP_NODE forgets the run; the next connection-bound Enter of n1 teaches it again. */
        drop(s, COMMAND_DROP_NODE, "n1", 0, "", ELECTION_CHANGED, 1, "e,"); /* p was n1's too */
        g_assert_false(election_state_node_run(s, "n1", NULL));
        assert_term(s, "e", 3, "");
        ENTER(s, "e", "b", &A10, 0, ELECTION_CHANGED);
        g_assert_true(election_state_node_run(s, "n1", &run));
        g_assert_cmpuint(run, ==, 10);
        apply_full(s, cmd_from(COMMAND_ENTER, "c", &A, 0, "n2", 22), ELECTION_INVALID, 0);
        assert_term(s, "e", 4, "b");
}

/* ---------------------------------------------------------------------------------------------
 * Dedup
 * ------------------------------------------------------------------------------------------- */

/* Caller A, submitted by origin "nd" (run `run`): a node without a recorded run, so only dedup decides. */
static ElectionResult apply_rid(ElectionState *s, CommandType t, const char *id, uint64_t run, uint64_t rid) {
        g_autoptr(Command) c = cmd(t, "e", id, &A, 0);
        g_free(c->origin);
        c->origin = g_strdup("nd");
        c->origin_run = run;
        c->request_id = rid;
        return election_state_apply(s, c, NULL, NULL, NULL);
}

static void test_dedup(void) {
        g_autoptr(ElectionState) s = election_state_new();
        g_autoptr(ElectionState) t = election_state_new();
        g_autoptr(GBytes) snap = NULL;
        g_autoptr(Command) c = cmd(COMMAND_ENTER, "e", "a", &A, 0);

        g_free(c->origin);
        c->origin = g_strdup("nd");
        c->origin_run = 11;
        c->request_id = 5000;
        g_assert_cmpint(election_state_apply(s, c, on_changed, &events, NULL), ==, ELECTION_CHANGED);
        events_reset();
        /* A retry of the same request: nothing happens, not even after a Leave. */
        const Election *e = NULL;
        g_assert_cmpint(election_state_apply(s, c, on_changed, &events, &e), ==, ELECTION_DUPLICATE);
        g_assert_true(e == election_state_get(s, "e"));
        g_assert_cmpuint(events.n, ==, 0);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "a", 11, 5001), ==, ELECTION_CHANGED);
        g_assert_cmpint(election_state_apply(s, c, NULL, NULL, NULL), ==, ELECTION_DUPLICATE);
        assert_term(s, "e", 1, "");

        /* Same id from another run or origin is a different request. */
        g_assert_cmpint(apply_rid(s, COMMAND_ENTER, "a", 12, 5000), ==, ELECTION_CHANGED);
        g_free(c->origin);
        c->origin = g_strdup("n9");
        g_assert_cmpint(election_state_apply(s, c, NULL, NULL, NULL), ==, ELECTION_NOOP);

        /* Window: ids up to 4095 below the highest are remembered individually, older ones count as seen. */
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 11, 4999), ==, ELECTION_NOOP);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 11, 4999), ==, ELECTION_DUPLICATE);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 11, 906), ==, ELECTION_NOOP);    /* 5001 - 4095 */
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 11, 905), ==, ELECTION_DUPLICATE);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 11, 0), ==, ELECTION_DUPLICATE);
        /* Results other than CHANGED are recorded too (INVALID included). */
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "", 11, 6000), ==, ELECTION_INVALID);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 11, 6000), ==, ELECTION_DUPLICATE);
        /* A jump beyond the window forgets everything below it. */
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 11, 100000), ==, ELECTION_NOOP);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 11, 99999), ==, ELECTION_NOOP);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 11, 100000 - 4096), ==, ELECTION_DUPLICATE);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 11, 100000 - 4095), ==, ELECTION_NOOP);
        /* Sliding the window by a small step forgets exactly the ids that fell out of it: ids
         * skipped over stay applicable although their ring slots held older applied ids. */
        for (uint64_t rid = 1; rid <= 4096; rid++)
                g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 55, rid), ==, ELECTION_NOOP);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 55, 4099), ==, ELECTION_NOOP);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 55, 4097), ==, ELECTION_NOOP);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 55, 4098), ==, ELECTION_NOOP);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 55, 4097), ==, ELECTION_DUPLICATE);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 55, 3), ==, ELECTION_DUPLICATE);  /* too old */
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 55, 4), ==, ELECTION_DUPLICATE);  /* applied, in window */

        /* Request id 0 is an ordinary id for a new (origin, run). */
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 77, 0), ==, ELECTION_NOOP);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 77, 0), ==, ELECTION_DUPLICATE);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 77, UINT64_MAX), ==, ELECTION_NOOP);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 77, UINT64_MAX), ==, ELECTION_DUPLICATE);
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 77, 1), ==, ELECTION_DUPLICATE);

        /* The table travels in snapshots: a restored node decides alike. */
        g_assert_cmpint(election_state_serialize(s, &snap), ==, 0);
        g_assert_cmpint(election_state_restore(t, g_bytes_get_data(snap, NULL), g_bytes_get_size(snap)), ==, 0);
        g_assert_true(election_state_equal(s, t));
        g_assert_cmpint(apply_rid(t, COMMAND_LEAVE, "zz", 11, 99999), ==, ELECTION_DUPLICATE);
        g_assert_cmpint(apply_rid(t, COMMAND_ENTER, "a", 12, 5000), ==, ELECTION_DUPLICATE);
        g_assert_cmpint(apply_rid(t, COMMAND_LEAVE, "zz", 11, 100001), ==, ELECTION_NOOP);
        g_assert_false(election_state_equal(s, t));
        g_assert_cmpint(apply_rid(s, COMMAND_LEAVE, "zz", 11, 100001), ==, ELECTION_NOOP);
        g_assert_true(election_state_equal(s, t));
}

static GBytes *serialize(const ElectionState *s);

/* Daemon restarts must not grow the dedup table: a new run's DROP_RUN forgets the old windows. */
static void test_dedup_prune(void) {
        static const Caller A10 = { "n1", ":1.1", 10, 1000 };
        g_autoptr(ElectionState) s = election_state_new();
        g_autoptr(GBytes) first = NULL, last = NULL;
        g_autoptr(Command) promote = NULL;
        uint64_t rid;

        ENTER(s, "e", "a", &A10, 0, ELECTION_CHANGED);
        ENTER(s, "e", "b", &A10, 0, ELECTION_CHANGED);
        ENTER(s, "e", "z", &R, 0, ELECTION_CHANGED);
        promote = cmd_from(COMMAND_PROMOTE, "z", &A10, COMMAND_FLAG_AUTHORIZED, "n1", 10);
        g_assert_cmpint(election_state_apply(s, promote, NULL, NULL, NULL), ==, ELECTION_CHANGED);
        assert_term(s, "e", 1, "a,z,b");
        g_assert_cmpuint(election_state_dedup_count(s), ==, 2); /* (n1, 10), (n2, 22) */

        /* n1 restarts as 11: (n1, 10) goes, (n1, 11) arrives with the DROP_RUN itself. */
        drop(s, COMMAND_DROP_RUN, "n1", 11, "", ELECTION_CHANGED, 1, "e,");
        assert_term(s, "e", 2, "z");
        g_assert_cmpuint(election_state_dedup_count(s), ==, 2);
        /* A retried Promote of run 10 would apply twice now that its window is gone: refused,
         * and it brings back no window. */
        ENTER(s, "e", "c", &A, 0, ELECTION_CHANGED);
        g_assert_cmpint(election_state_apply(s, promote, NULL, NULL, NULL), ==, ELECTION_INVALID);
        assert_term(s, "e", 2, "z,c");
        g_assert_cmpuint(election_state_dedup_count(s), ==, 2);

        /* 200 restarts later the state is the same size as once the run history was full. */
        for (uint64_t run = 12; run < 212; run++) {
                drop(s, COMMAND_DROP_RUN, "n1", run, "", run == 12 ? ELECTION_CHANGED : ELECTION_NOOP,
                     run == 12, run == 12 ? "e," : NULL);
                if (run == 12 + ELECTION_RUN_HISTORY)
                        first = serialize(s);
        }
        g_assert_cmpuint(election_state_dedup_count(s), ==, 2);
        last = serialize(s);
        g_assert_cmpuint(g_bytes_get_size(last), ==, g_bytes_get_size(first));

        /* DROP_NODE keeps the window of the node's current run (it may be alive and retry). */
        rid = next_request_id;
        drop(s, COMMAND_DROP_RUN, "n1", 212, "", ELECTION_NOOP, 0, NULL);
        drop(s, COMMAND_DROP_NODE, "n1", 0, "", ELECTION_NOOP, 0, NULL);
        g_assert_cmpuint(election_state_dedup_count(s), ==, 3); /* + (ctl, 999) */
        next_request_id = rid;
        drop(s, COMMAND_DROP_RUN, "n1", 212, "", ELECTION_DUPLICATE, 0, NULL);
        next_request_id = rid + 2;

        /* ... and forgets those of its other runs: windows from before the run was known. */
        static const Caller C1 = { "n5", ":1.5", 1, 1000 }, C2 = { "n5", ":1.5", 2, 1000 };
        LEAVE(s, "e", "x", &C1, 0, ELECTION_NOOP);              /* (n5, 1); Leave learns nothing */
        ENTER(s, "e", "y", &C2, 0, ELECTION_CHANGED);           /* (n5, 2); learns run 2 */
        LEAVE(s, "e", "x", &C1, 0, ELECTION_INVALID);           /* run 1 is old now */
        g_assert_cmpuint(election_state_dedup_count(s), ==, 5);
        drop(s, COMMAND_DROP_NODE, "n5", 0, "", ELECTION_CHANGED, 1, "e,");
        g_assert_cmpuint(election_state_dedup_count(s), ==, 4);
        g_assert_false(election_state_node_run(s, "n5", NULL));
        /* Without a recorded run DROP_NODE prunes nothing: any of the windows may be current. */
        drop(s, COMMAND_DROP_NODE, "n5", 0, "", ELECTION_NOOP, 0, NULL);
        g_assert_cmpuint(election_state_dedup_count(s), ==, 4);
        LEAVE(s, "e", "x", &C1, 0, ELECTION_NOOP);              /* run 1 may submit again */
        g_assert_cmpuint(election_state_dedup_count(s), ==, 5);
}

/* ---------------------------------------------------------------------------------------------
 * Snapshots, listing, equality
 * ------------------------------------------------------------------------------------------- */

static GBytes *serialize(const ElectionState *s) {
        GBytes *b = NULL;
        g_assert_cmpint(election_state_serialize(s, &b), ==, 0);
        g_assert_nonnull(b);
        return b;
}

static ElectionState *state_from(GBytes *snap) {
        ElectionState *s = election_state_new();
        g_assert_cmpint(election_state_restore(s, g_bytes_get_data(snap, NULL), g_bytes_get_size(snap)), ==, 0);
        return s;
}

static void test_snapshot(void) {
        g_autoptr(ElectionState) s = state_mixed();
        g_autoptr(ElectionState) t = election_state_new();
        g_autoptr(ElectionState) empty = election_state_new();
        g_autoptr(GBytes) snap = NULL, snap_t = NULL, snap_empty = NULL;
        const uint8_t *p;
        size_t n;

        snap = serialize(s);
        p = g_bytes_get_data(snap, &n);
        g_assert_cmpmem(p, 4, "ELST", 4);

        g_assert_false(election_state_equal(s, t));
        g_assert_cmpint(election_state_restore(t, p, n), ==, 0);
        g_assert_true(election_state_equal(s, t));
        snap_t = serialize(t);
        g_assert_true(g_bytes_equal(snap, snap_t));

        /* The restored state works, including its indexes (same request id: same dedup table). */
        uint64_t rid = next_request_id;
        drop(t, COMMAND_DROP_OWNER, "n1", 11, ":1.1", ELECTION_CHANGED, 4, "e1,e2,e3,e4,");
        next_request_id = rid;
        drop(s, COMMAND_DROP_OWNER, "n1", 11, ":1.1", ELECTION_CHANGED, 4, "e1,e2,e3,e4,");
        g_assert_true(election_state_equal(s, t));

        /* Every truncation and any trailing byte is refused, leaving the state as it was. */
        for (size_t k = 0; k < n; k++)
                g_assert_cmpint(election_state_restore(t, p, k), ==, -EBADMSG);
        g_autofree uint8_t *longer = g_malloc(n + 1);
        memcpy(longer, p, n);
        longer[n] = 0;
        g_assert_cmpint(election_state_restore(t, longer, n + 1), ==, -EBADMSG);
        g_assert_true(election_state_equal(s, t));

        /* Restoring the empty state empties it. */
        snap_empty = serialize(empty);
        g_assert_cmpint(election_state_restore(t, g_bytes_get_data(snap_empty, NULL), g_bytes_get_size(snap_empty)), ==, 0);
        g_assert_cmpuint(election_state_count(t), ==, 0);
        g_assert_true(election_state_equal(t, empty));
}

/* A hand-built snapshot with one election and no dedup entries; version 2 adds the run table:
 * n1 -> current 1, superseded 100, 101, ... (n1_old of them), and, if node2 is set, node2 -> 2. */
static GByteArray *snapshot_v(uint32_t version, const char *name, uint64_t term, const char *id1, const char *id2,
                              uint8_t persistent, const char *node2, uint8_t n1_old) {
        GByteArray *b = g_byte_array_new();
        uint8_t u32[4], u64[8];

#define PUT32(v) do { uint32_t _v = (v); for (int i = 0; i < 4; i++) u32[i] = _v >> (8 * i); g_byte_array_append(b, u32, 4); } while (0)
#define PUT64(v) do { uint64_t _v = (v); for (int i = 0; i < 8; i++) u64[i] = _v >> (8 * i); g_byte_array_append(b, u64, 8); } while (0)
#define PUTS(s) do { PUT32(strlen(s)); g_byte_array_append(b, (const uint8_t *) (s), strlen(s)); } while (0)
        g_byte_array_append(b, (const uint8_t *) "ELST", 4);
        PUT32(version);
        PUT32(1);
        PUTS(name);
        PUT64(term);
        PUT32(2);
        PUTS(id1); PUTS("n1"); PUTS(":1.1"); PUT64(1); PUT32(0); g_byte_array_append(b, &persistent, 1);
        PUTS(id2); PUTS("n1"); PUTS(":1.1"); PUT64(1); PUT32(0); g_byte_array_append(b, &persistent, 1);
        if (version >= 3)
                PUT32(0); /* no parked candidacies */
        PUT32(0);
        if (version >= 2) {
                PUT32(node2 ? 2 : 1);
                PUTS("n1"); PUT64(1); g_byte_array_append(b, &n1_old, 1);
                for (unsigned k = 0; k < n1_old; k++)
                        PUT64(100 + k);
                if (node2) {
                        uint8_t zero = 0;
                        PUTS(node2); PUT64(2); g_byte_array_append(b, &zero, 1);
                }
        }
        if (version >= 4)
                PUT32(0); /* no drained nodes */
#undef PUT32
#undef PUT64
#undef PUTS
        return b;
}

static GByteArray *snapshot_one(const char *name, uint64_t term, const char *id1, const char *id2, uint8_t persistent) {
        return snapshot_v(1, name, term, id1, id2, persistent, NULL, 0);
}

/* The run table travels in snapshots (version 2); version 1 still restores, without one. */
static void test_snapshot_runs(void) {
        g_autoptr(ElectionState) s = election_state_new(), t = election_state_new();
        g_autoptr(GByteArray) v1 = snapshot_v(1, "e", 1, "a", "b", 0, NULL, 0);
        g_autoptr(GByteArray) v2 = snapshot_v(2, "e", 1, "a", "b", 0, "n2", 2);
        g_autoptr(GByteArray) dup = snapshot_v(2, "e", 1, "a", "b", 0, "n1", 0);
        g_autoptr(GByteArray) full = snapshot_v(2, "e", 1, "a", "b", 0, NULL, ELECTION_RUN_HISTORY);
        g_autoptr(GByteArray) v3 = snapshot_v(4, "e", 1, "a", "b", 0, "n2", 2); /* the current version */
        g_autoptr(GByteArray) full3 = snapshot_v(4, "e", 1, "a", "b", 0, NULL, ELECTION_RUN_HISTORY);
        g_autoptr(GByteArray) old3 = snapshot_v(3, "e", 1, "a", "b", 0, "n2", 2);
        g_autoptr(GByteArray) over = snapshot_v(2, "e", 1, "a", "b", 0, NULL, ELECTION_RUN_HISTORY + 1);
        g_autoptr(GBytes) snap = NULL;
        uint64_t run = 0;

        g_assert_cmpint(election_state_restore(s, v2->data, v2->len), ==, 0);
        g_assert_true(election_state_node_run(s, "n1", &run));
        g_assert_cmpuint(run, ==, 1);
        g_assert_true(election_state_node_run(s, "n2", &run));
        g_assert_cmpuint(run, ==, 2);
        snap = serialize(s); /* written as the current version */
        g_assert_cmpmem(g_bytes_get_data(snap, NULL), g_bytes_get_size(snap), v3->data, v3->len);
        g_assert_cmpint(election_state_restore(t, old3->data, old3->len), ==, 0); /* version 3: no drain table */
        g_assert_true(election_state_equal(s, t));
        g_assert_cmpint(election_state_restore(t, dup->data, dup->len), ==, -EBADMSG);
        g_assert_cmpint(election_state_restore(t, over->data, over->len), ==, -EBADMSG);
        g_assert_cmpint(election_state_restore(t, full->data, full->len), ==, 0);
        g_clear_pointer(&snap, g_bytes_unref);
        snap = serialize(t);
        g_assert_cmpmem(g_bytes_get_data(snap, NULL), g_bytes_get_size(snap), full3->data, full3->len);
        /* The restored history decides too. */
        drop(s, COMMAND_DROP_RUN, "n1", 101, "", ELECTION_INVALID, 0, NULL);
        drop(s, COMMAND_DROP_RUN, "n1", 102, "", ELECTION_CHANGED, 1, "e,");

        /* Version 1: same elections, no runs; the rules learn them again. */
        g_assert_cmpint(election_state_restore(t, v1->data, v1->len), ==, 0);
        assert_term(t, "e", 1, "a,b");
        g_assert_false(election_state_node_run(t, "n1", NULL));
        g_assert_false(election_state_equal(s, t));
        drop(t, COMMAND_DROP_RUN, "n1", 1, "", ELECTION_NOOP, 0, NULL);
        g_assert_true(election_state_node_run(t, "n1", NULL));

        /* Equal current runs, different histories: not equal. */
        g_clear_pointer(&s, election_state_free);
        g_clear_pointer(&t, election_state_free);
        s = election_state_new();
        t = election_state_new();
        for (uint64_t rid = 1; rid <= 2; rid++) {
                g_autoptr(Command) c = command_new(COMMAND_DROP_RUN);

                c->origin = g_strdup("ctl");
                c->request_id = rid;
                c->node = g_strdup("n7");
                c->run = rid == 1 ? 1 : 3;
                g_assert_cmpint(election_state_apply(s, c, NULL, NULL, NULL), ==, ELECTION_NOOP);
                c->run = rid == 1 ? 2 : 3;
                g_assert_cmpint(election_state_apply(t, c, NULL, NULL, NULL), ==, ELECTION_NOOP);
        }
        g_assert_false(election_state_equal(s, t));
        g_assert_false(election_state_equal(t, s));

        /* States that differ only in a run are not equal and do not serialize alike. */
        g_clear_pointer(&s, election_state_free);
        g_clear_pointer(&t, election_state_free);
        s = election_state_new();
        t = election_state_new();
        for (unsigned i = 0; i < 2; i++) {
                g_autoptr(Command) c = command_new(COMMAND_DROP_RUN);

                c->origin = g_strdup("ctl");
                c->origin_run = 1;
                c->request_id = 1;
                c->node = g_strdup("n7");
                c->run = 1;
                g_assert_cmpint(election_state_apply(s, c, NULL, NULL, NULL), ==, ELECTION_NOOP);
                c->run = 1 + i;
                g_assert_cmpint(election_state_apply(t, c, NULL, NULL, NULL), ==, ELECTION_NOOP);
                g_assert_true(election_state_equal(s, t) == (i == 0));
                g_assert_true(election_state_equal(t, s) == (i == 0));
                g_autoptr(GBytes) x = serialize(s), y = serialize(t);
                g_assert_true(g_bytes_equal(x, y) == (i == 0));
                g_clear_pointer(&s, election_state_free);
                g_clear_pointer(&t, election_state_free);
                s = election_state_new();
                t = election_state_new();
        }
}

static void test_snapshot_malformed(void) {
        g_autoptr(ElectionState) s = state_mixed();
        g_autoptr(GBytes) before = serialize(s);
        struct {
                const char *name, *id1, *id2;
                uint64_t term;
                uint8_t persistent;
                int expect;
        } cases[] = {
                { "e", "a", "b", 1, 0, 0 },
                { "e", "a", "b", 1, 1, 0 },
                { "e", "a", "b", 0, 0, -EBADMSG },   /* term 0 is never stored */
                { "e", "a", "a", 1, 0, -EBADMSG },   /* duplicate id */
                { "", "a", "b", 1, 0, -EBADMSG },    /* invalid name */
                { "e", "a\n", "b", 1, 0, -EBADMSG }, /* invalid id */
                { "e", "a", "b", 1, 2, -EBADMSG },   /* bool out of range */
        };

        for (unsigned i = 0; i < ELEMENTSOF(cases); i++) {
                g_autoptr(ElectionState) t = state_from(before);
                g_autoptr(GByteArray) b = snapshot_one(cases[i].name, cases[i].term, cases[i].id1, cases[i].id2,
                                                       cases[i].persistent);
                g_autoptr(GBytes) after = NULL;

                g_assert_cmpint(election_state_restore(t, b->data, b->len), ==, cases[i].expect);
                after = serialize(t);
                if (cases[i].expect < 0)
                        g_assert_true(g_bytes_equal(before, after));
                else {
                        assert_term(t, cases[i].name, cases[i].term, "a,b");
                        g_assert_cmpuint(election_state_count(t), ==, 1);
                }
        }

        /* Wrong magic / version, NULL. */
        g_autoptr(GByteArray) b = snapshot_one("e", 1, "a", "b", 0);
        b->data[0] = 'X';
        g_assert_cmpint(election_state_restore(s, b->data, b->len), ==, -EBADMSG);
        b->data[0] = 'E';
        b->data[4] = 3;
        g_assert_cmpint(election_state_restore(s, b->data, b->len), ==, -EBADMSG);
        b->data[4] = 0;
        g_assert_cmpint(election_state_restore(s, b->data, b->len), ==, -EBADMSG);
        g_assert_cmpint(election_state_restore(s, NULL, 0), ==, -EBADMSG);
        /* Huge counts are refused without allocating. */
        b->data[4] = 1;
        b->data[8] = b->data[9] = b->data[10] = b->data[11] = 0xff;
        g_assert_cmpint(election_state_restore(s, b->data, b->len), ==, -EBADMSG);

        /* Random corruption: refused with the state unchanged, or accepted and re-serializable. */
        g_autoptr(GBytes) snap = serialize(s);
        GRand *rnd = g_rand_new_with_seed(99);
        for (unsigned iter = 0; iter < 3000; iter++) {
                g_autoptr(ElectionState) t = state_from(before);
                gsize n = g_bytes_get_size(snap);
                g_autofree uint8_t *p = g_memdup2(g_bytes_get_data(snap, NULL), n);
                int r;

                for (unsigned k = g_rand_int_range(rnd, 1, 4); k > 0; k--)
                        p[g_rand_int_range(rnd, 0, n)] ^= 1u << g_rand_int_range(rnd, 0, 8);
                r = election_state_restore(t, p, n);
                if (r < 0) {
                        g_autoptr(GBytes) after = serialize(t);
                        g_assert_cmpint(r, ==, -EBADMSG);
                        g_assert_true(g_bytes_equal(before, after));
                } else {
                        g_autoptr(GBytes) again = serialize(t);
                        g_autoptr(ElectionState) u = election_state_new();
                        g_assert_cmpint(election_state_restore(u, g_bytes_get_data(again, NULL), g_bytes_get_size(again)), ==, 0);
                        g_assert_true(election_state_equal(t, u));
                }
        }
        g_rand_free(rnd);
}

static void test_list_and_lookup(void) {
        g_autoptr(ElectionState) s = election_state_new();
        g_autoptr(GPtrArray) l = NULL;
        g_auto(GStrv) ids = NULL;
        const char *names[] = { "zeta", "alpha", "Mu", "beta", "alpha2" };
        const char *sorted[] = { "Mu", "alpha", "alpha2", "beta", "zeta" };
        unsigned idx = 99;

        l = election_state_list(s);
        g_assert_cmpuint(l->len, ==, 0);
        g_clear_pointer(&l, g_ptr_array_unref);

        for (unsigned i = 0; i < ELEMENTSOF(names); i++)
                ENTER(s, names[i], "c", &A, 0, ELECTION_CHANGED);
        l = election_state_list(s);
        g_assert_cmpuint(l->len, ==, ELEMENTSOF(sorted));
        for (unsigned i = 0; i < l->len; i++)
                g_assert_cmpstr(((Election *) l->pdata[i])->name, ==, sorted[i]);

        ENTER(s, "beta", "d", &A, 0, ELECTION_CHANGED);
        g_assert_nonnull(election_find(election_state_get(s, "beta"), "d", &idx));
        g_assert_cmpuint(idx, ==, 1);
        g_assert_null(election_find(election_state_get(s, "beta"), "x", NULL));
        g_assert_null(election_find(NULL, "x", NULL));
        ids = election_candidate_ids(NULL);
        g_assert_null(ids[0]);
        g_assert_cmpstr(election_leader(NULL), ==, "");
        g_assert_null(election_state_free(NULL));
}

/* 10,000 elections; connection drops must only touch the elections concerned. */
static void test_many_elections(void) {
        g_autoptr(ElectionState) s = election_state_new();
        g_autoptr(GBytes) snap = NULL;
        g_autoptr(ElectionState) t = election_state_new();
        uint64_t start = now_monotonic_usec(), used;

        for (unsigned i = 0; i < 10000; i++) {
                g_autofree char *name = g_strdup_printf("election-%05u", i);
                g_autofree char *owner = g_strdup_printf(":1.%u", i);
                Caller who = { "n1", owner, 5, 1000 };
                ENTER(s, name, "a", &who, 0, ELECTION_CHANGED);
                ENTER(s, name, "b", &R, 0, ELECTION_CHANGED);
        }
        snap = serialize(s);
        g_assert_cmpint(election_state_restore(t, g_bytes_get_data(snap, NULL), g_bytes_get_size(snap)), ==, 0);
        g_assert_true(election_state_equal(s, t));
        for (unsigned i = 0; i < 10000; i++) {
                g_autofree char *owner = g_strdup_printf(":1.%u", i);
                g_autofree char *name = g_strdup_printf("election-%05u,", i);
                drop(s, COMMAND_DROP_OWNER, "n1", 5, owner, ELECTION_CHANGED, 1, name);
        }
        g_assert_cmpuint(election_state_count(s), ==, 10000);
        assert_term(s, "election-04711", 2, "b");
        used = now_monotonic_usec() - start;
        g_test_message("10000 elections: %" PRIu64 " ms", used / 1000);
        /* Generous bound (shared 2-core machine, valgrind): a full scan per drop would be quadratic. */
        if (!g_getenv("ELECTIOND_TEST_SLOW"))
                g_assert_cmpuint(used, <, 20 * USEC_PER_SEC);
}

/* ---------------------------------------------------------------------------------------------
 * Random sequence against a reference model
 * ------------------------------------------------------------------------------------------- */

enum {
        M_ELECTIONS = 4,
        M_IDS = 6,
        M_NODES = 3,
        M_OWNERS = 3,
        M_RUNS = ELECTION_RUN_HISTORY + 2, /* runs 1..M_RUNS: more than a node's history holds */
        M_WINDOW = 4096,
};

static const uint32_t m_uids[] = { 0, 1000, 1001 };

typedef struct MCand {
        int id, node, owner; /* owner -1: persistent */
        uint64_t run;
        uint32_t uid;
} MCand;

typedef struct MElection {
        uint64_t term;
        int n;
        MCand c[M_IDS];
        int np;          /* parked by DROP_NODE, in order */
        MCand p[M_IDS];
} MElection;

typedef struct MDedup {
        bool used;
        uint64_t max;
        GHashTable *applied; /* every id ever applied (uint64 in a pointer-sized key via g_int64) */
} MDedup;

typedef struct Model {
        MElection e[M_ELECTIONS];
        MDedup d[M_NODES][M_RUNS + 1];
        bool has_run[M_NODES];  /* the node's current run is known ... */
        uint64_t run[M_NODES];  /* ... and is this */
        unsigned n_old[M_NODES];
        uint64_t old[M_NODES][ELECTION_RUN_HISTORY]; /* superseded runs, newest first */
        /* How often each run rule fired, so the test can show it exercised them. */
        unsigned n_old_origin, n_enter_run, n_pruned, n_superseded, n_history_full;
        unsigned n_step_down_lead; /* STEP_DOWNs that handed a lead on */
        bool drain_all[M_NODES];              /* DRAIN(node, "") */
        bool drain_e[M_NODES][M_ELECTIONS];   /* DRAIN(node, election) */
        unsigned n_drain_moved, n_drained_leader, n_anoint_held; /* drain rules that fired */
        uint64_t floor;                       /* FORGET: the highest term id of a removed election */
        unsigned n_forgot, n_quota_rebind;    /* FORGETs that removed one; quota refusals of a re-bind */
} Model;

/* A generated command in model terms. */
typedef struct MCmd {
        CommandType type;
        int election, id;   /* -1: invalid string */
        int node, owner;    /* caller (Enter/Leave) or target (drops) */
        bool node_empty;    /* Enter/Leave with node "": falls back to origin */
        uint64_t run;
        uint32_t uid, flags, max_e, max_c, max_p;
        int origin;
        uint64_t origin_run, rid;
} MCmd;

static int m_find_parked(const MElection *e, int id) {
        for (int i = 0; i < e->np; i++)
                if (e->p[i].id == id)
                        return i;
        return -1;
}

static void m_unpark(MElection *e, int i) {
        memmove(&e->p[i], &e->p[i + 1], sizeof(MCand) * (e->np - i - 1));
        e->np--;
}

static int m_find(const MElection *e, int id) {
        for (int i = 0; i < e->n; i++)
                if (e->c[i].id == id)
                        return i;
        return -1;
}

static bool m_drained(const Model *m, int node, int k) {
        return m->drain_all[node] || m->drain_e[node][k];
}

/* Stable sort by (drained, node == back); term + 1 if the leader changed. */
static bool m_regroup(Model *m, int k, int back) {
        MElection *e = &m->e[k];
        MCand out[M_IDS];
        int n = 0;

        for (int key = 0; key < 4; key++)
                for (int i = 0; i < e->n; i++)
                        if (2 * m_drained(m, e->c[i].node, k) + (e->c[i].node == back) == key)
                                out[n++] = e->c[i];
        if (memcmp(out, e->c, sizeof(MCand) * e->n) == 0)
                return false;
        if (out[0].id != e->c[0].id)
                e->term++;
        memcpy(e->c, out, sizeof(MCand) * e->n);
        return true;
}

/* Appends at the back of its group; leads (term + 1) if that is the front. */
static void m_append(Model *m, int k, MCand x) {
        MElection *e = &m->e[k];
        int at = e->n;

        if (!m_drained(m, x.node, k))
                while (at > 0 && m_drained(m, e->c[at - 1].node, k))
                        at--;
        memmove(&e->c[at + 1], &e->c[at], sizeof(MCand) * (e->n - at));
        e->c[at] = x;
        e->n++;
        if (at == 0)
                e->term++;
}

static int m_front(const Model *m, int k, int i) {
        const MElection *e = &m->e[k];

        if (!m_drained(m, e->c[i].node, k))
                return 0;
        while (i > 0 && m_drained(m, e->c[i - 1].node, k))
                i--;
        return i;
}

/* Removes the candidates flagged in kill[]; returns whether any went. */
static bool m_remove(MElection *e, const bool kill[]) {
        bool any = false, leader = e->n > 0 && kill[0];
        int k = 0;

        for (int i = 0; i < e->n; i++) {
                if (kill[i]) {
                        any = true;
                        continue;
                }
                e->c[k++] = e->c[i];
        }
        e->n = k;
        if (leader && e->n > 0)
                e->term++;
        return any;
}

static void m_forget(Model *m, int node, uint64_t keep_run) {
        for (uint64_t r = 1; r <= M_RUNS; r++) {
                MDedup *d = &m->d[node][r];

                if (r == keep_run || !d->used)
                        continue;
                d->used = false;
                d->max = 0;
                g_hash_table_remove_all(d->applied);
                m->n_pruned++;
        }
}

static bool m_superseded(const Model *m, int node, uint64_t run) {
        for (unsigned i = 0; i < m->n_old[node]; i++)
                if (m->old[node][i] == run)
                        return true;
        return false;
}

static bool m_dup(Model *m, const MCmd *c) {
        MDedup *d = &m->d[c->origin][c->origin_run];

        if (d->used && ((c->rid <= d->max && d->max - c->rid >= M_WINDOW) ||
                        g_hash_table_contains(d->applied, &c->rid)))
                return true;
        if (!d->used || c->rid > d->max)
                d->max = c->rid;
        d->used = true;
        g_hash_table_add(d->applied, g_memdup2(&c->rid, sizeof c->rid));
        return false;
}

/* Model of the rules; sets changed[] for the elections it changed. */
/* Persistent candidacies of uid, listed and parked, in every election. */
static unsigned m_persistent(const Model *m, uint32_t uid) {
        unsigned n = 0;

        for (int k = 0; k < M_ELECTIONS; k++) {
                for (int i = 0; i < m->e[k].n; i++)
                        n += m->e[k].c[i].owner < 0 && m->e[k].c[i].uid == uid;
                for (int i = 0; i < m->e[k].np; i++)
                        n += m->e[k].p[i].owner < 0 && m->e[k].p[i].uid == uid;
        }
        return n;
}

/* The Enter quota: existing is the candidacy re-bound or superseded (may be NULL). */
static bool m_over_quota(const Model *m, const MCmd *c, const MCand *existing) {
        if (!(c->flags & COMMAND_FLAG_PERSISTENT) || c->uid == 0 || c->max_p == 0)
                return false;
        if (existing && existing->owner < 0 && existing->uid == c->uid)
                return false;
        return m_persistent(m, c->uid) >= c->max_p;
}

static ElectionResult m_apply(Model *m, const MCmd *c, bool changed[]) {
        memset(changed, 0, sizeof(bool) * M_ELECTIONS);

        /* A DROP_RUN of a run its node superseded; then anything submitted by an old run of its
         * origin (unless it is the new run's own DROP_RUN). */
        if (c->type == COMMAND_DROP_RUN && m_superseded(m, c->node, c->run)) {
                m->n_superseded++;
                return ELECTION_INVALID;
        }
        if (m->has_run[c->origin] && m->run[c->origin] != c->origin_run &&
            !(c->type == COMMAND_DROP_RUN && c->node == c->origin && c->run == c->origin_run)) {
                m->n_old_origin++;
                return ELECTION_INVALID;
        }
        if (m_dup(m, c))
                return ELECTION_DUPLICATE;
        if (c->flags & ~3u)
                return ELECTION_INVALID;

        if (c->type == COMMAND_FORGET) {
                MElection *e;

                if (c->election < 0)
                        return ELECTION_INVALID;
                e = &m->e[c->election];
                if (e->term == 0 || e->n > 0 || e->np > 0 || e->term != c->run)
                        return ELECTION_NOOP;
                m->floor = MAX(m->floor, e->term);
                e->term = 0;
                changed[c->election] = true;
                m->n_forgot++;
                return ELECTION_CHANGED;
        }

        if (c->type <= COMMAND_PROMOTE) {
                MElection *e;
                int i;

                if (c->election < 0 || c->id < 0)
                        return ELECTION_INVALID;
                e = &m->e[c->election];
                i = m_find(e, c->id);

                switch (c->type) {
                case COMMAND_ENTER: {
                        bool persistent = c->flags & COMMAND_FLAG_PERSISTENT;
                        int node = c->node_empty ? c->origin : c->node;
                        MCand nc = { c->id, node, persistent ? -1 : c->owner, persistent ? 0 : c->run, c->uid };

                        if (!persistent && !m->has_run[node]) {
                                m->has_run[node] = true;
                                m->run[node] = c->run;
                        } else if (!persistent && m->run[node] != c->run) {
                                m->n_enter_run++;
                                return ELECTION_INVALID;
                        }

                        if (i >= 0) {
                                bool was = m_drained(m, e->c[i].node, c->election);
                                if (e->c[i].uid != c->uid && !(c->flags & COMMAND_FLAG_AUTHORIZED))
                                        return ELECTION_ACCESS_DENIED;
                                if (m_over_quota(m, c, &e->c[i])) {
                                        m->n_quota_rebind++;
                                        return ELECTION_QUOTA_EXCEEDED;
                                }
                                e->c[i] = nc;
                                if (was != m_drained(m, nc.node, c->election) && m_regroup(m, c->election, -1)) {
                                        changed[c->election] = true;
                                        return ELECTION_CHANGED;
                                }
                                return ELECTION_NOOP;
                        }
                        int pk = m_find_parked(e, c->id);
                        if (m_over_quota(m, c, pk >= 0 ? &e->p[pk] : NULL))
                                return ELECTION_QUOTA_EXCEEDED;
                        if (e->term == 0 && c->max_e > 0) {
                                unsigned count = 0;
                                for (int k = 0; k < M_ELECTIONS; k++)
                                        count += m->e[k].term > 0;
                                if (count >= c->max_e)
                                        return ELECTION_LIMIT_EXCEEDED;
                        }
                        if (c->max_c > 0 && (unsigned) e->n >= c->max_c)
                                return ELECTION_LIMIT_EXCEEDED;
                        if (e->term == 0)
                                e->term = m->floor; /* created: above every removed one */
                        if (e->n > 0 && m_drained(m, e->c[0].node, c->election) && !m_drained(m, nc.node, c->election))
                                m->n_drained_leader++; /* a non-drained Enter takes the lead from a drained one */
                        m_append(m, c->election, nc);
                        if (pk >= 0)
                                m_unpark(e, pk); /* the new Enter supersedes the parked one */
                        changed[c->election] = true;
                        return ELECTION_CHANGED;
                }
                case COMMAND_LEAVE:
                case COMMAND_EVICT: {
                        bool kill[M_IDS] = {};

                        if (i < 0) {
                                int pk = m_find_parked(e, c->id);
                                if (pk < 0)
                                        return c->type == COMMAND_LEAVE ? ELECTION_NOOP : ELECTION_NOT_CANDIDATE;
                                if (c->type == COMMAND_LEAVE) {
                                        const MCand *x = &e->p[pk];
                                        if (x->owner >= 0 && (x->node != c->node || x->owner != c->owner))
                                                return ELECTION_ACCESS_DENIED;
                                        if (x->owner < 0 && x->uid != c->uid && !(c->flags & COMMAND_FLAG_AUTHORIZED))
                                                return ELECTION_ACCESS_DENIED;
                                }
                                m_unpark(e, pk); /* forgotten; nothing visible changes */
                                return ELECTION_NOOP;
                        }
                        if (c->type == COMMAND_LEAVE) {
                                const MCand *x = &e->c[i];
                                if (x->owner >= 0 && (x->node != c->node || x->owner != c->owner))
                                        return ELECTION_ACCESS_DENIED;
                                if (x->owner < 0 && x->uid != c->uid && !(c->flags & COMMAND_FLAG_AUTHORIZED))
                                        return ELECTION_ACCESS_DENIED;
                        }
                        kill[i] = true;
                        m_remove(e, kill);
                        changed[c->election] = true;
                        return ELECTION_CHANGED;
                }
                case COMMAND_ANOINT: {
                        int f;
                        if (i < 0)
                                return ELECTION_NOT_CANDIDATE;
                        f = m_front(m, c->election, i);
                        if (f > 0 && i > 0)
                                m->n_anoint_held++;
                        if (i == f)
                                return ELECTION_NOOP;
                        {
                                MCand x = e->c[i];
                                memmove(&e->c[f + 1], &e->c[f], sizeof(MCand) * (i - f));
                                e->c[f] = x;
                        }
                        if (f == 0)
                                e->term++;
                }
                        changed[c->election] = true;
                        return ELECTION_CHANGED;
                case COMMAND_PROMOTE:
                        if (i < 0)
                                return ELECTION_NOT_CANDIDATE;
                        if (i == m_front(m, c->election, i))
                                return ELECTION_NOOP;
                        {
                                MCand x = e->c[i];
                                e->c[i] = e->c[i - 1];
                                e->c[i - 1] = x;
                        }
                        if (i == 1)
                                e->term++;
                        changed[c->election] = true;
                        return ELECTION_CHANGED;
                default:
                        g_assert_not_reached();
                }
        }

        bool any = false;
        if (c->type == COMMAND_STEP_DOWN) {
                /* the node's candidacies go behind everyone else's of their group, in their order */
                for (int k = 0; k < M_ELECTIONS; k++) {
                        uint64_t before = m->e[k].term;
                        if (!m_regroup(m, k, c->node))
                                continue;
                        if (m->e[k].term != before)
                                m->n_step_down_lead++;
                        changed[k] = any = true;
                }
                return any ? ELECTION_CHANGED : ELECTION_NOOP;
        }
        if (c->type == COMMAND_DRAIN || c->type == COMMAND_UNDRAIN) {
                bool table = false, drain = c->type == COMMAND_DRAIN;
                int n = c->node;

                if (c->election < -1)
                        return ELECTION_INVALID;
                if (drain && c->election < 0) {
                        table = !m->drain_all[n];
                        m->drain_all[n] = true;
                } else if (drain) {
                        table = !m->drain_e[n][c->election];
                        m->drain_e[n][c->election] = true;
                } else if (c->election < 0) {
                        table = m->drain_all[n];
                        m->drain_all[n] = false;
                        for (int k = 0; k < M_ELECTIONS; k++) {
                                table |= m->drain_e[n][k];
                                m->drain_e[n][k] = false;
                        }
                } else {
                        table = m->drain_e[n][c->election];
                        m->drain_e[n][c->election] = false;
                }
                if (!table)
                        return ELECTION_NOOP;
                for (int k = 0; k < M_ELECTIONS; k++) {
                        bool has = false;
                        if (c->election >= 0 && k != c->election)
                                continue;
                        for (int i = 0; i < m->e[k].n; i++)
                                has |= m->e[k].c[i].node == n;
                        if (has && m_regroup(m, k, -1)) {
                                m->n_drain_moved++;
                                changed[k] = true;
                        }
                }
                return ELECTION_CHANGED;
        }
        if (c->type == COMMAND_RESTORE_NODE) {
                for (int k = 0; k < M_ELECTIONS; k++) {
                        MElection *e = &m->e[k];
                        for (int i = 0; i < e->np;) {
                                MCand x = e->p[i];
                                if (x.node != c->node) {
                                        i++;
                                        continue;
                                }
                                m_unpark(e, i);
                                if ((x.owner >= 0 && (x.run != c->run || (m->has_run[x.node] && m->run[x.node] != c->run))) ||
                                    m_find(e, x.id) >= 0)
                                        continue;
                                if (x.owner >= 0 && !m->has_run[x.node]) {
                                        m->has_run[x.node] = true;
                                        m->run[x.node] = c->run;
                                }
                                m_append(m, k, x);
                                changed[k] = any = true;
                        }
                }
                return any ? ELECTION_CHANGED : ELECTION_NOOP;
        }
        for (int k = 0; k < M_ELECTIONS; k++) {
                MElection *e = &m->e[k];
                bool kill[M_IDS] = {};

                /* parked ones of a gone connection or an older run go for good */
                for (int i = 0; i < e->np && c->type != COMMAND_DROP_NODE;) {
                        const MCand *x = &e->p[i];
                        bool gone = x->node == c->node &&
                                    ((c->type == COMMAND_DROP_OWNER && x->owner >= 0 && x->owner == c->owner && x->run == c->run) ||
                                     (c->type == COMMAND_DROP_RUN && x->owner >= 0 && x->run != c->run));
                        if (gone)
                                m_unpark(e, i);
                        else
                                i++;
                }

                for (int i = 0; i < e->n; i++) {
                        const MCand *x = &e->c[i];
                        if (x->node != c->node)
                                continue;
                        if (c->type == COMMAND_DROP_OWNER)
                                kill[i] = x->owner >= 0 && x->owner == c->owner && x->run == c->run;
                        else if (c->type == COMMAND_DROP_RUN)
                                kill[i] = x->owner >= 0 && x->run != c->run;
                        else {
                                kill[i] = true;
                                e->p[e->np++] = *x; /* DROP_NODE parks */
                        }
                }
                if (m_remove(e, kill))
                        changed[k] = any = true;
        }
        if (c->type == COMMAND_DROP_RUN) {
                int n = c->node;

                if (m->has_run[n] && m->run[n] != c->run) {
                        if (m->n_old[n] == ELECTION_RUN_HISTORY)
                                m->n_history_full++;
                        else
                                m->n_old[n]++;
                        for (unsigned i = m->n_old[n] - 1; i > 0; i--)
                                m->old[n][i] = m->old[n][i - 1];
                        m->old[n][0] = m->run[n];
                }
                m->has_run[n] = true;
                m->run[n] = c->run;
                m_forget(m, n, c->run);
        } else if (c->type == COMMAND_DROP_NODE && m->has_run[c->node]) {
                m_forget(m, c->node, m->run[c->node]);
                m->has_run[c->node] = false;
                m->n_old[c->node] = 0;
        }
        return any ? ELECTION_CHANGED : ELECTION_NOOP;
}

static char *m_name(int election) {
        return election < 0 ? g_strdup(election == -1 ? "" : "bad\x01") : g_strdup_printf("e%d", election);
}

static Command *m_to_command(const MCmd *m) {
        Command *c = command_new(m->type);

        c->origin = g_strdup_printf("n%d", m->origin);
        c->origin_run = m->origin_run;
        c->request_id = m->rid;
        if (m->type <= COMMAND_PROMOTE) {
                c->election = m_name(m->election);
                c->id = m->id < 0 ? g_strdup("x\ty") : g_strdup_printf("c%d", m->id);
        } else if (m->type == COMMAND_DRAIN || m->type == COMMAND_UNDRAIN || m->type == COMMAND_FORGET) {
                c->election = m_name(m->election);
                c->id = g_strdup("");
        } else {
                c->election = g_strdup("");
                c->id = g_strdup("");
        }
        c->node = m->node_empty ? g_strdup("") : g_strdup_printf("n%d", m->node);
        c->owner = g_strdup_printf(":1.%d", m->owner);
        c->run = m->run;
        c->uid = m->uid;
        c->flags = m->flags;
        c->max_elections = m->max_e;
        c->max_candidates = m->max_c;
        c->max_persistent = m->max_p;
        return c;
}

static MCmd m_random(GRand *r, Model *m) {
        MCmd c = {};
        unsigned p = g_rand_int_range(r, 0, 100);
        MDedup *d;

        c.type = p < 30 ? COMMAND_ENTER : p < 50 ? COMMAND_LEAVE : p < 58 ? COMMAND_EVICT :
                 p < 66 ? COMMAND_ANOINT : p < 78 ? COMMAND_PROMOTE : p < 87 ? COMMAND_DROP_OWNER :
                 p < 93 ? COMMAND_DROP_RUN : p < 95 ? COMMAND_DROP_NODE : p < 96 ? COMMAND_RESTORE_NODE :
                 p < 97 ? COMMAND_STEP_DOWN : p < 98 ? COMMAND_DRAIN : p < 99 ? COMMAND_UNDRAIN : COMMAND_FORGET;
        c.election = g_rand_int_range(r, 0, M_ELECTIONS);
        c.id = g_rand_int_range(r, 0, M_IDS);
        if (g_rand_int_range(r, 0, 200) == 0)
                c.election = -g_rand_int_range(r, 1, 3);
        if (g_rand_int_range(r, 0, 200) == 0)
                c.id = -1;
        if ((c.type == COMMAND_DRAIN || c.type == COMMAND_UNDRAIN) && g_rand_int_range(r, 0, 3) == 0)
                c.election = g_rand_int_range(r, 0, 30) == 0 ? -2 : -1; /* -1: "" = every election */
        c.node = g_rand_int_range(r, 0, M_NODES);
        c.owner = g_rand_int_range(r, 0, M_OWNERS);
        c.run = g_rand_int_range(r, 1, M_RUNS + 1);
        /* Mostly the caller's current run, so that enough commands get past the run rules. */
        if (m->has_run[c.node] && g_rand_int_range(r, 0, 100) < 85)
                c.run = m->run[c.node];
        c.uid = m_uids[g_rand_int_range(r, 0, ELEMENTSOF(m_uids))];
        c.flags = (g_rand_int_range(r, 0, 3) == 0 ? COMMAND_FLAG_PERSISTENT : 0) |
                  (g_rand_int_range(r, 0, 3) == 0 ? COMMAND_FLAG_AUTHORIZED : 0) |
                  (g_rand_int_range(r, 0, 300) == 0 ? 1u << 9 : 0);
        c.max_e = g_rand_int_range(r, 0, 4) == 0 ? g_rand_int_range(r, 1, M_ELECTIONS + 1) : 0;
        c.max_c = g_rand_int_range(r, 0, 4) == 0 ? g_rand_int_range(r, 1, M_IDS + 1) : 0;
        c.max_p = g_rand_int_range(r, 0, 3) == 0 ? g_rand_int_range(r, 1, 4) : 0;
        /* FORGET: mostly at the election's current term (so that an empty one goes) */
        if (c.type == COMMAND_FORGET)
                c.run = c.election >= 0 && g_rand_int_range(r, 0, 5) > 0 ? m->e[c.election].term
                                                                         : (uint64_t) g_rand_int_range(r, 0, 4);

        /* The submitter: for Enter/Leave the caller's node, or "" meaning that same origin. */
        c.origin = c.type <= COMMAND_PROMOTE ? c.node : g_rand_int_range(r, 0, M_NODES);
        if (c.type == COMMAND_ENTER || c.type == COMMAND_LEAVE)
                c.node_empty = g_rand_int_range(r, 0, 5) == 0;
        c.origin_run = g_rand_int_range(r, 1, M_RUNS + 1);
        if (m->has_run[c.origin] && g_rand_int_range(r, 0, 100) < 85)
                c.origin_run = m->run[c.origin];
        /* Mostly a restart announced by the node itself, as the daemon does. */
        if (c.type == COMMAND_DROP_RUN && g_rand_int_range(r, 0, 3) > 0) {
                c.origin = c.node;
                c.origin_run = c.run = g_rand_int_range(r, 1, M_RUNS + 1);
        }

        /* Mostly fresh ids; sometimes retries (recent or ancient) and jumps beyond the window. */
        d = &m->d[c.origin][c.origin_run];
        p = g_rand_int_range(r, 0, 100);
        if (!d->used)
                c.rid = g_rand_int_range(r, 0, 3);
        else if (p < 85)
                c.rid = d->max + 1;
        else if (p < 89)
                c.rid = d->max + g_rand_int_range(r, 2, 6);
        else if (p < 90)
                c.rid = d->max + g_rand_int_range(r, 2, 2 * M_WINDOW);
        else {
                uint64_t back = g_rand_int_range(r, 0, M_WINDOW + 200);
                c.rid = d->max - MIN(d->max, back);
        }
        return c;
}

static void m_check(const Model *m, const ElectionState *s, const uint64_t prev_terms[]) {
        unsigned count = 0, windows = 0;

        for (int n = 0; n < M_NODES; n++) {
                g_autofree char *node = g_strdup_printf("n%d", n);
                uint64_t run = 0;

                g_assert_cmpint(election_state_node_run(s, node, &run), ==, m->has_run[n]);
                if (m->has_run[n])
                        g_assert_cmpuint(run, ==, m->run[n]);
                for (int k = 0; k <= M_RUNS; k++)
                        windows += m->d[n][k].used;
        }
        g_assert_cmpuint(election_state_dedup_count(s), ==, windows);
        g_assert_cmpuint(election_state_term_floor(s), ==, m->floor);
        for (unsigned u = 0; u < ELEMENTSOF(m_uids); u++)
                g_assert_cmpuint(election_state_persistent_count(s, m_uids[u]), ==, m_persistent(m, m_uids[u]));

        for (int k = 0; k < M_ELECTIONS; k++) {
                g_autofree char *name = m_name(k);
                const MElection *me = &m->e[k];
                const Election *e = election_state_get(s, name);

                if (me->term == 0) {
                        g_assert_null(e);
                        g_assert_cmpint(me->n, ==, 0);
                        continue;
                }
                count++;
                g_assert_nonnull(e);
                g_assert_cmpuint(e->term_id, ==, me->term);
                g_assert_cmpuint(e->term_id, >=, prev_terms[k]);
                g_assert_cmpuint(e->candidates->len, ==, (unsigned) me->n);
                for (int i = 0; i < me->n; i++) {
                        const Candidacy *c = e->candidates->pdata[i];
                        const MCand *x = &me->c[i];
                        char buf[32];

                        snprintf(buf, sizeof buf, "c%d", x->id);
                        g_assert_cmpstr(c->id, ==, buf);
                        snprintf(buf, sizeof buf, "n%d", x->node);
                        g_assert_cmpstr(c->node, ==, buf);
                        if (x->owner < 0) {
                                g_assert_true(c->persistent);
                                g_assert_cmpstr(c->owner, ==, "");
                        } else {
                                g_assert_false(c->persistent);
                                snprintf(buf, sizeof buf, ":1.%d", x->owner);
                                g_assert_cmpstr(c->owner, ==, buf);
                        }
                        g_assert_cmpuint(c->run, ==, x->run);
                        g_assert_cmpuint(c->uid, ==, x->uid);
                        /* What the run rules are for: every connection-bound candidacy belongs to
                         * its node's current run, so the next DROP_RUN removes it. */
                        if (x->owner >= 0) {
                                g_assert_true(m->has_run[x->node]);
                                g_assert_cmpuint(x->run, ==, m->run[x->node]);
                        }
                }
                g_assert_cmpuint(e->parked ? e->parked->len : 0, ==, (unsigned) me->np);
                for (int i = 0; i < me->np; i++) {
                        const Candidacy *c = e->parked->pdata[i];
                        char buf[32];
                        snprintf(buf, sizeof buf, "c%d", me->p[i].id);
                        g_assert_cmpstr(c->id, ==, buf);
                        g_assert_cmpuint(c->run, ==, me->p[i].run);
                        g_assert_cmpint(c->persistent, ==, me->p[i].owner < 0);
                }
                /* Drain invariant: no candidacy of a drained node stands ahead of another one. */
                for (int i = 1; i < me->n; i++)
                        g_assert_true(m_drained(m, me->c[i - 1].node, k) <= m_drained(m, me->c[i].node, k));
                /* Global invariant: the leader is candidates[0], and only with candidates. */
                g_assert_cmpstr(election_leader(e), ==, me->n > 0 ? ((Candidacy *) e->candidates->pdata[0])->id : "");
        }
        g_assert_cmpuint(election_state_count(s), ==, count);

        for (int n = 0; n < M_NODES; n++) {
                g_autofree char *node = g_strdup_printf("n%d", n);
                g_autoptr(GString) want = g_string_new(NULL);
                g_auto(GStrv) got = election_state_drained_names(s, node);
                g_autofree char *joined = g_strjoinv(",", got);

                if (m->drain_all[n])
                        g_string_append(want, ",");
                for (int k = 0; k < M_ELECTIONS; k++)
                        if (m->drain_e[n][k])
                                g_string_append_printf(want, "e%d,", k);
                if (want->len > 0)
                        g_string_truncate(want, want->len - 1);
                g_assert_cmpstr(joined, ==, want->str);
                for (int k = 0; k < M_ELECTIONS; k++) {
                        g_autofree char *name = m_name(k);
                        g_assert_cmpint(election_state_drained(s, node, name), ==, m_drained(m, n, k));
                }
        }
}

static void run_random(guint32 seed, unsigned steps) {
        g_autoptr(ElectionState) s = election_state_new();
        GRand *r = g_rand_new_with_seed(seed);
        Model m = {};
        uint64_t prev_terms[M_ELECTIONS] = {};
        unsigned results[ELECTION_QUOTA_EXCEEDED + 1] = {}, snapshots = 0;

        g_test_message("random sequence: seed %u, %u steps", seed, steps);
        for (int n = 0; n < M_NODES; n++)
                for (int k = 0; k <= M_RUNS; k++)
                        m.d[n][k].applied = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);

        for (unsigned step = 0; step < steps; step++) {
                MCmd mc = m_random(r, &m);
                g_autoptr(Command) c = m_to_command(&mc);
                bool changed[M_ELECTIONS];
                g_autoptr(GString) expect_names = g_string_new(NULL);
                ElectionResult want, got;
                const Election *e = NULL;
                unsigned expect_events = 0;

                want = m_apply(&m, &mc, changed);
                for (int k = 0; k < M_ELECTIONS; k++)
                        if (changed[k]) {
                                g_string_append_printf(expect_names, "e%d,", k);
                                expect_events++;
                        }

                events_reset();
                got = election_state_apply(s, c, on_changed, &events, &e);
                if (got != want || events.n != expect_events)
                        g_test_message("step %u: %s election=%s id=%s origin=%s/%" PRIu64 " rid=%" PRIu64 " max=%" PRIu64,
                                       step, command_type_to_string(c->type), c->election, c->id, c->origin,
                                       c->origin_run, c->request_id, m.d[mc.origin][mc.origin_run].max);
                g_assert_cmpint(got, ==, want);
                g_assert_cmpuint(events.n, ==, expect_events);
                g_assert_cmpstr(events.names ?: "", ==, expect_names->str);
                g_assert_true(e == (mc.type <= COMMAND_PROMOTE ? election_state_get(s, c->election) : NULL));
                results[got]++;

                m_check(&m, s, prev_terms);
                for (int k = 0; k < M_ELECTIONS; k++)
                        prev_terms[k] = m.e[k].term;

                /* Snapshot round trips at random points; sometimes continue on the restored copy. */
                if (g_rand_int_range(r, 0, 500) == 0) {
                        g_autoptr(GBytes) snap = serialize(s), again = NULL;
                        g_autoptr(ElectionState) t = election_state_new();

                        g_assert_cmpint(election_state_restore(t, g_bytes_get_data(snap, NULL), g_bytes_get_size(snap)), ==, 0);
                        g_assert_true(election_state_equal(s, t));
                        again = serialize(t);
                        g_assert_true(g_bytes_equal(snap, again));
                        if (g_rand_boolean(r)) {
                                ElectionState *x = s;
                                s = g_steal_pointer(&t);
                                t = x;
                        }
                        snapshots++;
                }
        }

        g_test_message("results: changed %u noop %u not-candidate %u limit %u denied %u invalid %u duplicate %u "
                       "quota %u; %u snapshots", results[0], results[1], results[2], results[3], results[4],
                       results[5], results[6], results[7], snapshots);
        g_test_message("forget: %u removed, floor %" PRIu64 "; quota refusals of a re-bind %u", m.n_forgot, m.floor,
                       m.n_quota_rebind);
        g_assert_cmpuint(m.n_forgot, >, 0);
        g_assert_cmpuint(m.n_quota_rebind, >, 0);
        /* The generator must reach every outcome, or this test proves less than it claims. */
        for (unsigned i = 0; i < ELEMENTSOF(results); i++)
                g_assert_cmpuint(results[i], >, 0);
        g_assert_cmpuint(snapshots, >, 0);
        g_test_message("run rules: old origin %u, enter of another run %u, windows pruned %u, "
                       "superseded DROP_RUN %u, history full %u",
                       m.n_old_origin, m.n_enter_run, m.n_pruned, m.n_superseded, m.n_history_full);
        g_assert_cmpuint(m.n_old_origin, >, 0);
        g_assert_cmpuint(m.n_superseded, >, 0);
        g_assert_cmpuint(m.n_enter_run, >, 0);
        g_assert_cmpuint(m.n_pruned, >, 0);
        g_test_message("step-down hand-overs %u; drain: reorders %u, drained leader displaced by an Enter %u, "
                       "Anoint held behind the others %u", m.n_step_down_lead, m.n_drain_moved,
                       m.n_drained_leader, m.n_anoint_held);
        g_assert_cmpuint(m.n_step_down_lead, >, 0);
        g_assert_cmpuint(m.n_drain_moved, >, 0);
        g_assert_cmpuint(m.n_drained_leader, >, 0);
        g_assert_cmpuint(m.n_anoint_held, >, 0);

        for (int n = 0; n < M_NODES; n++)
                for (int k = 0; k <= M_RUNS; k++)
                        g_hash_table_unref(m.d[n][k].applied);
        g_rand_free(r);
        events_reset();
}

static unsigned random_steps(void) {
        const char *e = g_getenv("ELECTIOND_TEST_STEPS");
        return e ? (unsigned) g_ascii_strtoull(e, NULL, 10) : 100000;
}

static void test_random_fixed(void) {
        run_random(1, random_steps());
}

static guint32 env_seed;

static void test_random_env(void) {
        run_random(env_seed, random_steps());
}

/* ---------------------------------------------------------------------------------------------
 * FORGET (garbage collection of empty elections) and the persistent quota (issue 14 §1)
 * ------------------------------------------------------------------------------------------- */

static bool removed_seen;

static void on_changed_forget(const Election *e, void *userdata) {
        removed_seen = e->removed;
        on_changed(e, userdata);
}

static ElectionResult forget(ElectionState *s, const char *name, uint64_t term, ElectionResult expect) {
        g_autoptr(Command) c = cmd(COMMAND_FORGET, name, "", &R, 0);
        const Election *e = (const Election *) 0x1;
        ElectionResult r;

        c->run = term;
        events_reset();
        removed_seen = false;
        r = election_state_apply(s, c, on_changed_forget, &events, &e);
        g_assert_cmpint(r, ==, expect);
        g_assert_null(e);
        g_assert_cmpuint(events.n, ==, expect == ELECTION_CHANGED);
        g_assert_true(removed_seen == (expect == ELECTION_CHANGED));
        return r;
}

static void test_forget(void) {
        g_autoptr(ElectionState) s = state_abc();
        g_autoptr(GBytes) snap = NULL;
        g_autoptr(ElectionState) copy = election_state_new();

        /* Not empty, unknown, malformed: nothing. */
        forget(s, "e", 1, ELECTION_NOOP);
        forget(s, "nope", 0, ELECTION_NOOP);
        forget(s, "", 0, ELECTION_INVALID);
        ANOINT(s, "e", "b", ELECTION_CHANGED);
        ANOINT(s, "e", "c", ELECTION_CHANGED);           /* term 3 */
        LEAVE(s, "e", "a", &A, 0, ELECTION_CHANGED);
        LEAVE(s, "e", "b", &A, 0, ELECTION_CHANGED);     /* b was not leading: term 3 still */
        LEAVE(s, "e", "c", &A, 0, ELECTION_CHANGED);
        assert_term(s, "e", 3, "");
        forget(s, "e", 2, ELECTION_NOOP);                /* decided at another term: someone came and went */
        g_assert_cmpuint(election_state_count(s), ==, 1);
        forget(s, "e", 3, ELECTION_CHANGED);
        g_assert_null(election_state_get(s, "e"));
        g_assert_cmpuint(election_state_count(s), ==, 0);
        g_assert_cmpuint(election_state_term_floor(s), ==, 3);
        forget(s, "e", 3, ELECTION_NOOP);                /* a retry: gone already */

        /* Re-created: above every id it had. Any election created now starts above the floor. */
        ENTER(s, "e", "a", &A, 0, ELECTION_CHANGED);
        assert_term(s, "e", 4, "a");
        ENTER(s, "f", "a", &A, 0, ELECTION_CHANGED);
        assert_term(s, "f", 4, "a");
        LEAVE(s, "f", "a", &A, 0, ELECTION_CHANGED);
        forget(s, "f", 4, ELECTION_CHANGED);
        g_assert_cmpuint(election_state_term_floor(s), ==, 4);
        /* The floor only rises: forgetting a lower one keeps it. */
        ENTER(s, "g", "a", &A, 0, ELECTION_CHANGED);     /* term 5 */
        ENTER(s, "low", "a", &A, 0, ELECTION_CHANGED);   /* term 5 */
        ANOINT(s, "g", "a", ELECTION_NOOP);
        ENTER(s, "g", "b", &A, 0, ELECTION_CHANGED);
        ANOINT(s, "g", "b", ELECTION_CHANGED);           /* term 6 */
        LEAVE(s, "g", "a", &A, 0, ELECTION_CHANGED);
        LEAVE(s, "g", "b", &A, 0, ELECTION_CHANGED);
        forget(s, "g", 6, ELECTION_CHANGED);
        LEAVE(s, "low", "a", &A, 0, ELECTION_CHANGED);
        forget(s, "low", 5, ELECTION_CHANGED);
        g_assert_cmpuint(election_state_term_floor(s), ==, 6);

        /* Parked candidacies will come back: an election holding only parked ones stays. */
        ENTER(s, "p", "x", &R, COMMAND_FLAG_PERSISTENT, ELECTION_CHANGED);
        assert_term(s, "p", 7, "x");
        drop(s, COMMAND_DROP_NODE, "n2", 0, "", ELECTION_CHANGED, 1, "p,");
        assert_term(s, "p", 7, "");
        g_assert_false(election_empty(election_state_get(s, "p")));
        forget(s, "p", 7, ELECTION_NOOP);
        drop(s, COMMAND_DROP_NODE, "n2", 0, "", ELECTION_NOOP, 0, NULL);

        /* The floor travels in snapshots (version 5), and the restored state decides alike. */
        snap = serialize(s);
        g_assert_cmpuint(((const uint8_t *) g_bytes_get_data(snap, NULL))[4], ==, 5);
        g_assert_cmpint(election_state_restore(copy, g_bytes_get_data(snap, NULL), g_bytes_get_size(snap)), ==, 0);
        g_assert_true(election_state_equal(s, copy));
        g_assert_cmpuint(election_state_term_floor(copy), ==, 6);
        ENTER(copy, "g", "a", &A, 0, ELECTION_CHANGED);
        assert_term(copy, "g", 7, "a");

        /* BUMP_TERMS after a FORGET adds to the raised floor. */
        {
                Command *c = cmd(COMMAND_BUMP_TERMS, "", "", &R, 0);
                c->run = 100;
                apply_full(copy, c, ELECTION_CHANGED, 3);
                g_assert_cmpuint(election_state_term_floor(copy), ==, 106);
                ENTER(copy, "new", "a", &A, 0, ELECTION_CHANGED);
                assert_term(copy, "new", 107, "a");
        }
}

/* States restored from the older snapshot versions (1 and 4: no floor) forget and re-create
 * above the old term too. */
static void test_forget_old_snapshots(void) {
        for (uint32_t v = 1; v <= 4; v++) {
                g_autoptr(GByteArray) old = snapshot_v(v, "e", 41, "a", "b", 0, NULL, 0);
                g_autoptr(ElectionState) s = election_state_new();
                g_autoptr(GBytes) snap = NULL;
                g_autoptr(ElectionState) t = election_state_new();

                g_assert_cmpint(election_state_restore(s, old->data, old->len), ==, 0);
                g_assert_cmpuint(election_state_term_floor(s), ==, 0);
                forget(s, "e", 41, ELECTION_NOOP);
                drop(s, COMMAND_DROP_RUN, "n1", 2, "", ELECTION_CHANGED, 1, "e,"); /* a and b were connection-bound of run 1 */
                assert_term(s, "e", 41, "");
                forget(s, "e", 41, ELECTION_CHANGED);
                snap = serialize(s);
                g_assert_cmpint(election_state_restore(t, g_bytes_get_data(snap, NULL), g_bytes_get_size(snap)), ==, 0);
                g_assert_true(election_state_equal(s, t));
                g_assert_cmpuint(election_state_term_floor(t), ==, 41);
                g_assert_null(election_state_get(t, "e"));
                ENTER(t, "e", "a", &R, COMMAND_FLAG_PERSISTENT, ELECTION_CHANGED);
                assert_term(t, "e", 42, "a");
        }
}

static ElectionResult enter_quota(ElectionState *s, const char *e, const char *id, const Caller *who, uint32_t flags,
                                  uint32_t quota, ElectionResult expect) {
        Command *c = cmd(COMMAND_ENTER, e, id, who, flags);
        c->max_persistent = quota;
        apply_full(s, c, expect, expect == ELECTION_CHANGED);
        return expect;
}

static void test_persistent_quota(void) {
        g_autoptr(ElectionState) s = election_state_new();
        const Caller root = { "n1", ":1.9", 11, 0 };

        /* A (uid 1000) may hold two persistent candidacies, in any elections. */
        enter_quota(s, "q1", "a", &A, COMMAND_FLAG_PERSISTENT, 2, ELECTION_CHANGED);
        enter_quota(s, "q1", "a2", &A, COMMAND_FLAG_PERSISTENT, 2, ELECTION_CHANGED);
        g_assert_cmpuint(election_state_persistent_count(s, 1000), ==, 2);
        enter_quota(s, "q2", "a", &A, COMMAND_FLAG_PERSISTENT, 2, ELECTION_QUOTA_EXCEEDED);
        g_assert_null(election_state_get(s, "q2"));      /* no election was created */
        enter_quota(s, "q1", "a3", &A, COMMAND_FLAG_PERSISTENT, 2, ELECTION_QUOTA_EXCEEDED);
        /* re-binding one of its own persistent candidacies is not a new one */
        enter_quota(s, "q1", "a", &A2, COMMAND_FLAG_PERSISTENT, 2, ELECTION_NOOP);
        /* connection-bound ones are not counted, and not limited */
        enter_quota(s, "q2", "a", &A, 0, 2, ELECTION_CHANGED);
        /* ... but turning one persistent is */
        enter_quota(s, "q2", "a", &A, COMMAND_FLAG_PERSISTENT, 2, ELECTION_QUOTA_EXCEEDED);
        g_assert_false(get_candidacy(s, "q2", "a")->persistent);
        /* per uid: B has its own; root has none; no quota in the command: none */
        enter_quota(s, "q2", "b", &B, COMMAND_FLAG_PERSISTENT, 2, ELECTION_CHANGED);
        enter_quota(s, "q3", "r", &root, COMMAND_FLAG_PERSISTENT, 1, ELECTION_CHANGED);
        enter_quota(s, "q3", "r2", &root, COMMAND_FLAG_PERSISTENT, 1, ELECTION_CHANGED);
        enter_quota(s, "q3", "a", &A, COMMAND_FLAG_PERSISTENT, 0, ELECTION_CHANGED);
        g_assert_cmpuint(election_state_persistent_count(s, 1000), ==, 3);
        /* the quota comes before MaxCandidates: a full election over quota says quota */
        {
                Command *c = cmd(COMMAND_ENTER, "q1", "a4", &B, COMMAND_FLAG_PERSISTENT);
                c->max_persistent = 1;
                c->max_candidates = 2;
                apply_full(s, c, ELECTION_QUOTA_EXCEEDED, 0);
        }
        /* Leaving frees a slot. */
        LEAVE(s, "q3", "a", &A, 0, ELECTION_CHANGED);
        LEAVE(s, "q1", "a2", &A, 0, ELECTION_CHANGED);
        g_assert_cmpuint(election_state_persistent_count(s, 1000), ==, 1);
        enter_quota(s, "q4", "a", &A, COMMAND_FLAG_PERSISTENT, 2, ELECTION_CHANGED);
        enter_quota(s, "q4", "a2", &A, COMMAND_FLAG_PERSISTENT, 2, ELECTION_QUOTA_EXCEEDED);
        /* parked ones count: they come back */
        drop(s, COMMAND_DROP_NODE, "n1", 0, "", ELECTION_CHANGED, 4, "q1,q2,q3,q4,");
        g_assert_cmpuint(election_state_persistent_count(s, 1000), ==, 2);
        enter_quota(s, "q5", "a", &A2, COMMAND_FLAG_PERSISTENT, 2, ELECTION_QUOTA_EXCEEDED);
        /* ... but entering a parked one again supersedes it: not one more */
        enter_quota(s, "q1", "a", &A2, COMMAND_FLAG_PERSISTENT, 2, ELECTION_CHANGED);
        g_assert_cmpuint(election_state_persistent_count(s, 1000), ==, 2);
        g_assert_true(get_candidacy(s, "q1", "a")->persistent);
}

int main(int argc, char *argv[]) {
        const char *env = g_getenv("ELECTIOND_TEST_SEED");
        int r;

        g_test_init(&argc, &argv, NULL);
        env_seed = env ? (guint32) g_ascii_strtoull(env, NULL, 10) : (guint32) g_random_int();
        /* Printed so that a failure with a random seed can be replayed. */
        g_print("# second random sequence uses seed %u (ELECTIOND_TEST_SEED=%u to replay)\n", env_seed, env_seed);

        g_test_add_func("/election/enter", test_enter);
        g_test_add_func("/election/enter-rebind", test_enter_rebind);
        g_test_add_func("/election/enter-node-fallback", test_enter_node_fallback);
        g_test_add_func("/election/invalid", test_invalid);
        g_test_add_func("/election/leave", test_leave);
        g_test_add_func("/election/leave-access", test_leave_access);
        g_test_add_func("/election/evict", test_evict);
        g_test_add_func("/election/anoint", test_anoint);
        g_test_add_func("/election/promote", test_promote);
        g_test_add_func("/election/bump-terms", test_bump_terms);
        g_test_add_func("/election/limits", test_limits);
        g_test_add_func("/election/forget", test_forget);
        g_test_add_func("/election/forget-old-snapshots", test_forget_old_snapshots);
        g_test_add_func("/election/persistent-quota", test_persistent_quota);
        g_test_add_func("/election/drop-owner", test_drop_owner);
        g_test_add_func("/election/drop-run", test_drop_run);
        g_test_add_func("/election/drop-node", test_drop_node);
        g_test_add_func("/election/park-restore", test_park_restore);
        g_test_add_func("/election/step-down", test_step_down);
        g_test_add_func("/election/drain", test_drain);
        g_test_add_func("/election/stale-run", test_stale_run);
        g_test_add_func("/election/run-history", test_run_history);
        g_test_add_func("/election/dedup", test_dedup);
        g_test_add_func("/election/dedup-prune", test_dedup_prune);
        g_test_add_func("/election/snapshot", test_snapshot);
        g_test_add_func("/election/snapshot-runs", test_snapshot_runs);
        g_test_add_func("/election/snapshot-malformed", test_snapshot_malformed);
        g_test_add_func("/election/list-lookup", test_list_and_lookup);
        g_test_add_func("/election/many-elections", test_many_elections);
        g_test_add_func("/election/random-fixed-seed", test_random_fixed);
        g_test_add_func("/election/random-env-seed", test_random_env);

        r = g_test_run();
        events_reset();
        return r;
}
