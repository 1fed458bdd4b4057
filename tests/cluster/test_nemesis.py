#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tests of the composing nemesis (nemesis.py):

  ComposeTest   network faults compose and end in any order (UDP counts through the real rules);
                the shims load into a real process and do what they say.
  ClockTest     a node whose clock runs at a quarter of the real rate (outside the assumptions)
                is isolated while it leads: the safety checker must report the split brain it
                causes (a checker that stays quiet here is blind to overlapping leases).

Needs root and ip netns (exits 77 otherwise); ELECTIOND and EDH_SHIM_DIR come from meson.
"""

import os
import random
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "checker"))
import check_history  # noqa: E402
import cluster  # noqa: E402
import nemesis  # noqa: E402
import netns  # noqa: E402

PY = "/usr/bin/python3"


class ComposeTest(unittest.TestCase):
    def test_overlapping_faults_end_in_any_order(self):
        with cluster.Cluster(3, record=False) as c:
            nem = nemesis.Nemesis(c, random.Random(1), ["partition"], compose=3)

            def reach(a, b):
                return c.udp_count(a, b, count=10, window=0.3) > 0
            self.assertTrue(reach("n1", "n2") and reach("n2", "n3") and reach("n1", "n3"))
            cut12 = nem.add_net("partition", "n1|n2", nem.two_way([["n1"], ["n2"]]), groups=[["n1"], ["n2"]])
            one = nem.add_net("oneway", "n3 drops n1", {("n3", "n1")})
            self.assertFalse(reach("n1", "n2"))
            self.assertFalse(reach("n2", "n1"))
            self.assertFalse(reach("n1", "n3"))
            self.assertTrue(reach("n3", "n1"))
            self.assertTrue(reach("n2", "n3"))
            nem.end(cut12)               # ended first though started first: the one-way cut stays
            self.assertTrue(reach("n1", "n2"))
            self.assertFalse(reach("n1", "n3"))
            loss = nem.add_net("loss", "loss", lossy={"n2": 99})
            self.assertLess(c.udp_count("n1", "n2", count=20, window=0.3), 5)
            nem.end(one)
            self.assertTrue(reach("n1", "n3"))
            self.assertLess(c.udp_count("n3", "n2", count=20, window=0.3), 5)
            nem.end(loss)
            self.assertTrue(reach("n3", "n2") and reach("n1", "n3"))
            kinds = [r.get("event") for r in c.history() if r.get("type") == "node_event"]
            self.assertIn("partition_oneway", kinds)
            self.assertEqual(kinds.count("fault_end"), 3)

    def test_shims(self):
        ff, cr = nemesis.shim_path("faultfs"), nemesis.shim_path("clockrate")
        if not ff or not cr:
            self.skipTest("shims not built (EDH_SHIM_DIR)")
        code = ("import os,sys,time\n"
                "d=sys.argv[1]; f=os.open(d+'/x', os.O_WRONLY|os.O_CREAT)\n"
                "t=time.monotonic(); os.fsync(f); print(time.monotonic()-t)\n"
                "import threading; th=threading.Thread(target=os.fsync, args=(f,)); th.start(); th.join()\n"
                "open(d+'.ctl','w').write('fail\\n')\n"
                "try:\n os.fsync(f); print('nofail')\nexcept OSError as e: print(e.errno)\n")
        import tempfile
        with tempfile.TemporaryDirectory(prefix="edh%d-0-shim" % os.getpid()) as tmp:
            d = os.path.join(tmp, "state")
            os.makedirs(d)
            with open(d + ".ctl", "w") as f:
                f.write("delay 200\n")
            stalls = os.path.join(tmp, "stalls.log")
            env = dict(os.environ, LD_PRELOAD=ff, EDH_FAULTFS_DIR=d, EDH_FAULTFS_CTL=d + ".ctl",
                       EDH_FAULTFS_STALLS=stalls)
            out = subprocess.run([PY, "-c", code, d], env=env, capture_output=True, text=True, timeout=30).stdout.split()
            self.assertGreaterEqual(float(out[0]), 0.2)
            self.assertEqual(out[1], "5")        # EIO
            # the main thread's delay is logged as a stall; the other thread's is not
            with open(stalls) as f:
                lines = [x.split() for x in f.read().splitlines()]
            self.assertEqual(len(lines), 1, lines)
            self.assertGreaterEqual(int(lines[0][1]) - int(lines[0][0]), 200_000_000)
            self.assertEqual(lines[0][2], "fsync")
        code = "import time; r=time.time(); m=time.monotonic(); time.sleep(0.4); print(time.monotonic()-m, time.time()-r)"
        env = dict(os.environ, LD_PRELOAD=cr, EDH_CLOCK_RATE="0.5")
        mono, real = map(float, subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True,
                                               timeout=30).stdout.split())
        self.assertAlmostEqual(mono, 0.4, delta=0.05)   # the process's own sleep, on its clock
        self.assertGreater(real, 0.75)                  # took twice as long in real time

    def test_stalls_become_events(self):
        """collect_stalls() merges back-to-back delays into one stall and holds back the last one
        until it cannot continue any more."""
        import tempfile
        events = []

        class FakeCluster:
            def log_event(self, event, **kw):
                events.append(dict(kw, event=event))
        with tempfile.TemporaryDirectory(prefix="edh%d-0-stall" % os.getpid()) as tmp:
            nem = nemesis.Nemesis.__new__(nemesis.Nemesis)
            nem.c = FakeCluster()
            log = os.path.join(tmp, "n1.log")
            nem.stall_log, nem.stall_read, nem.stall_pending = {"n1": log}, {}, {}
            ms = 1_000_000
            now = __import__("time").monotonic_ns()
            old = now - 10_000 * ms
            with open(log, "w") as f:     # two calls of one write, a later stall, a recent one
                f.write("%d %d\n%d %d\n" % (old, old + 300 * ms, old + 301 * ms, old + 600 * ms))
                f.write("%d %d\n%d %d\n%d" % (old + 2000 * ms, old + 2020 * ms, now - 5 * ms, now, now + ms))
            nem.collect_stalls()
            self.assertEqual([(e["event"], e["t"]) for e in events],
                             [("stall", old), ("stall_end", old + 600 * ms),
                              ("stall", old + 2000 * ms), ("stall_end", old + 2020 * ms)])
            with open(log, "a") as f:     # the held-back stall continues; the partial line completes
                f.write(" %d\n" % (now + 3 * ms))
            del events[:]
            nem.collect_stalls(final=True)
            self.assertEqual([(e["event"], e["t"]) for e in events],
                             [("stall", now - 5 * ms), ("stall_end", now + 3 * ms)])


class ClockTest(unittest.TestCase):
    def test_checker_catches_slow_clock_leader(self):
        cr = nemesis.shim_path("clockrate")
        if not cr:
            self.skipTest("clock shim not built (EDH_SHIM_DIR)")
        with cluster.Cluster(3, recorder_args=["--receipt-time"]) as c:
            n1 = c.node("n1")
            n1.env.update({"LD_PRELOAD": cr, "EDH_CLOCK_RATE": "0.25"})
            c.start()
            c.wait_converged(30)
            a = c.client("n1", "a")
            b = c.client("n2", "b")
            cluster.wait_until(lambda: self._enter(a, "a"), 30, "Enter on n1")
            cluster.wait_until(lambda: self._enter(b, "b"), 30, "Enter on n2")
            cluster.wait_until(lambda: any(r.get("type") == "local_leader" and r["node"] == "n1" and r["value"]
                                           for r in c.history()), 10, "n1 to lead")
            c.partition([["n1"], ["n2", "n3"]])
            cluster.wait_until(lambda: any(r.get("type") == "local_leader" and r["node"] == "n2" and r["value"]
                                           for r in c.history()), 20, "n2 to take over")
            cluster.wait_until(lambda: any(r.get("type") == "local_leader" and r["node"] == "n1"
                                           and not r["value"] for r in c.history()), 20, "n1 to step down")
            c.heal()
            c.wait_converged(20)
            c.write_final()
            # receipt-time stamps lag by a few ms at hand-overs: only count real overlaps
            res = check_history.check(c.history(), tolerance=0.05)
        self.assertIn("split-brain", res.kinds(), [str(v) for v in res.violations])
        print("\n".join(str(v) for v in res.violations if v.kind == "split-brain"))

    @staticmethod
    def _enter(client, cid):
        try:
            client.op("enter", "e", cid, flags=1, timeout=5)
            return True
        except Exception:
            return False


if __name__ == "__main__":
    why = netns.usable()
    if why:
        print("SKIP: %s" % why)
        sys.exit(77)
    unittest.main(verbosity=2)
