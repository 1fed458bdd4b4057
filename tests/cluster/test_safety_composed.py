#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Regression tests for the composed-fault safety holes of issue 9.

Each case composes faults (partition + restart, mismatched configuration, a short cut, a one-way
cut, a cloned identity, a frozen daemon with a running leader command, a dead member during a
hand-over) that today's daemon gets wrong; each docstring says which hole it reproduces and what
the fixed daemon must do instead.

    test_safety_composed.py                       every case
    test_safety_composed.py CASE [CASE...]        e.g. voter_restart_partition one_way_leader
    test_safety_composed.py Composed.test_CASE    unittest names work too

"Two leaders" is judged on the recorded history by tests/checker/check_history.py (a node's
claim ends at its own step-down report, or at pause/kill + Lease·1.01), and only its safety
kinds fail a case here (split-brain, leader-conflict, term-regress, term-reuse, and lost-enter /
missing-change: an acknowledged Enter dropped with no fault on its node to excuse it): a case
that leaves a node deliberately cut off or refused must not fail on convergence.

Timing: the shipped defaults (ProbeIntervalSec 0.05, LeaseSec 0.2, NodeTimeoutSec 0.35) unless
a case says otherwise. Needs root and ip netns; exits 77 (skipped) otherwise.
COMPOSED_HISTORY_DIR=DIR keeps each case's history as DIR/test_CASE.jsonl (for check_history.py)
and the daemons' logs as DIR/test_CASE-nK.log; COMPOSED_DAEMON_ARGS="--log-level debug" passes
arguments to every electiond; COMPOSED_TRIALS=N sets the trials of voter_restart_partition (3).

Two cases hold a quiet spell of 0.15 s before the cut (hold()): a follower cut off within a
heartbeat or two of a commit has stored the leader's trailing no-op without knowing it committed,
and rule 3 then refuses it (its own granter included); that hides the holes, it does not fix them.
"""

import os
import shutil
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "checker"))
import check_history  # noqa: E402
import cluster  # noqa: E402
import netns  # noqa: E402
from cluster import wait_until  # noqa: E402

ELECTIONCTL = os.environ.get("ELECTIONCTL") or os.path.join(
    os.environ.get("ELECTIOND_BUILD_ROOT", "build"), "client-lib", "electionctl")
PROPS = "org.freedesktop.DBus.Properties"
NOQUORUM = "org.electiond.Election1.Error.NoQuorum"
FORM_TIMEOUT = 20
# the checker's kinds that fail a case: two leaders, term ids, and acknowledged changes lost
# (without the excuse of a fault on the entering node); not no-convergence
SAFETY_KINDS = {"split-brain", "leader-conflict", "term-regress", "term-reuse", "lost-enter",
                "missing-change"}
PERSISTENT = 1


# --- small helpers ---------------------------------------------------------------------------
def local_leader(node, election):
    """LocalLeader of node for election right now; None if it cannot be read."""
    try:
        return bool(node.election(election).Get(cluster.ELECTION_IFACE, "LocalLeader",
                                                dbus_interface=PROPS, timeout=2))
    except Exception:
        return None


def term(node, election):
    try:
        return node.get_term(election)
    except Exception:
        return None


def members(node):
    """{name: (address, state, role)} as node sees them; {} if unreadable."""
    try:
        return {str(m[0]): (str(m[1]), str(m[2]), str(m[3])) for m in node.manager_prop("Members")}
    except Exception:
        return {}


def raft_leader(c, nodes=None):
    """The node every given live node names as the Raft leader (None while they disagree)."""
    names = set()
    for n in nodes or c.live_nodes():
        lead = [k for k, v in members(n).items() if v[2] == "leader"]
        if len(lead) != 1:
            return None
        names.add(lead[0])
    return c.node(names.pop()) if len(names) == 1 else None


def vkey(v):
    """A violation's identity across checker runs: its kind and the records that open it (the
    end of a claim still open moves on with the history, so the message text is no key)."""
    return (v.kind,) + tuple((r.get("node"), r.get("election"), r.get("t")) for r in v.records)


def hold(seconds):
    """Lets a fault (or a quiet spell) last `seconds`: a scenario parameter, not a wait for a
    condition (those use wait_until with a deadline)."""
    end = time.monotonic() + seconds
    wait_until(lambda: time.monotonic() >= end, seconds + 1, "%.2f s to pass" % seconds, 0.01)


def log_text(node):
    try:
        with open(os.path.join(node.dir, "electiond.log"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class Composed(unittest.TestCase):
    def setUp(self):
        self._t0 = time.monotonic()
        self.addCleanup(lambda: print("[%s: %.1f s]" % (self._testMethodName, time.monotonic() - self._t0)))

    # --- cluster set-up ----------------------------------------------------------------------
    def make(self, n=3, start=None, wait=None, **kw):
        """A cluster with buses and recorders on every node, electiond started on `start`
        (default all) and waited for (bus name) on `wait` (default: the started ones)."""
        config = kw.pop("config", {})
        config.setdefault("Node", {}).setdefault("CommitTimeoutSec", "2")
        keep = os.environ.get("COMPOSED_HISTORY_DIR")   # to keep each case's history for a look
        if keep:
            kw.setdefault("history_path", os.path.join(keep, self._testMethodName + ".jsonl"))
        if os.environ.get("COMPOSED_DAEMON_ARGS"):   # e.g. "--log-level debug"
            kw.setdefault("extra_args", os.environ["COMPOSED_DAEMON_ARGS"].split())
        c = cluster.Cluster(n, config=config, **kw)
        self.addCleanup(c.close)
        if keep:   # runs before c.close(): the daemons' logs too
            self.addCleanup(lambda: [shutil.copy(os.path.join(x.dir, "electiond.log"), os.path.join(
                keep, "%s-%s.log" % (self._testMethodName, x.name))) for x in c.nodes
                if os.path.exists(os.path.join(x.dir, "electiond.log"))])
        c.start_buses()
        started = [x for x in c.nodes if start is None or x.name in start]
        for x in started:
            x.start(wait=False)
        for x in started:
            if wait is None or x.name in wait:
                x.wait_ready(20)
        self.c = c
        return c

    def wait_formed(self, c, nodes=None):
        nodes = nodes or c.live_nodes()

        def formed():
            for n in nodes:
                try:
                    if not bool(n.manager_prop("Quorate")):
                        return False
                except Exception:
                    return False
                m = members(n)
                if sum(1 for x in nodes if m.get(x.name, ("", "", ""))[1] == "alive"
                       and m[x.name][2] in ("leader", "voter")) < len(nodes):
                    return False
            return raft_leader(c, nodes) is not None
        wait_until(formed, FORM_TIMEOUT, "%s to form a quorate cluster" % [n.name for n in nodes], 0.05)

    def wait_local_leader(self, node, election, timeout=10, value=True):
        wait_until(lambda: local_leader(node, election) is value, timeout,
                   "%s LocalLeader(%s)=%s" % (node.name, election, value), 0.01)

    def safety_violations(self, c):
        """The checker's safety verdict on everything recorded so far. The final snapshots are
        taken once the serving nodes agree (or after 5 s), so that a node a few ms behind
        the last Enter is not taken for one that lost it."""
        try:
            c.wait_converged(5, [n for n in c.live_nodes() if n.has_name()])
        except TimeoutError:
            pass
        c.write_final()
        res = check_history.check(c.history())
        return [v for v in res.violations if v.kind in SAFETY_KINDS]

    def assert_safe(self, c, note=""):
        bad = self.safety_violations(c)
        self.assertEqual(bad, [], "%s%s" % (note, "\n".join(str(v) for v in bad)))

    def leader_records(self, c, election, since=0, value=True):
        return [r for r in c.history() if r.get("type") == "local_leader" and r.get("election") == election
                and bool(r.get("value")) is value and r["t"] >= since]

    # =========================================================================================
    def test_voter_restart_partition(self):
        """Hole: a voter that restarts forgets whom it fenced and what it stored, so it grants a
        lease to a stale, cut-off node again.

        X leads e; R (the Raft leader) is second in e; Y is the third voter. X is cut off from R
        and Y, the majority drops X and R's node takes e over. Then X-Y is healed (X-R stays cut)
        and Y is SIGKILLed and restarted at once: the fresh Y has no fence for X and no history
        of stored indexes older than G = Lease/2, so for its first G its rule-3 check passes
        anything and it grants X's lease requests although X has not applied its own
        DROP_NODE. With Y's ack X has a majority (itself + Y), believes it still leads e (and
        every other election its stale state gives it) and reports LocalLeader=true while R's
        node does too. [Fixed: never two LocalLeader=true.] Three trials with fresh elections;
        on main each showed an overlap of 110-250 ms (9 of 9 trials in three runs)."""
        c = self.make(3)
        self.wait_formed(c)
        trials = []
        for trial in range(int(os.environ.get("COMPOSED_TRIALS", "3"))):
            e = "vr%d" % trial
            R = wait_until(lambda: raft_leader(c), 10, "one Raft leader")
            others = [n for n in c.nodes if n is not R]
            X, Y = others[trial % 2], others[1 - trial % 2]
            c.client(X).op("enter", e, "x", flags=PERSISTENT)
            c.client(R).op("enter", e, "r", flags=PERSISTENT)
            c.client(Y).op("enter", e, "y", flags=PERSISTENT)
            self.wait_local_leader(X, e, 5)
            wait_until(lambda: (term(X, e) or (0, "", []))[2] == ["x", "r", "y"], 5, "X to apply y's Enter")
            # A quiet spell of a few Raft heartbeats (30 ms) so that X learns the commit of the
            # leader's trailing no-op entry: cut off while it has stored an entry it has not
            # applied, X's own granter refuses X (rule 3) and the hole cannot show.
            hold(0.15)
            before = {vkey(v) for v in self.safety_violations(c)}
            c.partition([[X], [R, Y]])
            self.wait_local_leader(R, e, 10)
            c.reconnect([X], [Y])
            Y.restart(wait=False)   # SIGKILL and start again at once
            t_restart = time.monotonic()
            # Observe until the restarted Y serves and knows R leads, X no longer claims, and Y's
            # first second (when the hole opens) is over.
            try:
                Y.wait_ready(20)
                wait_until(lambda: (term(Y, e) or (0, ""))[1] == "r" and local_leader(X, e) is False
                           and time.monotonic() - t_restart > 1.0, 10, "Y to catch up", 0.02)
            except TimeoutError:
                pass   # the verdict is the checker's below
            c.heal()
            c.wait_converged(15)
            new = [v for v in self.safety_violations(c) if vkey(v) not in before]
            trials.append((X.name, R.name, Y.name, len(new), new))
        msg = "\n".join("trial %d (X=%s R=%s Y=%s): %d violation(s)%s" % (
            i, x, r, y, n, "".join("\n    " + str(v) for v in vs))
            for i, (x, r, y, n, vs) in enumerate(trials))
        print(msg)
        self.assertEqual(sum(t[3] for t in trials), 0, "two leaders:\n" + msg)

    # =========================================================================================
    def test_mismatched_timing(self):
        """Hole: timing settings are validated per node only. n3 runs with LeaseSec=1 and
        NodeTimeoutSec=1.2 (valid on its own) while n1 and n2 run the defaults (0.2/0.35): the
        others declare n3 dead after 0.35 s and hand its election on, while n3 trusts its lease
        for up to 1 s, so both report LocalLeader=true. [Fixed: a node whose timing differs from
        the cluster's is refused leases, logs "timing settings differ" and never becomes
        LocalLeader; so n3 may never take its bus name at all.] On main: n3 led, and held
        LocalLeader 470-580 ms into the others' new claim."""
        self._mismatched_timing({"LeaseSec": "1", "NodeTimeoutSec": "1.2"})

    def test_mismatched_fast_timing(self):
        """The keys of the fast profile are timing settings too (issue 12): n3 runs with the
        defaults' LeaseSec/NodeTimeoutSec but another ActionMarginSec= and Raft timeouts; it is
        refused like a node with another LeaseSec (logs "timing settings differ", never leads
        while the others do)."""
        self._mismatched_timing({"ActionMarginSec": "0.05", "RaftElectionTimeoutSec": "0.1",
                                 "RaftHeartbeatSec": "0.02"})

    def _mismatched_timing(self, n3_cluster_config):
        c = self.make(3, start=["n1", "n2", "n3"], wait=[],
                      node_config={"n3": {"Cluster": n3_cluster_config}})
        n1, n2, n3 = c.nodes
        try:   # the two nodes with the cluster's (default) timing must serve, whoever bootstraps
            n1.wait_ready(20)
            n2.wait_ready(20)
        except TimeoutError as ex:
            self.fail("n1 and n2 (the majority, default timing) did not both serve within 20 s: %s\n"
                      "--- n3's log:\n%s" % (ex, n3.log_tail(10)))
        self.wait_formed(c, [n1, n2])
        e = "mt"
        # n3 either serves (today) or says it differs (fixed); either ends this wait.
        wait_until(lambda: n3.has_name() or "differ" in log_text(n3).lower() or not n3.alive(), 20,
                   "n3 to serve or to refuse", 0.05)
        n3_entered = False
        if n3.has_name():
            import dbus
            try:
                wait_until(lambda: bool(n3.manager_prop("Quorate")) or "differ" in log_text(n3).lower(),
                           10, "n3 quorate", 0.05)
                c.client(n3).op("enter", e, "c3", flags=PERSISTENT)
                n3_entered = True
            except (dbus.DBusException, TimeoutError) as ex:
                print("n3 refused the Enter: %s" % ex)
        c.client(n1).op("enter", e, "c1", flags=PERSISTENT)
        c.client(n2).op("enter", e, "c2", flags=PERSISTENT)
        if n3_entered:
            try:
                self.wait_local_leader(n3, e, 5)
            except TimeoutError:
                pass
        n3_led = any(r["node"] == "n3" for r in self.leader_records(c, e))
        c.partition([[n3], [n1, n2]])
        wait_until(lambda: local_leader(n1, e) or local_leader(n2, e), 10, "n1 or n2 to lead e", 0.01)
        try:
            self.wait_local_leader(n3, e, 5, value=False)
        except TimeoutError:
            pass
        c.heal()
        try:
            c.wait_converged(10, [n for n in c.live_nodes() if n.has_name()])
        except TimeoutError:
            pass
        bad = self.safety_violations(c)
        differ = "differ" in log_text(n3).lower()
        print("n3 entered=%s led=%s; log says differ=%s; violations: %s"
              % (n3_entered, n3_led, differ, [str(v) for v in bad]))
        problems = [str(v) for v in bad]
        if not differ:
            problems.append("n3's log does not mention that its timing settings differ:\n"
                            + n3.log_tail(15))
        self.assertEqual(problems, [], "\n".join(problems))

    # =========================================================================================
    def test_blip_keeps_persistent(self):
        """Hole: a short cut makes the majority commit DROP_NODE for the cut-off node, and that
        removes every candidacy of the node for good: its persistent candidacies, the one its
        elections.d file made at start-up, and connection-bound ones whose client is still
        connected. After the heal nothing brings them back.
        [Fixed: within a deadline after the heal the node has lost the lead of e (term grew,
        another node leads) but its persistent candidacy is back at the end of the list, its
        elections.d candidate in f is back, and its live connection's candidacy in g is back.]
        On main: e is (2, e2, [e2, e3]), f and g have no candidates, for good."""
        ed = tempfile.mkdtemp(prefix="edh%d-0-" % os.getpid())
        self.addCleanup(shutil.rmtree, ed, ignore_errors=True)
        eddir, rundir = os.path.join(ed, "elections.d"), os.path.join(ed, "run")
        os.makedirs(eddir)
        os.makedirs(rundir)
        with open(os.path.join(eddir, "f.conf"), "w") as fh:
            fh.write("[Election]\nId=f1\n")
        c = self.make(3, node_config={"n1": {"Node": {"ElectionsDirectory": eddir,
                                                      "RuntimeDirectory": rundir}}})
        n1, n2, n3 = c.nodes
        self.wait_formed(c)
        L = n1   # the node whose candidacies must survive the blip
        c.client(n1).op("enter", "e", "e1", flags=PERSISTENT)
        c.client(n2).op("enter", "e", "e2", flags=PERSISTENT)
        c.client(n3).op("enter", "e", "e3", flags=PERSISTENT)
        g_client = c.client(n1)
        g_client.op("enter", "g", "g1")      # connection-bound; the connection stays open
        wait_until(lambda: all((term(n, "f") or (0, "", []))[2] == ["f1"] for n in c.nodes), 10,
                   "n1's elections.d candidate in f on every node")
        self.wait_local_leader(L, "e", 5)
        t_e = term(n2, "e")
        self.assertEqual(t_e[1:], ("e1", ["e1", "e2", "e3"]))
        t_cut = time.monotonic()
        c.partition([[L], [n2, n3]])
        # the majority takes e over (the drop happened) ...
        wait_until(lambda: (term(n2, "e") or (0, ""))[1] in ("e2", "e3"), 10, "n2/n3 to take e over")
        # ... and the cut lasts 1 s in all
        hold(max(0.0, 1.0 - (time.monotonic() - t_cut)))
        c.heal()

        def back():
            views = [term(n, x) for n in c.nodes for x in ("e", "f", "g")]
            if any(v is None for v in views):
                return False
            for n in c.nodes:
                te, tf, tg = term(n, "e"), term(n, "f"), term(n, "g")
                if not (te[0] > t_e[0] and te[1] in ("e2", "e3") and sorted(te[2]) == ["e1", "e2", "e3"]
                        and te[2][-1] == "e1"):
                    return False
                if "f1" not in tf[2] or "g1" not in tg[2]:
                    return False
            return True
        try:
            wait_until(back, 10, "n1's candidacies in e, f and g back after the heal", 0.05)
            restored = True
        except TimeoutError:
            restored = False
        views = {n.name: {x: term(n, x) for x in ("e", "f", "g")} for n in c.nodes}
        print("after the heal: %s" % views)
        self.assertTrue(g_client.bus.get_is_connected(), "the g client's connection went away")
        bad = self.safety_violations(c)
        self.assertEqual(bad, [], "\n".join(str(v) for v in bad))
        self.assertTrue(restored, "within 10 s of the heal n1 did not get its candidacies back "
                        "(want e: another leader, higher term, e1 last; f1 in f; g1 in g): %s" % views)

    # =========================================================================================
    def test_one_way_leader(self):
        """Hole: a node that can send but not receive keeps the others' grants fresh (they hear
        its lease requests and answer), so they never find it expired and never drop it, while
        it gets no acks and so no lease: nobody acts as leader of its election for as long as
        the cut lasts. [Fixed: within 10 s another node is LocalLeader for e.]
        Two trials: X a Raft follower, then X the Raft leader. The follower trial is the one
        that shows the hole on main (nobody leads for the whole 10 s); with X the Raft leader,
        Raft elects a new leader, new entries make X stale and it is dropped after the 2 s
        refused-contact grace (about 2.6 s on main): kept to guard that path too."""
        c = self.make(3)
        self.wait_formed(c)
        results = []
        for trial, want_raft_leader in enumerate((False, True)):
            e = "ow%d" % trial
            R = wait_until(lambda: raft_leader(c), 10, "one Raft leader")
            X = R if want_raft_leader else [n for n in c.nodes if n is not R][0]
            rest = [n for n in c.nodes if n is not X]
            c.client(X).op("enter", e, "x", flags=PERSISTENT)
            for i, n in enumerate(rest):
                c.client(n).op("enter", e, "o%d" % i, flags=PERSISTENT)
            self.wait_local_leader(X, e, 5)
            wait_until(lambda: all(len((term(n, e) or (0, "", []))[2]) == 3 for n in c.nodes), 5,
                       "every node to apply the Enters")
            # A quiet spell of a few Raft heartbeats (30 ms), so X has applied all the others
            # stored (the leader's trailing no-op included): the hole needs X up to date, since
            # the granters refuse a stale X (rule 3) and a refused X is dropped 2 s later.
            hold(0.15)
            c.partition_oneway([X], rest)     # X drops everything from the others; can send
            t_cut = time.monotonic()
            try:
                who = wait_until(lambda: [n.name for n in rest if local_leader(n, e)], 10,
                                 "another node to lead %s" % e, 0.01)
                results.append((X.name, want_raft_leader,
                                "%s after %.2f s" % (who, time.monotonic() - t_cut)))
            except TimeoutError:
                results.append((X.name, want_raft_leader, None))
            c.heal()
            c.wait_converged(15)
            self.wait_formed(c)
        print("one-way cut of the leader: %s" % results)
        self.assert_safe(c)
        self.assertEqual([r for r in results if r[2] is None], [],
                         "no other node became LocalLeader within 10 s of a one-way cut of the "
                         "leader's node (X, X is Raft leader, result): %s" % results)

    # =========================================================================================
    def _fourth_node_refused(self, c, n4, what):
        """Starts n4 (no wait), then checks: it exits non-zero within 20 s saying "duplicate";
        n2 runs on and is still a member with its own address; n1 serves an Enter; no two
        leaders. Collects every problem, fails once with all of them."""
        n1, n2, n3 = c.nodes[:3]
        t_start = time.monotonic()
        if what == "cloned":
            # peers take the copy's packets for n2's (one id): n2 may be fenced and parked meanwhile
            c.log_event("twin_start", node="n2")
        n4.start(wait=False)
        try:
            wait_until(lambda: not n4.alive(), 20, "the %s node to exit" % what, 0.05)
        except TimeoutError:
            pass
        exited = not n4.alive()
        took = time.monotonic() - t_start
        if what == "cloned":
            c.log_event("twin_gone", node="n2")
        problems = []
        if not n2.alive():
            problems.append("n2 died: %s" % n2.log_tail(10))

        def n2_member():
            v = members(n1).get("n2", ("", "", ""))
            return v[0].split(":")[0] == n2.addr and v[1] == "alive" and v[2] in ("leader", "voter")
        try:
            wait_until(n2_member, 10, "n2 to be an alive voter at its own address on n1", 0.05)
        except TimeoutError:
            problems.append("n2 is not an alive voter at its own address on n1: %s" % members(n1))
        m = members(n1)
        import dbus
        cl = c.client(n1)

        def entered():
            try:
                return cl.op("enter", "after", "a1", flags=PERSISTENT)
            except dbus.DBusException as ex:
                entered.error = str(ex)
                return None
        entered.error = None
        try:
            wait_until(entered, 10, "an Enter on n1 to succeed", 0.1)
        except TimeoutError:
            problems.append("n1 does not serve an Enter within 10 s: %s" % entered.error)
        # n2's persistent candidacy may have been parked while the twin shut it out: it must be
        # back once the twin is gone ("persistent means until Leave/Evict")
        def all_back():
            t = term(n1, "e")
            return t and sorted(t[2]) == ["c1", "c2", "c3"]
        try:
            wait_until(all_back, 15, "c1, c2, c3 all candidates of e again", 0.1)
        except TimeoutError:
            problems.append("e's candidates on n1 are %s, not c1, c2, c3" % (term(n1, "e"),))
        bad = self.safety_violations(c)
        problems += [str(v) for v in bad]
        log = log_text(n4)
        if not exited:
            problems.append("the %s node still runs after 20 s" % what)
        elif n4.daemon.popen.returncode == 0:
            problems.append("the %s node exited with status 0" % what)
        if "duplicate" not in log.lower():
            problems.append("the %s node's log does not say \"duplicate\"" % what)
        print("%s node: exited=%s status=%s after %.1f s; members on n1: %s; problems: %d"
              % (what, exited, n4.daemon.popen.returncode, took, m, len(problems)))
        self.assertEqual(problems, [], "\n".join(problems) + "\n--- its log:\n"
                         + "\n".join(log.splitlines()[-15:]))

    def _three_of_four(self, **kw):
        c = self.make(4, start=["n1", "n2", "n3"], bootstrap_expect=3, **kw)
        n1, n2, n3, _n4 = c.nodes
        self.wait_formed(c, [n1, n2, n3])
        for n, cid in ((n1, "c1"), (n2, "c2"), (n3, "c3")):
            c.client(n).op("enter", "e", cid, flags=PERSISTENT)
        self.wait_local_leader(n1, "e", 5)
        return c

    def test_cloned_state_dir(self):
        """Hole: a node started on a copy of a running node's state directory (a cloned VM or
        disk image) reuses that node's Raft server id and channel identity under another Name;
        the cluster cannot tell the two apart. [Fixed: the duplicated id is detected on the wire
        and the newer process exits non-zero with an error mentioning a duplicate identity; the
        original node keeps running and the cluster keeps serving.] On main the clone runs on
        and takes n2's place: n1 lists n2 dead, n4 alive in its Raft role, n2 loses its lease
        and its persistent candidacy is dropped."""
        c = self._three_of_four()
        n2, n4 = c.node("n2"), c.node("n4")
        shutil.rmtree(n4.state_dir)
        shutil.copytree(n2.state_dir, n4.state_dir, symlinks=True)   # while n2 runs
        self._fourth_node_refused(c, n4, "cloned")

    def test_cloned_state_dir_cut_from_original(self):
        """Hole (found by the nemesis, kind clone, composed with cuts): a copy of n2's state
        directory started under another name while it and n2 cannot hear each other is never
        refused (neither hears the other's packets, where the twin check lives), and the peers,
        which keep the newest epoch of an id, take the copy's packets for n2's and drop n2's as
        replays. [Fixed: a third node that still hears n2's older epoch from another address 3 s
        after the copy appeared sends each one's packets on to the other; the copy, the newer,
        exits with "Duplicate identity", and n2 moves past it.] On main the copy runs on."""
        c = self._three_of_four()
        n2, n4 = c.node("n2"), c.node("n4")
        c.partition([["n2"], ["n4"]])                   # n1 and n3 hear both
        shutil.rmtree(n4.state_dir)
        shutil.copytree(n2.state_dir, n4.state_dir, symlinks=True)   # while n2 runs
        self._fourth_node_refused(c, n4, "cloned")

    def test_duplicate_name(self):
        """Hole: a second node with Name=n2 (fresh state) is not refused: two processes claim one
        node name. [Fixed: the newcomer exits non-zero within 20 s with an error mentioning a
        duplicate identity; n2 keeps running and stays a member.] On main the newcomer runs
        on, silently (it never serves), and says nothing."""
        c = self._three_of_four(node_config={"n4": {"Node": {"Name": "n2"}}})
        self._fourth_node_refused(c, c.node("n4"), "duplicate-name")

    def test_duplicate_name_cut_from_holder(self):
        """Hole (found by the nemesis, kind dupname): a member restarted under another member's
        name while it cannot hear that member (an inbound cut) is never refused, and the start-up
        DROP_RUN it forwards under the shared name ends the real holder's run: every later
        request of the holder is refused as stale until the holder restarts. [Fixed: the Raft
        leader takes forwarded commands only from the node id gossip knows by the commands'
        origin name (one holder per name); the intruder's DROP_RUN never commits and the holder
        serves on; the leader tells the intruder (MSG_NAME_IN_USE) and the intruder, which has not
        started serving, exits with status 1 saying "Duplicate identity".] On main: the holder's
        Enter fails after the intruder started, and the intruder runs on."""
        c = self.make(3)
        self.wait_formed(c)
        R = wait_until(lambda: raft_leader(c), 10, "one Raft leader")
        H, I = [n for n in c.nodes if n is not R]      # holder of the name, intruder
        ch = c.client(H)
        ch.op("enter", "e", "h1", flags=PERSISTENT)
        c.partition_oneway([I], [H])                    # I never hears H: no direct detection
        c.log_event("node_fault", node=I.name, nodes=[I.name, H.name], fault="dupname")
        I.terminate()
        c.node_config[I.name] = {"Node": {"Name": H.name}}
        I.write_config()
        I.start(wait=False)
        hold(4.0)   # the intruder's start-up batch goes (and is resent) to R meanwhile
        import dbus

        def entered():
            try:
                return ch.op("enter", "e", "h2", flags=PERSISTENT)
            except dbus.DBusException as ex:
                entered.error = str(ex)
                return None
        entered.error = None
        try:
            wait_until(entered, 10, "an Enter on the holder to succeed", 0.2)
            ok = True
        except TimeoutError:
            ok = False
        cands = (term(R, "e") or (0, "", []))[2]
        try:
            wait_until(lambda: not I.alive(), 10, "the intruder to refuse to run", 0.05)
        except TimeoutError:
            pass
        refused = not I.alive()
        rc = I.daemon.popen.returncode if refused else None
        said = "duplicate identity" in log_text(I).lower()
        print("intruder exited: %s (status %s, says duplicate: %s); holder's Enter: %s; e on %s: %s" % (
            refused, rc, said, "ok" if ok else entered.error, R.name, cands))
        if I.alive():
            I.kill()
        c.log_event("node_fault_end", node=I.name, nodes=[I.name, H.name], fault="dupname")
        self.assertTrue(ok, "the holder %s cannot Enter after %s started under its name: %s"
                        % (H.name, I.name, entered.error))
        self.assertIn("h1", cands)
        self.assertTrue(refused, "the intruder %s still runs under %s's name" % (I.name, H.name))
        self.assertEqual(rc, 1)
        self.assertTrue(said, "the intruder's log does not say \"Duplicate identity\"")

    def test_duplicate_name_via_third_node(self):
        """Hole (found by the nemesis, kind dupname composed with cuts): a new node under a
        member's name that cannot hear that member, nor the Raft leader (whose one-holder-per-name
        check would refuse its commands), runs on: the only node that hears both ignores the
        second id's ALIVE as a name conflict and tells neither. [Fixed: a third node that hears
        two live node ids announce one name passes each one's packet to the other, once a second;
        the newer exits with "Duplicate identity" (DESIGN.md rule 9).] On main the newcomer runs
        on for as long as the cut lasts."""
        c = self.make(4, start=["n1", "n2", "n3"], bootstrap_expect=3)
        n4 = c.node("n4")
        self.wait_formed(c, c.nodes[:3])
        R = wait_until(lambda: raft_leader(c, c.nodes[:3]), 10, "one Raft leader")
        H, T = [n for n in c.nodes[:3] if n is not R]   # holder of the name, the third node
        c.client(H).op("enter", "e", "h1", flags=PERSISTENT)
        c.node_config["n4"] = {"Node": {"Name": H.name}}
        n4.write_config()
        c.partition([[n4], [H, R]])                     # only T hears both
        t0 = time.monotonic()
        n4.start(wait=False)
        try:
            wait_until(lambda: not n4.alive(), 20, "the newcomer under %s's name to exit" % H.name, 0.05)
        except TimeoutError:
            pass
        took = time.monotonic() - t0
        refused = not n4.alive()
        rc = n4.daemon.popen.returncode if refused else None
        said = "duplicate identity" in log_text(n4).lower()
        relayed = "both announce the name" in log_text(T)
        print("newcomer exited: %s after %.1f s (status %s, says duplicate: %s); %s relayed: %s" % (
            refused, took, rc, said, T.name, relayed))
        if n4.alive():
            n4.kill()
        self.assertTrue(refused, "n4 still runs under %s's name after 20 s (only %s hears both)"
                        % (H.name, T.name))
        self.assertEqual(rc, 1)
        self.assertTrue(said, "n4's log does not say \"Duplicate identity\"")
        self.assertTrue(H.alive(), "the holder %s died: %s" % (H.name, H.log_tail(10)))
        c.heal()
        wait_until(lambda: local_leader(H, "e") is True, 10, "%s to lead e again" % H.name, 0.05)
        self.assert_safe(c)

    def test_restart_right_after_clone_under_its_name(self):
        """Finding of the nemesis (seed 4242, kinds clone + partition + kill): n3 killed, a copy of
        n2's state directory started as n3 (refused: "Duplicate identity"), then n3 started again
        at once on its own state. For a moment the Raft leader's gossip still has the name n3 on
        the copy's node id (the copy was the name's last live holder, and n3's own ALIVE is a name
        conflict until that holder is declared dead), so it refuses n3's start-up DROP_RUN with
        NAME_IN_USE. [Fixed: a node not yet serving gives up only after 3 s of refusals in a row,
        long enough for the leader's gossip to declare the copy dead; a real duplicate keeps being
        refused and still exits.] On main the restored n3 exited at once with "Duplicate
        identity" under its own name and state."""
        c = self.make(3)
        n1, n2, n3 = c.nodes
        self.wait_formed(c)
        for n, cid in ((n1, "c1"), (n2, "c2"), (n3, "c3")):
            c.client(n).op("enter", "e", cid, flags=PERSISTENT)
        self.wait_local_leader(n1, "e", 5)
        backup = n3.state_dir + ".own"
        n3.kill()
        # declared dead first, so that the copy's ALIVE replaces it as the holder of the name n3
        wait_until(lambda: all(members(x).get("n3", ("", "alive", ""))[1] == "dead" for x in (n1, n2)),
                   10, "n3 declared dead", 0.05)
        os.rename(n3.state_dir, backup)
        shutil.copytree(n2.state_dir, n3.state_dir, symlinks=True)
        c.log_event("node_fault", node=n3.name, nodes=[n3.name, n2.name], fault="clone")
        n3.start(wait=False)
        # the copy holds the name n3 in the Raft leader's gossip; it stops before it is declared
        # dead (here by SIGKILL, as soon as both list n3 alive again; in the nemesis run it
        # exited on its own, refused), and n3 restarts at once
        R = wait_until(lambda: raft_leader(c, [n1, n2]), 10, "one Raft leader")
        wait_until(lambda: members(R).get("n3", ("", "dead", ""))[1] == "alive" or not n3.alive(),
                   10, "the copy under n3's name listed alive by the Raft leader", 0.02)
        if n3.alive():
            n3.kill()
        shutil.rmtree(n3.state_dir)
        os.rename(backup, n3.state_dir)
        c.log_event("node_fault_end", node=n3.name, nodes=[n3.name, n2.name], fault="clone")
        n3.start(wait=False)                            # at once: the copy was n3's last holder
        try:
            n3.wait_ready(20)
        except (TimeoutError, RuntimeError) as e:
            self.fail("n3 on its own state did not come back: %s" % e)
        # the copy's epoch made n1 drop n2's packets for a while: leads may move, persistent
        # candidacies are parked and come back (rule 10)
        want = {"c1", "c2", "c3"}
        wait_until(lambda: all(set((term(x, "e") or (0, "", ()))[2]) == want for x in c.nodes), 15,
                   "c1, c2, c3 all listed in e on every node", 0.1)
        self.assertTrue(n3.alive())
        self.assert_safe(c)

    # =========================================================================================
    def test_failing_disk_is_fail_stop(self):
        """Finding of the nemesis (kind disk_fail): a node whose state directory starts failing
        writes (EIO) died of SIGABRT/SIGSEGV inside libraft on the paths other than the leader's
        own appends (a follower's appends, the term and vote, snapshots). [Fixed: every write
        libraft asks of its storage goes through the engine's checks; a failure stops the daemon
        with status 1 and "Writing the Raft log" in its log, on a follower and on the Raft
        leader; the others carry on.]"""
        so = os.path.join(os.environ.get("EDH_SHIM_DIR") or os.path.join(
            os.environ.get("ELECTIOND_BUILD_ROOT", "build"), "tests"), "edh-faultfs.so")
        self.assertTrue(os.path.exists(so), "the fault shim is not built: %s" % so)
        c = self.make(3, start=[])
        ctl = {}
        for n in c.nodes:
            ctl[n.name] = os.path.join(n.dir, "faultfs.ctl")
            n.env.update({"LD_PRELOAD": so, "EDH_FAULTFS_DIR": n.state_dir, "EDH_FAULTFS_CTL": ctl[n.name]})
            n.start(wait=False)
        for n in c.nodes:
            n.wait_ready(20)
        self.wait_formed(c)
        k = [0]

        def load_until_gone(victim, others):
            deadline = time.monotonic() + 15
            while victim.alive() and time.monotonic() < deadline:
                k[0] += 1
                try:
                    c.client(others[k[0] % len(others)]).op("enter", "d", "x%d" % k[0])
                except Exception:
                    pass
                hold(0.05)
            return not victim.alive()

        results = []
        for role in ("follower", "leader"):
            R = wait_until(lambda: raft_leader(c), 15, "one Raft leader")
            victim = R if role == "leader" else [n for n in c.nodes if n is not R][0]
            others = [n for n in c.nodes if n is not victim]
            with open(ctl[victim.name], "w") as f:
                f.write("fail\n")
            gone = load_until_gone(victim, others)
            rc = victim.daemon.popen.returncode if gone else None
            text = log_text(victim)
            results.append((role, victim.name, gone, rc, "Writing the Raft log" in text or
                            "was not written" in text or "Storing" in text))
            os.unlink(ctl[victim.name])
            if gone:
                victim.start(wait=False)
                victim.wait_ready(20)
                self.wait_formed(c)
        print("failing disk: %s" % results)
        for role, name, gone, rc, said in results:
            self.assertTrue(gone, "the %s %s kept running on a failing disk for 15 s" % (role, name))
            self.assertEqual(rc, 1, "the %s %s ended with %s on a failing disk (want status 1)" % (role, name, rc))
            self.assertTrue(said, "the %s %s did not log why it stopped" % (role, name))

    # =========================================================================================
    def test_frozen_daemon_child(self):
        """Hole: `electionctl run` stops its command only when the daemon tells it (a signal or
        the connection closing). A frozen (SIGSTOPped) electiond tells nothing, so the command
        runs on past the lease while the cluster hands the election to another node.
        [Fixed: the command gets SIGTERM (and exits) before any other node reports
        LocalLeader=true for e.] An ordering assertion, not a timing threshold. On main another
        node leads 0.35-0.5 s after the SIGSTOP and the command never gets SIGTERM."""
        if not os.access(ELECTIONCTL, os.X_OK):
            self.skipTest("electionctl not built at %s" % ELECTIONCTL)
        c = self.make(3)
        self.wait_formed(c)
        R = wait_until(lambda: raft_leader(c), 10, "one Raft leader")
        X = [n for n in c.nodes if n is not R][0]   # a follower: the others keep their Raft leader
        rest = [n for n in c.nodes if n is not X]
        e = "fz"
        stamp = os.path.join(c.dir, "fz")
        code = ("import os,signal,sys,time\n"
                "p=sys.argv[1]\n"
                "def w(s):\n"
                "    with open(p+'.'+s+'.tmp','w') as f:\n"
                "        f.write('%d %d' % (time.monotonic_ns(), os.getpid()))\n"
                "    os.rename(p+'.'+s+'.tmp', p+'.'+s)\n"
                "def h(*a):\n"
                "    w('term'); os._exit(0)\n"
                "signal.signal(signal.SIGTERM,h)\n"
                "w('start')\n"
                "while True: signal.pause()\n")
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=X.bus_address)
        run = cluster.Proc(netns.ns_argv(X.ns, [ELECTIONCTL, "run", e, "--id", "x", "--stop-timeout", "30",
                                               "--", cluster.PY, "-c", code, stamp]),
                           os.path.join(c.dir, "electionctl-run.log"), env=env, registry=c.procs)
        wait_until(lambda: os.path.exists(stamp + ".start"), 10, "the command to start as leader", 0.02)
        for i, n in enumerate(rest):
            c.client(n).op("enter", e, "o%d" % i, flags=PERSISTENT)
        self.assertEqual(term(X, e)[1], "x")
        self.wait_local_leader(X, e, 5)
        t_stop = cluster.now_ns()
        X.stop()
        try:
            try:
                wait_until(lambda: self.leader_records(c, e, t_stop) and
                           any(r["node"] != X.name for r in self.leader_records(c, e, t_stop)), 10,
                           "another node to report LocalLeader for %s" % e, 0.02)
            except TimeoutError:
                pass
            try:
                wait_until(lambda: os.path.exists(stamp + ".term"), 3, "the command's SIGTERM", 0.02)
            except TimeoutError:
                pass
            others = [r for r in self.leader_records(c, e, t_stop) if r["node"] != X.name]
            t_other = min((r["t"] for r in others), default=None)
            t_term = None
            if os.path.exists(stamp + ".term"):
                with open(stamp + ".term") as f:
                    t_term = int(f.read().split()[0])
            with open(stamp + ".start") as f:
                pid = int(f.read().split()[1])
            running = netns.pid_alive(pid)
        finally:
            X.cont()
        fmt = lambda t: "never" if t is None else "%+.0f ms" % ((t - t_stop) / 1e6)  # noqa: E731
        print("after SIGSTOP of %s's electiond: another node LocalLeader at %s, command SIGTERM at %s, "
              "command still running: %s" % (X.name, fmt(t_other), fmt(t_term), running))
        run.terminate()
        self.assertIsNotNone(t_other, "no other node took the election over within 10 s")
        self.assertIsNotNone(t_term, "the leader command never got SIGTERM while its electiond was "
                                     "frozen (another node led from %s)" % fmt(t_other))
        self.assertLess(t_term, t_other, "the command got SIGTERM at %s, after another node reported "
                                         "LocalLeader=true at %s" % (fmt(t_term), fmt(t_other)))
        self.assert_safe(c)

    # =========================================================================================
    def test_handover_ignores_dead_member(self):
        """Hole: after a hand-over the new leader's node waits for APPLIED from every other Raft
        member, including one that is dead (SIGKILLed, not yet removed); it therefore always falls
        back to the no-confirmation wait G + Lease·1.01 + 0.1. [Fixed: a member that did not
        confirm is not waited for once a majority of the other voters attest that none of their
        grants can still back a lease of it (rule 4 of docs/DESIGN.md).]

        A member killed a moment ago cannot be told from one that is merely cut off until its
        possible lease has run out (Lease·1.01 + 0.1 after its last grant): so the Anoint comes
        once that bound has passed since the kill. LeaseSec=3, NodeTimeoutSec=4 make the fallback
        wait ≈ 1.5 + 3.03 + 0.1 ≈ 4.6 s, far from the round trip the attested hand-over takes;
        the 1 s bound tells which rule applied, it is not a speed claim.
        On main: 4.63 s; with every member alive: 6 ms."""
        lease = 3.0
        c = self.make(3, config={"Cluster": {"LeaseSec": "3", "NodeTimeoutSec": "4"}})
        self.wait_formed(c)
        R = wait_until(lambda: raft_leader(c), 10, "one Raft leader")
        D = [n for n in c.nodes if n is not R][0]        # dies; not the Raft leader, owns nothing
        A, B = [n for n in c.nodes if n is not D]
        e = "ho"
        c.client(A).op("enter", e, "a", flags=PERSISTENT)
        cb = c.client(B)
        cb.op("enter", e, "b", flags=PERSISTENT)
        self.wait_local_leader(A, e, 10)
        D.kill()
        t_kill = time.monotonic()
        # the condition is the lease bound itself: nothing observable ends it earlier
        bound = lease * 1.01 + 0.1 + 0.2
        wait_until(lambda: time.monotonic() - t_kill > bound, bound + 5, "the dead member's possible lease to end")
        t = cb.op("anoint", e, "b")
        t_reply = time.monotonic()
        self.assertEqual(t[1], "b")
        wait_until(lambda: local_leader(B, e), 15, "b's node to lead", 0.005)
        waited = time.monotonic() - t_reply
        print("LocalLeader on b's node %.3f s after the Anoint reply (dead member %s)" % (waited, D.name))
        self.assert_safe(c)
        self.assertLess(waited, 1.0, "b's node waited %.2f s: it waited for the dead member's APPLIED "
                                     "(the no-confirmation fallback) instead of attestations" % waited)

    # =========================================================================================
    def test_follower_catches_up_after_long_cut(self):
        """Hole (found by the nemesis, seed 231207181): a follower restarted while it is cut off
        stays behind for 10 to 25 s after the heal. The Raft stream is TCP: the old process's
        FIN/RST is lost in the cut, so the Raft leader's connection to it stays "established",
        its retransmission timer doubling (0.2, 0.4 … 6.4, 12.8 s) and never closed; the
        leader answers the restarted follower on that dead connection, and nothing reaches it
        until a retransmission draws the new kernel's RST. [Fixed: the Raft connections carry
        TCP_USER_TIMEOUT (AUTH_TRANSPORT_USER_TIMEOUT_MSEC): data unacknowledged for that long
        ends the connection, libraft connects again, and the follower catches up within a
        second or two of the heal.] With the 14 s cut the next retransmission comes ≈ 11 s after
        the heal; the 5 s bound tells the two apart, it is not a speed claim. On main: 12 s in
        4 of 5 runs."""
        c = self.make(3)
        self.wait_formed(c)
        R = wait_until(lambda: raft_leader(c), 10, "one Raft leader")
        F = [n for n in c.nodes if n is not R][0]
        M = [n for n in c.nodes if n is not F]
        c.client(R).op("enter", "cu", "before", flags=PERSISTENT)
        wait_until(lambda: all((term(n, "cu") or (0, "", []))[2] == ["before"] for n in c.nodes), 10,
                   "every node to see the first candidate")
        c.partition([[F], M])
        t_cut = time.monotonic()
        hold(1.0)
        F.terminate()              # its FIN is lost in the cut
        F.start(wait=False)
        k = 0
        while time.monotonic() - t_cut < 14:
            # log entries the follower misses (a NoQuorum now and then is fine: R may change)
            k += 1
            try:
                c.client(M[k % 2]).op("enter", "cu", "during%d" % k, flags=PERSISTENT)
            except Exception:
                pass
            hold(0.5)
        c.heal()
        t_heal = time.monotonic()
        self.assertTrue(F.alive(), "%s exited: %s" % (F.name, F.log_tail()))

        def same():
            want = term(M[0], "cu")
            return want is not None and want == term(M[1], "cu") and term(F, "cu") == want
        try:
            wait_until(same, 30, "%s to catch up after the heal" % F.name, 0.02)
            caught = time.monotonic() - t_heal
        except TimeoutError:
            caught = None
        print("follower %s caught up %s after the heal" % (
            F.name, "never (30 s)" if caught is None else "%.2f s" % caught))
        self.assert_safe(c)
        self.assertIsNotNone(caught, "%s never caught up within 30 s of the heal" % F.name)
        self.assertLess(caught, 5.0, "%s caught up only %.1f s after the heal: the Raft leader's "
                                     "connection waited for a TCP retransmission" % (F.name, caught))

CASES = [m[len("test_"):] for m in sorted(dir(Composed)) if m.startswith("test_")]


def main():
    why = netns.usable()
    if why:
        print("SKIP: cluster tests need root and ip netns: %s" % why)
        return 77
    names = []
    for a in sys.argv[1:]:
        if a in CASES:
            names.append("Composed.test_" + a)
        elif a.startswith("test_") and a[5:] in CASES:
            names.append("Composed." + a)
        else:
            names.append(a)
    loader = unittest.defaultTestLoader
    suite = loader.loadTestsFromNames(names, sys.modules[__name__]) if names \
        else loader.loadTestsFromModule(sys.modules[__name__])
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    if not res.wasSuccessful():
        return 1
    if res.testsRun and len(res.skipped) == res.testsRun:
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
