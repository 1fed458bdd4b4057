#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Start-up of a clustered node (issue 14): a node that boots before its peers is serving (bus
name, READY=1) without being quorate, and refuses changes with NoQuorum until it is; a node whose
Raft engine cannot start (its port taken) exits with an error instead of hanging."""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cluster  # noqa: E402
import netns  # noqa: E402
from cluster import wait_until  # noqa: E402

ERROR_NO_QUORUM = "org.electiond.Election1.Error.NoQuorum"


class NotifySocket:
    """A NOTIFY_SOCKET of the test's own: collects what the daemon sends with sd_notify(). It reads
    all the time, as the service manager does (sd_notify() blocks while the socket's queue is
    full)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="edh-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.closed:
            try:
                m = self.sock.recv(4096).decode(errors="replace")
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append(m)

    def fields(self):
        """Every KEY=value line received so far, in order."""
        with self.lock:
            return [line for m in self.messages for line in m.split("\n") if line]

    def close(self):
        self.closed = True
        self.thread.join(5)
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


class StartupTest(unittest.TestCase):
    def setUp(self):
        why = netns.usable()
        if why:
            self.skipTest(why)

    def test_alone_node_is_ready_but_not_quorate(self):
        """BootstrapExpect=3, peers not started: READY=1 and the bus name come anyway; Quorate is
        false, changes fail with NoQuorum, STATUS= says so; once the peers come it is quorate."""
        c = cluster.Cluster(3, config={"Node": {"CommitTimeoutSec": "2"}})
        self.addCleanup(c.close)
        notify = NotifySocket()
        self.addCleanup(notify.close)
        c.start_buses()
        n1, n2, n3 = c.nodes
        n1.start(wait=False, env={"NOTIFY_SOCKET": notify.path})
        wait_until(lambda: "READY=1" in notify.fields() or not n1.alive(), 20, "READY=1 from the lone node")
        self.assertTrue(n1.alive(), n1.log_tail())
        self.assertTrue(n1.has_name(), "READY=1 before the bus name was owned")
        self.assertFalse(bool(n1.manager_prop("Quorate")))
        status = [f for f in notify.fields() if f.startswith("STATUS=")]
        self.assertTrue(status and "no quorum" in status[-1], status)
        import dbus
        with self.assertRaises(dbus.exceptions.DBusException) as cm:
            n1.election("alone").Enter("a", dbus.UInt64(1), dbus_interface=cluster.ELECTION_IFACE, timeout=10)
        self.assertEqual(cm.exception.get_dbus_name(), ERROR_NO_QUORUM, str(cm.exception))
        # not caught up with its cluster: it shows no terms (they could be older than what it
        # showed before a restart), rather than term 0
        for read in (lambda: n1.get_term("alone"),
                     lambda: n1.manager().ListElections(dbus_interface=cluster.MANAGER_IFACE, timeout=5)):
            with self.assertRaises(dbus.exceptions.DBusException) as cm:
                read()
            self.assertEqual(cm.exception.get_dbus_name(), ERROR_NO_QUORUM, str(cm.exception))
        self.assertFalse(bool(n1.election("alone").Get(cluster.ELECTION_IFACE, "LocalLeader",
                                                        dbus_interface="org.freedesktop.DBus.Properties")))

        # the peers come: the cluster forms, and the same process now takes changes
        n2.start(wait=False)
        n3.start(wait=False)
        wait_until(lambda: bool(n1.manager_prop("Quorate")), 30, "n1 to become quorate")
        t = n1.election("alone").Enter("a", dbus.UInt64(1), dbus_interface=cluster.ELECTION_IFACE, timeout=10)
        self.assertEqual((int(t[0]), str(t[1])), (1, "a"))
        self.assertEqual(n1.get_term("alone"), (1, "a", ["a"]))
        wait_until(lambda: any(f.startswith("STATUS=") and "no quorum" not in f for f in notify.fields()), 10,
                   "STATUS= to say quorate")
        self.assertEqual(notify.fields().count("READY=1"), 1)

    def test_restarted_node_alone_never_shows_an_older_term(self):
        """A node restarted while its peers are down serves at once, but must not show the terms
        of its older local copy (its log is applied only as far as the cluster confirms): reads
        fail with NoQuorum until it has caught up, then show at least what it showed before."""
        import dbus
        c = cluster.Cluster(3, config={"Node": {"CommitTimeoutSec": "2"}})
        self.addCleanup(c.close)
        c.start()
        n1 = c.nodes[0]
        cl = c.client(n1)
        for who in ("a", "b", "c"):
            cl.op("enter", "old", who, flags=1)
        cl.op("anoint", "old", "c")
        cl.op("anoint", "old", "b")
        before = n1.get_term("old")
        self.assertGreaterEqual(before[0], 3)
        for n in c.nodes:
            n.terminate()
        n1.start(wait=False)
        wait_until(lambda: n1.has_name() or not n1.alive(), 20, "n1 to serve again")
        self.assertTrue(n1.alive(), n1.log_tail())
        with self.assertRaises(dbus.exceptions.DBusException) as cm:
            n1.get_term("old")
        self.assertEqual(cm.exception.get_dbus_name(), ERROR_NO_QUORUM, str(cm.exception))
        for n in c.nodes[1:]:
            n.start(wait=False)
        n1.wait_ready(30)
        after = n1.get_term("old")
        self.assertGreaterEqual(after[0], before[0])
        self.assertEqual(after[1], "b")

    def hold_raft_port(self, c, node):
        """A listener of ours on the node's Raft address (TCP Port= on its first address), inside
        its namespace; it sends nothing."""
        holder = subprocess.Popen(netns.ns_argv(node.ns, [sys.executable, "-c", (
            "import socket, sys\n"
            "s = socket.socket(); s.bind((%r, %d)); s.listen(1)\n"
            "print('listening', flush=True); sys.stdin.read()\n") % (node.addr, c.port)]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(holder.stdout.close)
        self.addCleanup(holder.wait, 10)
        self.addCleanup(holder.stdin.close)
        self.assertEqual(holder.stdout.readline().strip(), "listening")

    def start_and_expect_failure(self, c, node):
        log_path = os.path.join(node.dir, "electiond.log")
        offset = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        node.start(wait=False)
        try:
            wait_until(lambda: not node.alive(), 20, "electiond to give up on the taken Raft port")
        except TimeoutError:
            self.fail("electiond still runs with its Raft port taken; log:\n" + node.log_tail())
        with open(log_path, errors="replace") as f:
            f.seek(offset)
            log = f.read()    # this run's output only
        self.assertNotEqual(node.daemon.popen.returncode, 0, log)
        # says what failed and where
        self.assertIn("%s:%d" % (node.addr, c.port), log)
        self.assertRegex(log, r"(?i)raft")

    def test_engine_start_failure_with_state_exits(self):
        """The Raft TCP port is taken when a node with Raft state starts: it says so, naming the
        address, and exits non-zero."""
        c = cluster.Cluster(1, bootstrap_expect=1)
        self.addCleanup(c.close)
        c.start()
        n1 = c.nodes[0]
        wait_until(lambda: bool(n1.manager_prop("Quorate")), 20, "the one-node cluster to form")
        n1.terminate()
        self.assertTrue(os.listdir(os.path.join(n1.state_dir, "raft")))
        self.hold_raft_port(c, n1)
        self.start_and_expect_failure(c, n1)

    def test_engine_start_failure_at_bootstrap_exits(self):
        """A fresh node whose Raft port is taken when it bootstraps exits non-zero instead of
        hanging with a half-made engine."""
        c = cluster.Cluster(1, bootstrap_expect=1)
        self.addCleanup(c.close)
        c.start_buses()
        n1 = c.nodes[0]
        self.hold_raft_port(c, n1)
        self.start_and_expect_failure(c, n1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
