#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fault-injection scenarios (issue 5 §2): clients entering and leaving on every node while
random faults hit the cluster; ends with the history checker's verdict.

    scenario.py [--nodes 3] [--duration 60] [--faults all|kill,stop,...] [--seed N]
                [--out history.jsonl] [--bound 10]

Faults: kill (random node), kill_leader (node of an election's leader, or of the Raft leader),
stop_leader (SIGSTOP longer than NodeTimeout, then SIGCONT), partition (random minority),
isolate_leader, oneway, flap (bridge down/up), loss (20%), rolling (rolling restart),
restart_all (whole cluster). After each fault the harness heals, writes "healed" and waits (up to
--bound) for the nodes to agree. Exit status: the checker's (0 ok, 1 violations); 77 when the
daemon runs standalone because clustering is not available in this build.
"""

import argparse
import os
import random
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "checker"))
import cluster  # noqa: E402
import netns  # noqa: E402
import check_history  # noqa: E402

ALL_FAULTS = ["kill", "kill_leader", "stop_leader", "partition", "isolate_leader", "oneway", "flap",
              "loss", "rolling", "restart_all"]


def say(msg):
    print("[%8.3f] %s" % (time.monotonic() % 100000, msg), flush=True)


class Workload:
    """One thread per client; each enters and leaves its own id in random elections."""

    def __init__(self, c, elections, per_node, seed):
        self.c = c
        self.elections = elections
        self.stop = threading.Event()
        self.threads = []
        self.ops = 0
        self.failed = 0
        for node in c.nodes:
            for k in range(per_node):
                self.threads.append(threading.Thread(target=self.run, daemon=True,
                                                     args=(node, "%s-c%d" % (node.name, k),
                                                           random.Random(seed * 1000 + len(self.threads)))))

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def run(self, node, name, rng):
        import dbus
        client = None
        entered = set()
        while not self.stop.is_set():
            try:
                if client is None:
                    client = self.c.client(node, name)
                    entered = set()   # a new connection owns nothing yet
                e = rng.choice(self.elections)
                r = rng.random()
                if e in entered and r < 0.4:
                    client.op("leave", e, name, timeout=8)
                    entered.discard(e)
                elif e in entered and r < 0.5:
                    client.op("anoint", e, name, timeout=8)
                else:
                    client.op("enter", e, name, flags=1 if rng.random() < 0.2 else 0, timeout=8)
                    entered.add(e)
                self.ops += 1
            except dbus.DBusException as ex:
                self.failed += 1
                if ex.get_dbus_name() in ("org.freedesktop.DBus.Error.Disconnected",
                                          "org.freedesktop.DBus.Error.NoServer"):
                    if client is not None:
                        client.close()
                    client = None
            except Exception:
                self.failed += 1
                if client is not None:
                    client.close()
                client = None
                if self.stop.wait(0.5):   # the bus itself is gone (teardown): do not spin
                    break
            self.stop.wait(rng.uniform(0.05, 0.3))   # pacing between operations
        if client is not None:
            client.close()


class Scenario:
    def __init__(self, c, rng, bound):
        self.c = c
        self.rng = rng
        self.bound = bound
        self.crashes = []   # daemons that died or hung on start

    def hold(self, lo, hi):
        time.sleep(self.rng.uniform(lo, hi))   # the fault's duration (part of the scenario)

    def live(self):
        return self.c.live_nodes()

    def leader_node(self):
        """Node of some election's leader (candidate ids are "<node>-c<k>"), else the Raft leader."""
        for n in self.live():
            try:
                snap = n.snapshot()
            except Exception:
                continue
            leaders = [v[1] for v in snap.values() if v[1]]
            if leaders:
                name = self.rng.choice(leaders).split("-")[0]
                try:
                    return self.c.node(name)
                except KeyError:
                    pass
            try:
                for m in n.manager_prop("Members"):
                    if str(m[3]) == "leader":
                        return self.c.node(str(m[0]))
            except Exception:
                pass
        return self.rng.choice(self.c.nodes)

    def start(self, n, wait=True):
        """Starts n's daemon; a daemon that dies or hangs on start is recorded as a crash."""
        try:
            n.start(wait=False)
            if wait:
                n.wait_ready(20)
        except (RuntimeError, TimeoutError) as e:
            msg = str(e).splitlines()[0]
            say("CRASH: %s" % msg)
            self.crashes.append("%s: %s\n%s" % (n.name, msg, n.log_tail(15)))
            self.c.log_event("start_failed", node=n.name, error=msg)
            if n.alive():
                n.kill()

    def restart(self, n, graceful=False):
        if n.alive():
            (n.terminate if graceful else n.kill)()
        self.start(n)

    def settle(self):
        self.c.heal()
        for n in self.c.nodes:
            if not n.alive():
                self.start(n)
        try:
            self.c.wait_converged(self.bound)
        except TimeoutError as e:
            say("not converged: %s" % e)

    # --- faults ---------------------------------------------------------------------------
    def f_kill(self):
        if not self.live():
            return
        n = self.rng.choice(self.live())
        say("kill %s" % n.name)
        n.kill()
        self.hold(0.5, 3)
        self.start(n)

    def f_kill_leader(self):
        n = self.leader_node()
        say("kill leader's node %s" % n.name)
        n.kill()
        self.hold(0.5, 3)
        self.start(n)

    def f_stop_leader(self):
        n = self.leader_node()
        say("SIGSTOP leader's node %s" % n.name)
        n.stop()
        self.hold(1.5, 3)      # longer than NodeTimeout (0.35 s by default)
        n.cont()

    def f_partition(self):
        nodes = list(self.c.nodes)
        self.rng.shuffle(nodes)
        k = self.rng.randint(1, (len(nodes) - 1) // 2)
        say("partition %s | %s" % ([n.name for n in nodes[:k]], [n.name for n in nodes[k:]]))
        self.c.partition([nodes[:k], nodes[k:]])
        self.hold(1.5, 4)

    def f_isolate_leader(self):
        n = self.leader_node()
        say("isolate leader's node %s" % n.name)
        self.c.partition([[n], [m for m in self.c.nodes if m is not n]])
        self.hold(1.5, 4)

    def f_oneway(self):
        n = self.rng.choice(self.c.nodes)
        others = [m for m in self.c.nodes if m is not n]
        srcs = self.rng.sample(others, self.rng.randint(1, len(others)))
        say("%s drops inbound from %s" % (n.name, [m.name for m in srcs]))
        self.c.partition_oneway([n], srcs)
        self.hold(1.5, 4)

    def f_flap(self):
        say("bridge flap")
        for _ in range(self.rng.randint(1, 3)):
            self.c.bridge_down()
            self.hold(0.2, 1.0)
            self.c.bridge_up()
            self.hold(0.2, 1.0)

    def f_loss(self):
        say("20% loss")
        self.c.loss(20)
        self.hold(2, 4)

    def f_rolling(self):
        say("rolling restart")
        for n in self.c.nodes:
            self.restart(n, graceful=True)
            try:
                self.c.wait_converged(self.bound)
            except TimeoutError as e:
                say("not converged during rolling restart: %s" % e)

    def f_restart_all(self):
        say("whole-cluster restart")
        for n in self.c.nodes:
            if n.alive():
                n.kill()
        self.hold(0.2, 1)
        for n in self.c.nodes:
            self.start(n, wait=False)
        for n in self.c.nodes:
            if n.alive():
                try:
                    n.wait_ready(20)
                except (RuntimeError, TimeoutError) as e:
                    self.crashes.append("%s: %s" % (n.name, str(e).splitlines()[0]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--duration", type=float, default=60, help="seconds of faults")
    ap.add_argument("--faults", default="all")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--elections", type=int, default=3)
    ap.add_argument("--clients-per-node", type=int, default=1)
    ap.add_argument("--bound", type=float, default=10.0, help="convergence bound after a heal")
    ap.add_argument("--out", default=None, help="write the history here")
    ap.add_argument("--config", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="extra electiond.conf setting for every node")
    ap.add_argument("--known-bug", action="append", default=[], metavar="KIND",
                    help="report violations of this kind as a known bug without failing (repeatable)")
    ap.add_argument("--standalone", action="store_true",
                    help="smoke-test the scenario machinery on standalone daemons (verdict meaningless)")
    a = ap.parse_args(argv)

    why = netns.usable()
    if why:
        print("SKIP: scenarios need root and ip netns: %s" % why)
        return 77
    faults = ALL_FAULTS if a.faults == "all" else a.faults.split(",")
    for f in faults:
        if f not in ALL_FAULTS:
            ap.error("unknown fault %r (known: %s)" % (f, ", ".join(ALL_FAULTS)))
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)
    config = {"Node": {"CommitTimeoutSec": "2"}}
    for kv in a.config:
        key, val = kv.split("=", 1)
        sec, key = key.split(".", 1)
        config.setdefault(sec, {})[key] = val
    say("seed %d, %d nodes, faults %s" % (seed, a.nodes, ",".join(faults)))

    with cluster.Cluster(a.nodes, config=config, history_path=a.out, clustered=not a.standalone) as c:
        c.start()
        s_obj = s = Scenario(c, rng, a.bound)
        try:
            c.wait_converged(30)
        except TimeoutError as e:
            say("cluster did not form: %s" % e)
        w = Workload(c, ["s%d" % i for i in range(a.elections)], a.clients_per_node, seed)
        w.start()
        end = time.monotonic() + a.duration
        n_faults = 0
        while time.monotonic() < end:
            f = rng.choice(faults)
            getattr(s, "f_" + f)()
            s.settle()
            n_faults += 1
            time.sleep(rng.uniform(0.5, 1.5))   # quiet time between faults
        w.finish()
        s.settle()
        c.write_final()
        res = check_history.check(c.history(), convergence_bound=a.bound)
        say("%d faults, %d client operations (%d failed)" % (n_faults, w.ops, w.failed))

    s = res.summary
    print("history: %d records, %.1fs, %d elections, %d terms, %d LocalLeader claims, "
          "%d acknowledged enters, %d heals checked" % (s["records"], s["duration_sec"], s["elections"],
                                                        s["terms"], s["claims"], s["acked_enters"],
                                                        s["heals_checked"]))
    if a.out:
        print("history written to %s" % a.out)
    for crash in s_obj.crashes:
        print("  CRASH %s" % crash)
    known = [v for v in res.violations if v.kind in a.known_bug]
    bad = [v for v in res.violations if v.kind not in a.known_bug]
    for v in known:
        print("  KNOWN BUG %s" % v)
    if not bad and not s_obj.crashes:
        print("OK: no violations%s (seed %d)" % (" beyond %d of known kinds" % len(known) if known else "", seed))
        return 0
    print("FAILED: %d violation(s), %d daemon crash(es) (seed %d)" % (len(bad), len(s_obj.crashes), seed))
    for v in bad:
        print("  VIOLATION %s" % v)
    return 1


if __name__ == "__main__":
    sys.exit(main())
