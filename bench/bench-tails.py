#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Tail-latency benchmark (not a test): one standalone daemon, 32 clients (bench-client), several
repetitions; per repetition ops/s, p50, p99, max and how the slow calls cluster in time (a loop
stall delays every client at once, so its calls fall into one 10 ms bucket). With --strace it also
traces the daemon's main thread during one more repetition and lists its syscalls that took
longer than --stall-ms: how the io_destroy() stall of issue 12 was found.

    /usr/bin/python3 bench/bench-tails.py [--build-dir build] [--electiond PATH] [--reps 5]
                     [--seconds 3] [--label NAME] [--strace] [--json FILE]

--electiond runs another daemon binary (e.g. a build of an older commit) with this build's
bench-client, for before/after tables.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'lib'))
sys.path.insert(0, HERE)
os.environ.setdefault('ELECTIOND_SOURCE_ROOT', ROOT)

import electiond_test as et  # noqa: E402


def fdatasync_ms(directory, n=200, size=8192):
    """p50/p99 of an 8 KiB pwrite + fdatasync in the state dir: the floor of one log write."""
    path = os.path.join(directory, 'fsync-probe')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for _ in range(n):
            t0 = time.monotonic()
            os.pwrite(fd, b'x' * size, 0)
            os.fdatasync(fd)
            times.append(time.monotonic() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    return times[len(times) // 2] * 1e3, times[int(0.99 * (len(times) - 1))] * 1e3


def stall_clusters(trace_path, slow_fraction=0.01):
    """Of the slowest 1 % of calls, how many fall into 10 ms buckets shared with >= 16 others."""
    rows = [tuple(map(int, l.split())) for l in open(trace_path) if l.strip()]
    if not rows:
        return 0, 0
    rows.sort(key=lambda r: r[1])
    slow = rows[-max(1, int(len(rows) * slow_fraction)):]
    buckets = {}
    for sent, _ in slow:
        buckets[sent // 10000] = buckets.get(sent // 10000, 0) + 1
    clustered = sum(n for n in buckets.values() if n >= 16)
    return clustered, len(slow)


def main_thread_stalls(strace_path, pid, threshold_s):
    """Syscalls of the main thread that took longer than the threshold, except the idle epoll_wait."""
    out = []
    for line in open(strace_path):
        f = line.split(None, 2)
        if len(f) < 3 or f[0] != str(pid):
            continue
        m = re.search(r'<([0-9.]+)>$', line.strip())
        if not m or float(m.group(1)) < threshold_s:
            continue
        call = re.match(r'(?:<\.\.\. )?(\w+)', f[2]).group(1)
        if call in ('epoll_wait', 'epoll_pwait'):
            continue
        out.append((call, float(m.group(1)) * 1e3))
    return out


def run_client(client, bus, seconds, election, trace):
    r = subprocess.run([client, '--address', bus.address, '--clients', '32', '--seconds', str(seconds),
                        '--election', election, '--trace', trace], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f'bench-client failed: {r.stderr}')
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build-dir', default=os.environ.get('ELECTIOND_BUILD_ROOT', os.path.join(ROOT, 'build')))
    ap.add_argument('--electiond', help='daemon binary (default: BUILD/daemon/electiond)')
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--seconds', type=float, default=3.0)
    ap.add_argument('--label', default='')
    ap.add_argument('--strace', action='store_true')
    ap.add_argument('--stall-ms', type=float, default=10.0)
    ap.add_argument('--json')
    a = ap.parse_args()

    build = os.path.abspath(a.build_dir)
    os.environ['ELECTIOND'] = os.path.abspath(a.electiond or os.path.join(build, 'daemon', 'electiond'))
    client = os.path.join(build, 'tests', 'bench-client')
    tmp = tempfile.mkdtemp(prefix='bench-tails-')
    res = {'label': a.label, 'electiond': os.environ['ELECTIOND'], 'reps': []}
    bus = et.PrivateBus()
    try:
        d = et.Daemon(bus, node_name='bench')
        try:
            res['fdatasync_ms'] = fdatasync_ms(d.state_dir)
            c = et.Client(bus)
            c.manager_get('NodeName')
            c.close()
            for i in range(a.reps):
                trace = os.path.join(tmp, f'trace{i}')
                j = run_client(client, bus, a.seconds, f'tails-{i}', trace)
                j['clustered'], j['slow'] = stall_clusters(trace)
                j['load'] = open('/proc/loadavg').read().split()[:3]
                res['reps'].append(j)
                print(f"{a.label} rep {i}: {j['ops_per_sec']:.0f} ops/s, p50 {j['p50_usec'] / 1e3:.2f} ms, "
                      f"p99 {j['p99_usec'] / 1e3:.2f} ms, max {j['max_usec'] / 1e3:.1f} ms, "
                      f"{j['clustered']}/{j['slow']} of the slowest 1 % in shared 10 ms buckets, "
                      f"load {' '.join(j['load'])}", flush=True)
            if a.strace:
                out = os.path.join(tmp, 'strace')
                p = subprocess.Popen(['strace', '-f', '-tt', '-T', '-o', out, '-p', str(d.pid)],
                                     stderr=subprocess.DEVNULL)
                time.sleep(1.0)
                run_client(client, bus, a.seconds, 'tails-strace', os.path.join(tmp, 'trace-strace'))
                p.send_signal(2)
                p.wait()
                stalls = main_thread_stalls(out, d.pid, a.stall_ms / 1e3)
                summary = {}
                for call, ms in stalls:
                    n, worst = summary.get(call, (0, 0.0))
                    summary[call] = (n + 1, max(worst, ms))
                res['stalls'] = summary
                print(f'main-thread syscalls over {a.stall_ms:g} ms under strace: ' +
                      (', '.join(f'{k} ×{n} (max {w:.1f} ms)' for k, (n, w) in sorted(summary.items())) or 'none'))
        finally:
            d.cleanup()
    finally:
        bus.stop()
        subprocess.run(['rm', '-rf', tmp])
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(res, f, indent=1)


if __name__ == '__main__':
    main()
