/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Fuzz target for the configuration parser (electiond.conf): any bytes must give either a config
 * or a clear error, never a crash or a leak. The input reaches config_load() through a memfd, so
 * the real file path is exercised. */
#include <glib.h>
#include <stdio.h>
#include <sys/mman.h>

#include "electiond-config.h"
#include "electiond-util.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static int fd = -1;
        static char path[64];
        g_autofree char *error = NULL;
        Config c;
        int r;

        if (fd < 0) {
                log_set_max_level(LOG_CRIT);
                fd = memfd_create("fuzz-config", MFD_CLOEXEC);
                g_assert(fd >= 0);
                snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        }
        g_assert(ftruncate(fd, 0) == 0);
        g_assert(pwrite(fd, data, size, 0) == (ssize_t) size);

        config_init_defaults(&c);
        r = config_load(&c, path, false, &error);
        if (r < 0)
                g_assert(error && *error); /* a refusal always says why */
        else {
                /* what is accepted is within the documented bounds */
                g_assert(c.max_voters % 2 == 1);
                g_assert(c.port >= 1 && c.port <= 65534);
                g_assert(c.lease_usec > 0 && c.node_timeout_usec > c.lease_usec);
        }
        config_done(&c);
        return 0;
}

void fuzz_seeds(GPtrArray *out) {
        static const char *seeds[] = {
                "[Node]\nName=db1\nMaxElections=10\nMaxCandidates=5\nCommitTimeoutSec=2.5\n",
                "[Cluster]\nName=prod\nKeyFile=/etc/electiond/cluster.key\nInterfaces=eth0;eth1\nPort=7946\n"
                "Peers=198.18.0.1;198.18.0.2:7000\nBootstrapExpect=3\nMaxVoters=5\nProbeIntervalSec=0.05\n"
                "LeaseSec=0.2\nNodeTimeoutSec=0.35\nRemoveDeadAfterSec=3600\n",
                "# comment\n[Node]\nName=n\xc3\xa9\n[Unknown]\nKey=value\n",
                "[Cluster]\nAddressFamily=ipv6\nPeers=[2001:db8::1]:7946;[fe80::1%eth0]:7946, fe80::2%3\n",
                "[Cluster]\nAddressFamily=any\nPeers=198.18.0.1;[fd00::1]\n",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(seeds); i++)
                g_ptr_array_add(out, g_bytes_new(seeds[i], strlen(seeds[i])));
}
