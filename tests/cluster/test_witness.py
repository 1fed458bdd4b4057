#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Issue 11 §6: two machines and a witness. The witness ([Node] Witness=yes) is always a voter,
refuses Enter with org.electiond.Election1.Error.Witness, and lets a 2-node cluster fail over:
SIGKILL of the leader's node moves the lead to the other node, a partition isolating one node
leaves exactly one leader; the history checker judges the whole run (never two leaders).
A plain 2-node cluster says it tolerates 0 failures (electionctl status, text and --json) and
warns in its log."""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "checker"))
import cluster  # noqa: E402
import netns  # noqa: E402
import check_history  # noqa: E402
from cluster import wait_until  # noqa: E402

CONVERGE_BOUND = 10.0
PROPS = "org.freedesktop.DBus.Properties"


def electionctl():
    if os.environ.get("ELECTIONCTL"):
        return os.environ["ELECTIONCTL"]
    root = os.environ.get("ELECTIOND_BUILD_ROOT")
    if root:
        return os.path.join(root, "client-lib", "electionctl")
    return os.path.join(os.path.dirname(os.environ.get("ELECTIOND", "electiond")), "..", "client-lib", "electionctl")


def ctl(node, *args):
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=node.bus_address, LC_ALL="C")
    return subprocess.run([electionctl()] + list(args), env=env, capture_output=True, text=True, timeout=20)


def roles(node):
    try:
        return {str(m[0]): (str(m[2]), str(m[3])) for m in node.manager_prop("Members")}
    except Exception:
        return {}


def local_leader(node, election):
    try:
        return bool(node.election(election).Get(cluster.ELECTION_IFACE, "LocalLeader", dbus_interface=PROPS))
    except Exception:
        return False


def quorate(node):
    try:
        return bool(node.manager_prop("Quorate"))
    except Exception:
        return False


class WitnessTest(unittest.TestCase):
    def setUp(self):
        why = netns.usable()
        if why:
            self.skipTest(why)

    def check_history(self, c):
        c.write_final()
        res = check_history.check(c.history(), convergence_bound=CONVERGE_BOUND)
        self.assertEqual(res.violations, [], "\n".join(str(v) for v in res.violations))

    def voters_of(self, node):
        return sorted(n for n, (state, role) in roles(node).items() if role in ("voter", "leader"))

    def test_two_nodes_and_witness(self):
        # the witness has an elections.d that would make any other node a candidate of "web"
        tmp = tempfile.mkdtemp(prefix="edh-witness-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        os.makedirs(os.path.join(tmp, "elections.d"))
        os.makedirs(os.path.join(tmp, "run"))
        with open(os.path.join(tmp, "elections.d", "web.conf"), "w") as f:
            f.write("[Election]\nUnits=witness-never.service\n")
        c = cluster.Cluster(3, config={"Node": {"CommitTimeoutSec": "2"}},
                            node_config={"n3": {"Node": {"Witness": "yes",
                                                         "ElectionsDirectory": os.path.join(tmp, "elections.d"),
                                                         "RuntimeDirectory": os.path.join(tmp, "run")}}})
        self.addCleanup(c.close)
        c.start()
        n1, n2, w = c.nodes
        # every node, the witness too, is a voter: 3 voters tolerate 1 failure
        wait_until(lambda: all(self.voters_of(x) == ["n1", "n2", "n3"] for x in c.nodes) and
                   all(quorate(x) for x in c.nodes), 30, "n1, n2 and the witness to be quorate voters")
        st = ctl(n1, "status", "--json")
        self.assertEqual(st.returncode, 0, st.stderr)
        j = json.loads(st.stdout)
        self.assertEqual((j["voters"], j["fault_tolerance"]), (3, 1), st.stdout)
        st = ctl(w, "status")
        self.assertIn("Tolerates: 1 failure (3 voters)", st.stdout)
        self.assertIn("witness", w.log_tail(1 << 20))

        # Enter on the witness is refused, persistent or not, and nothing is entered
        import dbus
        for flags in (0, 1):
            with self.assertRaises(dbus.DBusException) as cm:
                w.election("web").Enter("w", dbus.UInt64(flags), dbus_interface=cluster.ELECTION_IFACE)
            self.assertEqual(cm.exception.get_dbus_name(), "org.electiond.Election1.Error.Witness")
        r = ctl(w, "enter", "web")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("witness", (r.stderr + r.stdout).lower())

        # persistent candidates on the two machines
        c.client(n1).op("enter", "web", "a", flags=1)
        t = c.client(n2).op("enter", "web", "b", flags=1)
        self.assertEqual(t[2], ["a", "b"])
        wait_until(lambda: local_leader(n1, "web"), 10, "n1 LocalLeader")
        wait_until(lambda: w.get_term("web")[2] == ["a", "b"], 10, "the witness to apply both Enters")
        before = n1.get_term("web")[0]

        # SIGKILL of the leader's node: the other machine takes over (quorum: n2 + witness)
        n1.kill()
        wait_until(lambda: local_leader(n2, "web"), 10, "n2 LocalLeader after n1's SIGKILL")
        t = n2.get_term("web")
        self.assertEqual(t[1], "b")
        self.assertGreater(t[0], before)
        self.assertTrue(quorate(n2))
        # n2 still accepts changes with one machine down
        c.client(n2).op("enter", "other", "b2", flags=1)

        n1.start()
        c.wait_converged(CONVERGE_BOUND)
        wait_until(lambda: n1.get_term("web")[2] == ["b", "a"], 10, "n1's persistent candidacy back")

        # a partition isolating the leader's node: the other one leads, never both
        c.partition([[n2], [n1, w]])
        wait_until(lambda: not quorate(n2), 10, "the isolated n2 to lose its quorum")
        wait_until(lambda: local_leader(n1, "web"), 10, "n1 LocalLeader while n2 is cut off")
        self.assertFalse(local_leader(n2, "web"))
        with self.assertRaises(dbus.DBusException) as cm:
            c.client(n2).op("enter", "minority", "x", timeout=20)
        self.assertEqual(cm.exception.get_dbus_name(), "org.electiond.Election1.Error.NoQuorum")
        c.heal()
        wait_until(lambda: quorate(n2), 10, "n2 quorate again")
        c.wait_converged(CONVERGE_BOUND)

        # the witness cut off alone: the two machines still hold a majority
        c.partition([[w], [n1, n2]])
        wait_until(lambda: not quorate(w), 10, "the isolated witness to lose its quorum")
        # (if the witness was the Raft leader, the two elect another one first)
        wait_until(lambda: quorate(n1) and quorate(n2), 10, "n1 and n2 quorate without the witness")
        c.client(n2).op("enter", "third", "b3", flags=1)
        c.heal()
        c.wait_converged(CONVERGE_BOUND)
        self.assertEqual(w.get_term("web")[1], n1.get_term("web")[1])
        # elections.d was not read on the witness: never a candidate, no flag file
        self.assertNotIn("n3", w.get_term("web")[2])
        self.assertFalse(os.path.exists(os.path.join(tmp, "run", "leader", "web")))
        self.assertNotIn("witness-never", w.log_tail(1 << 20))
        self.check_history(c)

    def test_witness_preferred_over_max_voters(self):
        # MaxVoters=3 reached by three machines: a witness joining later still becomes a voter,
        # one machine steps down to stand-by to make room
        c = cluster.Cluster(4, bootstrap_expect=3, config={"Node": {"CommitTimeoutSec": "2"},
                                                           "Cluster": {"MaxVoters": "3"}},
                            node_config={"n4": {"Node": {"Witness": "yes"}}}, record=False)
        self.addCleanup(c.close)
        c.start_buses()
        n1, n2, n3, w = c.nodes
        for n in (n1, n2, n3):
            n.start(wait=False)
        for n in (n1, n2, n3):
            n.wait_ready(30)
        wait_until(lambda: self.voters_of(n1) == ["n1", "n2", "n3"], 30, "three machine voters")
        w.start()
        wait_until(lambda: "n4" in self.voters_of(n1) and len(self.voters_of(n1)) == 3, 30,
                   "the witness to take a voter place")
        self.assertIn("standby", [role for (state, role) in roles(n1).values()])

    def test_one_witness_machine_serves_two_clusters(self):
        # n5 is one small machine running two witness instances, one per cluster, each with its own
        # configuration, state directory and ports (as electiond-witness@.service does): cluster
        # "ca" = n1, n2 + witness "wa" (port 7946), cluster "cb" = n3, n4 + witness "wb" (port 7948).
        # The second instance finds the bus name taken and votes on without it.
        addr = lambda k, port: "198.18.0.%d:%d" % (k, port)  # noqa: E731 (the harness's fixed addresses)
        ca = {"Name": "ca", "BootstrapExpect": "3", "Peers": ";".join(addr(k, 7946) for k in (1, 2, 5))}
        cb = {"Name": "cb", "BootstrapExpect": "3", "Port": "7948",
              "Peers": ";".join(addr(k, 7948) for k in (3, 4, 5))}
        c = cluster.Cluster(5, config={"Node": {"CommitTimeoutSec": "2"}}, record=False, node_config={
            "n1": {"Cluster": ca}, "n2": {"Cluster": ca},
            "n3": {"Cluster": cb}, "n4": {"Cluster": cb},
            "n5": {"Node": {"Name": "wa", "Witness": "yes"}, "Cluster": ca}})
        self.addCleanup(c.close)
        c.start_buses()
        n1, n2, n3, n4, n5 = c.nodes
        for n in c.nodes:
            n.start(wait=False)
        for n in (n1, n2, n5):
            n.wait_ready(30)
        wb_dir = os.path.join(c.dir, "wb")
        os.makedirs(os.path.join(wb_dir, "state"))
        conf = os.path.join(wb_dir, "electiond.conf")
        with open(conf, "w") as f:
            f.write("[Node]\nName=wb\nWitness=yes\nCommitTimeoutSec=2\n\n[Cluster]\nKeyFile=%s\nInterfaces=%s\n"
                    % (c.key_file, netns.NODE_IF) + "".join("%s=%s\n" % kv for kv in cb.items()))
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=n5.bus_address)
        wb = cluster.Proc(netns.ns_argv(n5.ns, [c.electiond, "--config", conf, "--state-dir",
                                                os.path.join(wb_dir, "state")]),
                          os.path.join(wb_dir, "electiond.log"), env=env, registry=c.procs)

        def wb_log():
            with open(os.path.join(wb_dir, "electiond.log"), errors="replace") as f:
                return f.read()
        wait_until(lambda: "keeps voting" in wb_log() or not wb.alive(), 30, "the second witness instance to serve")
        self.assertTrue(wb.alive(), wb_log()[-3000:])
        n3.wait_ready(30)
        n4.wait_ready(30)
        wait_until(lambda: self.voters_of(n1) == ["n1", "n2", "wa"] and self.voters_of(n3) == ["n3", "n4", "wb"],
                   30, "two clusters of two machines and a witness each")

        # either cluster fails over on the shared witness machine
        for first, second in ((n1, n2), (n3, n4)):
            c.client(first).op("enter", "svc", first.name, flags=1)
            c.client(second).op("enter", "svc", second.name, flags=1)
            wait_until(lambda: local_leader(first, "svc"), 10, "%s LocalLeader" % first.name)
            first.kill()
            wait_until(lambda: local_leader(second, "svc"), 10, "%s LocalLeader after %s's SIGKILL"
                       % (second.name, first.name))
        self.assertTrue(wb.alive())

    def test_plain_two_nodes_tolerate_nothing(self):
        c = cluster.Cluster(2, config={"Node": {"CommitTimeoutSec": "2"}}, record=False)
        self.addCleanup(c.close)
        # n1's sd_notify messages (STATUS=) on a socket of ours
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.bind(os.path.join(c.dir, "notify"))
        notify.setblocking(False)
        c.start_buses()
        n1, n2 = c.nodes
        os.environ["NOTIFY_SOCKET"] = os.path.join(c.dir, "notify")
        try:
            n1.start(wait=False)
        finally:
            del os.environ["NOTIFY_SOCKET"]
        n2.start(wait=False)
        n1.wait_ready()
        n2.wait_ready()
        statuses = []

        def status_says(text):
            while True:
                try:
                    msg = notify.recv(4096).decode()
                except BlockingIOError:
                    break
                statuses.extend(line[len("STATUS="):] for line in msg.split("\n") if line.startswith("STATUS="))
            return any(text in st for st in statuses)
        wait_until(lambda: status_says("2 voters, tolerates 0 failures (add a witness)"), 20,
                   "STATUS= to state the fault tolerance")
        wait_until(lambda: self.voters_of(n1) == ["n1", "n2"] and quorate(n1), 30, "a 2-voter cluster")
        st = ctl(n1, "status", "--json")
        self.assertEqual(st.returncode, 0, st.stderr)
        j = json.loads(st.stdout)
        self.assertEqual((j["voters"], j["fault_tolerance"]), (2, 0), st.stdout)
        st = ctl(n1, "status")
        self.assertIn("Tolerates: 0 failures (2 voters)", st.stdout)
        self.assertIn("add a witness", st.stdout)
        for n in c.nodes:
            log = n.log_tail(1 << 20)
            self.assertIn("BootstrapExpect=2: a 2-node cluster tolerates 0 failures", log)
        wait_until(lambda: "tolerates 0 failures: losing any voter" in n1.log_tail(1 << 20), 10,
                   "the runtime warning on n1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
