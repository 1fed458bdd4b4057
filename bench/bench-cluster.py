#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Cluster benchmark of issue 5 §3 (not a test): electiond clusters built by the netns harness
(tests/cluster/cluster.py, 198.18.0.0/15 inside namespaces it creates and removes).

1. 3 nodes at defaults: committed Enter/Leave per second and p50/p99 latency at 1, 8 and 64
   concurrent clients (bench-client run in the Raft leader's namespace against its bus, and once
   more in a follower's, whose calls are forwarded); per node RSS idle and with 10,000 elections
   (one persistent candidate each), CPU and wake-ups (context switches of all threads) per second
   when idle.
2. Scale: 32 nodes (MaxVoters=5): formation time, roles, a short load on a standby, failover time
   after SIGKILL of the leader's node (until every survivor's recorder saw the new leader), and
   per-node veth0 bytes per second when idle. If 32 nodes do not form, smaller sizes are tried and
   the failure is reported.
3. Writes results-cluster.md and cluster-*.png (bench/ unless --out-dir).

    sudo /usr/bin/python3 bench/bench-cluster.py [--quick] [--only-3node] [--build-dir DIR]

--check (the 'bench-cluster-smoke' test) fails unless the report has numbers; it writes into a
fresh temporary directory unless --out-dir is given. Exits 77 without root or ip netns.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))

import cluster  # noqa: E402
import netns  # noqa: E402

ELECTION = "bench"
CLIENT_COUNTS = (1, 8, 64)


def log(msg):
    print("[bench-cluster %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def percentile(values, p):
    """Linear interpolation between closest ranks."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


# --- per-process figures from /proc ------------------------------------------------------------

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime, all threads


def ctx_switches(pid):
    """Voluntary + involuntary context switches summed over every thread (libuv has a pool)."""
    total, threads = 0, 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
            threads += 1
        except FileNotFoundError:
            pass   # a pool thread that just ended
    return total, threads


def idle_figures(nodes, seconds):
    """CPU % and wake-ups/s of each node's electiond over one common idle window."""
    pids = {n.name: n.daemon.pid for n in nodes}
    t0 = time.monotonic()
    a = {k: (cpu_ticks(p), ctx_switches(p)[0]) for k, p in pids.items()}
    time.sleep(seconds)   # the measurement window itself: nothing may happen meanwhile
    dt = time.monotonic() - t0
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    for k, p in pids.items():
        ticks, (cs, threads) = cpu_ticks(p), ctx_switches(p)
        out[k] = {"cpu_pct": (ticks - a[k][0]) / hz / dt * 100, "wakeups_per_s": (cs - a[k][1]) / dt,
                  "threads": threads, "seconds": dt}
    return out


COUNT_TABLE = "bench_cluster_count"


def counters_install(node, port):
    """An nft table of our own in the node's namespace that counts IP bytes on veth0 by kind:
    gossip (UDP Port=), cluster channel (UDP Port+1) and Raft (TCP Port=), each direction.
    Touches nothing else."""
    rules = []
    for d, hook, iface in (("in", "input", "iifname"), ("out", "output", "oifname")):
        rules.append("  chain %s {" % d)
        rules.append("    type filter hook %s priority -10; policy accept;" % hook)
        for kind, proto, p in (("gossip", "udp", port), ("channel", "udp", port + 1), ("raft", "tcp", port)):
            # one packet counts once: by its source port, else by its destination port
            rules.append('    %s "veth0" %s sport %d counter comment "%s-%s"' % (iface, proto, p, kind, d))
            rules.append('    %s "veth0" %s dport %d %s sport != { %d, %d } counter comment "%s-%s"'
                         % (iface, proto, p, proto, port, port + 1, kind, d))
        rules.append('    %s "veth0" counter comment "all-%s"' % (iface, d))
        rules.append("  }")
    script = "table inet %s {\n%s\n}\n" % (COUNT_TABLE, "\n".join(rules))
    netns.ns_run(node.ns, ["nft", "-f", "-"], input=script)


def counters_read(node):
    """{"gossip-in": bytes, ...} from our nft table in node's namespace."""
    out = json.loads(netns.ns_run(node.ns, ["nft", "-j", "list", "table", "inet", COUNT_TABLE]))
    got = {}
    for item in out["nftables"]:
        rule = item.get("rule")
        if not rule or "comment" not in rule:
            continue
        b = sum(e["counter"]["bytes"] for e in rule["expr"] if "counter" in e)
        got[rule["comment"]] = got.get(rule["comment"], 0) + b
    return got


def stepdowns(c):
    """Per node, how often its log says it lost its lease and stepped down (a health signal: the
    figures of a run with step-downs include recoveries)."""
    out = {}
    for x in c.nodes:
        try:
            with open(os.path.join(x.dir, "electiond.log"), errors="replace") as f:
                out[x.name] = sum(1 for line in f if "stepping down" in line)
        except OSError:
            out[x.name] = None
    return out


def veth_bytes(node):
    out = netns.run(["ip", "-j", "-s", "-n", node.ns, "link", "show", "veth0"])
    st = json.loads(out)[0]["stats64"]
    return st["rx"]["bytes"], st["tx"]["bytes"]


# --- cluster helpers ---------------------------------------------------------------------------

def members(node):
    return [(str(m[0]), str(m[1]), str(m[2]), str(m[3])) for m in node.manager_prop("Members")]


def formed(node, n):
    """True when node owns its bus name and reports n alive members."""
    if not node.has_name():
        return False
    try:
        return sum(1 for m in members(node) if m[2] == "alive") == n
    except Exception:
        return False


def raft_roles(node):
    return {m[0]: m[3] for m in members(node)}


def healthy(node, n):
    """node's Members roles when they show a Raft leader and min(5, n) voters (leader included)."""
    try:
        r = raft_roles(node)
    except Exception:
        return None
    ok = "leader" in r.values() and sum(1 for v in r.values() if v in ("leader", "voter")) == min(5, n)
    return r if ok else None


def quorate_all(nodes, timeout):
    def q():
        try:
            return all(bool(x.manager_prop("Quorate")) for x in nodes)
        except Exception:
            return False
    cluster.wait_until(q, timeout, "every node Quorate", 0.1)


def enter(node, election, cid, timeout=30):
    import dbus

    def once():
        try:
            node.election(election).Enter(cid, dbus.UInt64(1), dbus_interface=cluster.ELECTION_IFACE,
                                          timeout=10)
            return True
        except dbus.DBusException as e:
            log("Enter on %s: %s (retrying)" % (node.name, e.get_dbus_name()))
            return False
    cluster.wait_until(once, timeout, "Enter on %s" % node.name, 0.2)


def agreed_term(nodes, election, want, timeout):
    """Waits until every node reports the same term, with a leader and exactly the candidates in want."""
    def same():
        try:
            terms = [x.get_term(election) for x in nodes]
        except Exception:
            return None
        ok = all(t == terms[0] for t in terms) and set(terms[0][2]) == want and terms[0][1]
        return terms[0] if ok else None
    return cluster.wait_until(same, timeout, "every node to agree on %s" % election, 0.05)


class RecTail:
    """Incremental reader of the recorder files (rec-<node>.jsonl) in the harness's history dir."""

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
            with open(path, "rb") as f:
                f.seek(off)
                data = f.read()
            end = data.rfind(b"\n")
            if end < 0:
                continue
            self.offsets[fn] = off + end + 1
            for line in data[:end].split(b"\n"):
                try:
                    self.records.append(json.loads(line))
                except ValueError:
                    pass
        return self.records


def run_client(client, node, *args, timeout=300):
    """bench-client inside node's namespace on node's bus; its JSON line (errors are in it)."""
    p = subprocess.run(netns.ns_argv(node.ns, [client, "--address", node.bus_address, *args]),
                       capture_output=True, text=True, timeout=timeout)
    try:
        res = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError("bench-client %s on %s failed (%d): %s" % (" ".join(args), node.name,
                                                                      p.returncode, p.stderr.strip()))
    if p.returncode != 0:
        log("bench-client %s on %s: exit %d: %s" % (" ".join(args), node.name, p.returncode, p.stderr.strip()))
    return res


# --- 1. three nodes ----------------------------------------------------------------------------

def bench_3node(a):
    res = {"nodes": 3}
    with cluster.Cluster(3, record=False, electiond=a.electiond, config=getattr(a, "cluster_config", None)) as c:
        t0 = time.monotonic()
        c.start()
        quorate_all(c.nodes, 60)
        cluster.wait_until(lambda: all(formed(x, 3) for x in c.nodes), 60, "3 alive members everywhere", 0.1)
        res["formation_s"] = time.monotonic() - t0
        roles = cluster.wait_until(lambda: healthy(c.nodes[0], 3), 60, "a Raft leader and 3 voters", 0.1)
        leader = next(c.node(k) for k, r in roles.items() if r == "leader")
        follower = next(x for x in c.nodes if x is not leader)
        res["roles"] = roles
        log("3 nodes formed in %.2f s; Raft leader %s, follower %s" % (res["formation_s"], leader.name,
                                                                       follower.name))
        time.sleep(a.settle)   # let start-up work (first lease rounds, snapshots) pass
        res["idle_rss_kib"] = {x.name: rss_kib(x.daemon.pid) for x in c.nodes}
        log("idle %g s ..." % a.idle)
        res["idle"] = idle_figures(c.nodes, a.idle)

        res["load"] = {}
        for role, node in (("leader", leader), ("follower", follower)):
            for n in CLIENT_COUNTS:
                r = run_client(a.client, node, "--clients", str(n), "--seconds", str(a.seconds),
                               "--warmup", str(a.warmup), "--election", "bench-%s-%d" % (role, n))
                r["node"] = node.name
                res["load"]["%s-%d" % (role, n)] = r
                log("%s (%s) %d clients: %.0f ops/s, p50 %.2f ms, p99 %.2f ms, errors %d"
                    % (role, node.name, n, r["ops_per_sec"], r["p50_usec"] / 1e3, r["p99_usec"] / 1e3,
                       r["errors"]))

        log("populating %d elections on %s ..." % (a.elections, leader.name))
        res["populate"] = run_client(a.client, leader, "--populate", str(a.elections), "--window", "64",
                                     timeout=1800)

        def listed():
            counts = {}
            for x in c.nodes:
                els = x.manager().ListElections(dbus_interface=cluster.MANAGER_IFACE, timeout=60)
                counts[x.name] = sum(1 for e in els if str(e[0]).startswith("bench-pop-"))
            return counts if all(v >= a.elections for v in counts.values()) else None
        cluster.wait_until(listed, 120, "every node to list %d elections" % a.elections, 0.5)
        time.sleep(a.settle)
        res["elections_rss_kib"] = {x.name: rss_kib(x.daemon.pid) for x in c.nodes}
        log("idle with %d elections %g s ..." % (a.elections, a.idle))
        res["elections_idle"] = idle_figures(c.nodes, a.idle)
        res["roles_end"] = raft_roles(c.nodes[0])
        res["stepdowns"] = stepdowns(c)
    return res


# --- 2. scale ----------------------------------------------------------------------------------

def bench_scale(a, n):
    res = {"nodes": n, "max_voters": 5, "notes": []}
    cfg = {"Cluster": dict({"MaxVoters": "5"}, **(getattr(a, "cluster_config", None) or {}).get("Cluster", {}))}
    with cluster.Cluster(n, config=cfg, electiond=a.electiond) as c:
        c.start_buses()   # buses and recorders first: formation counts from the first daemon's exec
        t0 = time.monotonic()
        for x in c.nodes:
            x.start(wait=False)
        done = {}

        def all_formed():
            for x in c.nodes:
                if not x.alive():
                    raise RuntimeError("%s exited: %s" % (x.name, x.log_tail(5)))
                if x.name not in done and formed(x, n):
                    done[x.name] = time.monotonic() - t0
            return len(done) == n
        try:
            cluster.wait_until(all_formed, a.form_timeout, "%d nodes to see %d alive members" % (n, n), 0.2)
        except (TimeoutError, RuntimeError) as e:
            alive = {}
            for x in c.nodes:
                try:
                    alive[x.name] = sum(1 for m in members(x) if m[2] == "alive")
                except Exception:
                    alive[x.name] = None
            res["error"] = "%s; formed: %d/%d nodes; alive members seen per node: %s" % (
                e, len(done), n, alive)
            return res
        res["formation_s"] = max(done.values())
        log("%d nodes formed in %.2f s" % (n, res["formation_s"]))
        try:
            roles = cluster.wait_until(lambda: healthy(c.nodes[0], n), 60,
                                       "a Raft leader and %d voters" % min(5, n), 0.1)
            res["voters_s"] = time.monotonic() - t0
        except TimeoutError:
            roles = raft_roles(c.nodes[0])
            res["notes"].append("n1's Members never showed a Raft leader and %d voters" % min(5, n))
        counts = {}
        for r in roles.values():
            counts[r] = counts.get(r, 0) + 1
        res["roles"] = counts
        res["role_of"] = dict(roles)
        voters = {k for k, r in roles.items() if r in ("leader", "voter")}
        quorate_all(c.nodes, 60)

        # idle traffic on each node's veth0 (discovery, gossip, lease rounds, Raft heartbeats)
        for x in c.nodes:
            counters_install(x, c.port)
        time.sleep(a.settle)
        b0 = {x.name: veth_bytes(x) for x in c.nodes}
        k0 = {x.name: counters_read(x) for x in c.nodes}
        cpu0 = sum(cpu_ticks(x.daemon.pid) for x in c.nodes)
        t1 = time.monotonic()
        log("%d nodes idle %g s ..." % (n, a.idle))
        time.sleep(a.idle)   # the measurement window itself
        dt = time.monotonic() - t1
        res["idle_cpu_pct_all"] = (sum(cpu_ticks(x.daemon.pid) for x in c.nodes) - cpu0) / os.sysconf("SC_CLK_TCK") / dt * 100
        b1 = {x.name: veth_bytes(x) for x in c.nodes}
        k1 = {x.name: counters_read(x) for x in c.nodes}
        res["bytes"] = {k: {"rx": (b1[k][0] - b0[k][0]) / dt, "tx": (b1[k][1] - b0[k][1]) / dt,
                            "voter": k in voters} for k in b0}
        for k in b0:
            res["bytes"][k].update({kind: (k1[k].get(kind, 0) - k0[k].get(kind, 0)) / dt for kind in k1[k]})

        # serves: persistent candidates on a few nodes (standbys forward), agreed everywhere
        raft_leader = next(k for k, r in roles.items() if r == "leader")
        picks = sorted({c.nodes[0].name, c.nodes[1].name, c.nodes[n // 2].name, c.nodes[-1].name,
                        raft_leader}, key=lambda s: int(s[1:]))
        t2 = time.monotonic()
        for k in picks:
            enter(c.node(k), ELECTION, k)
        agreed_term(c.nodes, ELECTION, set(picks), 60)
        res["enter_agreed_s"] = time.monotonic() - t2
        res["candidates"] = picks

        # and a short load on a standby's bus (every call forwarded to the Raft leader)
        standby = next((c.node(k) for k, r in sorted(roles.items()) if r == "standby"), None)
        if standby:
            r = run_client(a.client, standby, "--clients", "8", "--seconds", str(a.seconds),
                           "--warmup", str(a.warmup), "--election", "bench-standby")
            r["node"] = standby.name
            res["standby_load"] = r

        tail = RecTail(c)
        res["failover"] = []
        for i in range(a.trials):
            live = [x for x in c.nodes if x.alive()]
            tid, leader, cands = agreed_term(live, ELECTION, set(picks), 60)
            roles = cluster.wait_until(lambda: healthy(live[0], n), 60,
                                       "a Raft leader and %d voters" % min(5, n), 0.1)
            raft_leader = next((k for k, r in roles.items() if r == "leader"), None)
            if i % 2 == 1 and raft_leader in cands and raft_leader != leader:
                # every other trial the worst case: the leading candidate's node is the Raft leader
                c.node(raft_leader).election(ELECTION).Anoint(raft_leader, dbus_interface=cluster.ELECTION_IFACE,
                                                              timeout=10)
                tid, leader, cands = agreed_term(live, ELECTION, set(picks), 60)
            victim = c.node(leader)
            survivors = {x.name for x in live if x is not victim}
            t0 = time.monotonic_ns()
            victim.kill()

            def seen():
                got = {}
                for r in tail.poll():
                    if (r.get("type") == "term" and r.get("election") == ELECTION and r["t"] > t0
                            and r.get("node") in survivors and r.get("node") not in got
                            and r["term"] > tid and r["leader"] not in ("", leader)):
                        got[r["node"]] = r["t"]
                return got if len(got) == len(survivors) else None
            try:
                got = cluster.wait_until(seen, 60, "every survivor to see a new leader", 0.005)
            except TimeoutError as e:
                res["failover_error"] = str(e)
                break
            trial = {"victim": leader,
                     "victim_role": "Raft leader" if roles.get(leader) == "leader" else roles.get(leader, "?"),
                     "all_ms": (max(got.values()) - t0) / 1e6,
                     "first_ms": (min(got.values()) - t0) / 1e6,
                     "median_ms": percentile([t - t0 for t in got.values()], 50) / 1e6}
            res["failover"].append(trial)
            log("%d nodes failover %d/%d: killed %s (%s), every survivor saw the new leader after %.0f ms"
                % (n, i + 1, a.trials, leader, trial["victim_role"], trial["all_ms"]))
            if i + 1 < a.trials:
                victim.start(wait=False)
                victim.wait_ready(60)
                cluster.wait_until(lambda: all(formed(x, n) for x in c.nodes), 120,
                                   "%s to rejoin" % victim.name, 0.2)
                enter(victim, ELECTION, victim.name)
        res["stepdowns"] = stepdowns(c)
    return res


# --- report ------------------------------------------------------------------------------------

def machine_info(build):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_mib": mem, "kernel": platform.release(),
            "load": " ".join(open("/proc/loadavg").read().split()[:3]), "commit": rev or "?",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "build": os.path.relpath(build, ROOT)}


def mib(kib):
    return "%.1f" % (kib / 1024)


def report_3node(a, r3):
    leader = next(k for k, v in r3["roles"].items() if v == "leader")
    L = ["## 3 nodes, default settings", "",
         "Load: `bench-client` in the node's namespace on its private bus; each connection keeps one "
         "call in flight, Enter then Leave of its own id (each one a committed Raft entry), %g s "
         "measured after %g s warm-up. Raft leader: %s; on a follower every call is forwarded to the "
         "leader." % (a.seconds, a.warmup, leader), "",
         "| bus of | clients | ops/s | p50 ms | p99 ms | max ms | errors |", "|---|---|---|---|---|---|---|"]
    for key, r in r3["load"].items():
        role, n = key.split("-")
        L.append("| %s (%s) | %s | %.0f | %.2f | %.2f | %.2f | %d |" % (
            role, r["node"], n, r["ops_per_sec"], r["p50_usec"] / 1e3, r["p99_usec"] / 1e3,
            r["max_usec"] / 1e3, r["errors"]))
    pop = r3["populate"]
    L += ["", "Per node (electiond only; CPU = utime + stime; wake-ups = voluntary + involuntary context "
          "switches of all its threads; idle windows of %.0f s):" % r3["idle"]["n1"]["seconds"], "",
          "| node | Raft role | RSS idle MiB | RSS with %d elections MiB | idle CPU %% | idle wake-ups/s "
          "| with elections: CPU %% | wake-ups/s | threads |" % a.elections,
          "|---|---|---|---|---|---|---|---|---|"]
    for k in sorted(r3["idle_rss_kib"]):
        i, e = r3["idle"][k], r3["elections_idle"][k]
        role = r3["roles"].get(k, "?")
        if r3["roles_end"].get(k) != role:
            role += " → " + r3["roles_end"].get(k, "?")
        L.append("| %s | %s | %s | %s | %.2f | %.1f | %.2f | %.1f | %d |" % (
            k, role, mib(r3["idle_rss_kib"][k]), mib(r3["elections_rss_kib"][k]),
            i["cpu_pct"], i["wakeups_per_s"], e["cpu_pct"], e["wakeups_per_s"], i["threads"]))
    L += ["", "Populating %d elections (one persistent candidate each, 64 Enter calls in flight on the "
          "leader's bus): %.1f s, %d errors; then every node listed all of them." % (
              pop["populated"], pop["seconds"], pop["errors"]), "",
          "Lease step-downs logged during the run (\"stepping down\" in each node's log): %s." % (
              ", ".join("%s %s" % kv for kv in sorted(r3["stepdowns"].items()))), "",
          "![latency](cluster-latency.png)", ""]
    return L


def report_scale(rs):
    n = rs["nodes"]
    L = ["## Scale: %d nodes, MaxVoters=5" % n, ""]
    if "error" in rs:
        return L + ["**Did not form**: %s" % rs["error"], ""]
    by = rs["bytes"]
    vb = [v["rx"] + v["tx"] for v in by.values() if v["voter"]]
    sb = [v["rx"] + v["tx"] for v in by.values() if not v["voter"]]
    allb = vb + sb
    L += ["| measure | result |", "|---|---|",
          "| formation: first exec → every node owns its bus name and sees %d alive members | %.1f s |"
          % (n, rs["formation_s"]),
          "| … until n1's Members show a Raft leader and %d voters | %s |" % (
              min(5, n), "%.1f s" % rs["voters_s"] if "voters_s" in rs else "never"),
          "| Raft roles (Members of n1) | %s |" % ", ".join("%s %d" % kv for kv in sorted(rs["roles"].items())),
          "| %d persistent candidates (%s) entered and agreed on every node | %.2f s |" % (
              len(rs["candidates"]), ", ".join(rs["candidates"]), rs["enter_agreed_s"])]
    if "standby_load" in rs:
        r = rs["standby_load"]
        L.append("| serves: 8 clients on standby %s's bus (forwarded): ops/s, p50 / p99 | %.0f, %.2f / %.2f ms "
                 "(%d errors) |" % (r["node"], r["ops_per_sec"], r["p50_usec"] / 1e3, r["p99_usec"] / 1e3,
                                    r["errors"]))
    for i, t in enumerate(rs["failover"]):
        L.append("| failover %d: SIGKILL of %s (%s) → every survivor saw the new leader "
                 "(first / median survivor) | %.0f ms (%.0f / %.0f ms) |" % (
                     i + 1, t["victim"], t["victim_role"], t["all_ms"], t["first_ms"], t["median_ms"]))
    if rs["failover"]:
        al = [t["all_ms"] for t in rs["failover"]]
        L.append("| failover, %d trials: every survivor saw the new leader, p50 / max | %.0f / %.0f ms |" % (
            len(al), percentile(al, 50), max(al)))
    if "failover_error" in rs:
        L.append("| failover | **failed**: %s |" % rs["failover_error"])
    sd = {k: v for k, v in rs.get("stepdowns", {}).items() if v}
    L.append("| lease step-downs logged during the run | %s |" % (
        ", ".join("%s %d" % kv for kv in sorted(sd.items(), key=lambda kv: int(kv[0][1:]))) or "none"))
    for note in rs["notes"]:
        L.append("| note | %s |" % note)
    if "idle_cpu_pct_all" in rs:
        L.append("| CPU of all %d electiond together when idle (%% of one core; the machine has %d) | %.0f %% |"
                 % (n, os.cpu_count(), rs["idle_cpu_pct_all"]))
    top = max(by, key=lambda k: by[k]["rx"] + by[k]["tx"])
    L.append("| veth0 bytes/s per node when idle (rx+tx): median / min / max | %.0f / %.0f / %.0f |"
             % (percentile(allb, 50), min(allb), max(allb)))
    L.append("| … busiest node: %s (%s), rx / tx | %.0f / %.0f |" % (
        top, rs["role_of"].get(top, "?"), by[top]["rx"], by[top]["tx"]))
    for label, sel in (("voters", True), ("standbys", False)):
        rx = [v["rx"] for v in by.values() if v["voter"] == sel]
        tx = [v["tx"] for v in by.values() if v["voter"] == sel]
        if rx:
            L.append("| … %s (%d): median rx / tx | %.0f / %.0f |" % (label, len(rx), percentile(rx, 50),
                                                                     percentile(tx, 50)))
    for label, sel in (("voters", True), ("standbys", False)):
        sub = [v for v in by.values() if v["voter"] == sel]
        if sub and "gossip-in" in sub[0]:
            kinds = [k + d for k in ("gossip-", "channel-", "raft-") for d in ("in", "out")]
            med = {kind: percentile([v.get(kind, 0) for v in sub], 50) for kind in kinds}
            other = max(0.0, percentile([v.get("all-in", 0) + v.get("all-out", 0) - sum(v.get(k, 0) for k in kinds)
                                for v in sub], 50))
            L.append("| … %s, IP bytes/s by kind (median): gossip in / out, channel in / out, "
                     "Raft in / out, other | %s, %.0f |" % (
                         label, ", ".join("%.0f / %.0f" % (med[k + "in"], med[k + "out"])
                                          for k in ("gossip-", "channel-", "raft-")), other))
    L += ["", "Bytes are veth0's counters inside each node's namespace over an idle window before the "
          "candidates were entered: discovery and gossip, lease rounds, Raft heartbeats (the bridge "
          "floods multicast, so rx includes the other nodes' discovery pings). The split by kind comes from "
          "nft counters of a table of our own in each node namespace (IP bytes, without the 14-byte "
          "Ethernet header that veth0's counters include): gossip is UDP Port= (7946), the cluster "
          "channel UDP Port+1 (7947), Raft TCP Port= (7946).", "",
          "![bytes](cluster-bytes-%d.png)" % n, ""]
    return L


def report(a, res, mi):
    L = ["# electiond cluster benchmark", "",
         "Generated by `bench/bench-cluster.py%s` on %s, commit %s, build dir `%s`." % (
             " " + " ".join(a.argv) if a.argv else "", mi["date"], mi["commit"], mi["build"]),
         "Machine: %d CPUs (%s), %d MiB RAM, Linux %s; load average %s when the run ended "
         "(the machine is shared with other jobs, so tails carry scheduling noise)." % (
             mi["nproc"], mi["cpu"], mi["mem_mib"], mi["kernel"], mi["load"]),
         "Every node is a network namespace of `tests/cluster/cluster.py` on one bridge "
         "(198.18.0.0/24), with its own dbus-daemon; all of them share the same CPUs.", ""]
    if "three" in res:
        L += report_3node(a, res["three"])
    for rs in res.get("scale", []):
        L += report_scale(rs)
    L += ["Run time %.0f s." % res["run_s"]]
    return "\n".join(L) + "\n"


def minor_label(v, _pos):
    """Labels the 2x and 5x minor ticks of a log axis, so a short axis still reads."""
    mant = v / 10 ** math.floor(math.log10(v))
    return "%g" % v if round(mant) in (2, 5) else ""


def plots(out_dir, res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    from matplotlib.patches import Patch
    made = []
    r3 = res.get("three")
    if r3:
        fig, ax = plt.subplots(figsize=(7, 4))
        width = 0.13
        for j, role in enumerate(("leader", "follower")):
            for q, (key, label) in enumerate((("p50_usec", "p50"), ("p99_usec", "p99"), ("max_usec", "max"))):
                xs = [i + (j * 3 + q - 2.5) * width for i in range(len(CLIENT_COUNTS))]
                ys = [r3["load"]["%s-%d" % (role, n)][key] / 1e3 for n in CLIENT_COUNTS]
                ax.bar(xs, ys, width, label="%s %s" % (role, label),
                       color=("C0" if role == "leader" else "C1"), alpha=(1.0, 0.65, 0.35)[q])
        ax.set_xticks(range(len(CLIENT_COUNTS)))
        ax.set_xticklabels(["%d client%s" % (n, "s" if n > 1 else "") for n in CLIENT_COUNTS])
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: "%g" % v))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(minor_label))
        ax.set_ylabel("Enter/Leave latency, ms (log)")
        ax.set_title("3-node electiond: call latency on the Raft leader's and a follower's bus", fontsize=10)
        ax.legend(fontsize=7, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        p = os.path.join(out_dir, "cluster-latency.png")
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    for rs in res.get("scale", []):
        if "bytes" not in rs:
            continue
        names = sorted(rs["bytes"], key=lambda s: int(s[1:]))
        fig, ax = plt.subplots(figsize=(8, 3.5))
        rx = [rs["bytes"][k]["rx"] / 1e3 for k in names]
        tx = [rs["bytes"][k]["tx"] / 1e3 for k in names]
        colors = ["C3" if rs["bytes"][k]["voter"] else "C0" for k in names]
        ax.bar(range(len(names)), rx, color=colors, alpha=0.45)
        ax.bar(range(len(names)), tx, bottom=rx, color=colors)
        ax.legend(handles=[Patch(color="C3", label="voter: tx (dark) on rx (light)"),
                           Patch(color="C0", label="standby: tx (dark) on rx (light)")], fontsize=7)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=90, fontsize=7)
        ax.set_ylabel("kB/s on veth0, idle")
        ax.set_title("%d-node electiond cluster (MaxVoters=5): idle traffic per node" % rs["nodes"], fontsize=10)
        fig.tight_layout()
        p = os.path.join(out_dir, "cluster-bytes-%d.png" % rs["nodes"])
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    return made


def check(res, text, pngs):
    """For --check: the report must carry real numbers. Returns the list of problems."""
    bad = []
    r3 = res.get("three")
    if r3:
        for key, r in r3["load"].items():
            if not r["ops_per_sec"] > 0 or not r["p50_usec"] > 0 or r["errors"]:
                bad.append("load %s: %s" % (key, r))
        for k in r3["idle_rss_kib"]:
            if not 0 < r3["idle_rss_kib"][k] < r3["elections_rss_kib"][k]:
                bad.append("RSS %s: idle %d, with elections %d" % (k, r3["idle_rss_kib"][k],
                                                                   r3["elections_rss_kib"][k]))
            if not r3["idle"][k]["wakeups_per_s"] > 0:
                bad.append("no wake-ups counted on %s" % k)
        if not re.search(r"^\| leader \(n\d\) \| 64 \| [1-9]\d* \| \d+\.\d\d \|", text, re.M):
            bad.append("report has no 64-client row with ops/s and p50")
    for rs in res.get("scale", []):
        if "error" in rs or "failover_error" in rs or not rs["failover"]:
            bad.append("scale %d: %s" % (rs["nodes"], rs.get("error") or rs.get("failover_error") or "no trials"))
    if not pngs:
        bad.append("no plots")
    for p in pngs:
        with open(p, "rb") as f:
            if f.read(8) != b"\x89PNG\r\n\x1a\n":
                bad.append("%s is not a PNG" % p)
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.environ.get("ELECTIOND_BUILD_ROOT", os.path.join(ROOT, "build")))
    ap.add_argument("--quick", action="store_true", help="short windows, 1,000 elections, 8-node scale run")
    ap.add_argument("--only-3node", action="store_true")
    ap.add_argument("--only-scale", action="store_true")
    ap.add_argument("--scale-nodes", type=int, help="default 32 (8 with --quick)")
    ap.add_argument("--trials", type=int, help="failover trials at scale (default 6, 2 with --quick)")
    ap.add_argument("--out-dir", help="where the report and plots go (default bench/)")
    ap.add_argument("--check", action="store_true", help="fail unless the report has numbers (smoke test)")
    ap.add_argument("--encrypt", action="store_true", help="every node with [Cluster] Encrypt=yes")
    a = ap.parse_args()
    a.cluster_config = {"Cluster": {"Encrypt": "yes"}} if a.encrypt else None
    a.argv = sys.argv[1:]
    a.seconds = 1.0 if a.quick else 3.0
    a.warmup = 0.3 if a.quick else 0.5
    a.idle = 3.0 if a.quick else 10.0
    a.settle = 1.0 if a.quick else 2.0
    a.elections = 1000 if a.quick else 10000
    a.form_timeout = 180
    a.trials = a.trials or (2 if a.quick else 6)
    scale_n = a.scale_nodes or (8 if a.quick else 32)

    why = netns.usable()
    if why:
        print("bench-cluster: skipped: %s" % why)
        sys.exit(77)
    build = os.path.abspath(a.build_dir)
    a.electiond = os.environ.get("ELECTIOND") or os.path.join(build, "daemon", "electiond")
    a.client = os.path.join(build, "tests", "bench-client")
    for p in (a.electiond, a.client):
        if not os.access(p, os.X_OK):
            sys.exit("bench-cluster: %s missing; build first (ninja -C %s)" % (p, a.build_dir))

    # Only a directory made here is ever removed again.
    own_tmp = None
    if a.out_dir:
        out_dir = a.out_dir
    elif a.check:
        out_dir = own_tmp = tempfile.mkdtemp(prefix="bench-cluster-")
    else:
        out_dir = HERE
    os.makedirs(out_dir, exist_ok=True)
    res = {}
    try:
        t_start = time.monotonic()
        if not a.only_scale:
            res["three"] = bench_3node(a)
        if not a.only_3node:
            res["scale"] = []
            # the largest size that forms: the asked one first, then smaller ones
            for n in [scale_n] + [m for m in (24, 16, 8) if m < scale_n]:
                rs = bench_scale(a, n)
                res["scale"].append(rs)
                if "error" not in rs:
                    break
                log("%d nodes did not form: %s" % (n, rs["error"]))
        res["run_s"] = time.monotonic() - t_start
        mi = machine_info(build)
        text = report(a, res, mi)
        with open(os.path.join(out_dir, "results-cluster.md"), "w") as f:
            f.write(text)
        pngs = plots(out_dir, res)
        print(text)
        if a.check:
            bad = check(res, text, pngs)
            if bad:
                print("bench-cluster: check FAILED:\n  " + "\n  ".join(bad))
                sys.exit(1)
            print("bench-cluster: check passed")
    finally:
        if own_tmp:
            shutil.rmtree(own_tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
