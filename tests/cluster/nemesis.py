# SPDX-License-Identifier: LGPL-2.1-or-later
"""A composing nemesis for the cluster harness (issue 10 §1), in the spirit of Jepsen's combined
nemeses: several faults active at once, healed in any order.

    nem = Nemesis(cluster, random.Random(seed), kinds=["partition", "kill", ...], compose=3)
    while running:
        nem.step()          # starts a fault (if fewer than compose are active) or ends one
    nem.heal_all()          # ends every fault in random order, restarts nodes, "all_healed"

Every decision comes from the seed: the plan (kinds, shapes, durations, order of moves) from the
rng given, choices that depend on the cluster's state (which node leads, which are free) from a
second stream derived from it, so a replay follows the same plan even where a different node
happens to lead.

Fault kinds (see KINDS and README.md): network faults are sets of directed cuts ("a drops what
comes from b") and lossy nodes; the nft rules of every node are recomputed from the union of the
active faults on each change, so they compose and end independently. Process faults pause or kill
one node (including voters and the Raft leader); node-level faults restart one node with a
wrong setting, identity or environment (LD_PRELOAD shims in shim/). A node carries at most one
process or node-level fault at a time; network faults stack on anything.

Expected outcomes of node-level faults (on a daemon with the safety fixes):
  clone, dupname   the newer daemon exits non-zero and logs "duplicate"; the nemesis waits for the
                   exit, records "expected_exit" (or a finding "duplicate-not-refused" when the
                   daemon keeps running although it could hear the node it impersonates, directly
                   or through a third node that hears both, for 10 s in all: DESIGN.md rule 9;
                   a copy cut off from everyone that hears the original is "refusal_unjudged"),
                   then restores the node (own state dir / name) and restarts it. The node it
                   impersonates is held too (not killed, paused or restarted meanwhile: its
                   restart would make it the newer one, which then rightly refuses to run);
  timing           the node runs with other NodeTimeoutSec/LeaseSec; it may be refused ("timing
                   settings differ") and must never lead; restored at the end;
  disk_slow        fsync/fdatasync/writes/io_submit under the state dir are delayed;
  disk_fail        they fail with EIO; the daemon may exit (fail-stop is fine) and is restarted
                   at the end;
  clock            (only when asked: outside the assumptions) the node's monotonic clocks run at
                   clock_rate; the checkers are expected to report violations.
Every node-level fault writes node_event "node_fault" (nodes = the node and, for clone/dupname,
the node it impersonates) and "node_fault_end", which the checkers treat as fault windows.
"""

import os
import random
import shutil
import time

import cluster

NET_KINDS = ["partition", "isolate_raft_leader", "isolate_leader", "bridge", "ring", "oneway",
             "loss", "flap"]
PROCESS_KINDS = ["kill", "kill_leader", "kill_raft_leader", "pause", "pause_leader",
                 "pause_raft_leader", "pause_short", "rolling", "restart_all"]
NODE_KINDS = ["timing", "clone", "dupname", "disk_slow", "disk_fail"]
OUTSIDE_ASSUMPTIONS = ["clock"]
KINDS = NET_KINDS + PROCESS_KINDS + NODE_KINDS + OUTSIDE_ASSUMPTIONS
SHIM_KINDS = {"disk_slow": "faultfs", "disk_fail": "faultfs", "clock": "clockrate"}


def say(msg):
    print("[%8.3f] %s" % (time.monotonic() % 100000, msg), flush=True)


def shim_path(name):
    """Path of build/tests/edh-<name>.so (EDH_SHIM_DIR, else ELECTIOND_BUILD_ROOT/tests, else
    next to $ELECTIOND's build dir); None if not built."""
    dirs = [os.environ.get("EDH_SHIM_DIR")]
    if os.environ.get("ELECTIOND_BUILD_ROOT"):
        dirs.append(os.path.join(os.environ["ELECTIOND_BUILD_ROOT"], "tests"))
    if os.environ.get("ELECTIOND"):
        dirs.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(os.environ["ELECTIOND"]))),
                                 "tests"))
    for d in dirs:
        if d and os.path.exists(os.path.join(d, "edh-%s.so" % name)):
            return os.path.join(d, "edh-%s.so" % name)
    return None


def copy_tree(src, dst):
    """Copies a live daemon's state dir; files that vanish or change meanwhile are skipped."""
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
        for fn in files:
            try:
                shutil.copy2(os.path.join(root, fn), os.path.join(dst, rel, fn))
            except OSError:
                pass


class Fault:
    """One active fault. cuts: set of (receiver, sender) node names; lossy: {node: percent}."""

    def __init__(self, kind, desc, nodes=(), cuts=(), lossy=None, owner=None, end=None):
        self.kind = kind
        self.desc = desc
        self.nodes = list(nodes)      # the nodes it is about (for the history)
        self.cuts = set(cuts)
        self.lossy = dict(lossy or {})
        self.owner = owner            # node name holding this process/node-level fault
        self.end_fn = end
        self.held = set()             # other nodes it needs as they are (not faulted meanwhile)
        self.t = time.monotonic()


class Nemesis:
    def __init__(self, c, rng, kinds, compose=3, bound=10.0, clock_rate=0.25, hold=(0.5, 4.0)):
        self.c = c
        self.rng = rng                # the plan: kinds, shapes, durations, move order
        # choices that depend on the cluster's state (who leads, who is alive) draw from their
        # own stream, so that a different leader in a replay does not shift the plan
        self.prng = random.Random(rng.randrange(1 << 30))
        self.kinds = list(kinds)
        self.compose = max(1, int(compose))
        self.bound = bound
        self.clock_rate = clock_rate
        self.hold_range = hold
        self.active = []
        self.counts = {}              # kind -> how many started
        self.findings = []            # (kind, message): outcomes the fixed daemon must not show
        self.crashes = []             # daemons that failed to start (not an expected exit)
        self.expected_exits = 0
        self.unjudged = 0             # duplicates that could not hear their original long enough
        self.steps_since_heal = 0
        self.saved = {}               # node -> original config / state dir to restore
        self.ctl = {}                 # node -> faultfs control file
        self.stall_log = {}           # node -> faultfs stall log (main-thread delays)
        self.stall_read = {}          # node -> bytes of it read
        self.stall_pending = {}       # node -> [start, end] not written yet (may continue)
        for n in c.nodes:
            self.ctl[n.name] = os.path.join(n.dir, "faultfs.ctl")
            self.stall_log[n.name] = os.path.join(n.dir, "faultfs-stalls.log")
        if any(k in ("disk_slow", "disk_fail") for k in self.kinds):
            so = shim_path("faultfs")
            if not so:
                raise RuntimeError("disk faults need build/tests/edh-faultfs.so (set EDH_SHIM_DIR)")
            for n in c.nodes:
                n.env.update({"LD_PRELOAD": so, "EDH_FAULTFS_DIR": n.state_dir,
                              "EDH_FAULTFS_CTL": self.ctl[n.name],
                              "EDH_FAULTFS_STALLS": self.stall_log[n.name]})
        if "clock" in self.kinds and not shim_path("clockrate"):
            raise RuntimeError("the clock fault needs build/tests/edh-clockrate.so (set EDH_SHIM_DIR)")

    # --- helpers -----------------------------------------------------------------------------
    def hold(self, lo, hi):
        time.sleep(self.rng.uniform(lo, hi))    # part of the scenario: how long a fault lasts

    def busy(self):
        return {f.owner for f in self.active if f.owner} | {x for f in self.active for x in f.held}

    def free_nodes(self):
        return [n for n in self.c.nodes if n.name not in self.busy()]

    def raft_leader(self):
        for n in self.c.live_nodes():
            try:
                for m in n.manager_prop("Members"):
                    if str(m[3]) == "leader":
                        return self.c.node(str(m[0]))
            except Exception:
                continue
        return None

    def election_leader(self):
        """Node of some election's leader (candidate ids are "<node>-c<k>")."""
        for n in self.c.live_nodes():
            try:
                snap = n.snapshot()
            except Exception:
                continue
            leaders = sorted({v[1] for v in snap.values() if v[1]})
            if leaders:
                try:
                    return self.c.node(self.prng.choice(leaders).split("-")[0])
                except KeyError:
                    pass
        return None

    def start_node(self, n, wait=True, quorate=None):
        """Starts n's daemon. One that exits is a crash. One that runs but has not taken its bus
        name after 20 s is left running: while faults are active it may rightly wait for a lease
        (DESIGN.md lease rule 6); with none active it is recorded as a crash."""
        try:
            n.start(wait=False)
            if wait:
                n.wait_ready(20, quorate=quorate)
            return True
        except TimeoutError as e:
            if n.alive() and [f for f in self.active if f.owner != n.name]:
                say("%s has no lease yet (faults active): left running" % n.name)
                self.c.log_event("start_slow", node=n.name)
                return True
            msg = str(e).splitlines()[0]
            say("CRASH: %s" % msg)
            self.crashes.append("%s: %s (no fault active)\n%s" % (n.name, msg, n.log_tail(15)))
            self.c.log_event("start_slow", node=n.name, error=msg)
            return False
        except RuntimeError as e:
            msg = str(e).splitlines()[0]
            say("CRASH: %s" % msg)
            self.crashes.append("%s: %s\n%s" % (n.name, msg, n.log_tail(15)))
            self.c.log_event("start_failed", node=n.name, error=msg)
            if n.alive():
                n.kill()
            return False

    def restart_node(self, n, graceful=False):
        if n.alive():
            (n.terminate if graceful else n.kill)()
        return self.start_node(n)

    # --- network composition -----------------------------------------------------------------
    def apply_net(self):
        addrs = {n.name: n.addrs for n in self.c.nodes}  # both families of dual-stack nodes
        for n in self.c.nodes:
            n.net.clear_faults()
        lossy = {}
        for f in self.active:
            for recv, send in f.cuts:
                self.c.node(recv).net.drop_in.update(addrs[send])
            for name, p in f.lossy.items():
                lossy[name] = max(lossy.get(name, 0), p)
        for name, p in lossy.items():
            n = self.c.node(name)
            n.net.loss = p
            n.net.loss_peers = {a for m in lossy if m != name for a in addrs[m]}
        self.c._apply()

    def add_net(self, kind, desc, cuts=(), lossy=None, groups=None):
        nodes = sorted({x for c in cuts for x in c} | set(lossy or {}))
        f = Fault(kind, desc, nodes=nodes, cuts=cuts, lossy=lossy)
        self.active.append(f)
        self.apply_net()
        if lossy:
            self.c.log_event("loss", percent=max(lossy.values()), nodes=sorted(lossy), fault=kind)
        elif kind == "oneway":
            recv = sorted({a for a, _b in cuts})
            send = sorted({b for _a, b in cuts})
            self.c.log_event("partition_oneway", nodes=recv, from_nodes=send, fault=kind)
        else:
            self.c.log_event("partition", groups=groups or [[a, b] for a, b in sorted(cuts) if a < b],
                             nodes=nodes, fault=kind)
        return f

    @staticmethod
    def two_way(groups):
        cuts = set()
        for i, g in enumerate(groups):
            for h in groups[i + 1:]:
                for a in g:
                    for b in h:
                        cuts.add((a, b))
                        cuts.add((b, a))
        return cuts

    # --- fault starters: each returns a Fault (active) or None (done at once / not possible) ---
    def s_partition(self):
        names = [n.name for n in self.c.nodes]
        self.rng.shuffle(names)
        k = self.rng.randint(1, (len(names) - 1) // 2) if len(names) > 2 else 1
        groups = [sorted(names[:k]), sorted(names[k:])]
        return self.add_net("partition", "partition %s | %s" % tuple(groups), self.two_way(groups), groups=groups)

    def _isolate(self, kind, n):
        if n is None:
            return None
        rest = [m.name for m in self.c.nodes if m is not n]
        groups = [[n.name], rest]
        return self.add_net(kind, "isolate %s" % n.name, self.two_way(groups), groups=groups)

    def s_isolate_raft_leader(self):
        return self._isolate("isolate_raft_leader", self.raft_leader())

    def s_isolate_leader(self):
        return self._isolate("isolate_leader", self.election_leader())

    def s_bridge(self):
        """A sees B and C, B and C do not see each other (groups of nodes for larger clusters)."""
        names = [n.name for n in self.c.nodes]
        if len(names) < 3:
            return None
        self.rng.shuffle(names)
        a = self.rng.randint(1, len(names) - 2)   # bridge nodes
        rest = names[a:]
        k = self.rng.randint(1, len(rest) - 1)
        b, c = sorted(rest[:k]), sorted(rest[k:])
        return self.add_net("bridge", "bridge %s between %s and %s" % (sorted(names[:a]), b, c),
                            self.two_way([b, c]), groups=[b, c])

    def s_ring(self):
        names = [n.name for n in self.c.nodes]
        if len(names) < 4:
            return None
        self.rng.shuffle(names)
        m = len(names)
        cuts = set()
        for i in range(m):
            for j in range(m):
                if i != j and (i - j) % m not in (1, m - 1):
                    cuts.add((names[i], names[j]))
        return self.add_net("ring", "ring %s" % "-".join(names), cuts)

    def s_oneway(self):
        n = self.rng.choice(self.c.nodes)
        others = [m.name for m in self.c.nodes if m is not n]
        srcs = sorted(self.rng.sample(others, self.rng.randint(1, len(others))))
        if self.rng.random() < 0.5:
            cuts = {(n.name, s) for s in srcs}
            desc = "%s drops inbound from %s" % (n.name, srcs)
        else:
            cuts = {(s, n.name) for s in srcs}
            desc = "%s cannot reach %s (they drop it)" % (n.name, srcs)
        return self.add_net("oneway", desc, cuts)

    def s_loss(self):
        k = self.rng.randint(1, len(self.c.nodes))
        nodes = sorted(m.name for m in self.rng.sample(self.c.nodes, k))
        p = self.rng.choice([10, 20, 30, 40])
        return self.add_net("loss", "%d%% loss on %s" % (p, nodes), lossy={x: p for x in nodes})

    def s_flap(self):
        say("bridge flap")
        for _ in range(self.rng.randint(1, 3)):
            self.c.bridge_down()
            self.hold(0.1, 1.0)
            self.c.bridge_up()
            self.hold(0.1, 0.5)
        return None

    def _pick(self, pref=None):
        free = [n for n in self.free_nodes() if n.alive() and not n.stopped]
        if pref is not None and pref in free:
            return pref
        if pref is not None:
            return None
        return self.prng.choice(free) if free else None

    def _kill(self, kind, n):
        if n is None:
            return None
        n.kill()

        def end():
            self.start_node(n)
        return self._own(kind, "kill -9 %s" % n.name, n, end)

    def _own(self, kind, desc, n, end, extra_nodes=()):
        f = Fault(kind, desc, nodes=[n.name] + list(extra_nodes), owner=n.name, end=end)
        self.active.append(f)
        return f

    def s_kill(self):
        return self._kill("kill", self._pick())

    def s_kill_leader(self):
        return self._kill("kill_leader", self._pick(self.election_leader()))

    def s_kill_raft_leader(self):
        return self._kill("kill_raft_leader", self._pick(self.raft_leader()))

    def _pause(self, kind, n):
        if n is None:
            return None
        n.stop()

        def end():
            n.cont()
        return self._own(kind, "SIGSTOP %s" % n.name, n, end)

    def s_pause(self):
        return self._pause("pause", self._pick())

    def s_pause_leader(self):
        return self._pause("pause_leader", self._pick(self.election_leader()))

    def s_pause_raft_leader(self):
        return self._pause("pause_raft_leader", self._pick(self.raft_leader()))

    def s_pause_short(self):
        n = self._pick(self.raft_leader() if self.prng.random() < 0.5 else None) or self._pick()
        if n is None:
            return None
        ms = self.rng.uniform(10, 300)
        say("short pause of %s (%.0f ms)" % (n.name, ms))
        n.stop()
        time.sleep(ms / 1000)
        n.cont()
        return None

    def s_rolling(self):
        if self.busy():
            return None        # needs every node to itself
        say("rolling restart")
        for n in self.c.nodes:
            self.restart_node(n, graceful=self.rng.random() < 0.5)
            try:
                self.c.wait_converged(min(self.bound, 5))
            except TimeoutError:
                pass
        return None

    def s_restart_all(self):
        if self.busy():
            return None
        say("whole-cluster restart")
        for n in self.c.nodes:
            if n.alive():
                n.kill()
        self.hold(0.2, 1)
        for n in self.c.nodes:
            self.start_node(n, wait=False)
        for n in self.c.nodes:
            if n.alive():
                try:
                    n.wait_ready(20)
                except (RuntimeError, TimeoutError) as e:
                    self.crashes.append("%s: %s" % (n.name, str(e).splitlines()[0]))
        return None

    # --- node-level faults ---------------------------------------------------------------------
    def _node_fault(self, kind, n, desc, end, also=()):
        self.c.log_event("node_fault", node=n.name, nodes=[n.name] + list(also), fault=kind)

        def end_and_log():
            end()
            self.c.log_event("node_fault_end", node=n.name, nodes=[n.name] + list(also), fault=kind)
        return self._own(kind, desc, n, end_and_log, also)

    def _restart_with(self, n, config=None, env=None, quorate=None):
        """Restarts n with node_config overrides / extra env; returns the previous ones."""
        old_cfg = self.c.node_config.get(n.name)
        old_env = dict(n.env)
        if n.alive():
            n.terminate()
        if config is not None:
            self.c.node_config[n.name] = config
            n.write_config()
        if env is not None:
            n.env.update(env)
        return old_cfg, old_env, self.start_node(n, quorate=quorate)

    def _restore(self, n, old_cfg, old_env):
        if n.alive():
            n.terminate()
        if old_cfg is None:
            self.c.node_config.pop(n.name, None)
        else:
            self.c.node_config[n.name] = old_cfg
        n.write_config()
        n.env.clear()
        n.env.update(old_env)
        self.start_node(n)

    def s_timing(self):
        n = self._pick()
        if n is None:
            return None
        cfg = {"Cluster": {"LeaseSec": "0.4", "NodeTimeoutSec": "0.7"}}
        self.c.log_event("node_fault", node=n.name, nodes=[n.name], fault="timing")
        # refused leases by design (DESIGN.md rule 8): it serves its bus name, never quorate
        old_cfg, old_env, _ = self._restart_with(n, config=cfg, quorate=False)

        def end():
            # the end first: the restored daemon's start is outside the window (liveness (i))
            self.c.log_event("node_fault_end", node=n.name, nodes=[n.name], fault="timing")
            self._restore(n, old_cfg, old_env)
        return self._own("timing", "%s runs LeaseSec=0.4 NodeTimeoutSec=0.7" % n.name, n, end)

    def linked(self, a, b):
        """a and b run and no active cut separates them either way (loss does not count)."""
        if not (a.alive() and b.alive()) or a.stopped or b.stopped:
            return False
        for f in list(self.active):
            if (a.name, b.name) in f.cuts or (b.name, a.name) in f.cuts:
                return False
        return True

    def _watch_reach(self, n, other):
        """Counts, in a thread, the seconds n could hear other, directly or through a third node
        that hears both (the two ways DESIGN.md rule 9 refuses a duplicate by gossip)."""
        import threading
        w = {"connected": 0.0, "stop": False}

        def run():
            last = time.monotonic()
            while not w["stop"] and n.alive():
                time.sleep(0.05)
                now = time.monotonic()
                try:
                    ok = self.linked(n, other) or any(
                        self.linked(n, m) and self.linked(m, other)
                        for m in self.c.nodes if m is not n and m is not other)
                except Exception:
                    ok = False
                if ok:
                    w["connected"] += now - last
                last = now
        w["thread"] = threading.Thread(target=run, daemon=True)
        w["thread"].start()
        return w

    def _expect_refusal(self, kind, n, other, reach):
        """The newer daemon must exit non-zero with a "duplicate" error once it could hear the
        daemon it impersonates for 10 s (counted from its start; see _watch_reach)."""
        need = 10.0
        deadline = time.monotonic() + need
        while n.alive() and reach["connected"] < need and time.monotonic() < deadline:
            time.sleep(0.05)
        reach["stop"] = True
        if n.alive():
            got = reach["connected"]
            if got < need:
                say("%s: %s not refused, but it could hear %s for only %.1f s: not judged"
                    % (kind, n.name, other.name, got))
                self.unjudged += 1
                self.c.log_event("refusal_unjudged", node=n.name, fault=kind, connected=round(got, 2))
                return
            msg = ("%s: %s kept running with %s's identity although it could hear it for %.0f s "
                   "(expected exit with a \"duplicate\" error)" % (kind, n.name, other.name, got))
            say("FINDING %s" % msg)
            self.findings.append(("duplicate-not-refused", msg))
            return
        rc = n.daemon.popen.returncode
        log = n.log_tail(40)
        if rc != 0 and "duplicate" in log.lower():
            self.expected_exits += 1
            self.c.log_event("expected_exit", node=n.name, fault=kind, rc=rc)
            say("%s exited as expected (rc %s)" % (n.name, rc))
        else:
            msg = "%s: %s exited with %s but without a \"duplicate\" error" % (kind, n.name, rc)
            say("FINDING %s" % msg)
            self.findings.append(("duplicate-wrong-exit", msg))

    def s_clone(self):
        free = [m for m in self.free_nodes() if m.alive() and not m.stopped]
        if len(free) < 2:
            return None
        n, other = self.prng.sample(free, 2)
        self.c.log_event("node_fault", node=n.name, nodes=[n.name, other.name], fault="clone")
        n.kill()
        backup = n.state_dir + ".orig"
        shutil.rmtree(backup, ignore_errors=True)
        os.rename(n.state_dir, backup)
        copy_tree(other.state_dir, n.state_dir)
        say("clone: %s starts with a copy of %s's state dir" % (n.name, other.name))
        n.start(wait=False)
        reach = self._watch_reach(n, other)

        def end():
            self._expect_refusal("clone", n, other, reach)
            if n.alive():
                n.kill()
            shutil.rmtree(n.state_dir, ignore_errors=True)
            os.rename(backup, n.state_dir)
            self.start_node(n)
            self.c.log_event("node_fault_end", node=n.name, nodes=[n.name, other.name], fault="clone")
        f = self._own("clone", "%s cloned from %s" % (n.name, other.name), n, end, [other.name])
        f.held.add(other.name)
        return f

    def s_dupname(self):
        free = [m for m in self.free_nodes() if m.alive() and not m.stopped]
        if len(free) < 2:
            return None
        n, other = self.prng.sample(free, 2)
        self.c.log_event("node_fault", node=n.name, nodes=[n.name, other.name], fault="dupname")
        old = self.c.node_config.get(n.name)
        n.terminate()
        cfg = {k: dict(v) for k, v in (old or {}).items()}
        cfg.setdefault("Node", {})["Name"] = other.name
        self.c.node_config[n.name] = cfg
        n.write_config()
        say("dupname: %s restarts as Name=%s" % (n.name, other.name))
        n.start(wait=False)
        reach = self._watch_reach(n, other)

        def end():
            self._expect_refusal("dupname", n, other, reach)
            if n.alive():
                n.kill()
            if old is None:
                self.c.node_config.pop(n.name, None)
            else:
                self.c.node_config[n.name] = old
            n.write_config()
            # the end before the start: calls through the restored daemon carry its own name again
            self.c.log_event("node_fault_end", node=n.name, nodes=[n.name, other.name], fault="dupname")
            self.start_node(n)
        f = self._own("dupname", "%s named %s" % (n.name, other.name), n, end, [other.name])
        f.held.add(other.name)
        return f

    def _disk(self, kind, content):
        n = self._pick()
        if n is None:
            return None
        self.c.log_event("node_fault", node=n.name, nodes=[n.name], fault=kind, ctl=content)
        with open(self.ctl[n.name], "w") as f:
            f.write(content + "\n")

        def end():
            os.unlink(self.ctl[n.name])
            if not n.alive():
                rc = n.daemon.popen.returncode
                say("%s exited under %s (rc %s): restarting" % (n.name, kind, rc))
                if rc is not None and rc < 0:
                    # fail-stop is fine, but by an error exit, not killed by a signal it raised
                    msg = "%s: %s died of signal %d (not an error exit)" % (kind, n.name, -rc)
                    say("FINDING %s" % msg)
                    self.findings.append(("disk-fault-crash", msg + "\n" + n.log_tail(8)))
                else:
                    self.expected_exits += 1
                self.c.log_event("expected_exit", node=n.name, fault=kind, rc=rc)
                self.start_node(n)
            self.c.log_event("node_fault_end", node=n.name, nodes=[n.name], fault=kind)
        return self._own(kind, "%s disk: %s" % (n.name, content), n, end)

    def s_disk_slow(self):
        return self._disk("disk_slow", "delay %d" % self.rng.choice([20, 50, 100, 300]))

    def s_disk_fail(self):
        return self._disk("disk_fail", "fail")

    def s_clock(self):
        # the election leader's node when there is one: a slow leader clock is what leases exclude
        n = self._pick(self.election_leader()) or self._pick()
        if n is None:
            return None
        self.c.log_event("node_fault", node=n.name, nodes=[n.name], fault="clock", rate=self.clock_rate)
        so = shim_path("clockrate")
        pre = " ".join(x for x in (n.env.get("LD_PRELOAD"), so) if x)
        old_cfg, old_env, _ = self._restart_with(n, env={"LD_PRELOAD": pre,
                                                         "EDH_CLOCK_RATE": str(self.clock_rate)})

        def end():
            self._restore(n, old_cfg, old_env)
            self.c.log_event("node_fault_end", node=n.name, nodes=[n.name], fault="clock")
        return self._own("clock", "%s clock rate %.2f" % (n.name, self.clock_rate), n, end)

    STALL_MERGE_NS = 10_000_000      # delays this close together are one stall of the loop

    def collect_stalls(self, final=False):
        """Writes node_event "stall" / "stall_end" (node, t = when it happened) for the delays
        the disk shim imposed on a daemon's main thread: its event loop ran nothing meanwhile,
        which the checkers treat like a SIGSTOP. Back-to-back delays (one blocking write is
        several calls) are merged; the last stall of a node is held back until a second has
        passed, since it may still continue."""
        now = time.monotonic_ns()
        for name, path in self.stall_log.items():
            try:
                with open(path, "rb") as f:
                    f.seek(self.stall_read.get(name, 0))
                    data = f.read()
            except FileNotFoundError:
                data = b""
            complete = data[:data.rfind(b"\n") + 1]
            self.stall_read[name] = self.stall_read.get(name, 0) + len(complete)
            cur = self.stall_pending.pop(name, None)
            for line in complete.decode().splitlines():
                f = line.split()
                a, b, call = int(f[0]), int(f[1]), f[2] if len(f) > 2 else "?"
                if cur is not None and a - cur[1] <= self.STALL_MERGE_NS:
                    cur[1] = max(cur[1], b)
                    cur[2][call] = cur[2].get(call, 0) + 1
                    continue
                if cur is not None:
                    self._write_stall(name, cur)
                cur = [a, b, {call: 1}]
            if cur is not None:
                if final or now - cur[1] > 1_000_000_000:
                    self._write_stall(name, cur)
                else:
                    self.stall_pending[name] = cur

    def _write_stall(self, name, iv):
        self.c.log_event("stall", node=name, t=iv[0], ms=round((iv[1] - iv[0]) / 1e6, 1),
                         calls=" ".join("%s×%d" % kv for kv in sorted(iv[2].items())))
        self.c.log_event("stall_end", node=name, t=iv[1])

    # --- driving ---------------------------------------------------------------------------------
    def begin(self, kind):
        f = getattr(self, "s_" + kind)()
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if f is not None:
            say("+ %s  [%d active]" % (f.desc, len(self.active)))
            self.c.log_event("fault_begin", fault=kind, desc=f.desc, nodes=f.nodes)
        return f

    def end(self, f):
        self.active.remove(f)
        say("- %s" % f.desc)
        if f.cuts or f.lossy:
            self.apply_net()
        if f.end_fn:
            f.end_fn()
        self.c.log_event("fault_end", fault=f.kind, desc=f.desc, nodes=f.nodes)
        self.collect_stalls()
        for n in self.c.nodes:
            n.probe()

    def step(self):
        """One move: start a fault, end one, or (now and then) heal everything."""
        self.steps_since_heal += 1
        if self.active and (self.steps_since_heal > 3 * self.compose or self.rng.random() < 0.12):
            self.heal_all()
            return
        if len(self.active) < self.compose and (not self.active or self.rng.random() < 0.55):
            self.begin(self.rng.choice(self.kinds))
        elif self.active:
            self.end(self.rng.choice(self.active))
        self.hold(*self.hold_range)

    def heal_all(self):
        """Ends every fault in random order, restarts dead nodes, removes all rules, waits for
        the nodes to agree and writes node_event "all_healed" (the liveness checks' anchor)."""
        order = list(self.active)
        self.rng.shuffle(order)
        for f in order:
            self.end(f)
        self.c.heal()
        for n in self.c.nodes:
            if n.stopped:
                n.cont()
            if not n.alive():
                self.start_node(n)
        for n in self.c.nodes:
            if n.alive() and not n.has_name():
                # started during a fault, still waiting for a lease: with every fault gone it
                # must get one and serve within the bound
                try:
                    n.wait_ready(self.bound)
                except (RuntimeError, TimeoutError) as e:
                    msg = "%s does not serve %.0fs after every fault was healed: %s" % (
                        n.name, self.bound, str(e).splitlines()[0])
                    say("FINDING %s" % msg)
                    self.findings.append(("no-service-after-heal", msg + "\n" + n.log_tail(12)))
                    self.c.log_event("no_service", node=n.name)
                    n.kill()
                    self.start_node(n)
        self.c.log_event("all_healed")
        self.steps_since_heal = 0
        try:
            self.c.wait_converged(self.bound)
        except TimeoutError as e:
            say("not converged: %s" % e)

