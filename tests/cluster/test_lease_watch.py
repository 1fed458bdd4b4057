#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""WatchLease / LeaseRenewed on a clustered node: WatchLease answers the node's lease expiry
(CLOCK_BOOTTIME µs, a little ahead of now); LeaseRenewed carries each move of it, and the daemon
emits it only while at least one caller of WatchLease is still connected: none before the first,
none after the last has disconnected (an idle bus sees nothing). An observer that only subscribes
(never calls WatchLease) counts the signals."""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
from test_cluster import ClusterBase  # noqa: E402

MANAGER_IFACE = "org.electiond.Election1.Manager"
LEASE_SEC = 0.2
QUIET_SEC = 1.0   # 20 renewals at the default ProbeIntervalSec (0.05 s): none of them announced


def boottime_usec():
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME) // 1000


class LeaseWatchTest(ClusterBase):

    def setUp(self):
        import dbus
        import dbus.bus
        from dbus.mainloop.glib import DBusGMainLoop
        from gi.repository import GLib
        self.dbus = dbus
        self.ctx = GLib.MainContext.default()
        self.loop = DBusGMainLoop()
        self.got = []   # (monotonic s, expiry)

    def pump(self):
        while self.ctx.iteration(False):
            pass
        return True

    def connect(self, node):
        conn = self.dbus.bus.BusConnection(node.bus_address, mainloop=self.loop)
        self.addCleanup(conn.close)
        return conn

    def watch_lease(self, conn):
        return int(conn.call_blocking(cluster.BUS_NAME, cluster.MANAGER_PATH, MANAGER_IFACE, "WatchLease",
                                      "", (), timeout=10))

    def wait_quiet(self, what):
        """Until no LeaseRenewed arrived for QUIET_SEC (while the lease keeps being renewed)."""
        since = time.monotonic()

        def quiet():
            self.pump()
            last = max([since] + [t for t, _ in self.got])
            return time.monotonic() - last >= QUIET_SEC
        cluster.wait_until(quiet, 15, what, 0.02)

    def wait_signals(self, n, what):
        start = len(self.got)
        cluster.wait_until(lambda: self.pump() and len(self.got) >= start + n, 10, what, 0.01)

    def test_lease_renewed_only_while_a_watcher_is_connected(self):
        c = self.make(3)
        self.wait_formed(c)
        n = c.nodes[0]
        observer = self.connect(n)
        observer.add_signal_receiver(lambda e: self.got.append((time.monotonic(), int(e))),
                                     signal_name="LeaseRenewed", dbus_interface=MANAGER_IFACE,
                                     path=cluster.MANAGER_PATH)
        self.wait_quiet("no LeaseRenewed before anyone called WatchLease")
        self.assertEqual(self.got, [])
        self.assertTrue(bool(n.manager_prop("Quorate")))

        w1 = self.connect(n)
        before = boottime_usec()
        e0 = self.watch_lease(w1)
        after = boottime_usec()
        # the lease runs until a send time acknowledged by a quorum (<= now) plus LeaseSec
        self.assertGreater(e0, before)
        self.assertLessEqual(e0, after + int(LEASE_SEC * 1e6))
        self.wait_signals(5, "LeaseRenewed while a watcher is connected")
        values = [e for _, e in self.got]
        self.assertTrue(all(a != b for a, b in zip(values, values[1:])), "a signal without a move: %r" % values)
        self.assertGreater(max(values), e0)
        self.assertTrue(all(v > 0 for v in values), values)

        # a second watcher; the first one leaving does not stop the signals
        w2 = self.connect(n)
        self.watch_lease(w2)
        w1.close()
        w1_gone = time.monotonic()
        cluster.wait_until(lambda: self.pump() and any(t > w1_gone + QUIET_SEC for t, _ in self.got), 15,
                           "LeaseRenewed to go on while the second watcher is connected", 0.02)

        # the last watcher leaves: silence, though the node stays quorate and keeps renewing
        w2.close()
        self.wait_quiet("LeaseRenewed to stop once the last watcher disconnected")
        self.assertTrue(bool(n.manager_prop("Quorate")))

        # and it starts again for a new watcher
        w3 = self.connect(n)
        self.watch_lease(w3)
        self.wait_signals(3, "LeaseRenewed for a new watcher")


if __name__ == "__main__":
    res = unittest.main(verbosity=2, exit=False).result
    if res.testsRun and len(res.skipped) == res.testsRun:
        sys.exit(77)  # meson: skipped
    sys.exit(0 if res.wasSuccessful() else 1)
