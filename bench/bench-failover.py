#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Failover benchmark, side by side: keepalived (VRRP) versus electiond, in the same network
namespaces (tests/cluster harness: one bridge in a switch namespace, nodes 198.18.0.k/24).

    sudo /usr/bin/python3 bench/bench-failover.py [--trials 30] [--quick] [--only keepalived]

Measured (CLOCK_MONOTONIC, one clock for every namespace of the host):
  * keepalived, advert_int 1 s (its default) and 0.01 s (the smallest VRRPv3 interval it takes):
    SIGKILL of every keepalived process of the MASTER's namespace -> a survivor reports MASTER
    (vrrp_notify_fifo line, stamped when read).  The other survivors stay BACKUP and learn the new
    master from the advert it sends at that instant (one hop on a local bridge).
  * electiond, default settings: SIGKILL of the electiond whose candidate leads -> TermChanged
    with a new leader seen on every survivor (the harness's recorder stamps each signal);
    graceful Anoint -> every node's TermChanged with the new term.
  * partition: the leader's node (MASTER's namespace) cut off both ways; a trial counts as "two
    leaders" when two nodes were MASTER / LocalLeader=true at one instant.

Writes bench/results-failover.md and bench/failover-cdf-<N>.png.  Needs root and `ip netns`;
exits 77 otherwise.  Everything (namespaces, processes, temp dirs) is removed on exit and Ctrl-C.
"""

import argparse
import datetime
import json
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))
import cluster  # noqa: E402
import netns  # noqa: E402

KEEPALIVED = shutil.which("keepalived") or "/usr/sbin/keepalived"
VIP = "198.18.0.200"           # benchmark range, same subnet as the nodes
VRID = 51
ELECTION = "bench"
STATES = ("MASTER", "BACKUP", "FAULT", "STOP", "DELETED")


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def ms(ns):
    return ns / 1e6


def percentile(values, p):
    """Linear interpolation between closest ranks (p in 0..100)."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(values):
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "max": max(values) if values else float("nan")}


# --- keepalived --------------------------------------------------------------------------------

class FifoReader(threading.Thread):
    """Reads one node's vrrp_notify_fifo; every line is stamped with CLOCK_MONOTONIC on arrival.

    The FIFO is ours (made before keepalived starts) and held open read-write, so keepalived
    restarts never give us EOF and keepalived never finds it without a reader."""

    def __init__(self, path, name):
        super().__init__(daemon=True)
        self.path = path
        self.name = name
        os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.lock = threading.Lock()
        self.events = []         # (t_ns, state)
        self.stopping = False

    def run(self):
        buf = b""
        while not self.stopping:
            r, _, _ = select.select([self.fd], [], [], 0.2)
            if not r:
                continue
            t = time.monotonic_ns()
            try:
                chunk = os.read(self.fd, 4096)
            except BlockingIOError:
                continue
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                # INSTANCE "VI_1" MASTER 200
                parts = line.decode(errors="replace").split()
                # MASTER_RX_LOWER_PRI and the like are notes, not states
                if len(parts) >= 3 and parts[0] == "INSTANCE" and parts[2] in STATES:
                    with self.lock:
                        self.events.append((t, parts[2]))

    def mark(self, state):
        with self.lock:
            self.events.append((time.monotonic_ns(), state))

    def state(self):
        with self.lock:
            return self.events[-1][1] if self.events else None

    def since(self, t0):
        with self.lock:
            return [e for e in self.events if e[0] > t0]

    def close(self):
        self.stopping = True
        self.join(1)
        os.close(self.fd)


class VrrpSniffer:
    """bench/vrrpsniff.py in one node namespace: when each VRRP packet arrived, from whom."""

    def __init__(self, c, node, path):
        self.proc = cluster.Proc(netns.ns_argv(node.ns, [cluster.PY, os.path.join(HERE, "vrrpsniff.py")]),
                                 path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, registry=c.procs)
        if self.proc.popen.stdout.readline().strip() != b"ready":
            raise RuntimeError("vrrpsniff did not start in %s" % node.ns)
        self.lock = threading.Lock()
        self.packets = []   # (t_ns, source address)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.popen.stdout:
            parts = line.split()
            if len(parts) == 2:
                with self.lock:
                    self.packets.append((int(parts[0]), parts[1].decode()))

    def first_from(self, addr, t0):
        with self.lock:
            return next((t for t, a in self.packets if t > t0 and a == addr), None)


class KeepalivedCluster:
    """keepalived's VRRP among the harness's namespaces: unicast peers, nopreempt, distinct
    priorities (so the skew decides who takes over), each instance in its namespace with its own
    config, pid files and FIFO in the harness's temp dir, logging to a file."""

    def __init__(self, c, advert_int):
        self.c = c
        self.advert_int = advert_int
        self.procs = {}
        self.fifos = {}
        self.dir = os.path.join(c.dir, "keepalived-%s" % str(advert_int).replace(".", "_"))
        os.makedirs(self.dir)
        for node in c.nodes:
            self.fifos[node.name] = FifoReader(os.path.join(self.dir, node.name + ".fifo"), node.name)
            self.fifos[node.name].start()
            self.write_config(node)
        self.sniffers = {node.name: VrrpSniffer(c, node, os.path.join(self.dir, node.name + ".sniff.log"))
                         for node in c.nodes}

    def priority(self, node):
        return 250 - 40 * (node.k - 1)   # 250, 210, 170, ...: skews differ by 40/256 advert

    def write_config(self, node):
        peers = "\n".join("        %s" % o.addr for o in self.c.nodes if o is not node)
        conf = """global_defs {
    router_id %(name)s
    vrrp_version 3
    vrrp_notify_fifo %(fifo)s
    script_user root
    vrrp_garp_master_repeat 1
    vrrp_garp_master_refresh 0
}
vrrp_instance VI_1 {
    state BACKUP
    nopreempt
    interface veth0
    virtual_router_id %(vrid)d
    priority %(prio)d
    advert_int %(adv)s
    unicast_src_ip %(addr)s
    unicast_peer {
%(peers)s
    }
    virtual_ipaddress {
        %(vip)s/24 dev veth0
    }
}
""" % {"name": node.name, "fifo": self.fifos[node.name].path, "vrid": VRID,
       "prio": self.priority(node), "adv": self.advert_int, "addr": node.addr, "peers": peers, "vip": VIP}
        with open(os.path.join(self.dir, node.name + ".conf"), "w") as f:
            f.write(conf)

    def start(self, node):
        d = self.dir
        argv = [KEEPALIVED, "--dont-fork", "--log-console", "--no-syslog", "--vrrp",
                "--use-file", os.path.join(d, node.name + ".conf"),
                "--pid", os.path.join(d, node.name + ".pid"),
                "--vrrp_pid", os.path.join(d, node.name + ".vrrp.pid"),
                "--checkers_pid", os.path.join(d, node.name + ".checkers.pid"),
                "--bfd_pid", os.path.join(d, node.name + ".bfd.pid")]
        self.procs[node.name] = cluster.Proc(netns.ns_argv(node.ns, argv),
                                             os.path.join(d, node.name + ".log"),
                                             registry=self.c.procs)

    def kill(self, node):
        """SIGKILL of every keepalived process of the node at once (a crash: no priority-0
        advert), then the VIP it left behind goes (as a reboot would take it)."""
        p = self.procs[node.name]
        try:
            os.killpg(p.pid, signal.SIGKILL)   # Proc starts a new session: pgid == pid
        except ProcessLookupError:
            pass
        p.kill()
        self.fifos[node.name].mark("KILLED")
        sniffer = self.sniffers[node.name].proc.pid
        netns.kill_pids([x for x in netns.ns_pids(node.ns) if x != sniffer])
        cluster.wait_until(lambda: set(netns.ns_pids(node.ns)) <= {sniffer}, 10,
                           "keepalived of %s to be gone" % node.name)
        # a crash leaves pid files behind; the restart must not take them for a live daemon
        for suffix in (".pid", ".vrrp.pid", ".checkers.pid", ".bfd.pid"):
            try:
                os.unlink(os.path.join(self.dir, node.name + suffix))
            except FileNotFoundError:
                pass
        netns.run([netns.IP, "-n", node.ns, "addr", "del", VIP + "/24", "dev", "veth0"], check=False)

    def states(self):
        return {n: f.state() for n, f in self.fifos.items()}

    def masters(self, nodes=None):
        names = [n.name for n in (nodes or self.c.nodes)]
        return [n for n, s in self.states().items() if s == "MASTER" and n in names]

    def wait_stable(self, timeout):
        """Exactly one MASTER, every other instance BACKUP, every process alive."""
        def ok():
            st = self.states()
            if any(not self.procs[n].alive() for n in st):
                raise RuntimeError("keepalived exited; log %s" % self.dir)
            m = [n for n, s in st.items() if s == "MASTER"]
            return m[0] if len(m) == 1 and all(s in ("MASTER", "BACKUP") for s in st.values()) else None
        try:
            return cluster.wait_until(ok, timeout, "one keepalived MASTER", 0.005)
        except TimeoutError as e:
            raise TimeoutError("%s; states %s; logs in %s" % (e, self.states(), self.dir))

    def close(self):
        for f in self.fifos.values():
            f.close()


def max_overlap(intervals):
    """Largest number of [start, end) intervals covering one instant."""
    pts = sorted([(s, 1) for s, e in intervals] + [(e, -1) for s, e in intervals])
    cur = best = 0
    for _t, d in pts:
        cur += d
        best = max(best, cur)
    return best


def master_intervals(events_by_node, t0, t1):
    """MASTER intervals within [t0, t1] from each node's (t, state) list (state before t0 counts)."""
    out = []
    for evs in events_by_node.values():
        state, since = None, t0
        for t, s in evs:
            if t <= t0:
                state = s
                continue
            if t > t1:
                break
            if state == "MASTER" and s != "MASTER":
                out.append((since, t))
            if s == "MASTER" and state != "MASTER":
                since = t
            state = s
        if state == "MASTER":
            out.append((since, t1))
    return out


def keepalived_result():
    return {"kill": [], "kill_notify": [], "dual_after_kill": 0, "part_two": 0, "part_n": 0, "part_takeover": []}


def bench_keepalived(n, advert_int, trials, part_trials, res):
    """Fills res (keepalived_result()) as trials complete, so a failure keeps what was measured."""
    master_down = 3 * advert_int + advert_int   # 3 adverts + skew (< 1 advert)
    with cluster.Cluster(n, clustered=False, record=False) as c:
        k = KeepalivedCluster(c, advert_int)
        try:
            for node in c.nodes:
                k.start(node)
            k.wait_stable(master_down + 15)
            for i in range(trials):
                master = c.node(k.wait_stable(master_down + 15))
                survivors = [x for x in c.nodes if x is not master]
                t0 = time.monotonic_ns()
                k.kill(master)
                cluster.wait_until(lambda: k.masters(survivors), master_down + 10,
                                   "a survivor to become MASTER", 0.001)
                first, new = min((t, x.name) for x in survivors for t, s in k.fifos[x.name].since(t0)
                                 if s == "MASTER")
                # known on every survivor: the new MASTER's notify and each other survivor's first
                # advert from it, whichever comes last
                def known(new=new, first=first):
                    ts = [first]
                    for x in survivors:
                        if x.name != new:
                            ts.append(k.sniffers[x.name].first_from(c.node(new).addr, t0))
                    return max(ts) if None not in ts else None
                res["kill"].append(cluster.wait_until(known, 2 * advert_int + 5,
                                                      "every survivor to hear the new MASTER", 0.001) - t0)
                res["kill_notify"].append(first - t0)
                k.start(master)
                try:
                    cluster.wait_until(lambda: k.fifos[master.name].state() in ("BACKUP", "MASTER"),
                                       master_down + 15, "the restarted instance to report", 0.005)
                except TimeoutError:
                    raise TimeoutError("restarted keepalived silent; states %s; log: %s" % (
                        k.states(), open(os.path.join(k.dir, master.name + ".log")).read()[-800:]))
                # A second survivor taking over too (its timer ran out before the first one's
                # advert came) is a VRRP race; its timer is at most 40/256 advert later.
                late = first + int(0.3 * advert_int * 1e9) + 20_000_000
                cluster.wait_until(lambda: time.monotonic_ns() > late, 10, "settle", 0.005)
                took = {x.name for x in survivors for _t, s in k.fifos[x.name].since(t0) if s == "MASTER"}
                if len(took) > 1:
                    res["dual_after_kill"] += 1
                log("keepalived N=%d advert %.2fs trial %d/%d: %.1f ms" % (n, advert_int, i + 1, trials,
                                                                          ms(res["kill"][-1])))
            for i in range(part_trials):
                master = c.node(k.wait_stable(master_down + 15))
                others = [x for x in c.nodes if x is not master]
                t0 = time.monotonic_ns()
                c.partition([[master], others])
                cluster.wait_until(lambda: k.masters(others), master_down + 10,
                                   "the majority side to elect a MASTER", 0.001)
                first = min(t for x in others for t, s in k.fifos[x.name].since(t0) if s == "MASTER")
                res["part_takeover"].append(first - t0)
                # the cut-off MASTER never hears of the new one: one more advert shows the overlap
                end = time.monotonic_ns() + int(advert_int * 1e9) + 100_000_000
                cluster.wait_until(lambda: time.monotonic_ns() > end, 30, "partition window", 0.01)
                t1 = time.monotonic_ns()
                evs = {x.name: list(k.fifos[x.name].events) for x in c.nodes}
                two = max_overlap(master_intervals(evs, t0, t1)) >= 2
                res["part_two"] += int(two)
                res["part_n"] += 1
                c.heal()
                log("keepalived N=%d advert %.2fs partition %d/%d: two masters=%s" % (
                    n, advert_int, i + 1, part_trials, two))
        finally:
            k.close()
    return res


# --- electiond ---------------------------------------------------------------------------------

class RecTail:
    """Incremental reader of the harness's per-node recorder files (rec-<node>.jsonl)."""

    def __init__(self, c):
        self.c = c
        self.offsets = {}
        self.records = []

    def poll(self):
        for fn in os.listdir(self.c.hist_dir):
            if not fn.startswith("rec-"):
                continue
            path = os.path.join(self.c.hist_dir, fn)
            off = self.offsets.get(fn, 0)
            with open(path) as f:
                f.seek(off)
                data = f.read()
            end = data.rfind("\n")
            if end < 0:
                continue
            self.offsets[fn] = off + len(data[:end + 1].encode())
            for line in data[:end].split("\n"):
                try:
                    self.records.append(json.loads(line))
                except ValueError:
                    pass
        return self.records


class Unavailable(Exception):
    pass


def enter_all(c, tail):
    """Every live node has its persistent candidate (id = node name) in ELECTION; waits until
    all nodes agree."""
    import dbus
    want = {x.name for x in c.nodes}
    tid, _leader, cands = c.nodes[0].get_term(ELECTION) if c.nodes[0].alive() else (0, "", [])
    for node in c.nodes:
        if node.name not in cands:
            cluster.wait_until(lambda: _try_enter(node, dbus), 30, "Enter on %s" % node.name, 0.2)

    def agreed():
        try:
            terms = [x.get_term(ELECTION) for x in c.nodes]
        except Exception:
            return None
        return terms[0] if all(t == terms[0] for t in terms) and set(terms[0][2]) == want else None
    return cluster.wait_until(agreed, 30, "every node to agree on all candidates", 0.02)


def _try_enter(node, dbus):
    try:
        node.election(ELECTION).Enter(node.name, dbus.UInt64(1),
                                      dbus_interface=cluster.ELECTION_IFACE, timeout=10)
        return True
    except dbus.DBusException as e:
        log("Enter on %s: %s (retrying)" % (node.name, e.get_dbus_name()))
        return False


def quorate_all(c, timeout):
    def q():
        try:
            return all(bool(x.manager_prop("Quorate")) for x in c.nodes)
        except Exception:
            return False
    cluster.wait_until(q, timeout, "every node Quorate", 0.1)


def wait_term_on(tail, names, t0, pred, timeout, what):
    """Waits until every node in names recorded a term record after t0 matching pred; returns
    {node: t}."""
    def seen():
        got = {}
        for r in tail.poll():
            if (r.get("type") == "term" and r.get("election") == ELECTION and r["t"] > t0
                    and r.get("node") in names and r.get("node") not in got and pred(r)):
                got[r["node"]] = r["t"]
        return got if len(got) == len(names) else None
    return cluster.wait_until(seen, timeout, what, 0.002)


def local_leader_intervals(records, t0, t1, initial=None):
    """LocalLeader=true intervals per node from the recorder's local_leader records. initial: the
    state of each node at t0 as read directly (a node killed and restarted before t0 leaves a stale
    "true" record behind: a restarted daemon announces no change from false)."""
    out = []
    by = {n: [] for n in (initial or {})}
    for r in records:
        if r.get("type") == "local_leader" and r.get("election") == ELECTION:
            by.setdefault(r["node"], []).append((r["t"], bool(r["value"])))
    for node, evs in by.items():
        evs.sort()
        state, since = False, t0
        if initial is not None and node in initial:
            evs = [(t, v) for t, v in evs if t > t0]
            state = initial[node]
        for t, v in evs:
            if t <= t0:
                state = v
                continue
            if t > t1:
                break
            if v and not state:
                since = t
            if state and not v:
                out.append((since, t))
            state = v
        if state:
            out.append((since, t1))
    return out


def electiond_result():
    return {"kill": [], "kill_node": [], "local_leader": [], "anoint": [], "anoint_reply": [], "part_two": 0,
            "part_n": 0, "part_takeover": [], "part_ll_read_two": 0}


# Extra configuration of every electiond cluster (--encrypt: {"Cluster": {"Encrypt": "yes"}}).
CLUSTER_CONFIG = None


def read_profile(path):
    """A drop-in (conf/50-fast.conf): {section: {key: value}} for cluster.Cluster(config=)."""
    import configparser
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    with open(path) as f:
        cp.read_file(f)
    return {sec: dict(cp[sec]) for sec in cp.sections()}


def bench_electiond(n, trials, part_trials, anoint_trials, form_timeout, res, config=None):
    """Fills res (electiond_result()); raises Unavailable when no cluster forms. config: a
    profile's keys, on top of CLUSTER_CONFIG."""
    merged = {}
    for extra in (CLUSTER_CONFIG, config):
        for sec, kv in (extra or {}).items():
            merged.setdefault(sec, {}).update(kv)
    with cluster.Cluster(n, config=merged or None) as c:
        try:
            c.start(wait=False)
            for x in c.nodes:
                x.wait_ready(form_timeout)
        except (TimeoutError, RuntimeError) as e:
            tails = " | ".join(x.log_tail(3).strip().replace("\n", " / ") for x in c.nodes)
            raise Unavailable("nodes did not start (%s); logs: %s" % (e, tails[:600]))
        try:
            quorate_all(c, form_timeout)
        except TimeoutError as e:
            raise Unavailable("cluster did not form: %s" % e)
        tail = RecTail(c)
        enter_all(c, tail)
        log("electiond N=%d: cluster formed, %d candidates" % (n, n))

        # graceful: Anoint the second candidate on a rotating node; every node sees the new term
        for i in range(anoint_trials):
            tid, leader, cands = c.nodes[0].get_term(ELECTION)
            target = cands[1]
            via = c.nodes[i % n]
            t0 = time.monotonic_ns()
            via.election(ELECTION).Anoint(target, dbus_interface=cluster.ELECTION_IFACE, timeout=10)
            res["anoint_reply"].append(time.monotonic_ns() - t0)
            got = wait_term_on(tail, {x.name for x in c.nodes}, t0,
                               lambda r: r["term"] > tid and r["leader"] == target, 10,
                               "every node to see the anointed leader")
            res["anoint"].append(max(got.values()) - t0)
        if anoint_trials:
            log("electiond N=%d: %d anoint trials, p50 %.1f ms" % (n, anoint_trials,
                                                                   ms(percentile(res["anoint"], 50))))

        for i in range(trials):
            tid, leader, cands = enter_all(c, tail)
            victim = c.node(leader)
            survivors = [x for x in c.nodes if x is not victim]
            names = {x.name for x in survivors}
            t0 = time.monotonic_ns()
            victim.kill()
            got = wait_term_on(tail, names, t0,
                               lambda r: r["term"] > tid and r["leader"] not in ("", leader), 30,
                               "every survivor to see a new leader")
            res["kill"].append(max(got.values()) - t0)
            res["kill_node"].extend(t - t0 for t in got.values())
            new = cluster.wait_until(lambda: [r for r in tail.poll()
                                              if r.get("type") == "local_leader" and r["t"] > t0
                                              and r.get("election") == ELECTION and r["value"]],
                                     10, "LocalLeader on the new leader's node", 0.005)
            res["local_leader"].append(new[0]["t"] - t0)
            log("electiond N=%d kill trial %d/%d: %s leader, all survivors %.1f ms, LocalLeader %.1f ms"
                % (n, i + 1, trials, leader, ms(res["kill"][-1]), ms(res["local_leader"][-1])))
            victim.start(wait=True)
            quorate_all(c, 60)

        for i in range(part_trials):
            tid, leader, cands = enter_all(c, tail)
            iso = c.node(leader)
            others = [x for x in c.nodes if x is not iso]
            initial = {}
            for x in c.nodes:
                try:
                    initial[x.name] = bool(x.election(ELECTION).Get(cluster.ELECTION_IFACE, "LocalLeader",
                                                                    dbus_interface="org.freedesktop.DBus.Properties",
                                                                    timeout=5))
                except Exception:
                    initial[x.name] = False
            t0 = time.monotonic_ns()
            c.partition([[iso], others])
            got = wait_term_on(tail, {x.name for x in others}, t0,
                               lambda r: r["term"] > tid and r["leader"] not in ("", leader), 30,
                               "the majority side to see a new leader")
            res["part_takeover"].append(max(got.values()) - t0)
            # read LocalLeader everywhere (each bus is a local socket: the cut does not matter)
            reads = 0
            for x in c.nodes:
                try:
                    v = x.election(ELECTION).Get(cluster.ELECTION_IFACE, "LocalLeader",
                                                 dbus_interface="org.freedesktop.DBus.Properties",
                                                 timeout=5)
                    reads += int(bool(v))
                except Exception:
                    pass
            t1 = time.monotonic_ns()
            two = max_overlap(local_leader_intervals(tail.poll(), t0, t1, initial)) >= 2 or reads >= 2
            res["part_two"] += int(two)
            res["part_ll_read_two"] += int(reads >= 2)
            res["part_n"] += 1
            c.heal()
            quorate_all(c, 60)
            log("electiond N=%d partition %d/%d: two LocalLeaders=%s" % (n, i + 1, part_trials, two))
    return res


# --- report ------------------------------------------------------------------------------------

def machine_info():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = open("/proc/loadavg").read().split()[:3]
    kver = ""
    try:
        kver = subprocess.run([KEEPALIVED, "--version"], capture_output=True, text=True).stderr.split("\n")[0]
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "kernel": platform.release(), "cpu": cpu,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": " ".join(load), "keepalived": kver, "commit": git_head(),
            "electiond": os.path.relpath(os.environ.get("ELECTIOND", "electiond"), ROOT)}


def git_head():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return "?"


def fmt(v):
    return "%.1f" % (v / 1e6)


def row(label, vals):
    s = summary(vals)
    return "| %s | %d | %s | %s | %s | %s |" % (label, s["n"], fmt(s["p50"]), fmt(s["p90"]),
                                                fmt(s["p99"]), fmt(s["max"]))


def plot_name(args, n):
    """failover-cdf-N.png; with --profile conf/50-fast.conf: failover-fast-cdf-N.png."""
    prof = getattr(args, "profile", None)
    if not prof:
        return "failover-cdf-%d.png" % n
    stem = os.path.splitext(os.path.basename(prof))[0].lstrip("0123456789-") or "profile"
    return "failover-%s-cdf-%d.png" % (stem, n)


def timing_text(args):
    if getattr(args, "profile", None):
        kv = ", ".join("%s %s" % (k, v) for sec in read_profile(args.profile).values() for k, v in sec.items())
        return "timing from `%s`: %s" % (os.path.relpath(args.profile, ROOT), kv)
    return "default timing: ProbeIntervalSec 0.05, LeaseSec 0.2, NodeTimeoutSec 0.35"


def write_report(path, args, results, notes, mi):
    out = ["# Failover benchmark: electiond vs keepalived", "",
           "Generated by `bench/bench-failover.py%s` on %s (commit %s)." % (
               " " + " ".join(args.argv) if args.argv else "", mi["date"], mi["commit"]), "",
           "Machine: `nproc` %d, %s, Linux %s; load average %s at the end (the machine is shared, "
           "numbers include scheduling noise). %s (Debian package)." % (
               mi["nproc"], mi["cpu"], mi["kernel"], mi["load"], mi["keepalived"]), "",
           "electiond: `%s` (%s)." % (mi["electiond"], timing_text(args)), "",
           "Topology: the tests/cluster harness — N network namespaces on one Linux bridge (in its own "
           "switch namespace), nodes 198.18.0.k/24, VIP %s. Times are CLOCK_MONOTONIC in ms." % VIP, ""]
    for n in args.nodes:
        r = results.get(n, {})
        out += ["## %d nodes" % n, "",
                "### SIGKILL of the leader -> new leader known on every survivor", "",
                "| system, setting | trials | p50 | p90 | p99 | max |", "|---|---|---|---|---|---|"]
        for key, label in (("ka1", "keepalived, advert_int 1 s (default)"),
                           ("ka001", "keepalived, advert_int 0.01 s (fastest)")):
            if key in r and r[key]["kill"]:
                out.append(row(label, r[key]["kill"]))
        e = r.get("el")
        if isinstance(e, dict) and e["kill"]:
            out.append(row("electiond, %s: TermChanged on every survivor"
                           % ("profile" if getattr(args, "profile", None) else "defaults"), e["kill"]))
            out.append(row("electiond: LocalLeader=true on the new leader's node", e["local_leader"]))
        out.append("")
        if isinstance(e, dict) and e["kill"]:
            ratios = []
            for key, label in (("ka1", "advert_int 1 s"), ("ka001", "advert_int 0.01 s")):
                if key in r and r[key]["kill"]:
                    ratios.append("keepalived (%s) ÷ electiond: p50 **%.2f×**, p99 **%.2f×**" % (
                        label, percentile(r[key]["kill"], 50) / percentile(e["kill"], 50),
                        percentile(r[key]["kill"], 99) / percentile(e["kill"], 99)))
            if ratios:
                out += ["Ratio (above 1: electiond is faster): " + "; ".join(ratios) + ".", ""]
        if isinstance(e, dict) and e["anoint"]:
            out += ["### Graceful Anoint -> every node sees the new term", "",
                    "| system | trials | p50 | p90 | p99 | max |", "|---|---|---|---|---|---|",
                    row("electiond: Anoint call -> TermChanged on every node", e["anoint"]),
                    row("electiond: Anoint call -> its reply (committed, applied locally)", e["anoint_reply"]), ""]
        out += ["### Partition: the leader's node cut off both ways", "",
                "| system, setting | trials | two leaders at once | majority side takeover p50 | p99 |",
                "|---|---|---|---|---|"]
        for key, label in (("ka1", "keepalived, advert_int 1 s"), ("ka001", "keepalived, advert_int 0.01 s")):
            if key in r and r[key]["part_n"]:
                out.append("| %s | %d | %d | %s | %s |" % (label, r[key]["part_n"], r[key]["part_two"],
                                                          fmt(percentile(r[key]["part_takeover"], 50)),
                                                          fmt(percentile(r[key]["part_takeover"], 99))))
        if isinstance(e, dict) and e["part_n"]:
            out.append("| electiond, LocalLeader | %d | %d | %s | %s |" % (
                e["part_n"], e["part_two"], fmt(percentile(e["part_takeover"], 50)),
                fmt(percentile(e["part_takeover"], 99))))
        if isinstance(e, str):
            out += ["", "**electiond: %s** — no electiond numbers for %d nodes." % (" ".join(e.split()), n)]
        extra = []
        for key, label in (("ka1", "keepalived advert_int 1 s"), ("ka001", "keepalived advert_int 0.01 s"),
                           ("el", "electiond")):
            if isinstance(r.get(key), dict) and r[key].get("error"):
                extra.append("**%s stopped early: %s** (the rows above hold the trials done before)"
                             % (label, r[key]["error"][:400].replace("\n", " ")))
        for key, label in (("ka1", "1 s"), ("ka001", "0.01 s")):
            if key in r and r[key]["dual_after_kill"]:
                extra.append("keepalived (advert_int %s): %d kill trials had two survivors take over "
                             "before one yielded" % (label, r[key]["dual_after_kill"]))
        if extra:
            out += ["", "; ".join(extra) + "."]
        if os.path.exists(os.path.join(args.plot_dir, plot_name(args, n))):
            out += ["", "![CDF, %d nodes](%s)" % (n, plot_name(args, n))]
        out.append("")
    out += ["## Method", "",
            "- keepalived: one instance per namespace (`ip netns exec … keepalived --dont-fork "
            "--log-console --vrrp`, own config/pid files), VRRPv3, unicast peers, `state BACKUP` + "
            "`nopreempt`, priorities 250, 210, 170, …; a trial SIGKILLs every keepalived process of "
            "the MASTER's namespace (no priority-0 advert) and stops the clock when a survivor's "
            "`vrrp_notify_fifo` says MASTER. The other survivors stay BACKUP and learn the new master "
            "from the advert it sends at that moment (one bridge hop). Then the killed instance is "
            "restarted (its stale pid files removed) and the next trial waits for exactly one MASTER.",
            "- electiond: default timing, one election `%s`, a persistent candidate (Enter flags=1, "
            "id = node name) on every node; a trial SIGKILLs the electiond of the leading candidate's "
            "node and stops the clock when the recorder of the last survivor got a TermChanged with a "
            "new leader; the node is then restarted and its candidate re-entered." % ELECTION,
            "- partition: nft drop both ways between the leader's node and the rest (harness "
            "`partition()`); watched until the majority side has a new leader plus one advert interval "
            "(keepalived) or until every LocalLeader was read (electiond; LocalLeader is also "
            "tracked from PropertiesChanged over the whole window).",
            "- percentiles: linear interpolation between closest ranks; with 30 trials p99 is close to "
            "the max.", ""]
    for note in notes:
        out.append("- " + note)
    with open(path, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")


def plot(path, n, series):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for label, vals in series:
        if not vals:
            continue
        v = sorted(x / 1e6 for x in vals)
        y = [0.0] + [(i + 1) / len(v) for i in range(len(v))]
        ax.step([v[0]] + v, y, where="post", linestyle="--" if "LocalLeader" in label else "-", label="%s (n=%d, p50 %.0f ms)" % (label, len(v), percentile(v, 50)))
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _p: "%g" % x))
    ax.set_xlabel("SIGKILL of the leader -> new leader known on every survivor [ms, log scale]")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_ylabel("fraction of trials")
    ax.set_ylim(0, 1.02)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title("Failover CDF, %d nodes in network namespaces on one bridge" % n)
    # below the axes: the curves sit at both ends and in the middle
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description="Failover benchmark: electiond vs keepalived")
    ap.add_argument("--trials", type=int, default=None, help="kill trials per system and setting (30)")
    ap.add_argument("--partition-trials", type=int, default=None, help="partition trials (10)")
    ap.add_argument("--anoint-trials", type=int, default=None, help="graceful Anoint trials (30)")
    ap.add_argument("--quick", action="store_true", help="5 trials, 2 partition trials, 3 and 5 nodes")
    ap.add_argument("--only", choices=("keepalived", "electiond"), help="run one system only")
    ap.add_argument("--nodes", default="3,5", help="cluster sizes, comma separated")
    ap.add_argument("--output", default=os.path.join(HERE, "results-failover.md"))
    ap.add_argument("--plot-dir", default=None, help="where the PNGs go (default: next to --output)")
    ap.add_argument("--build-dir", default=os.environ.get("ELECTIOND_BUILD_ROOT", os.path.join(ROOT, "build")))
    ap.add_argument("--form-timeout", type=float, default=60, help="seconds for a cluster to form")
    ap.add_argument("--profile", default=None,
                    help="electiond timing from this drop-in (e.g. conf/50-fast.conf) instead of the defaults")
    ap.add_argument("--encrypt", action="store_true", help="electiond with [Cluster] Encrypt=yes")
    ap.add_argument("--replot", action="store_true",
                    help="no trials: rebuild the report and plots from the raw JSON next to --output")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    args.nodes = [int(x) for x in args.nodes.split(",") if x]
    default_trials = 5 if args.quick else 30
    args.trials = args.trials if args.trials is not None else default_trials
    args.partition_trials = (args.partition_trials if args.partition_trials is not None
                             else (2 if args.quick else 10))
    args.anoint_trials = args.anoint_trials if args.anoint_trials is not None else args.trials
    args.plot_dir = args.plot_dir or os.path.dirname(os.path.abspath(args.output))
    if args.encrypt:
        global CLUSTER_CONFIG
        CLUSTER_CONFIG = {"Cluster": {"Encrypt": "yes"}}

    if args.replot:
        with open(raw_path(args)) as f:
            raw = json.load(f)
        args.argv, args.nodes = raw["argv"], raw["nodes"]
        args.profile = raw.get("profile")
        write_outputs(args, {int(n): r for n, r in raw["results"].items()}, raw["notes"], raw["machine"])
        return 0

    why = netns.usable()
    if why:
        print("bench-failover: needs root and ip netns: %s" % why)
        return 77
    if args.only != "electiond" and not os.access(KEEPALIVED, os.X_OK):
        print("bench-failover: keepalived not installed (tools/install-deps.sh)")
        return 77
    if "ELECTIOND" not in os.environ:
        os.environ["ELECTIOND"] = os.path.join(os.path.abspath(args.build_dir), "daemon", "electiond")

    t_start = time.monotonic()
    results = {n: {} for n in args.nodes}
    notes = []
    for n in args.nodes:
        if args.only != "electiond":
            for key, adv in (("ka1", 1), ("ka001", 0.01)):
                log("keepalived, %d nodes, advert_int %s s" % (n, adv))
                results[n][key] = keepalived_result()
                try:
                    bench_keepalived(n, adv, args.trials, args.partition_trials, results[n][key])
                except Exception as e:   # keep what was measured; say what broke
                    results[n][key]["error"] = "%s: %s" % (type(e).__name__, e)
                    log("keepalived failed: %s" % results[n][key]["error"])
        if args.only != "keepalived":
            log("electiond, %d nodes (%s)" % (n, os.environ["ELECTIOND"]))
            try:
                results[n]["el"] = electiond_result()
                bench_electiond(n, args.trials, args.partition_trials, args.anoint_trials,
                                args.form_timeout, results[n]["el"],
                                read_profile(args.profile) if args.profile else None)
            except Unavailable as e:
                results[n]["el"] = "cluster not available (%s)" % e
                log("electiond: cluster not available: %s" % e)
            except Exception as e:
                results[n]["el"]["error"] = "%s: %s" % (type(e).__name__, e)
                log("electiond failed: %s" % results[n]["el"]["error"])
    notes.append("Whole run: %.0f s." % (time.monotonic() - t_start))
    notes.append("Raw samples (ns): `%s`; `--replot` rebuilds this report and the plots from it."
                 % os.path.basename(raw_path(args)))
    mi = machine_info()
    with open(raw_path(args), "w") as f:
        json.dump({"argv": args.argv, "nodes": args.nodes, "notes": notes, "machine": mi,
                   "profile": args.profile,
                   "results": {str(n): r for n, r in results.items()}}, f, indent=1, sort_keys=True)
    write_outputs(args, results, notes, mi)
    return 0


def raw_path(args):
    return os.path.splitext(args.output)[0] + ".json"


def write_outputs(args, results, notes, mi):
    for n in args.nodes:
        r = results[n]
        series = []
        if "ka1" in r:
            series.append(("keepalived advert_int 1 s", r["ka1"]["kill"]))
        if "ka001" in r:
            series.append(("keepalived advert_int 0.01 s", r["ka001"]["kill"]))
        if isinstance(r.get("el"), dict):
            what = "profile" if getattr(args, "profile", None) else "defaults"
            series.append(("electiond %s: TermChanged on every survivor" % what, r["el"]["kill"]))
            series.append(("electiond %s: LocalLeader=true on the new leader" % what, r["el"]["local_leader"]))
        if any(v for _l, v in series):
            plot(os.path.join(args.plot_dir, plot_name(args, n)), n, series)
    write_report(args.output, args, results, notes, mi)
    log("wrote %s" % args.output)


if __name__ == "__main__":
    sys.exit(main())
