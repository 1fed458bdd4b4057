/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* command_batch_decode on hostile bytes: must not crash or leak, and whatever it accepts must
 * re-encode to exactly the input (the format is canonical). */

#include <stdlib.h>

#include "electiond-command.h"
#include "electiond-util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autoptr(GPtrArray) cmds = NULL;
        g_autoptr(GByteArray) again = NULL;
        int r;

        r = command_batch_decode(data, size, &cmds);
        if (r < 0) {
                if (r != -EBADMSG || cmds)
                        abort();
                return 0;
        }

        again = g_byte_array_new();
        for (unsigned i = 0; i < cmds->len; i++) {
                const Command *c = cmds->pdata[i];
                g_autoptr(Command) copy = command_copy(c);

                if (!command_type_to_string(c->type))
                        abort();
                if (command_batch_append(again, copy) < 0)
                        abort();
        }
        if (cmds->len == 0)
                return 0;
        if (again->len != size || memcmp(again->data, data, size) != 0)
                abort();
        return 0;
}

void fuzz_seeds(GPtrArray *out) {
        static const char *const strings[] = { "", "web", ":1.42", "n\xc3\xa9ud-1" };
        g_autoptr(GByteArray) all = g_byte_array_new();

        for (int t = 1; t < _COMMAND_TYPE_MAX; t++) {
                g_autoptr(GByteArray) one = g_byte_array_new();
                g_autoptr(Command) c = command_new(t);

                c->origin = g_strdup(strings[t % 4]);
                c->origin_run = UINT64_C(0x1122334455667788) * t;
                c->request_id = t;
                c->election = g_strdup(strings[(t + 1) % 4]);
                c->id = g_strdup(strings[(t + 2) % 4]);
                c->node = g_strdup(strings[(t + 3) % 4]);
                c->owner = g_strdup(strings[t % 4]);
                c->run = t * 7;
                c->uid = 1000;
                c->flags = t & 3;
                c->max_elections = t;
                c->max_candidates = 0;
                g_assert(command_batch_append(one, c) == 0);
                g_assert(command_batch_append(all, c) == 0);
                g_ptr_array_add(out, g_bytes_new(one->data, one->len));
        }
        g_ptr_array_add(out, g_bytes_new(all->data, all->len));
}
