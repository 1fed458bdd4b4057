#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Rolling upgrade (issue 11 §5, ROLLING UPGRADE in electiond(8)): a 3-node cluster of the previous
release (tests/upgrade/previous-release: built here from its tag, or from its commit when the clone
carries no tags) is upgraded node by node to the current build - a planned stop (SIGTERM), then the
new binary on the same state directory - while clients on the other nodes enter and leave in a
loop. No client call fails (in particular none with NoQuorum), the checker finds no violation,
every node's and every client's terms only increase, and the cluster protocol version stays 1
while any member runs the previous release and becomes 2 on every node right after the last one
is upgraded. Afterwards a node of the previous release is not let in.

Without git history of the previous release the test fails with a message saying so (it never
skips for that). Exits 77 only when not root or without ip netns."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "checker"))
import cluster  # noqa: E402
import netns  # noqa: E402
from cluster import wait_until  # noqa: E402
from test_cluster import ClusterBase  # noqa: E402

SOURCE_ROOT = os.environ.get("ELECTIOND_SOURCE_ROOT", os.path.join(HERE, "..", ".."))
BUILD_ROOT = os.environ.get("ELECTIOND_BUILD_ROOT", "build")
ELECTIONCTL = os.path.join(BUILD_ROOT, "client-lib", "electionctl")
RELEASE_FILE = os.path.join(SOURCE_ROOT, "tests", "upgrade", "previous-release")
NOQUORUM = "org.electiond.Election1.Error.NoQuorum"
UNKNOWN_PROPERTY = "org.freedesktop.DBus.Error.UnknownProperty"
COMMITTING = re.compile(r"speaks protocol version (\d+): committing it")


def git(*args, **kw):
    # the tests may run as root in a checkout of another user: trust it for this read only
    try:
        return subprocess.run(["git", "-c", "safe.directory=*", "-C", SOURCE_ROOT] + list(args),
                              capture_output=True, text=True, **kw)
    except OSError as e:   # no git: reported below as "not in the git history"
        return subprocess.CompletedProcess(args, 127, "", str(e))


def previous_release():
    """(revision to build, description): the tag if this clone has it, else the commit."""
    fields = {}
    with open(RELEASE_FILE) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition(" ")
                fields[k] = v.strip()
    tag, commit = fields["tag"], fields["commit"]
    r = git("rev-parse", "--verify", "-q", tag + "^{commit}")
    if r.returncode == 0:
        if r.stdout.strip() != commit:
            raise AssertionError("tag %s is commit %s, but %s says %s: move them together"
                                 % (tag, r.stdout.strip(), RELEASE_FILE, commit))
        return tag, "%s (%s)" % (tag, commit[:12])
    if git("cat-file", "-e", commit + "^{commit}").returncode == 0:
        return commit, "%s (commit %s; the clone has no tag %s)" % (tag, commit[:12], tag)
    raise AssertionError(
        "cannot build the previous release %s: neither the tag nor commit %s is in the git history "
        "at %s (not a git checkout, or a shallow clone: fetch it with `git fetch --tags --unshallow`)"
        % (tag, commit, SOURCE_ROOT))


def build_previous_release(workdir):
    """Builds only the daemon of the previous release in workdir; returns its path."""
    rev, what = previous_release()
    src, build = os.path.join(workdir, "src"), os.path.join(workdir, "build")
    os.makedirs(src)
    archive = subprocess.Popen(["git", "-c", "safe.directory=*", "-C", SOURCE_ROOT, "archive", rev],
                               stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", src], stdin=archive.stdout, check=True)
    archive.stdout.close()
    if archive.wait() != 0:
        raise AssertionError("git archive %s failed" % rev)
    for argv in (["meson", "setup", build, src], ["meson", "compile", "-C", build, "electiond"]):
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("building the previous release %s failed: %s\n%s%s"
                                 % (what, " ".join(argv), r.stdout[-3000:], r.stderr[-3000:]))
    path = os.path.join(build, "daemon", "electiond")
    if not os.access(path, os.X_OK):
        raise AssertionError("the previous release %s built no %s" % (what, path))
    print("previous release: %s" % what, flush=True)
    return path


class Load:
    """One client thread per node: Enter then Leave of a persistent candidacy of its own, in a
    loop, but only while its node is in service (pause() waits until its call in flight ended).
    Failures are collected with their D-Bus error names."""

    def __init__(self, c, nodes):
        self.c = c
        self.failures = []
        self.messages = []   # "time node op: error message", for the report
        self.ops = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.serving = {n.name: threading.Event() for n in nodes}
        self.idle = {n.name: threading.Event() for n in nodes}
        self.results = {}   # client -> [(election, term)]
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True) for n in nodes]
        for n in nodes:
            self.serving[n.name].set()

    def start(self):
        for t in self.threads:
            t.start()

    def run(self, node):
        client = self.c.client(node, "load-" + node.name)
        cid = "load-" + node.name
        entered = False
        while not self.stop.is_set():
            if not self.serving[node.name].is_set():
                self.idle[node.name].set()
                self.stop.wait(0.01)
                continue
            self.idle[node.name].clear()
            if not self.serving[node.name].is_set():
                continue
            op = "leave" if entered else "enter"
            try:
                t = client.op(op, "load", cid, flags=1 if op == "enter" else None, timeout=10)
                with self.lock:
                    self.ops += 1
                    self.results.setdefault(client.name, []).append(t[0])
                entered = not entered
            except Exception as e:  # dbus.DBusException: its name says why
                name = e.get_dbus_name() if hasattr(e, "get_dbus_name") else repr(e)
                msg = e.get_dbus_message() if hasattr(e, "get_dbus_message") else ""
                with self.lock:
                    self.failures.append((node.name, op, name))
                    self.messages.append("%.3f %s %s: %s %s" % (time.monotonic(), node.name, op, name, msg))
            self.stop.wait(0.02)
        self.idle[node.name].set()

    def pause(self, node):
        self.serving[node.name].clear()
        self.idle[node.name].clear()
        wait_until(lambda: self.idle[node.name].is_set(), 15, "the load on %s to pause" % node.name)

    def resume(self, node):
        self.serving[node.name].set()

    def count(self):
        with self.lock:
            return self.ops

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(20)


class RollingUpgrade(ClusterBase):
    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="edh-upgrade-")
        cls.old = build_previous_release(cls.workdir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.workdir, ignore_errors=True)

    # --- observations ---------------------------------------------------------------------
    def protocol(self, node):
        """(ProtocolVersion, MaxProtocolVersion), or None from a daemon without them (0.1.0)."""
        import dbus
        try:
            return int(node.manager_prop("ProtocolVersion")), int(node.manager_prop("MaxProtocolVersion"))
        except dbus.DBusException as e:
            if e.get_dbus_name() == UNKNOWN_PROPERTY:
                return None
            raise

    def status_json(self, node):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=node.bus_address)
        r = subprocess.run(netns.ns_argv(node.ns, [ELECTIONCTL, "--json", "status"]), env=env,
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def log_text(self, node):
        with open(os.path.join(node.dir, "electiond.log"), errors="replace") as f:
            return f.read()

    def raft_leader(self, members):
        def one():
            leaders = [str(m[0]) for m in members[0].manager_prop("Members") if str(m[3]) == "leader"]
            return leaders[0] if len(leaders) == 1 else None
        return wait_until(one, 10, "one Raft leader")

    def restart(self, load, node, binary, members):
        load.pause(node)
        if (node.electiond or self.cluster.electiond) == self.old:
            # v0.1.0 hands the Raft leadership over at a planned stop only when it leads an
            # election (the current release always does): give it one to hand over, or a stop
            # of a v0.1.0 Raft leader leaves every node without a lease for an election timeout
            # (README "Rolling upgrade")
            # (its candidacy first, another node's behind it: that is what it hands over)
            other = [m for m in members if m is not node][0]
            self.cluster.client(other, "handover-" + other.name).op("enter", "handover", "h-" + other.name, flags=1)
            cl = self.cluster.client(node, "handover-" + node.name)
            cl.op("enter", "handover", "h-" + node.name, flags=1)
            cl.op("anoint", "handover", "h-" + node.name)
        node.terminate()   # planned stop; returns once the daemon exited
        self.assertEqual(node.daemon.popen.returncode, 0, node.log_tail())
        node.electiond = binary
        node.start(wait=False)
        node.wait_ready(30)
        self.wait_formed(self.cluster, members)
        load.resume(node)

    def hold_load(self, load, n_ops, what):
        """Until the load made n_ops more calls (they run meanwhile on the nodes in service)."""
        want = load.count() + n_ops
        wait_until(lambda: load.count() >= want, 30, what)

    def assert_terms_increase(self, c, load):
        last = {}
        for r in c.history():
            if r.get("type") == "term":
                key = (r["node"], r["election"])
                self.assertGreaterEqual(r["term"], last.get(key, 0), "term went back on %s: %s" % (key, r))
                last[key] = r["term"]
        for client, terms in load.results.items():
            self.assertEqual(terms, sorted(terms), "%s saw a term go back" % client)

    # --- the test ------------------------------------------------------------------------------
    def test_rolling_upgrade_under_load(self):
        why = netns.usable()
        if why:
            self.skipTest("cluster tests need root and ip netns: %s" % why)
        self.assertTrue(os.access(ELECTIONCTL, os.X_OK), "electionctl not built at %s" % ELECTIONCTL)
        new = os.environ.get("ELECTIOND") or "electiond"
        c = cluster.Cluster(4, bootstrap_expect=3, electiond=self.old,
                            config={"Node": {"CommitTimeoutSec": "5"}})
        self.addCleanup(c.close)
        self.cluster = c
        members = c.nodes[:3]
        n4 = c.nodes[3]
        c.start_buses()
        for n in members:
            n.start(wait=False)
        for n in members:
            n.wait_ready(20)
        self.wait_formed(c, members)

        # the previous release: no protocol properties; electionctl reads that as version 1
        for n in members:
            self.assertIsNone(self.protocol(n), n.name)
        st = self.status_json(members[0])
        self.assertEqual((st["protocol"], st["max_protocol"]), (1, 1))

        steady = c.client(members[1]).op("enter", "steady", "keeper", flags=1)
        load = Load(c, members)
        load.start()
        self.addCleanup(load.finish)
        self.hold_load(load, 30, "the load to run on the previous release")

        for i, node in enumerate(members):
            last = i == len(members) - 1
            offsets = {n.name: len(self.log_text(n)) for n in members}
            self.restart(load, node, new, members)
            self.assertEqual(self.protocol(node)[1], 2, node.name)
            self.hold_load(load, 30, "the load to run after upgrading %s" % node.name)

            if i == len(members) - 2:
                # The gate is only tested if an upgraded node leads Raft while the last member of
                # the previous release is still in: move the lead off it by restarting it (a
                # planned stop hands the Raft lead to another voter).
                old = [n for n in members if n.electiond != new][0]
                for _ in range(5):
                    if self.raft_leader(members) != old.name:
                        break
                    print("restarting %s (previous release): it leads Raft" % old.name, flush=True)
                    self.restart(load, old, self.old, members)
                self.assertNotEqual(self.raft_leader(members), old.name)
            if not last:
                # a member still runs the previous release: the new command is not used
                def flipped():
                    return any((self.protocol(n) or (1, 1))[0] != 1 for n in members)
                with self.assertRaises(TimeoutError):
                    wait_until(flipped, 2.5, "the protocol version to move early")
                for n in members:
                    self.assertIsNone(COMMITTING.search(self.log_text(n)), n.name)
                    p = self.protocol(n)
                    if n.electiond == new:
                        self.assertEqual(p, (1, 2), n.name)
                    else:
                        self.assertIsNone(p, n.name)   # still the previous release
                        self.assertNotIn("Failed to decode log entry", self.log_text(n), n.name)
                self.assertEqual(self.status_json(node)["protocol"], 1)
            else:
                wait_until(lambda: all(self.protocol(n) == (2, 2) for n in members), 10,
                           "every node to use protocol version 2")
                # committed once, by the Raft leader, after the last node came back
                commits = [(n.name, m.group(1)) for n in members
                           for m in COMMITTING.finditer(self.log_text(n)[offsets[n.name]:])]
                self.assertEqual([v for _, v in commits], ["2"], commits)
                for n in members:
                    self.assertIn("Cluster protocol version is now 2", self.log_text(n)[offsets[n.name]:], n.name)
                st = self.status_json(members[0])
                self.assertEqual((st["protocol"], st["max_protocol"]), (2, 2))

        self.hold_load(load, 30, "the load to run on protocol version 2")
        load.finish()
        print("load: %d calls, %d failed; Raft leader at the end: %s"
              % (load.count(), len(load.failures), self.raft_leader(members)), flush=True)

        self.assertEqual([f for f in load.failures if f[2] == NOQUORUM], [], "\n".join(load.messages))
        self.assertEqual(load.failures, [])
        for n in members:
            self.assertTrue(n.daemon.alive(), n.name)
            self.assertEqual(n.get_term("steady")[1:], ("keeper", ["keeper"]), n.name)
            self.assertGreaterEqual(n.get_term("steady")[0], steady[0])
        self.assert_terms_increase(c, load)
        self.check_history(c)

        # a node of the previous release is not let in any more: it could not read the log
        n4.electiond = self.old
        n4.start(wait=False)

        def n4_voting():
            for m in members[0].manager_prop("Members"):
                if str(m[0]) == "n4" and str(m[3]) != "none":
                    return True
            return False
        wait_until(lambda: "speaks protocol version 1 only" in
                   "".join(self.log_text(n) for n in members), 10, "the Raft leader to refuse n4")
        with self.assertRaises(TimeoutError):
            wait_until(n4_voting, 2, "n4 to be added")
        self.assertFalse(n4.quorate())


def main():
    why = netns.usable()
    if why:
        print("SKIP: cluster tests need root and ip netns: %s" % why)
        return 77
    res = unittest.TextTestRunner(verbosity=2).run(
        unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__]))
    return 0 if res.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
