#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Fault-injection scenarios (issues 5 §2 and 10): clients entering, leaving, anointing,
promoting and evicting on every node while a composing nemesis (nemesis.py) hits the cluster;
ends with three verdicts (safety: check_history.py, linearizability: linearizability.py,
liveness: liveness.py) and a summary table.

    scenario.py [--nodes 3] [--duration 60] [--faults LIST] [--compose 3] [--seed N]
                [--out history.jsonl] [--bound 10] [--clock-skew [--clock-rate 0.25]] [--legacy]

--faults is a comma-separated list of fault kinds (nemesis.KINDS) and groups: all (every kind
inside the assumptions), net, process, node, ci (the meson CI subset), ci-fixed (the CI subset
for a daemon with the lead's safety fixes). --compose N: at most N faults active at once (1 = one
at a time, but still healed in any order). --clock-skew adds the clock-rate fault, which is
outside the assumptions: the checkers are then expected to fail. --legacy runs the old one fault
at a time generator (kill, kill_leader, stop_leader, partition, isolate_leader, oneway, flap,
loss, rolling, restart_all) instead. The seed is printed; a run replays from --seed (the fault
sequence is the seed's; which node leads at a given instant can differ). Exit status: 0 all
verdicts OK, 1 violations, findings or daemon crashes; 77 when clustering is not available.
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
import linearizability  # noqa: E402
import liveness  # noqa: E402
import nemesis  # noqa: E402

LEGACY_FAULTS = ["kill", "kill_leader", "stop_leader", "partition", "isolate_leader", "oneway", "flap",
              "loss", "rolling", "restart_all"]
GROUPS = {
    "all": [k for k in nemesis.KINDS if k not in nemesis.OUTSIDE_ASSUMPTIONS],
    "net": nemesis.NET_KINDS,
    "process": nemesis.PROCESS_KINDS,
    "node": nemesis.NODE_KINDS,
    # The meson CI subset. "ci-fixed" needs the lead's daemon fixes (voter restart during a
    # partition, timing settings refused, persistent candidacies surviving a fence, duplicate
    # identities refused, one-way cut leaders dropped); switch meson's cluster-nemesis to it after
    # merging them. "ci" is what today's main passes.
    "ci": ["partition", "isolate_raft_leader", "isolate_leader", "bridge", "loss", "flap",
           "pause_short", "pause", "disk_slow"],
    "ci-fixed": ["partition", "isolate_raft_leader", "isolate_leader", "bridge", "ring", "oneway",
                 "loss", "flap", "kill", "kill_leader", "kill_raft_leader", "pause", "pause_leader",
                 "pause_raft_leader", "pause_short", "timing", "clone", "dupname", "disk_slow"],
    # meson's cluster-scenarios: ci-fixed without the identity faults
    "ci-composed": ["partition", "isolate_raft_leader", "isolate_leader", "bridge", "ring", "oneway",
                    "loss", "flap", "kill", "kill_leader", "kill_raft_leader", "pause", "pause_leader",
                    "pause_raft_leader", "pause_short", "timing", "disk_slow"],
}


def say(msg):
    print("[%8.3f] %s" % (time.monotonic() % 100000, msg), flush=True)


class Workload:
    """One thread per client; each enters, leaves, anoints and promotes its own id in random
    elections (persistently in the first one) and now and then evicts any client's id (not in
    the first election)."""

    def __init__(self, c, elections, per_node, seed, evict=True):
        self.c = c
        self.elections = elections
        self.evict = evict
        self.stop = threading.Event()
        self.threads = []
        self.ops = 0
        self.failed = 0
        self.by_op = {}       # op -> [ok, failed]
        self.lock = threading.Lock()
        self.ids = ["%s-c%d" % (n.name, k) for n in c.nodes for k in range(per_node)]
        for node in c.nodes:
            for k in range(per_node):
                self.threads.append(threading.Thread(target=self.run, daemon=True,
                                                     args=(node, "%s-c%d" % (node.name, k),
                                                           random.Random(seed * 1000 + len(self.threads)))))

    def count(self, op, fn, *args, **kw):
        try:
            fn(*args, **kw)
        except Exception:
            with self.lock:
                self.by_op.setdefault(op, [0, 0])[1] += 1
            raise
        with self.lock:
            self.by_op.setdefault(op, [0, 0])[0] += 1
            self.ops += 1

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
                if e in entered and r < 0.35:
                    self.count("leave", client.op, "leave", e, name, timeout=8)
                    entered.discard(e)
                elif e in entered and r < 0.45:
                    self.count("anoint", client.op, "anoint", e, name, timeout=8)
                elif e in entered and r < 0.55:
                    self.count("promote", client.op, "promote", e, name, timeout=8)
                elif r < 0.58 and self.evict and e != self.elections[0]:
                    victim = rng.choice(self.ids)
                    self.count("evict", client.op, "evict", e, victim, timeout=8)
                else:
                    # the first election's candidacies are persistent (liveness: lost-candidacy)
                    persistent = e == self.elections[0] or rng.random() < 0.2
                    self.count("enter", client.op, "enter", e, name, flags=1 if persistent else 0,
                               timeout=8)
                    entered.add(e)
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


def expand_faults(spec, clock):
    kinds = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        for k in GROUPS.get(part, [part]):
            if k not in nemesis.KINDS:
                raise ValueError("unknown fault %r (known: %s; groups: %s)"
                                 % (k, ", ".join(nemesis.KINDS), ", ".join(GROUPS)))
            if k not in kinds:
                kinds.append(k)
    if clock and "clock" not in kinds:
        kinds.append("clock")
    if "clock" in kinds and not clock:
        raise ValueError("the clock fault is outside the assumptions: ask for it with --clock-skew")
    return kinds


def table(rows, head):
    w = [max(len(str(x)) for x in col) for col in zip(head, *rows)] if rows else [len(h) for h in head]
    line = "  ".join("%-*s" % (w[i], h) for i, h in enumerate(head))
    out = [line, "  ".join("-" * x for x in w)]
    for r in rows:
        out.append("  ".join("%-*s" % (w[i], r[i]) for i in range(len(r))))
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--duration", type=float, default=60, help="seconds of faults")
    ap.add_argument("--faults", default="all", help="fault kinds and groups, comma-separated")
    ap.add_argument("--compose", type=int, default=3, help="most faults active at once (default 3)")
    ap.add_argument("--hold", default="0.5,4", metavar="LO,HI",
                    help="seconds between two nemesis moves (default 0.5,4)")
    ap.add_argument("--clock-skew", action="store_true",
                    help="add the clock-rate fault (outside the assumptions: expect violations)")
    ap.add_argument("--clock-rate", type=float, default=0.25, help="clock rate of the skewed node")
    ap.add_argument("--legacy", action="store_true", help="the old one-fault-at-a-time generator")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--elections", type=int, default=3)
    ap.add_argument("--clients-per-node", type=int, default=1)
    ap.add_argument("--bound", type=float, default=10.0, help="convergence/liveness bound after a heal")
    ap.add_argument("--out", default=None, help="write the history here")
    ap.add_argument("--config", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="extra electiond.conf setting for every node")
    ap.add_argument("--known-bug", action="append", default=[], metavar="KIND",
                    help="report violations of this kind as a known bug without failing (repeatable)")
    ap.add_argument("--no-linearizability", action="store_true", help="skip the linearizability checker")
    ap.add_argument("--lin-budget", type=int, default=linearizability.DEFAULT_BUDGET,
                    help="linearizability search steps per election")
    ap.add_argument("--standalone", action="store_true",
                    help="smoke-test the scenario machinery on standalone daemons (verdict meaningless)")
    a = ap.parse_args(argv)

    why = netns.usable()
    if why:
        print("SKIP: scenarios need root and ip netns: %s" % why)
        return 77
    if a.legacy:
        faults = LEGACY_FAULTS if a.faults == "all" else a.faults.split(",")
        for f in faults:
            if f not in LEGACY_FAULTS:
                ap.error("unknown legacy fault %r (known: %s)" % (f, ", ".join(LEGACY_FAULTS)))
    else:
        try:
            faults = expand_faults(a.faults, a.clock_skew)
        except ValueError as e:
            ap.error(str(e))
        named = set(a.faults.split(","))
        for k in list(faults):
            shim = nemesis.SHIM_KINDS.get(k)
            if shim and not nemesis.shim_path(shim) and k not in named:
                say("WARNING: %s left out: build/tests/edh-%s.so not found (set EDH_SHIM_DIR)" % (k, shim))
                faults.remove(k)
    hold = tuple(float(x) for x in a.hold.split(","))
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 30)
    rng = random.Random(seed)
    config = {"Node": {"CommitTimeoutSec": "2"}}
    for kv in a.config:
        key, val = kv.split("=", 1)
        sec, key = key.split(".", 1)
        config.setdefault(sec, {})[key] = val
    say("seed %d, %d nodes, compose %d, faults %s" % (seed, a.nodes, 1 if a.legacy else a.compose,
                                                      ",".join(faults)))
    rec_args = ["--receipt-time"] if "clock" in faults else []
    nem = None
    with cluster.Cluster(a.nodes, config=config, history_path=a.out, clustered=not a.standalone,
                         recorder_args=rec_args) as c:
        if not a.legacy:
            try:
                nem = nemesis.Nemesis(c, rng, faults, compose=a.compose, bound=a.bound,
                                      clock_rate=a.clock_rate, hold=hold)
            except RuntimeError as e:
                print("SKIP: %s" % e)
                return 77
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
        legacy_counts = {}
        while time.monotonic() < end:
            if nem is not None:
                nem.step()
                continue
            f = rng.choice(faults)
            legacy_counts[f] = legacy_counts.get(f, 0) + 1
            getattr(s, "f_" + f)()
            s.settle()
            n_faults += 1
            time.sleep(rng.uniform(0.5, 1.5))   # quiet time between faults
        if nem is not None:
            nem.heal_all()
            # a quiet tail, so that the liveness checks can judge the last heal within --bound
            t_heal = time.monotonic()
            cluster.wait_until(lambda: time.monotonic() >= t_heal + a.bound + 0.5, a.bound + 10,
                               "the quiet tail", 0.2)
        w.finish()
        s.settle()
        if nem is not None:
            nem.collect_stalls(final=True)
        c.write_final()
        recs = c.history()
        say("checking %d records" % len(recs))
        # with receipt-time stamps (clock fault) hand-overs look a few ms late: tolerate 50 ms
        res = check_history.check(recs, convergence_bound=a.bound, tolerance=0.05 if rec_args else 0.0)
        lin = None if a.no_linearizability else linearizability.check(recs, budget=a.lin_budget)
        live = liveness.check(recs, bound=a.bound)
        say("%d client operations (%d failed)" % (w.ops, w.failed))

    counts = nem.counts if nem is not None else legacy_counts
    crashes = list(s_obj.crashes) + (nem.crashes if nem else [])
    findings = nem.findings if nem else []
    sm = res.summary
    print()
    print("== faults (seed %d) ==" % seed)
    print(table([(k, counts[k]) for k in sorted(counts)], ["kind", "started"]))
    if nem is not None:
        print("expected exits (refused duplicates, failed disks): %d" % nem.expected_exits)
        print("duplicates not judged (could not hear their original for 10 s): %d" % nem.unjudged)
    print()
    print("== operations ==")
    print(table([(k, v[0], v[1]) for k, v in sorted(w.by_op.items())], ["op", "ok", "failed"]))
    print()
    print("== history ==")
    print("%d records, %.1fs, %d elections, %d terms, %d LocalLeader claims, %d acknowledged enters, "
          "%d heals checked" % (sm["records"], sm["duration_sec"], sm["elections"], sm["terms"], sm["claims"],
                                sm["acked_enters"], sm["heals_checked"]))
    if lin is not None:
        ls = lin.summary
        print("linearizability: %d elections, %d calls (%d indeterminate), %d search steps%s"
              % (ls["elections"], ls["calls"], ls["indeterminate"], ls["steps"],
                 "; UNDECIDED (budget): %s" % ",".join(ls["unknown"]) if ls["unknown"] else ""))
    print("liveness: %(heals_checked)d heals, %(persistent_checked)d persistent candidacies, "
          "%(step_downs_checked)d step-downs, %(mismatched_checked)d mismatched-timing windows checked"
          % live.summary)
    if a.out:
        print("history written to %s" % a.out)
    allv = [("safety", v) for v in res.violations] + [("linearizability", v) for v in (lin.violations if lin else [])] \
        + [("liveness", v) for v in live.violations] + [("nemesis", check_history.Violation(k, m)) for k, m in findings]
    print()
    print("== violations ==")
    kinds = {}
    for checker, v in allv:
        kinds.setdefault((checker, v.kind), 0)
        kinds[(checker, v.kind)] += 1
    print(table([(ch, k, n) for (ch, k), n in sorted(kinds.items())] + [("daemon", "crash", len(crashes))],
                ["checker", "kind", "count"]))
    print()
    print("verdicts: safety %s, linearizability %s, liveness %s"
          % ("OK" if res.ok else "FAILED", "skipped" if lin is None else ("OK" if lin.ok else "FAILED"),
             "OK" if live.ok else "FAILED"))
    for crash in crashes:
        print("  CRASH %s" % crash)
    known = [(ch, v) for ch, v in allv if v.kind in a.known_bug]
    bad = [(ch, v) for ch, v in allv if v.kind not in a.known_bug]
    for ch, v in known:
        print("  KNOWN BUG [%s] %s" % (ch, v))
    if not bad and not crashes:
        print("OK: no violations%s (seed %d)" % (" beyond %d of known kinds" % len(known) if known else "", seed))
        return 0
    print("FAILED: %d violation(s), %d daemon crash(es) (seed %d)" % (len(bad), len(crashes), seed))
    shown = {}
    for ch, v in bad:
        shown[v.kind] = shown.get(v.kind, 0) + 1
        if shown[v.kind] <= 10:
            print("  VIOLATION [%s] %s" % (ch, v))
    for k, n in shown.items():
        if n > 10:
            print("  ... and %d more %s" % (n - 10, k))
    return 1


if __name__ == "__main__":
    sys.exit(main())
