/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* election_state_restore on hostile bytes: refusal must leave the state as it was; acceptance
 * must give a state that serializes back, restores equal, and whose indexes hold up under drops. */

#include <stdlib.h>

#include "electiond-election.h"
#include "electiond-util.h"
#include "fuzz.h"

static Command *make(CommandType t, const char *election, const char *id, const char *node, const char *owner,
                     uint64_t run, uint64_t rid) {
        Command *c = command_new(t);
        c->origin = g_strdup(node);
        c->origin_run = run;
        c->request_id = rid;
        c->election = g_strdup(election);
        c->id = g_strdup(id);
        c->node = g_strdup(node);
        c->owner = g_strdup(owner);
        c->run = run;
        c->uid = 1000;
        return c;
}

static void apply_free(ElectionState *s, Command *c) {
        (void) election_state_apply(s, c, NULL, NULL, NULL);
        command_free(c);
}

/* Applies c under a request key the (possibly crafted) dedup table has not seen. */
static void apply_fresh(ElectionState *s, Command *c) {
        static uint64_t k = 0;

        g_free(c->origin);
        c->origin = g_strdup("fuzz");
        do
                c->origin_run = k++;
        while (election_state_apply(s, c, NULL, NULL, NULL) == ELECTION_DUPLICATE);
        command_free(c);
}

/* A small state every restore attempt starts from. */
static ElectionState *base_state(void) {
        ElectionState *s = election_state_new();
        apply_free(s, make(COMMAND_ENTER, "e1", "a", "n1", ":1.1", 1, 1));
        apply_free(s, make(COMMAND_ENTER, "e1", "b", "n2", ":1.1", 2, 1));
        apply_free(s, make(COMMAND_ENTER, "e2", "a", "n1", ":1.1", 1, 2));
        return s;
}

static bool same_bytes(const ElectionState *a, const ElectionState *b) {
        g_autoptr(GBytes) x = NULL, y = NULL;
        if (election_state_serialize(a, &x) < 0 || election_state_serialize(b, &y) < 0)
                abort();
        return g_bytes_equal(x, y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autoptr(ElectionState) s = base_state(), ref = base_state(), u = election_state_new();
        g_autoptr(GBytes) out = NULL;
        g_autoptr(GPtrArray) list = NULL;
        int r;

        r = election_state_restore(s, data, size);
        if (r < 0) {
                if (r != -EBADMSG || !election_state_equal(s, ref) || !same_bytes(s, ref))
                        abort();
                return 0;
        }

        if (election_state_serialize(s, &out) < 0)
                abort();
        if (election_state_restore(u, g_bytes_get_data(out, NULL), g_bytes_get_size(out)) < 0)
                abort();
        if (!election_state_equal(s, u))
                abort();

        /* Exercise the rebuilt indexes: drop every candidacy's owner, then its node. */
        list = election_state_list(s);
        for (unsigned i = 0; i < list->len; i++) {
                const Election *e = list->pdata[i];

                if (e->term_id == 0 || !election_string_valid(e->name))
                        abort();
                while (e->candidates->len > 0) {
                        const Candidacy *c = e->candidates->pdata[0];
                        g_autofree char *node = g_strdup(c->node), *owner = g_strdup(c->owner);
                        uint64_t run = c->run;
                        unsigned before = e->candidates->len;

                        apply_fresh(s, make(COMMAND_DROP_OWNER, "", "", node, owner, run, 0));
                        if (e->candidates->len == before)
                                apply_fresh(s, make(COMMAND_DROP_NODE, "", "", node, "", 0, 0));
                        if (e->candidates->len >= before)
                                abort();
                }
        }
        return 0;
}

void fuzz_seeds(GPtrArray *out) {
        g_autoptr(ElectionState) s = base_state();
        GBytes *b = NULL;

        g_assert(election_state_serialize(s, &b) == 0);
        g_ptr_array_add(out, b);

        apply_free(s, make(COMMAND_ENTER, "e3", "p", "n3", ":1.9", 3, 1));
        apply_free(s, make(COMMAND_LEAVE, "e2", "a", "n1", ":1.1", 1, 3));
        g_assert(election_state_serialize(s, &b) == 0);
        g_ptr_array_add(out, b);

        g_autoptr(ElectionState) empty = election_state_new();
        g_assert(election_state_serialize(empty, &b) == 0);
        g_ptr_array_add(out, b);
}
