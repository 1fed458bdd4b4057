#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The cost of [Cluster] Encrypt=yes (issue 13 §4), not a test: the same 3-node measurements
with and without encryption, in alternating rounds so that the load of a shared machine falls on
both alike. Uses the harness (tests/cluster, 198.18.0.0/15 inside namespaces it creates and
removes) and the code of bench-cluster.py and bench-failover.py.

Per round and setting (plain, then encrypted, then the next round):
  * ops/s: committed Enter/Leave per second and p50/p99 at 1 and 64 concurrent clients
    (bench-client) on the Raft leader's bus and on a follower's (forwarded over the channel);
  * idle: CPU % and wake-ups/s per daemon, and bytes/s on veth0 by protocol;
  * failover (bench-failover's electiond trials): SIGKILL of the leader's node -> every survivor
    saw the new leader; graceful Anoint -> every node saw the new term.
Once: the CPU cost of the seal/open layer alone (tests/bench-seal, bench/bench-seal.c), the
fastest of 3 runs.

    sudo /usr/bin/python3 bench/bench-encrypt.py [--rounds 2] [--trials 8] [--seconds 2]

Writes bench/results-encrypt.md and bench/results-encrypt.json (or --output). Exits 77 without
root or ip netns.
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "cluster"))

import cluster  # noqa: E402
import netns  # noqa: E402


def load(name, file):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, file))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bc = load("bench_cluster", "bench-cluster.py")
bf = load("bench_failover", "bench-failover.py")
SETTINGS = (("plain", None), ("encrypted", {"Cluster": {"Encrypt": "yes"}}))
CLIENTS = (1, 64)


def log(msg):
    print("[bench-encrypt %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def ops_round(a, config):
    """One 3-node cluster: load on the leader and a follower, then an idle window."""
    res = {"load": {}}
    with cluster.Cluster(3, record=False, electiond=a.electiond, config=config) as c:
        c.start()
        bc.quorate_all(c.nodes, 60)
        roles = cluster.wait_until(lambda: bc.healthy(c.nodes[0], 3), 60, "a Raft leader and 3 voters", 0.1)
        leader = next(c.node(k) for k, r in roles.items() if r == "leader")
        follower = next(x for x in c.nodes if x is not leader)
        for x in c.nodes:
            bc.counters_install(x, c.port)
        time.sleep(1)
        for role, node in (("leader", leader), ("follower", follower)):
            for n in CLIENTS:
                r = bc.run_client(a.client, node, "--clients", str(n), "--seconds", str(a.seconds),
                                  "--warmup", "0.3", "--election", "enc-%s-%d" % (role, n))
                res["load"]["%s-%d" % (role, n)] = r
                log("  %s %d clients: %.0f ops/s, p50 %.2f ms, p99 %.2f ms, errors %d"
                    % (role, n, r["ops_per_sec"], r["p50_usec"] / 1e3, r["p99_usec"] / 1e3, r["errors"]))
        before = {x.name: bc.counters_read(x) for x in c.nodes}
        t0 = time.monotonic()
        res["idle"] = bc.idle_figures(c.nodes, a.idle)
        dt = time.monotonic() - t0
        after = {x.name: bc.counters_read(x) for x in c.nodes}
        res["idle_bytes_per_s"] = {
            k: {kind: (after[k].get(kind, 0) - before[k].get(kind, 0)) / dt for kind in after[k]} for k in after}
        res["stepdowns"] = bc.stepdowns(c)
    return res


def failover_round(a, config):
    bf.CLUSTER_CONFIG = config
    res = bf.electiond_result()
    bf.bench_electiond(3, a.trials, 0, a.trials, 60, res)
    return res


def pct(v, p):
    return bc.percentile(v, p)


def summarize(raw):
    s = {}
    for name, _ in SETTINGS:
        rounds = raw[name]
        d = {}
        for key in ("leader-1", "leader-64", "follower-1", "follower-64"):
            ops = [r["ops"]["load"][key]["ops_per_sec"] for r in rounds]
            p50 = [r["ops"]["load"][key]["p50_usec"] for r in rounds]
            p99 = [r["ops"]["load"][key]["p99_usec"] for r in rounds]
            errors = sum(r["ops"]["load"][key]["errors"] for r in rounds)
            d[key] = {"ops": sum(ops) / len(ops), "p50_ms": sum(p50) / len(p50) / 1e3,
                      "p99_ms": sum(p99) / len(p99) / 1e3, "errors": errors, "rounds": ops}
        cpu = [v["cpu_pct"] for r in rounds for v in r["ops"]["idle"].values()]
        wake = [v["wakeups_per_s"] for r in rounds for v in r["ops"]["idle"].values()]
        d["idle_cpu_pct"] = sum(cpu) / len(cpu)
        d["idle_wakeups"] = sum(wake) / len(wake)
        per_kind = {}
        for r in rounds:
            for node in r["ops"]["idle_bytes_per_s"].values():
                for kind, v in node.items():
                    if kind.endswith("-out"):
                        per_kind.setdefault(kind[:-4], []).append(v)
        d["idle_out_bytes_per_s"] = {k: sum(v) / len(v) for k, v in per_kind.items()}
        kill = [x for r in rounds for x in r["failover"]["kill"]]
        anoint = [x for r in rounds for x in r["failover"]["anoint"]]
        d["kill_ms"] = {"n": len(kill), "p50": pct(kill, 50) / 1e6, "p90": pct(kill, 90) / 1e6,
                        "max": max(kill) / 1e6 if kill else float("nan")}
        d["anoint_ms"] = {"n": len(anoint), "p50": pct(anoint, 50) / 1e6, "p90": pct(anoint, 90) / 1e6,
                          "max": max(anoint) / 1e6 if anoint else float("nan")}
        d["stepdowns"] = sum(v or 0 for r in rounds for v in r["ops"]["stepdowns"].values())
        s[name] = d
    return s


def micro(a):
    """bench-seal three times; per figure the fastest (the least disturbed by other work)."""
    import subprocess
    runs = [json.loads(subprocess.run([a.seal], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]
    return {k: {f: min(r[k][f] for r in runs) if f != "mb_per_s" else max(r[k][f] for r in runs)
                for f in runs[0][k]} for k in runs[0]}


def report(a, s, mi, run_s, mc):
    p, e = s["plain"], s["encrypted"]

    def delta(x, y):
        return "%+.0f %%" % ((y - x) / x * 100) if x else "n/a"
    lines = ["# Encrypt=yes versus Encrypt=no (3 nodes)", "",
             "`bench/bench-encrypt.py %s` — %d alternating rounds per setting, %d kill and %d Anoint "
             "trials per round, %g s load windows." % (" ".join(a.argv), a.rounds, a.trials, a.trials, a.seconds),
             "",
             "Machine: %s, %d CPUs, Linux %s, load average at the end %s, %s, commit %s. **The 2 cores "
             "are shared with other work running at the same time** (other builds and test runs): "
             "absolute figures are noisy and lower than on an idle machine; the rounds alternate "
             "between the two settings so that the load falls on both alike, and the differences "
             "below are within that noise unless said otherwise." % (
                 mi["cpu"], mi["nproc"], mi["kernel"], mi["load"], mi["date"], mi["commit"]),
             "", "## Throughput (committed Enter/Leave, bench-client)", "",
             "| clients, bus | plain ops/s | encrypted ops/s | change | plain p50 / p99 ms | encrypted p50 / p99 ms |",
             "|---|---|---|---|---|---|"]
    for key in ("leader-1", "leader-64", "follower-1", "follower-64"):
        role, n = key.split("-")
        lines.append("| %s, %s's | %.0f | %.0f | %s | %.2f / %.2f | %.2f / %.2f |" % (
            n, role, p[key]["ops"], e[key]["ops"], delta(p[key]["ops"], e[key]["ops"]),
            p[key]["p50_ms"], p[key]["p99_ms"], e[key]["p50_ms"], e[key]["p99_ms"]))
    errors = sum(s[x][k]["errors"] for x in ("plain", "encrypted") for k in ("leader-1", "leader-64",
                                                                           "follower-1", "follower-64"))
    lines += ["", "Failed calls in all load windows: %d." % errors, "",
              "## Failover", "",
              "| measure | plain p50 / p90 / max ms | encrypted p50 / p90 / max ms | trials each |",
              "|---|---|---|---|"]
    for key, label in (("kill_ms", "SIGKILL of the leader's node → every survivor saw the new leader"),
                       ("anoint_ms", "graceful Anoint → every node saw the new term")):
        lines.append("| %s | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %d |" % (
            label, p[key]["p50"], p[key]["p90"], p[key]["max"], e[key]["p50"], e[key]["p90"], e[key]["max"],
            min(p[key]["n"], e[key]["n"])))
    lines += ["", "## Idle", "",
              "| | plain | encrypted |", "|---|---|---|",
              "| CPU per daemon | %.2f %% | %.2f %% |" % (p["idle_cpu_pct"], e["idle_cpu_pct"]),
              "| wake-ups/s per daemon | %.0f | %.0f |" % (p["idle_wakeups"], e["idle_wakeups"])]
    for kind in ("gossip", "channel", "raft"):
        lines.append("| bytes/s sent per node, %s | %.0f | %.0f |" % (
            kind, p["idle_out_bytes_per_s"].get(kind, 0), e["idle_out_bytes_per_s"].get(kind, 0)))
    d1, d2 = mc["datagram_100"], mc["datagram_1400"]
    r1, r2 = mc["record_100"], mc["record_65536"]
    lines += ["", "## The seal/open layer alone (one core, `tests/bench-seal`, fastest of 3 runs)", "",
              "| | seal µs | open µs | open under the second key µs | HMAC-SHA256 (GLib, already on every packet) µs |",
              "|---|---|---|---|---|",
              "| datagram, 100 bytes (a lease) | %.2f | %.2f | %.2f | %.2f |" % (
                  d1["seal_us"], d1["open_us"], d1["open_second_key_us"], d1["hmac_us"]),
              "| datagram, 1400 bytes (full gossip) | %.2f | %.2f | %.2f | %.2f |" % (
                  d2["seal_us"], d2["open_us"], d2["open_second_key_us"], d2["hmac_us"]),
              "| Raft record, 100 bytes | %.2f | %.2f | | |" % (r1["seal_us"], r1["open_us"]),
              "| Raft record, 64 KiB | %.1f | %.1f | | (%.0f MB/s sealed + opened) |" % (
                  r2["seal_us"], r2["open_us"], r2["mb_per_s"])]
    lines += ["", "Lease step-downs in the daemons' logs of the load/idle clusters, counted from start-up "
              "(cluster formation included): plain %d, encrypted %d." % (p["stepdowns"], e["stepdowns"]), "",
              "What encryption adds per message: 44 bytes per gossip or channel datagram (magic, "
              "24-byte nonce, 16-byte tag), 20 bytes per Raft record, one XChaCha20-Poly1305 seal "
              "and open each, and for Raft a copy through the socketpair relay (two more syscalls per "
              "message). Whole run: %.0f s. Raw figures: `results-encrypt.json`." % run_s, ""]
    return "\n".join(lines)


def machine_info():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "kernel": platform.release(), "cpu": cpu,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": " ".join(open("/proc/loadavg").read().split()[:3]), "commit": bf.git_head()}


def main():
    ap = argparse.ArgumentParser(description="Encrypt=yes versus Encrypt=no, 3 nodes")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--trials", type=int, default=8, help="kill and Anoint trials per round and setting")
    ap.add_argument("--seconds", type=float, default=2.0, help="each load window")
    ap.add_argument("--idle", type=float, default=3.0, help="the idle window")
    ap.add_argument("--output", default=os.path.join(HERE, "results-encrypt.md"))
    ap.add_argument("--build-dir", default=os.environ.get("ELECTIOND_BUILD_ROOT", os.path.join(ROOT, "build")))
    a = ap.parse_args()
    a.argv = sys.argv[1:]
    why = netns.usable()
    if why:
        print("bench-encrypt: skipped: %s" % why)
        return 77
    build = os.path.abspath(a.build_dir)
    a.electiond = os.environ.get("ELECTIOND") or os.path.join(build, "daemon", "electiond")
    os.environ["ELECTIOND"] = a.electiond
    a.client = os.path.join(build, "tests", "bench-client")
    a.seal = os.path.join(build, "tests", "bench-seal")
    for p in (a.electiond, a.client, a.seal):
        if not os.access(p, os.X_OK):
            sys.exit("bench-encrypt: %s missing; build first (ninja -C %s)" % (p, a.build_dir))

    t0 = time.monotonic()
    mc = micro(a)
    raw = {name: [] for name, _ in SETTINGS}
    for i in range(a.rounds):
        for name, config in SETTINGS:
            log("round %d/%d, %s: load and idle" % (i + 1, a.rounds, name))
            r = {"ops": ops_round(a, config)}
            log("round %d/%d, %s: failover" % (i + 1, a.rounds, name))
            r["failover"] = failover_round(a, config)
            raw[name].append(r)
    run_s = time.monotonic() - t0
    s = summarize(raw)
    mi = machine_info()
    text = report(a, s, mi, run_s, mc)
    with open(os.path.splitext(a.output)[0] + ".json", "w") as f:
        json.dump({"argv": a.argv, "machine": mi, "summary": s, "micro": mc, "raw": raw}, f, indent=1,
                  sort_keys=True)
    with open(a.output, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
